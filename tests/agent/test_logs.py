"""Logs: one line per event, as logfmt or JSON with the same keys."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from ipvsctl.agent.logs import (
    JsonFormatter,
    LogfmtFormatter,
    configure_logging,
    event,
    logfmt_value,
)

CREATED = 1_738_324_800.25  # 2025-01-31T12:00:00.250Z


def record(msg: str = "synced", level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "ipvsctl.agent", "msg": msg, "levelno": level,
         "levelname": logging.getLevelName(level), "created": CREATED, **extra}
    )  # fmt: skip


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("json", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_text_is_logfmt_with_time_level_and_msg_first() -> None:
    line = LogfmtFormatter().format(
        record("Service skipped", fields={"service": "shop/web", "ports": 2, "local": True})
    )
    assert line == (
        'time=2025-01-31T12:00:00.250Z level=info msg="Service skipped" logger=ipvsctl.agent'
        " service=shop/web ports=2 local=true"
    )


def test_json_holds_the_same_keys_and_values() -> None:
    line = JsonFormatter().format(record(fields={"services": 3, "node": None}))
    assert json.loads(line) == {
        "time": "2025-01-31T12:00:00.250Z",
        "level": "info",
        "msg": "synced",
        "logger": "ipvsctl.agent",
        "services": 3,
        "node": None,
    }


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("web", "web"),
        ("", '""'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("C:\\dir", '"C:\\\\dir"'),
        (None, "null"),
        (False, "false"),
        (1.5, "1.5"),
        ("Ünïcode", "Ünïcode"),
    ],
)
def test_logfmt_quotes_values_only_when_needed(value: object, written: str) -> None:
    assert logfmt_value(value) == written


def test_a_traceback_stays_on_one_line_in_both_formats() -> None:
    try:
        raise RuntimeError("netlink went away")
    except RuntimeError:
        failed = record("sync failed", logging.ERROR, exc_info=sys.exc_info())
    text = LogfmtFormatter().format(failed)
    as_json = JsonFormatter().format(failed)
    assert "\n" not in text and "\n" not in as_json
    assert "level=error" in text
    assert "RuntimeError: netlink went away" in json.loads(as_json)["error"]


def test_plain_extra_keys_are_fields_too() -> None:
    line = LogfmtFormatter().format(record(resource="services"))
    assert line.endswith(" resource=services")


def test_a_field_cannot_hide_a_fixed_key() -> None:
    parsed = json.loads(JsonFormatter().format(record(fields={"msg": "other"})))
    assert parsed["msg"] == "synced"
    assert parsed["field.msg"] == "other"


def test_fields_named_like_credentials_are_redacted() -> None:
    line = LogfmtFormatter().format(record(fields={"bearer_token": "abc", "user": "me"}))
    assert "abc" not in line
    assert "bearer_token=<redacted>" in line


def test_configure_logging_writes_one_json_object_per_event(captured: io.StringIO) -> None:
    log = logging.getLogger("ipvsctl.agent.test")
    event(log, "health check port opened", service="shop/web", port=30080)
    log.warning("watch restarted", extra={"fields": {"resource": "services"}})
    log.debug("not shown at info")
    lines = captured.getvalue().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == [
        "health check port opened",
        "watch restarted",
    ]
    first = json.loads(lines[0])
    assert (first["level"], first["service"], first["port"]) == ("info", "shop/web", 30080)


def test_configure_logging_again_replaces_its_own_handler_only(captured: io.StringIO) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    text = io.StringIO()
    handler = configure_logging("text", stream=text)
    try:
        assert len(root.handlers) == before
        logging.getLogger("ipvsctl.agent.test").info("once")
        assert captured.getvalue() == ""
        assert text.getvalue().startswith("time=")
        assert " msg=once " in text.getvalue()
    finally:
        root.removeHandler(handler)


def test_an_unknown_format_names_the_flag() -> None:
    with pytest.raises(ValueError, match=r"^--log-format: 'xml'"):
        configure_logging("xml")
