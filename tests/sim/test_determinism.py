"""Same seed → same oracle and book stream; different seed → different. Also under MockClock."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import attrs
import trio
from trio_websocket import open_websocket_url

from hip3.core import Side
from hip3.sim.config import SimConfig
from hip3.sim.engine import Engine
from hip3.sim.model import DexModel, MarketModel, clamp_band, clamp_move
from hip3.sim.server import open_sim

from .helpers import NOW_MS


def _stream(config: SimConfig, seconds: float = 120.0, step: float = 0.1) -> list[Any]:
    """Oracle, mark and top-3 levels of every market after every step of simulated time."""
    now = [0.0]
    engine = Engine(config, clock_ms=lambda: NOW_MS + int(now[0] * 1000), recover_signer=lambda *a: "0x0")
    model = DexModel(engine, config, 0.0)
    out = []
    for i in range(int(seconds / step)):
        now[0] = i * step
        model.step(now[0])
        out.append(
            tuple(
                (m.oracle_px, m.mark_px, tuple(m.levels(Side.BUY, 3)), tuple(m.levels(Side.SELL, 3)))
                for m in engine.markets.values()
            )
        )
    return out


def test_same_seed_same_stream(config: SimConfig) -> None:
    assert _stream(config) == _stream(config)


def test_different_seed_different_stream(config: SimConfig) -> None:
    other = attrs.evolve(config, seed=config.seed + 1)
    a, b = _stream(config), _stream(other)
    assert [m[0] for m in a[0]] == [m[0] for m in b[0]]  # same start oracles
    assert a != b


def test_oracle_moves_every_interval_and_stays_clamped(config: SimConfig) -> None:
    stream = _stream(config, seconds=60)
    tsla = [frame[0][0] for frame in stream]
    changes = sum(1 for x, y in itertools.pairwise(tsla) if x != y)
    assert 15 <= changes <= 21  # ~3 s cadence over 60 s
    for x, y in itertools.pairwise(tsla):
        assert abs(y - x) <= x * Decimal("0.01") + Decimal("0.01")  # 1 % clamp (+ one tick of rounding)


def test_book_lags_oracle_into_dislocations(config: SimConfig) -> None:
    """With the shipped settings a 20 bps taker sees a dislocation every ten seconds or so (five markets)."""
    stream = _stream(config, seconds=300)
    signals = 0
    active = [False] * len(config.markets)
    for frame in stream:
        for i, (oracle, _mark, bids, asks) in enumerate(frame):
            edge = max((oracle - asks[0][0]) / oracle, (bids[0][0] - oracle) / oracle) * 10000
            now_active = edge > 20
            signals += now_active and not active[i]
            active[i] = now_active
    assert 15 <= signals <= 80, signals


def test_clamps() -> None:
    assert clamp_move(Decimal(100), Decimal(105), Decimal(1)) == Decimal(101)
    assert clamp_move(Decimal(100), Decimal(95), Decimal(1)) == Decimal(99)
    assert clamp_move(Decimal(100), Decimal(95), Decimal(0)) == Decimal(95)
    assert clamp_band(Decimal(100), Decimal(5000), Decimal(10)) == Decimal(1000)
    assert clamp_band(Decimal(100), Decimal(1), Decimal(10)) == Decimal(10)


def test_quotes_are_on_grid_and_ordered(config: SimConfig) -> None:
    engine = Engine(config, clock_ms=lambda: NOW_MS, recover_signer=lambda *a: "0x0")
    for market in engine.markets.values():
        model = MarketModel(market, config.model, config.seed)
        bids, asks = model.quotes(market.oracle_px)
        spec = market.spec
        assert all(spec.is_valid_price(px) and spec.is_valid_size(sz) for px, sz in bids + asks)
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert [p for p, _ in asks] == sorted({p for p, _ in asks})
        fair = market.oracle_px * (1 + market.structural_gap_bps / 10000)  # HOOD: 30 bps above
        assert bids[0][0] < fair < asks[0][0]
        if market.structural_gap_bps:
            assert bids[0][0] > market.oracle_px  # its whole book sits above the oracle


async def _oracle_trace(config: SimConfig) -> list[Decimal]:
    trace = []
    async with open_sim(config) as sim:
        for _ in range(10):
            await trio.sleep(3.0)
            trace.append(sim.engine.market("GOLD").oracle_px)
    return trace


async def test_open_sim_under_mock_clock_is_reproducible(config: SimConfig, autojump_clock: Any) -> None:
    fixed = attrs.evolve(config, start_time_ms=NOW_MS)
    first = await _oracle_trace(fixed)
    second = await _oracle_trace(fixed)
    assert first == second
    assert len(set(first)) > 3  # it moved over 30 s of mock time


async def _bbo_frames(config: SimConfig) -> list[Any]:
    """bbo frames for xyz:GOLD with exchange time in [start+5 s, start+20 s], over a real WS."""
    frames: list[Any] = []
    async with open_sim(config) as sim, open_websocket_url(sim.ws_url) as ws:
        await ws.send_message(
            json.dumps({"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:GOLD"}})
        )
        assert await ws.get_message() == "Websocket connection established."
        while True:
            msg = json.loads(await ws.get_message())
            if msg.get("channel") != "bbo":
                continue
            t = msg["data"]["time"] - NOW_MS
            if t > 20_000:
                return frames
            if t >= 5_000:
                frames.append(msg["data"])


async def test_ws_stream_is_reproducible_under_mock_clock(config: SimConfig, autojump_clock: Any) -> None:
    fixed = attrs.evolve(config, start_time_ms=NOW_MS)
    first, second = await _bbo_frames(fixed), await _bbo_frames(fixed)
    assert len(first) > 10 and first == second
    assert await _bbo_frames(attrs.evolve(fixed, seed=fixed.seed + 1)) != first
