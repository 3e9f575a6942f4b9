"""``GET /metrics`` (Prometheus text format), ``/health`` and ``/ready`` of a real server,
read with prometheus-client's own parser."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from conftest import start_server, stop_server

pytestmark = pytest.mark.compat


def scrape(server: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the server's /metrics: (name, sorted labels) -> value."""
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def requests_of(samples: dict[Any, float], operation: str, code: str) -> float:
    key = ("strongroom_requests_total", (("error_code", code), ("operation", operation)))
    return samples.get(key, 0.0)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("metrics") / "data", None, "--workers", "2")
    yield server
    stop_server(server)


def test_requests_errors_latency_and_the_database_are_counted(two_workers: Any) -> None:
    """Whichever of two workers answers the scrape, it counts every worker's requests
    (each writes its counts once a second)."""
    kms = two_workers.client()
    before = scrape(two_workers)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    kms.create_grant(
        KeyId=key,
        GranteePrincipal=f"arn:aws:iam::{key_account(kms, key)}:root",
        Operations=["Encrypt"],
    )
    clients = [two_workers.client() for _ in range(8)]  # connections over both workers
    for client in clients:
        for _ in range(5):
            client.encrypt(KeyId=key, Plaintext=b"x")
    with pytest.raises(ClientError):
        kms.encrypt(KeyId=disabled, Plaintext=b"x")
    time.sleep(1.5)  # every worker has written its counts since
    after = scrape(two_workers)

    assert requests_of(after, "Encrypt", "none") - requests_of(before, "Encrypt", "none") == 40
    assert (
        requests_of(after, "Encrypt", "DisabledException")
        - requests_of(before, "Encrypt", "DisabledException")
        == 1
    )
    count = ("strongroom_request_duration_seconds_count", (("operation", "Encrypt"),))
    inf = ("strongroom_request_duration_seconds_bucket", (("le", "+Inf"), ("operation", "Encrypt")))
    assert after[count] - before.get(count, 0) == 41 and after[inf] == after[count]
    assert after["strongroom_keys", (("state", "Disabled"),)] >= 1
    assert after["strongroom_keys", (("state", "Enabled"),)] >= 1
    assert after["strongroom_grants", ()] >= 1
    assert after["strongroom_key_cache_hits_total", ()] > before.get(
        ("strongroom_key_cache_hits_total", ()), 0
    )
    flushes = ("strongroom_audit_flush_seconds_count", ())
    assert after[flushes] > before.get(flushes, 0)


def key_account(kms: Any, key: str) -> str:
    return str(kms.describe_key(KeyId=key)["KeyMetadata"]["AWSAccountId"])


def test_health_and_ready(server: Any) -> None:
    for path, body in (("/health", b'{"status":"ok"}'), ("/ready", b'{"status":"ready"}')):
        with urllib.request.urlopen(server.endpoint + path, timeout=10) as answer:
            assert (answer.status, answer.read()) == (200, body)
