"""The broker's users and ACLs, from shared/messaging/principals.py: run by infra.sh and the
container stack after the broker starts, as the `admin` super user. Idempotent.

    python deploy/local/kafka_security.py scram-args           --add-scram values for the storage
                                                               format (the super users: KIP-900)
    python deploy/local/kafka_security.py sync --bootstrap H:P  every other principal's SCRAM user
                                                               (upserted) and the ACL table: what
                                                               is missing is added, what is not in
                                                               the table is removed

aiokafka 0.14 has no admin call for ACLs or SCRAM users, and Kafka 4 answers only the flexible
versions of those requests: the few request and response layouts needed are declared here, from
Kafka's own message definitions (CreateAcls v2, DescribeAcls v2, DeleteAcls v2,
AlterUserScramCredentials v0).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared import local_secrets
from shared.messaging.credentials import client_options
from shared.messaging.principals import PRINCIPALS, SUPER_USERS, Grant, Kind

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_MECHANISM_ID = 2  # Kafka's ScramMechanism: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512
SCRAM_ITERATIONS = 8192

RESOURCE_TYPES = {"any": 1, "topic": 2, "group": 3, "cluster": 4}
PATTERN_ANY, PATTERN_LITERAL, PATTERN_PREFIXED = 1, 3, 4
OPERATIONS = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "DESCRIBE": 8}
PERMISSION_ANY, PERMISSION_ALLOW = 1, 3
ANY_HOST = "*"

# (resource type, resource name, pattern type, principal, host, operation, permission)
Acl: TypeAlias = tuple[int, str, int, str, str, int, int]


def _flexible(*fields: Any) -> Schema:
    return Schema(*fields, ("tags", TaggedFields))


_ACL_BINDING = (
    ("resource_type", Int8),
    ("resource_name", CompactString("utf-8")),
    ("pattern_type", Int8),
    ("principal", CompactString("utf-8")),
    ("host", CompactString("utf-8")),
    ("operation", Int8),
    ("permission_type", Int8),
)


class CreateAclsResponse_v2(Response):
    API_KEY, API_VERSION = 30, 2
    SCHEMA = _flexible(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
    )


class CreateAclsRequest_v2(RequestStruct):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 30, 2, True
    RESPONSE_TYPE = CreateAclsResponse_v2
    SCHEMA = _flexible(("creations", CompactArray(*_ACL_BINDING, ("tags", TaggedFields))))


class CreateAcls(Request[CreateAclsRequest_v2]):
    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[CreateAclsRequest_v2]) -> CreateAclsRequest_v2:
        return request_struct_class([(*acl, {}) for acl in self.acls], {})


class DescribeAclsResponse_v2(Response):
    API_KEY, API_VERSION = 29, 2
    SCHEMA = _flexible(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "resources",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", CompactString("utf-8")),
                ("pattern_type", Int8),
                (
                    "acls",
                    CompactArray(
                        ("principal", CompactString("utf-8")),
                        ("host", CompactString("utf-8")),
                        ("operation", Int8),
                        ("permission_type", Int8),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
    )


class DescribeAclsRequest_v2(RequestStruct):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 29, 2, True
    RESPONSE_TYPE = DescribeAclsResponse_v2
    SCHEMA = _flexible(*_ACL_BINDING)


class DescribeEveryAcl(Request[DescribeAclsRequest_v2]):
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v2]) -> DescribeAclsRequest_v2:
        any_type, any_operation = RESOURCE_TYPES["any"], OPERATIONS["ANY"]
        return request_struct_class(
            any_type, None, PATTERN_ANY, None, None, any_operation, PERMISSION_ANY, {}
        )


class DeleteAclsResponse_v2(Response):
    API_KEY, API_VERSION = 31, 2
    SCHEMA = _flexible(
        ("throttle_time_ms", Int32),
        (
            "filter_results",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "matching_acls",
                    CompactArray(
                        ("error_code", Int16),
                        ("error_message", CompactString("utf-8")),
                        *_ACL_BINDING,
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
    )


class DeleteAclsRequest_v2(RequestStruct):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 31, 2, True
    RESPONSE_TYPE = DeleteAclsResponse_v2
    SCHEMA = _flexible(("filters", CompactArray(*_ACL_BINDING, ("tags", TaggedFields))))


class DeleteAcls(Request[DeleteAclsRequest_v2]):
    API_KEY = 31

    def __init__(self, acls: list[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[DeleteAclsRequest_v2]) -> DeleteAclsRequest_v2:
        return request_struct_class([(*acl, {}) for acl in self.acls], {})


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY, API_VERSION = 51, 0
    SCHEMA = _flexible(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 51, 0, True
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = _flexible(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
    )


class UpsertScramUsers(Request[AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        upsertions = []
        for name, password in self.users.items():
            salt = os.urandom(32)
            # RFC 5802's Hi(): what the broker stores is derived from this, never the password.
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            upsertions.append((name, SCRAM_MECHANISM_ID, SCRAM_ITERATIONS, salt, salted, {}))
        return request_struct_class([], upsertions, {})


def acl_of(principal: str, grant: Grant) -> Acl:
    return (
        RESOURCE_TYPES[grant.resource],
        "kafka-cluster" if grant.resource == "cluster" else grant.name,
        PATTERN_PREFIXED if grant.prefixed else PATTERN_LITERAL,
        f"User:{principal}",
        ANY_HOST,
        OPERATIONS[grant.operation],
        PERMISSION_ALLOW,
    )


def wanted_acls() -> set[Acl]:
    return {acl_of(p.name, g) for p in PRINCIPALS for g in p.grants}


def password_of(name: str) -> str:
    password = local_secrets.kafka_password(name)
    if not password:
        raise RuntimeError(f"no password for {name} in {local_secrets.secrets_path()}")
    return password


def scram_args() -> list[str]:
    """The `--add-scram` values of the storage format: the super users, who must exist before
    the broker's first start (it authenticates to itself; the bootstrap connects as admin)."""
    return [f"{SCRAM_MECHANISM}=[name={name},password={password_of(name)}]" for name in SUPER_USERS]


async def connected_admin(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(
            **client_options(bootstrap, principal="admin"), request_timeout_ms=10_000
        )
        try:
            await admin.start()
            return admin
        except (KafkaError, OSError) as error:
            last_error = error
            await admin.close()
            await asyncio.sleep(0.25)
    raise TimeoutError(f"Kafka at {bootstrap} did not take the admin principal: {last_error!r}")


def _check(errors: list[tuple[int, str | None]], what: str) -> None:
    failed = [f"error {code}: {message}" for code, message in errors if code != 0]
    if failed:
        raise RuntimeError(f"{what}: {'; '.join(failed)}")


async def sync(bootstrap: str, timeout: float) -> str:
    admin = await connected_admin(bootstrap, time.monotonic() + timeout)
    try:
        send = admin._send_request  # aiokafka has no public call for these
        users = {p.name: password_of(p.name) for p in PRINCIPALS if p.kind is not Kind.SUPER}
        answer: Any = await send(UpsertScramUsers(users))
        _check([(r[1], r[2]) for r in answer.results], "SCRAM users")

        described: Any = await send(DescribeEveryAcl())
        _check([(described.error_code, described.error_message)], "DescribeAcls")
        held = {
            (rtype, rname, pattern, principal, host, operation, permission)
            for rtype, rname, pattern, acls, _ in described.resources
            for principal, host, operation, permission, _ in acls
        }
        wanted = wanted_acls()
        stale, missing = sorted(held - wanted), sorted(wanted - held)
        if stale:
            deleted: Any = await send(DeleteAcls(stale))
            _check([(r[0], r[1]) for r in deleted.filter_results], "DeleteAcls")
        if missing:
            created: Any = await send(CreateAcls(missing))
            _check([(r[0], r[1]) for r in created.results], "CreateAcls")
    finally:
        await admin.close()
    return (
        f"security: {len(users)} SCRAM users, {len(wanted)} ACLs "
        f"({len(missing)} added, {len(stale)} removed)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("scram-args")
    sync_parser = commands.add_parser("sync")
    sync_parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    sync_parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        if args.command == "scram-args":
            print("\n".join(scram_args()))
        else:
            print(asyncio.run(sync(args.bootstrap, args.timeout)))
    except (TimeoutError, RuntimeError, KafkaError) as error:
        print(f"kafka_security: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
