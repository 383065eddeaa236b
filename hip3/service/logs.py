"""Logging to stderr (plain text or JSON lines) with secrets redacted from every line.

Redaction is defence in depth: the signing key is wrapped in `hip3.service.keys.SecretKey` and never
formatted, but if some library ever puts it into a message or a traceback, the handler installed by
`setup_logging` replaces it with `[REDACTED]` before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

import orjson

REDACTED = "[REDACTED]"
_MIN_SECRET_LEN = 8
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(text: str) -> None:
    """Redact `text` (case-insensitively; with or without a 0x prefix) from all log output."""
    if len(text) < _MIN_SECRET_LEN:
        raise ValueError("a secret to redact must be at least 8 characters long")
    global _pattern
    with _lock:
        _secrets.add(text)
        if text[:2].lower() == "0x" and len(text) - 2 >= _MIN_SECRET_LEN:
            _secrets.add(text[2:])
        # longest first so a 0x-prefixed form is consumed whole
        alternatives = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in alternatives), re.IGNORECASE)


def redact(text: str) -> str:
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def _clear_secrets_for_tests() -> None:
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message with registered secrets replaced (for handlers we don't own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def _utc_timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class PlainFormatter(logging.Formatter):
    """`2026-01-22T10:00:00.123Z INFO    hip3.market.feed: message` (UTC), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_timestamp(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


# LogRecord attributes that are not `extra=` fields
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any `extra=` fields; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        return redact(text)


_HANDLER_MARK = "_hip3_handler"


def setup_logging(
    level: str = "INFO", json: bool = False, *, stream: TextIO | None = None
) -> logging.Handler:
    """Route the root logger to stderr (or `stream`); calling it again replaces the previous setup."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"logging level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if json else PlainFormatter())
    handler.addFilter(RedactSecretsFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # Libraries that log every request at INFO would drown the bot's own lines.
    for noisy in ("httpx", "httpcore", "hpack", "trio-websocket"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return handler
