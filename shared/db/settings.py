"""Where a service's database is, and which role and schema it uses."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """`RENEWALS_PG_*`. Each service connects with its own role, which can use only its schema."""

    model_config = SettingsConfigDict(env_prefix="RENEWALS_PG_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 15432
    database: str = "renewals"
    user: str = ""
    password: str = ""
    schema_name: str = ""
    pool_min_size: int = 1
    pool_max_size: int = 8

    @classmethod
    def for_service(cls, service: str) -> "DatabaseSettings":
        """Dev defaults: role `<service>_svc` (password alike) owning schema `<service>`."""
        settings = cls()
        return settings.model_copy(
            update={
                "user": settings.user or f"{service}_svc",
                "password": settings.password or f"{service}_svc",
                "schema_name": settings.schema_name or service,
            }
        )
