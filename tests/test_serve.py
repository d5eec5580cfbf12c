"""A newcomer runs `staypulse serve` with nothing configured: real servers start, data survives a restart, and
stopping the service stops them."""

from __future__ import annotations

from pathlib import Path

from tests.cli_process import Service, processes_using


def test_serve_starts_embedded_servers_keeps_data_and_stops_cleanly(data_dir: Path) -> None:
    account = {"email": "first-run@example.com", "password": "correct horse battery", "name": "Ana"}

    first = Service(data_dir)
    first.wait_until_ready()
    assert first.http.post("/api/v1/auth/register", json=account).status_code == 201
    assert processes_using(data_dir), "embedded Postgres and Redis should run from the data folder"
    assert first.stop() == 0
    assert processes_using(data_dir) == []

    second = Service(data_dir)
    second.wait_until_ready()
    login = second.http.post("/api/v1/auth/login", json={"email": account["email"], "password": account["password"]})
    assert login.status_code == 200
    assert second.stop() == 0
    assert processes_using(data_dir) == []
