"""The services' broker connects to every server of a comma-separated RENEWALS_KAFKA_BOOTSTRAP
(a three-broker cluster, issue 15 item 6), not to one server named "a:1,b:2"."""

from __future__ import annotations

from shared.messaging.broker import create_broker
from shared.messaging.settings import MessagingSettings


def test_a_cluster_bootstrap_is_a_list_of_servers() -> None:
    settings = MessagingSettings(kafka_bootstrap="127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3")
    broker = create_broker(settings, client_id="test")
    assert broker._connection_kwargs["bootstrap_servers"] == [
        "127.0.0.1:1",
        "127.0.0.1:2",
        "127.0.0.1:3",
    ]


def test_one_server_stays_one() -> None:
    broker = create_broker(MessagingSettings(kafka_bootstrap="127.0.0.1:19092"), client_id="t")
    assert broker._connection_kwargs["bootstrap_servers"] == ["127.0.0.1:19092"]
