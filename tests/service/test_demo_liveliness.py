"""The demo trades: the shipped simulator model + the demo's detector settings produce signals.

No sockets: the simulator's model and engine are stepped on trio's MockClock every `stream_tick`,
each market's bbo / activeAssetCtx is rendered exactly as the simulator publishes it (only when it
changed), parsed by the bot's wire parser into the bot's market cells, and scanned by the bot's
`SignalScanner` (gates + detector) with the parameters `hip3 demo` configures. Deterministic for
the shipped seed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from hip3.core import MarketKey, Side
from hip3.hyperliquid.events import AssetCtx, Bbo
from hip3.hyperliquid.parse import parse_ws_frame
from hip3.market.cells import MarketCells
from hip3.service.app import signal_scanner
from hip3.service.config import config_from_mapping
from hip3.service.demo import demo_config
from hip3.sim.config import SimConfig, load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.info import asset_ctx, bbo
from hip3.sim.model import DexModel
from hip3.strategy.scanner import SignalScanner
from hip3.trading.messages import Signal

SIM_MINUTES = 3
START_MS = 1_763_000_000_000
BPS = Decimal(10_000)
# The round trip by hand without the exchange's fee fields (the launch rule at tier 0: 4.5 bps × 2 per
# fill, in and out) + the default 0.5 bp margin; the exit cost (measured half-spread) is at least 1 bp.
ROUND_TRIP_FLOOR_BPS = 2 * Decimal(9) + 1 + Decimal("0.5")
#: What counts as a dislocation when this file looks at the simulator's books directly.
DISLOCATION_BPS = Decimal(14)


def _demo_scanner(specs: dict[MarketKey, Any]) -> SignalScanner:
    fake_sim = SimpleNamespace(
        info_url="http://127.0.0.1:1/info", exchange_url="", ws_url="ws://127.0.0.1:1/ws"
    )
    mapping = demo_config(fake_sim, "0x" + "11" * 20, Path("/nonexistent-demo-state"), network="testnet")
    cfg = config_from_mapping(mapping)
    return signal_scanner(cfg, specs)


def _parse_one(channel: str, data: dict[str, Any]) -> Any:
    events = parse_ws_frame(json.dumps({"channel": channel, "data": data}))
    assert len(events) == 1, events
    return events[0]


async def _run_demo_market(
    config: SimConfig, minutes: float
) -> tuple[list[Signal], int, dict[MarketKey, list[tuple[float, Decimal]]]]:
    """(signals, evaluations, oracle values seen per market with the time they arrived)."""
    start = trio.current_time()
    engine = Engine(
        config,
        clock_ms=lambda: START_MS + int((trio.current_time() - start) * 1000),
        recover_signer=lambda *a: "0x0",
    )
    model = DexModel(engine, config, start)
    specs = {m.spec.key: m.spec for m in engine.markets.values()}
    scanner = _demo_scanner(specs)
    cells = MarketCells(specs)
    published: dict[tuple[str, str], Any] = {}
    oracles: dict[MarketKey, list[tuple[float, Decimal]]] = {k: [] for k in specs}
    signals: list[Signal] = []
    tick = config.model.stream_tick
    for n in range(int(minutes * 60 / tick)):
        await trio.sleep_until(start + n * tick)
        now = trio.current_time()
        model.step(now)
        changed: set[MarketKey] = set()
        for market in engine.markets.values():
            key = market.spec.key
            book = bbo(engine, market)
            if published.get((market.coin, "bbo")) != book["bbo"]:  # the simulator pushes changes only
                published[(market.coin, "bbo")] = book["bbo"]
                event = _parse_one("bbo", book)
                assert isinstance(event, Bbo)
                cells.update_bbo(key, event, now)
                changed.add(key)
            ctx = asset_ctx(market)
            if published.get((market.coin, "ctx")) != ctx:
                published[(market.coin, "ctx")] = ctx
                event = _parse_one("activeAssetCtx", {"coin": market.coin, "ctx": ctx})
                assert isinstance(event, AssetCtx)
                cells.update_ctx(key, event, now)
                changed.add(key)
                if not oracles[key] or oracles[key][-1][1] != event.oracle_px:
                    oracles[key].append((now, event.oracle_px))
        signals.extend(scanner.scan(cells, changed, now))
    return signals, scanner.stats.evaluations, oracles


def _same_way_moves_before(
    history: list[tuple[float, Decimal]], at: float, rising: bool, min_bps: Decimal, window: float
) -> int:
    """Independent count of the oracle's latest run of >= min_bps moves in one direction inside the window."""
    seen = [(t, px) for t, px in history if t <= at]
    ref = seen[0][1]
    times: list[float] = []
    for t, px in seen[1:]:
        move = (px - ref) / ref * BPS
        ref = px
        if abs(move) < min_bps:
            continue
        if (move > 0) == rising:
            times.append(t)
        else:
            times = []
    return sum(1 for t in times if at - t <= window)


@pytest.fixture
def shipped() -> SimConfig:
    return load_sim_config(None)


async def test_demo_settings_see_signals_every_minute(shipped: SimConfig, autojump_clock: Any) -> None:
    signals, evaluations, oracles = await _run_demo_market(shipped, SIM_MINUTES)

    # Lively: several per minute on average, in more than one market, both directions.
    assert len(signals) >= 3 * SIM_MINUTES, len(signals)
    assert len({s.market for s in signals}) >= 3
    assert {s.side for s in signals} == {Side.BUY, Side.SELL}
    # Every minute has something to show a newcomer, including the first.
    t0 = min(t for hist in oracles.values() for t, _ in hist)  # the first data
    per_minute = [0] * SIM_MINUTES
    for s in signals:
        per_minute[int((s.created_at - t0) // 60)] += 1
    assert all(count >= 1 for count in per_minute), per_minute
    # ...but not a signal on every look: dislocations are episodes, not the steady state.
    assert len(signals) * 20 < evaluations, (len(signals), evaluations)
    assert len(signals) <= 30 * SIM_MINUTES

    for s in signals:
        # The edge and threshold by hand from the signal's own oracle and touched price.
        edge = (
            (s.oracle_px - s.best_px if s.side is Side.BUY else s.best_px - s.oracle_px) / s.oracle_px * BPS
        )
        assert s.raw_edge_bps == edge
        assert s.threshold_bps >= ROUND_TRIP_FLOOR_BPS
        assert s.threshold_detail.startswith("fees 9+9 + exit cost ")
        assert s.edge_bps >= s.threshold_bps
        # The oracle was moving the signal's way: >= 1 move of >= 2 bps within 10 s (the defaults).
        moves = _same_way_moves_before(oracles[s.market], s.created_at, s.side is Side.BUY, Decimal(2), 10.0)
        assert moves >= 1, (s, moves)
        assert s.suggested_size > 0
        assert s.suggested_size * s.best_px <= Decimal(100)  # the demo's per-market cap


async def test_same_seed_same_signals(shipped: SimConfig, autojump_clock: Any) -> None:
    first, _, _ = await _run_demo_market(shipped, 1)
    second, _, _ = await _run_demo_market(shipped, 1)
    key = [(s.market, s.side, s.raw_edge_bps, s.oracle_px, s.best_px, s.suggested_size) for s in first]
    assert key and key == [
        (s.market, s.side, s.raw_edge_bps, s.oracle_px, s.best_px, s.suggested_size) for s in second
    ]


def test_dislocations_last_seconds_and_some_are_false(shipped: SimConfig) -> None:
    """HIP-3-like books (original-system.md §0): the book sits beyond the oracle for ~1–3 s, and
    not every dislocation is stale liquidity — sometimes the oracle comes back instead."""
    now = [0.0]
    engine = Engine(shipped, clock_ms=lambda: START_MS + int(now[0] * 1000), recover_signer=lambda *a: "0x0")
    model = DexModel(engine, shipped, 0.0)
    open_since: dict[str, tuple[float, Decimal, Decimal]] = {}  # coin -> (since, oracle, mid) at the start
    durations: list[float] = []
    caught_up = came_back = 0
    for n in range(int(300 / shipped.model.stream_tick)):
        now[0] = n * shipped.model.stream_tick
        model.step(now[0])
        for coin, market in engine.markets.items():
            bid, ask = market.best(Side.BUY), market.best(Side.SELL)
            assert bid is not None and ask is not None
            oracle, mid = market.oracle_px, (bid.limit_px + ask.limit_px) / 2
            # a structural gap (HOOD's book sits 30 bps above its oracle all the time) is not a
            # dislocation: measure against where that book is centred
            fair = oracle * (1 + market.structural_gap_bps / BPS)
            edge = max(fair - ask.limit_px, bid.limit_px - fair) / fair * BPS
            if edge >= DISLOCATION_BPS and coin not in open_since:
                open_since[coin] = (now[0], oracle, mid)
            elif edge < DISLOCATION_BPS and coin in open_since:
                since, oracle0, mid0 = open_since.pop(coin)
                durations.append(now[0] - since)
                # Closed by the book moving to the oracle, or by the oracle moving back to the book?
                if abs(mid - mid0) > abs(oracle - oracle0):
                    caught_up += 1
                else:
                    came_back += 1
    durations.sort()
    assert len(durations) >= 15, durations
    median = durations[len(durations) // 2]
    assert 1.0 <= median <= 3.5, durations
    assert durations[-1] <= 10.0, durations
    assert caught_up >= 5 and came_back >= 3, (caught_up, came_back)
