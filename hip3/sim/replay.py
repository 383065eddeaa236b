"""Serve a recording as the simulator's market data instead of its model.

Frames are applied with their original spacing (divided by `speed`): a recorded `bbo` sets the top
of the book (deeper levels from the last recorded `l2Book`, if any, stay behind it), an `l2Book`
sets the whole book, an `activeAssetCtx` sets the oracle and the mark, `trades` are passed on to
subscribers. The book is the makers' book of the engine, so orders fill against the recorded book
and a recorded book that crosses a resting order fills it. Clients get `bbo` per block on change
and `activeAssetCtx` when a recorded one arrives, rendered from that state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from hip3.sim.recording import RecordedFrame, RecordedGap, RecordingStats, read_recording

if TYPE_CHECKING:
    from hip3.sim.server import Sim

log = logging.getLogger("hip3.sim.replay")

Level = tuple[Decimal, Decimal]


def _level(raw: Any) -> Level | None:
    if not isinstance(raw, dict):
        return None
    try:
        px, sz = Decimal(str(raw["px"])), Decimal(str(raw["sz"]))
    except (KeyError, ArithmeticError):
        return None
    return (px, sz) if px.is_finite() and sz.is_finite() and px > 0 and sz > 0 else None


def _levels(raw: Any) -> list[Level]:
    out = [_level(r) for r in raw] if isinstance(raw, list) else []
    return [lv for lv in out if lv is not None]


class ReplayFeed:
    """Applies a recording to a running simulator's engine, in time."""

    def __init__(self, sim: Sim, paths: Iterable[str | Path], speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.sim = sim
        self.paths = [Path(p) for p in paths]
        self.speed = speed
        self.stats = RecordingStats()
        self.finished = trio.Event()
        self.unknown_coins: set[str] = set()
        self._depth: dict[str, tuple[list[Level], list[Level]]] = {}  # coin -> last l2Book levels

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        start = trio.current_time()
        first: float | None = None
        task_status.started()
        for item in read_recording(self.paths, self.stats):
            if first is None:
                first = item.t_ms
            await trio.sleep_until(start + max(0.0, item.t_ms - first) / 1000 / self.speed)
            if isinstance(item, RecordedGap):
                log.info("recording gap at %.0f: %s", item.t_ms, item.reason)
                continue
            self.apply(item)
        log.info(
            "recording finished: %d frames, %d gaps, %d skipped, %d bad lines",
            self.stats.frames,
            self.stats.gaps,
            self.stats.skipped,
            self.stats.bad_lines,
        )
        self.finished.set()

    def apply(self, item: RecordedFrame) -> None:
        """Apply one recorded frame now, then publish what it caused."""
        data = item.data
        coin = data.get("coin") if isinstance(data, dict) else None
        if item.channel == "trades" and isinstance(data, list) and data:
            coin = data[0].get("coin") if isinstance(data[0], dict) else None
        if not isinstance(coin, str) or coin not in self.sim.engine.markets:
            if isinstance(coin, str) and coin not in self.unknown_coins:
                self.unknown_coins.add(coin)
                log.warning("recording has %s, which this simulator's config does not list: skipped", coin)
            return
        engine = self.sim.engine
        match item.channel:
            case "bbo":
                bbo = data.get("bbo") if isinstance(data, dict) else None
                if not isinstance(bbo, list) or len(bbo) != 2:
                    return
                deep_bids, deep_asks = self._depth.get(coin, ([], []))
                bid, ask = _level(bbo[0]), _level(bbo[1])
                bids = [bid, *[lv for lv in deep_bids if lv[0] < bid[0]]] if bid else []
                asks = [ask, *[lv for lv in deep_asks if lv[0] > ask[0]]] if ask else []
                engine.replace_maker_quotes(coin, bids, asks)
            case "l2Book":
                levels = data.get("levels") if isinstance(data, dict) else None
                if not isinstance(levels, list) or len(levels) != 2:
                    return
                bids, asks = _levels(levels[0]), _levels(levels[1])
                self._depth[coin] = (bids, asks)
                engine.replace_maker_quotes(coin, bids, asks)
            case "activeAssetCtx":
                ctx = data.get("ctx") if isinstance(data, dict) else None
                if not isinstance(ctx, dict):
                    return
                try:
                    oracle, mark = Decimal(str(ctx["oraclePx"])), Decimal(str(ctx["markPx"]))
                except (KeyError, ArithmeticError):
                    return
                if oracle.is_finite() and oracle > 0:
                    engine.set_oracle(coin, oracle)
                if mark.is_finite() and mark > 0:
                    engine.update_mark(coin, mark)
                self.sim.push_ctx(coin)
            case "trades":
                self.sim.stream_trades(coin, data)
        self.sim.after_action()


__all__ = ["ReplayFeed"]
