"""Record → replay end to end: the live bot in observation mode against the simulator, the frames it
received written as a recording, and `hip3 replay` of that recording giving the same signals.

The recording is taken at the bot's own socket (`timing.on_frame_in`, called for every frame as it
is read), stamped with the trio clock the bot's gates use, so replay and live see the same data at
the same relative times.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3 import timing
from hip3.core import Side
from hip3.replay.cli import main as replay_main
from hip3.replay.cli import recorded_markets, replay_once
from hip3.replay.fills import FillModel
from hip3.service.app import EXIT_OK, Bot
from hip3.service.config import config_to_text
from hip3.sim import Sim
from tests.e2e.conftest import TSLA, FrozenMarket, bot_config, running_bot, wait_for

D = Decimal
BPS = D(1) / D(10_000)
T0_MS = 1_780_000_000_000.0
#: How far apart the live signal and the replayed one may be (the live detector wakes a moment
#: after the frame is read; the replay evaluates at the frame's receive time).
TIMING_TOLERANCE_MS = 250


async def move_oracle(bot: Bot, market: FrozenMarket, value: Decimal) -> None:
    market.set_oracle(value)
    tsla = bot.markets[TSLA]
    await wait_for(
        lambda: (ctx := bot.cells.get(tsla).ctx) is not None and ctx.oracle_px == market.oracle,
        f"the bot to see the oracle at {market.oracle}",
    )


async def dislocate(run: Any, market: FrozenMarket, edge_bps: Decimal, side: Side) -> None:
    """One dislocation the bot signals: an oracle run of two moves away from a book that stays put
    (the first, 2.5 bps, stays under the growth-mode round trip of ~3.5 bps, so the second signals),
    then the oracle back to the book's middle for the next one."""
    bot = run.b
    count = len(run.signals)
    market.refresh()
    await trio.sleep(0.2)
    if side is Side.BUY:
        await move_oracle(bot, market, market.ask * (1 + D("2.5") * BPS))
        await move_oracle(bot, market, market.ask / (1 - edge_bps * BPS))
    else:
        await move_oracle(bot, market, market.bid * (1 - D("2.5") * BPS))
        await move_oracle(bot, market, market.bid / (1 + edge_bps * BPS))
    await wait_for(lambda: len(run.signals) > count, f"a {side} signal", timeout=3)
    await trio.sleep(0.3)
    await move_oracle(bot, market, (market.bid + market.ask) / 2)
    await trio.sleep(0.3)


async def test_replay_of_a_recording_reproduces_the_live_signals(
    sim: Sim, market: FrozenMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames: list[dict[str, object]] = []

    def tap(message: str | bytes) -> None:
        text = message.decode() if isinstance(message, bytes) else message
        frames.append({"t": T0_MS + trio.current_time() * 1000, "frame": text})

    monkeypatch.setattr(timing, "on_frame_in", tap)
    # The frozen book sends a bbo only when it changes: the age gate is off for both runs alike.
    cfg = bot_config(sim, None, tmp_path, mode="observation", gates={"max_bbo_age_ms": 0})
    with trio.fail_after(30):
        async with running_bot(cfg, None) as run:
            bot = run.b
            await wait_for(lambda: bot.ready.is_ready, "READY (market data only)", timeout=4)
            # Three dislocations: two below the ask (buy), one above the bid (sell), each at a new level.
            for edge_bps, side in ((D(40), Side.BUY), (D(60), Side.SELL), (D(80), Side.BUY)):
                await dislocate(run, market, edge_bps, side)
            code = await run.stop()
    assert code == EXIT_OK
    live = [(s.market.name, s.side, s.oracle_px, T0_MS + s.created_at * 1000) for s in run.signals]
    assert [side for _, side, _, _ in live] == [Side.BUY, Side.SELL, Side.BUY]

    recording = tmp_path / "frames-2026-05-28.jsonl.gz"
    with gzip.open(recording, "wt", encoding="utf-8") as out:
        for line in frames:
            out.write(json.dumps(line) + "\n")

    specs = recorded_markets([recording], cfg, {})
    assert [m.name for m in specs] == [TSLA]
    # replay runs its own trio loop (under MockClock): in a thread, outside this test's loop
    result = await trio.to_thread.run_sync(replay_once, [recording], cfg, specs, FillModel(), {})
    replayed = [(s.market.name, s.side, s.oracle_px, ms) for s, ms in result.signals]
    assert [r[:3] for r in replayed] == [lv[:3] for lv in live]
    for (_, _, _, live_ms), (_, _, _, replay_ms) in zip(live, replayed, strict=True):
        assert abs(live_ms - replay_ms) <= TIMING_TOLERANCE_MS

    # The command line on the same recording, with the bot's config as a file: a journal the
    # journal questions answer, and a summary counting the same signals.
    config = tmp_path / "bot.toml"
    config.write_text(config_to_text(cfg))
    journal = tmp_path / "replay.sqlite3"
    args = [str(recording), "--config", str(config), "--journal", str(journal)]
    assert await trio.to_thread.run_sync(replay_main, args) == 0
    import sqlite3

    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT market, data FROM records WHERE kind = 'signal' ORDER BY id").fetchall()
    finally:
        db.close()
    assert [(m, json.loads(d)["side"], D(json.loads(d)["oracle_px"])) for m, d in rows] == [
        (name, str(side), oracle) for name, side, oracle, _ in live
    ]
