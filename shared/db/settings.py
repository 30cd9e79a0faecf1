"""Where a service's database is, and which role and schema it uses."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import local_secrets


class DatabaseSettings(BaseSettings):
    """`RENEWALS_PG_*`. Each service connects with its own role, which can use only its schema."""

    model_config = SettingsConfigDict(env_prefix="RENEWALS_PG_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 15432
    database: str = "renewals"
    user: str = ""
    password: str = Field(default="", repr=False)
    schema_name: str = ""
    pool_min_size: int = 1
    pool_max_size: int = 8

    @classmethod
    def for_service(cls, service: str) -> "DatabaseSettings":
        """Role `<service>_svc` owning schema `<service>`. Its password: RENEWALS_PG_PASSWORD
        (what the launcher and the container stack give each service, its own only), else the
        secrets file's for that role (the operator tools and tests, run from the clone)."""
        settings = cls()
        role = settings.user or f"{service}_svc"
        password = settings.password if settings.password and settings.user in ("", role) else ""
        return settings.model_copy(
            update={
                "user": role,
                "password": password or local_secrets.database_password(role) or "",
                "schema_name": settings.schema_name or service,
            }
        )
