"""The access log's line: its fields, and a name from the request that cannot forge a line."""

from __future__ import annotations

import logging
import time

import pytest

from strongroom.server.access_log import LOGGER, log_request

pytestmark = pytest.mark.unit


def test_a_line_has_every_field(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        error = "InvalidCiphertextException"
        log_request(("10.0.0.7", 5151), "kms", "Decrypt", 400, error, time.perf_counter(), "rid-1")
        log_request(None, "sts", "", 403, None, time.perf_counter(), "rid-2")
    first, second = (record.getMessage() for record in caplog.records)
    assert first.startswith(
        "client=10.0.0.7:5151 operation=kms:Decrypt status=400 "
        "error=InvalidCiphertextException duration_ms="
    )
    assert first.endswith(" request_id=rid-1")
    assert second.startswith("client=- operation=sts:- status=403 error=- duration_ms=")


def test_an_operation_name_that_is_not_a_plain_name_is_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An STS Action comes from the body: a newline in it must not start a forged line.
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log_request(None, "sts", "AssumeRole\nclient=1.2.3.4 status=200", 400, None, 0.0, "r")
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert 'operation=sts:"AssumeRole\\nclient=1.2.3.4 status=200"' in record.getMessage()
