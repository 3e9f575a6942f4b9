"""The server's log lines: text (the default) or JSON, one object a line, with the request
id of the request being served when there is one (``log_format`` setting)."""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the text format
LOG_FORMATS = ("text", "json")

REQUEST_ID: ContextVar[str | None] = ContextVar("strongroom_request_id", default=None)
"""The request being served: set by the request pipeline for its task and its handler's
thread; None outside a request."""


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id"?, "exception"?}`` a line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Log to stderr at ``level`` in ``log_format`` ("text" or "json"), replacing any
    handler set before (a spawned worker starts with none)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
