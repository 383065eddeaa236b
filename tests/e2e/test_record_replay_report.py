"""The observation workflow end to end on the simulator: `hip3 record` beside the live bot in
observation mode, `hip3 replay` of what it recorded (same signals as the live bot), then `hip3 report`
of the replay's journal (a page whose signal count is the journal's)."""

from __future__ import annotations

import functools
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import trio

from hip3.core import Side
from hip3.market.recorder import FrameRecorder, recording_files
from hip3.replay.cli import main as replay_main
from hip3.service import cli
from hip3.service.app import EXIT_OK
from hip3.service.config import config_to_text
from hip3.service.record import record
from hip3.sim import Sim
from tests.e2e.conftest import TSLA, FrozenMarket, bot_config, running_bot, wait_for
from tests.e2e.test_replay_e2e import dislocate

D = Decimal


async def test_record_replay_report(sim: Sim, market: FrozenMarket, tmp_path: Path) -> None:
    cfg = bot_config(sim, None, tmp_path, mode="observation", gates={"max_bbo_age_ms": 0})
    out = tmp_path / "recording"
    codes: list[int] = []

    async def recorder_task(task_status: trio.TaskStatus[FrameRecorder] = trio.TASK_STATUS_IGNORED) -> None:
        codes.append(
            await record(
                cfg, out, max_bytes=10**8, min_free_bytes=0, handle_signals=False, task_status=task_status
            )
        )

    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            recorder: FrameRecorder = await nursery.start(functools.partial(recorder_task))
            async with running_bot(cfg, None) as run:
                bot = run.b
                await wait_for(lambda: bot.ready.is_ready, "READY (market data only)", timeout=4)
                await wait_for(lambda: recorder.frames >= 2, "the recorder's first frames", timeout=4)
                for edge_bps, side in ((D(40), Side.BUY), (D(60), Side.SELL)):
                    await dislocate(run, market, edge_bps, side)
                code = await run.stop()
            await trio.sleep(1.2)  # one more flush of the recorder
            nursery.cancel_scope.cancel()
    assert code == EXIT_OK
    live = [(s.market.name, str(s.side), s.oracle_px) for s in run.signals]
    assert [side for _, side, _ in live] == [str(Side.BUY), str(Side.SELL)]

    files = recording_files(out)
    assert files, "hip3 record wrote nothing"
    config = tmp_path / "bot.toml"
    config.write_text(config_to_text(cfg))
    journal = tmp_path / "replay.sqlite3"
    args = [*map(str, files), "--config", str(config), "--journal", str(journal)]
    assert await trio.to_thread.run_sync(replay_main, args) == 0
    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT market, data FROM records WHERE kind = 'signal' ORDER BY id").fetchall()
    finally:
        db.close()
    replayed = [(m, json.loads(d)["side"], D(json.loads(d)["oracle_px"])) for m, d in rows]
    assert replayed == live, "replay of what hip3 record kept differs from the live signals"
    assert all(m == TSLA for m, _, _ in replayed)

    page_dir = tmp_path / "report"
    assert await trio.to_thread.run_sync(cli.main, ["report", str(journal), "--out", str(page_dir)]) == 0
    page = (page_dir / "report.html").read_text()
    # the summary's first cell is the journal's signal count
    summary = page.split('<table id="summary">', 1)[1]
    first_cell = summary.split("<td>", 1)[1].split("</td>", 1)[0]
    assert int(first_cell) == len(live)
