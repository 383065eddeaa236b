"""Log format choice (auto/json/text), one event per line, and market/cloid context in JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hip3.service import cli
from hip3.service.config import config_from_mapping
from hip3.service.logs import event_context, resolve_format, setup_logging

CLOID = "0x" + "ab" * 16


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    assert resolve_format("json", Terminal()) == "json"
    with pytest.raises(ValueError, match="auto, json, text"):
        resolve_format("xml", io.StringIO())


def test_json_lines_carry_market_and_cloid_and_keep_a_traceback_on_one_line() -> None:
    stream = io.StringIO()
    setup_logging("INFO", log_format="auto", stream=stream)
    log = logging.getLogger("hip3.test")
    log.info(
        "order entry xyz:TSLA B 0.229 @ 432.2 cloid=%s (entry) filled", CLOID.upper().replace("0X", "0x")
    )
    log.info("market xyz:GOLD blocked by bbo_age: 2500 ms > 2000 ms")
    log.info("fill", extra={"market": "xyz:NVDA", "cloid": CLOID})
    log.info("ws ws://127.0.0.1:8080/ws: connected to localhost:8080")
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        log.exception("order xyz:TSLA cloid=%s: handling its outcome failed", CLOID)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5  # five events, five lines, the traceback included
    events = [json.loads(line) for line in lines]
    assert (events[0]["market"], events[0]["cloid"]) == ("xyz:TSLA", CLOID)
    assert events[1]["market"] == "xyz:GOLD" and "cloid" not in events[1]
    assert (events[2]["market"], events[2]["cloid"]) == ("xyz:NVDA", CLOID)
    assert "market" not in events[3] and "cloid" not in events[3]  # host:port is not a market
    assert "RuntimeError: boom" in events[4]["exc"] and events[4]["level"] == "ERROR"


def test_text_on_a_terminal() -> None:
    stream = Terminal()
    setup_logging("INFO", log_format="auto", stream=stream)
    logging.getLogger("hip3.test").warning("market xyz:TSLA blocked by halt: trading halted")
    line = stream.getvalue()
    assert line.endswith("WARNING hip3.test: market xyz:TSLA blocked by halt: trading halted\n")
    assert not line.startswith("{")


def test_event_context_needs_a_whole_cloid() -> None:
    assert event_context("cloid=0x1234") == {}
    assert event_context(f"order cloid {CLOID} unknown") == {"cloid": CLOID}


def test_config_and_flag_choose_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_from_mapping({}).logging.effective_format == "auto"
    assert config_from_mapping({"logging": {"format": "text"}}).logging.effective_format == "text"
    assert config_from_mapping({"logging": {"json": True}}).logging.effective_format == "json"
    # `hip3 run --log-format X` reaches run_with_config
    seen: dict[str, object] = {}

    def fake_run(path: str | None, *, mainnet_confirmed: bool, log_format: str | None = None) -> int:
        seen.update(path=path, log_format=log_format)
        return 0

    monkeypatch.setattr(cli, "run_with_config", fake_run)
    assert cli.main(["run", "--config", "x.toml", "--log-format", "json"]) == 0
    assert seen == {"path": "x.toml", "log_format": "json"}
    assert cli.main(["run", "--config", "x.toml", "--log-format", "xml"]) == 2
