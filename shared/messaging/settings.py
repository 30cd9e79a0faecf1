"""Settings every service shares: the broker, batching, retries, the HTTP port, fault points."""

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MessagingSettings(BaseSettings):
    """`RENEWALS_*` environment variables; the defaults fit `make infra-up` on this machine."""

    model_config = SettingsConfigDict(env_prefix="RENEWALS_", extra="ignore")

    # `make infra-up` listens on RENEWALS_KAFKA_PORT; RENEWALS_KAFKA_BOOTSTRAP overrides it all.
    kafka_bootstrap: str = Field(
        default_factory=lambda: f"127.0.0.1:{os.environ.get('RENEWALS_KAFKA_PORT', '19092')}"
    )
    # Who this process is on the broker (SASL/SCRAM-SHA-512, shared/messaging/credentials.py):
    # the launcher and the container stack give each service its own principal and password.
    # Without a password, the one of the secrets file (shared/local_secrets.py) for that principal.
    kafka_username: str = ""
    kafka_password: str = Field(default="", repr=False)
    # SASL_PLAINTEXT on loopback; SASL_SSL where the broker is elsewhere.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"

    @property
    def kafka_servers(self) -> list[str]:
        """The bootstrap list, one `host:port` an item: FastStream takes a string as ONE server,
        so "a:9092,b:9092" (a cluster) would never connect."""
        return [server.strip() for server in self.kafka_bootstrap.split(",") if server.strip()]

    # Batches are what make exactly-once cheap: one transaction and one offset commit per batch.
    consumer_max_records: int = 500
    # The longest a consumer waits in one ask for records; one that arrives ends the wait at
    # once (shared/messaging/idle_wait.py). A quiet consumer wakes once per wait.
    consumer_wait_ms: int = Field(default=1000, ge=1)
    # The broker answers a fetch once it holds `fetch_min_bytes` for the consumer, or after
    # `fetch_max_wait_ms`. One byte, on purpose: a consumer already fetches about once per batch
    # under load (0.27-0.38 fetch requests per renewal in all, the bench), and 32 KiB / 20 ms
    # made each idle consumer fetch 50 times a second (the idle stack 12 % -> 39 % of a core,
    # Kafka 3-4 % -> 21 %): README, Configuration. A record that comes ends the wait at once, so
    # the wait only paces the consumers of quiet topics (most of a service's 4-8 consumers, under
    # load too): at aiokafka's 500 ms, their long polls kept Kafka at 10.7 % of a core and the
    # idle services at 16.1 %; at 2 s, 4.7 % and 12.1 %. Its price: aiokafka sends a node no new
    # fetch while one is in flight, so a batch nacked on a quiet topic (an infrastructure error,
    # after its pause of a second or more) comes again once that long poll ends: 2 s at most.
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=2000, ge=0)
    # Attempts for one message whose handling fails for a reason other than the infrastructure;
    # after the last one it goes to `<topic>.dlq` and the partition moves on.
    handler_max_attempts: int = 3
    # The pause before a batch that failed for the infrastructure (shared/db/errors.py) comes
    # again; it doubles with each failure in a row, up to the max.
    infrastructure_retry_seconds: float = 1.0
    infrastructure_retry_max_seconds: float = 30.0
    # The largest record the broker takes: Kafka's `message.max.bytes` (1,048,588 by default,
    # and each topic's `max.message.bytes`) and the producer's `max_request_size` (1 MiB). A
    # dead letter that would be larger keeps its headers and the start of its body.
    max_message_bytes: int = Field(default=1_048_576, ge=16 * 1024)
    outbox_batch_size: int = 2000
    # Allocations between two collections of the youngest generation, once the service has
    # started (CPython's 700 costs the consumer a third of its parsing: collector.py); 0 keeps
    # CPython's.
    gc_young_threshold: int = Field(default=50_000, ge=0)
    outbox_poll_seconds: float = 0.5
    # How often the outbox backlog and age and the consumer lag gauges are sampled.
    metrics_sample_seconds: float = 5.0
    # Readiness and Prometheus metrics; 0 picks a free port (tests), logged at start.
    http_host: str = "127.0.0.1"
    http_port: int = 0
    # Fault-injection points armed for tests, e.g. "after_db_commit" (see faults.py).
    faults: set[str] = Field(default_factory=set)
    # Seconds after start before an armed point fires (the fault suite's schedule), e.g.
    # {"after_db_commit": 30}; a point not named fires at once.
    faults_after: dict[str, float] = Field(default_factory=dict)
    test_clocks_enabled: bool = False
    log_level: str = "INFO"
    # An OTLP/HTTP collector (e.g. http://127.0.0.1:4318): each published event is exported as
    # a span of its trace (shared/plumbing/otlp.py). Unset: nothing is exported.
    otlp_endpoint: str | None = None
