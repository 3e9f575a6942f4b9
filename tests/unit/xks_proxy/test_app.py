"""The proxy app's request log and clock."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from strongroom.xks_proxy.app import RequestLog, XksProxyApp


def test_the_log_file_gets_one_json_line_per_request_at_once(tmp_path: Path) -> None:
    log = RequestLog.to_file(tmp_path / "logs" / "requests.log")
    log.write({"operation": "Encrypt", "keyId": "foo", "ms": 0.25, "source": None})
    # written before the answer: readable now, without a flush or a close
    log.write({"kmsRequestId": "r-\ud800", "awsPrincipalArn": "ü"})
    lines = (tmp_path / "logs" / "requests.log").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"operation": "Encrypt", "keyId": "foo", "ms": 0.25, "source": None},
        {"kmsRequestId": "r-\ud800", "awsPrincipalArn": "ü"},
    ]
    assert (tmp_path / "logs" / "requests.log").stat().st_mode & 0o777 == 0o600


def test_the_log_stream_gets_one_json_line_per_request() -> None:
    stream = io.StringIO()
    RequestLog(stream).write({"status": 200, "errorName": None})
    assert stream.getvalue() == '{"status":200,"errorName":null}\n'


def test_log_times_are_iso_8601_utc_milliseconds() -> None:
    app = XksProxyApp.__new__(XksProxyApp)
    app._second = (0, "")
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = app._now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
    assert before <= datetime.fromisoformat(stamp) <= datetime.now(UTC)
