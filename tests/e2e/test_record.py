"""`hip3 record` against the simulator on loopback: frames with receive times, an outage as a gap."""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from hip3.market.recorder import FrameRecorder, recording_files
from hip3.service.record import record
from hip3.sim import Sim
from hip3.sim.recording import RecordedFrame, RecordedGap, read_recording

from .conftest import COIN, bot_config


async def wait_until(predicate: object, what: str, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.05)


async def test_record_keeps_the_subscribed_frames_and_marks_an_outage_as_a_gap(
    sim: Sim, tmp_path: Path
) -> None:
    cfg = bot_config(sim, None, tmp_path, mode="observation")
    out = tmp_path / "recording"
    codes: list[int] = []

    async def run(task_status: trio.TaskStatus[FrameRecorder] = trio.TASK_STATUS_IGNORED) -> None:
        codes.append(
            await record(
                cfg,
                out,
                seconds=6.0,
                max_bytes=10**8,
                min_free_bytes=0,
                trades=True,
                handle_signals=False,
                task_status=task_status,
            )
        )

    async with trio.open_nursery() as nursery:
        recorder: FrameRecorder = await nursery.start(functools.partial(run))
        await wait_until(lambda: recorder.frames >= 10, "frames")
        sim.disconnect_all()
        await wait_until(lambda: recorder.gaps >= 1, "a gap")
        after_gap = recorder.frames
        await wait_until(lambda: recorder.frames >= after_gap + 10, "frames after the reconnect")
    assert codes == [0]

    items = list(read_recording(recording_files(out)))
    frames = [i for i in items if isinstance(i, RecordedFrame)]
    gaps = [i for i in items if isinstance(i, RecordedGap)]
    channels = {f.channel for f in frames}
    assert {"bbo", "activeAssetCtx"} <= channels
    assert {f.data["coin"] for f in frames if f.channel in ("bbo", "activeAssetCtx")} == {f"xyz:{COIN}"}
    assert len(gaps) >= 1 and gaps[0].reason.startswith("disconnected")
    # the gap sits between frames received before and after the outage, in receive order
    times = [i.t_ms for i in items]
    assert times == sorted(times)
    gap_index = items.index(gaps[0])
    assert 0 < gap_index < len(items) - 1
