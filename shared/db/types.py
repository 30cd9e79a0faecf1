"""The connection type handlers see: a plain connection or one borrowed from a pool."""

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:  # the stubs make both generic; the runtime classes are not subscriptable
    DbConnection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
else:
    DbConnection = asyncpg.Connection | PoolConnectionProxy
