"""Structured logs for `--log-format text|json`: one line per event.

    time=2025-01-31T12:00:00.250Z level=info msg="synced" logger=ipvsctl.agent services=3
    {"time": "2025-01-31T12:00:00.250Z", "level": "info", "msg": "synced", ..., "services": 3}

Modules log through the stdlib `logging` as usual and attach their fields
either with `event(log, "synced", services=3)` or as
`log.info("synced", extra={"fields": {"services": 3}})` (plain `extra` keys
work too). A traceback becomes one escaped `error` field, so a line is
always an event. Fields whose name suggests a credential are redacted: a
safety net, not a licence to pass tokens to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
REDACTED = "<redacted>"
_SECRET_WORDS = ("password", "token", "secret", "authorization", "credential")
# The attributes every LogRecord has: anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message", "asctime", "fields", "taskName",
}  # fmt: skip
_OURS = "_ipvsctl_handler"  # marks the handler configure_logging installed


def rfc3339(timestamp: float) -> str:
    """UTC, millisecond precision: `2025-01-31T12:00:00.250Z`."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(logger: logging.Logger, msg: str, /, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields: `event(log, "port opened", port=30080)`."""
    logger.log(level, msg, extra={"fields": fields}, stacklevel=2)


def configure_logging(
    format: str = "text", level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to `stream` (standard error) as text or JSON lines.

    Calling it again replaces the handler it installed before, nothing else.
    Raises ValueError for an unknown format.
    """
    if format not in FORMATS:
        raise ValueError(f"--log-format: {format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else LogfmtFormatter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class _EventFormatter(logging.Formatter):
    def pairs(self, record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
        """time, level, msg, logger, then the record's fields in the order given."""
        yield "time", rfc3339(record.created)
        yield "level", record.levelname.lower()
        yield "msg", record.getMessage()
        yield "logger", record.name
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        fields.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        for key, value in fields.items():
            # A field named like a fixed key must not hide it.
            name = f"field.{key}" if key in ("time", "level", "msg", "logger") else str(key)
            secret = any(word in name.lower() for word in _SECRET_WORDS)
            yield name, REDACTED if secret else value


class JsonFormatter(_EventFormatter):
    """One JSON object per line; values JSON cannot hold are written as text."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(dict(self.pairs(record)), default=str, ensure_ascii=False)


class LogfmtFormatter(_EventFormatter):
    """key=value pairs separated by spaces; a value is quoted when it must be."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{_key(k)}={logfmt_value(v)}" for k, v in self.pairs(record))


def logfmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and not any(c <= " " or c in '="\\' or c == "\x7f" for c in text):
        return text
    # JSON string syntax is logfmt's quoting: \" \\ \n and \u escapes.
    return json.dumps(text, ensure_ascii=False)


def _key(name: str) -> str:
    return "".join("_" if c <= " " or c in '="\\' else c for c in name) or "_"
