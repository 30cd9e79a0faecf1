"""Where `renewals health` looks for each service's /ready: make run's ports, or the container
stack's (RENEWALS_HEALTH_SERVICES, set by deploy/docker/stack.sh)."""

import pytest

from services.operations.health import default_services
from services.processes import SERVICES


def test_without_the_variable_the_ports_of_make_run(monkeypatch):
    monkeypatch.delenv("RENEWALS_HEALTH_SERVICES", raising=False)
    assert default_services() == {s.name: f"127.0.0.1:{s.http_port}" for s in SERVICES}


def test_the_variable_names_each_service_and_tolerates_spaces_and_a_trailing_comma(monkeypatch):
    monkeypatch.setenv(
        "RENEWALS_HEALTH_SERVICES", "renewal-1=127.0.0.1:28081, renewal-2=127.0.0.1:28086,"
    )
    assert default_services() == {
        "renewal-1": "127.0.0.1:28081",
        "renewal-2": "127.0.0.1:28086",
    }


@pytest.mark.parametrize("entry", ["renewal", "renewal=28081"])
def test_an_entry_that_is_not_name_host_port_is_refused_with_the_entry(monkeypatch, entry):
    monkeypatch.setenv("RENEWALS_HEALTH_SERVICES", entry)
    with pytest.raises(ValueError, match=entry):
        default_services()
