"""Logging to stderr with secrets redacted from every line: one event per line.

Format: JSON lines when stderr is not a terminal (journald, files: one object per line, a traceback
inside its `exc` field), readable text on a terminal; `--log-format {json,text,auto}` or
`[logging] format` override. A JSON line carries `market` and `cloid` fields when the event is
about one (given with `extra=` or found in the message: `xyz:TSLA`, `cloid=0x…`).

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
from typing import Any, Literal, TextIO

import orjson

from hip3.service.masking import mask_secrets

REDACTED = "[REDACTED]"
LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "text")
#: `dex:COIN` (lower-case dex, upper-case coin) and a 16-byte client order id, as messages print them.
_MARKET_RE = re.compile(r"\b([a-z][a-z0-9]{0,15}:[A-Z][A-Z0-9]{0,31})\b")
_CLOID_RE = re.compile(r"\bcloid[=: ]+(0x[0-9a-fA-F]{32})\b")
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
    """Registered secrets, then anything else that looks like a private key, masked."""
    pattern = _pattern
    return mask_secrets(pattern.sub(REDACTED, text) if pattern is not None else text)


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


def event_context(message: str) -> dict[str, str]:
    """The market and cloid an event line is about, as far as its message names them."""
    context: dict[str, str] = {}
    market = _MARKET_RE.search(message)
    if market is not None:
        context["market"] = market.group(1)
    cloid = _CLOID_RE.search(message)
    if cloid is not None:
        context["cloid"] = cloid.group(1).lower()
    return context


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, market/cloid when known, any `extra=`
    fields, and `exc` with a traceback; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        for key, value in event_context(message).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        text = orjson.dumps(entry, default=str).decode()
        return redact(text)


def resolve_format(log_format: str, stream: TextIO) -> Literal["json", "text"]:
    """`auto`: text on a terminal, JSON lines anywhere else (journald, a file, a pipe)."""
    if log_format == "json":
        return "json"
    if log_format == "text":
        return "text"
    if log_format != "auto":
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


_HANDLER_MARK = "_hip3_handler"


def setup_logging(
    level: str = "INFO",
    json: bool | None = None,
    *,
    log_format: str = "text",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route the root logger to stderr (or `stream`); calling it again replaces the previous setup.

    `json` True/False forces the format; otherwise `log_format` decides ("auto" looks at the stream).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"logging level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = resolve_format(log_format, out) == "json"
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler = logging.StreamHandler(out)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if json else PlainFormatter())
    handler.addFilter(RedactSecretsFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # Libraries that log every request at INFO would drown the bot's own lines.
    for noisy in ("httpx", "httpcore", "hpack", "trio-websocket"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return handler
