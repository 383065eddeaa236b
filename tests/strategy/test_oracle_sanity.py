"""An absurd oracle is not edge (issue 12 item 3): mark and book at 100, oracle 100 → 100.1 → 150.

A deployer controls a HIP-3 oracle and can publish a wrong one. With default settings the bot must
block that market and say why, not buy a 3,330 bps "edge" at the full per-market cap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells
from hip3.service.app import signal_scanner
from hip3.service.config import config_from_mapping

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110000)
SPEC = MarketSpec(TSLA, sz_decimals=3)


def ctx(oracle: str, mark: str = "100") -> AssetCtx:
    return AssetCtx(
        coin=TSLA.name, oracle_px=D(oracle), mark_px=D(mark), mid_px=None, open_interest=D(0), funding=D(0)
    )


def bbo(t: int) -> Bbo:
    return Bbo(coin=TSLA.name, time=t, bid=BookLevel(D("99.99"), D(50), 3), ask=BookLevel(D("100"), D(50), 3))


def test_absurd_oracle_jump_does_not_trade_with_default_settings(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_from_mapping({})  # every default
    scanner = signal_scanner(cfg, {TSLA: SPEC})
    scanner.wall_clock = lambda: datetime(2026, 7, 15, 15, 0, tzinfo=UTC)  # a Wednesday: no session block
    cells = MarketCells([TSLA])
    signals = []
    now = 0.0
    caplog.set_level(logging.INFO)
    # Long enough on the quiet market for the structural baseline to warm up first.
    for oracle in ["100"] * 30 + ["100.1", "150", "150"]:
        now += 1.0
        cells.update_bbo(TSLA, bbo(int(now * 1000)), now)
        cells.update_ctx(TSLA, ctx(oracle), now)
        signals += scanner.scan(cells, {TSLA}, now)
    assert signals == []
    assert "blocked by oracle_sanity" in caplog.text and "oracle not trusted" in caplog.text
