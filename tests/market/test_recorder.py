"""The frame recorder: what it writes reads back through the simulator's reader, days rotate, limits stop it."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path

import pytest

from hip3.market.recorder import FrameRecorder, recording_files
from hip3.sim.recording import RecordedFrame, RecordedGap, RecordingStats, read_recording

DAY1_NOON_MS = 1_767_268_800_000.0  # 2026-01-01 12:00:00 UTC
HOUR_MS = 3_600_000.0


def bbo_frame(coin: str, bid: str, ask: str, time_ms: int = 1) -> str:
    level = lambda px: {"px": px, "sz": "1", "n": 1}  # noqa: E731
    return json.dumps(
        {"channel": "bbo", "data": {"coin": coin, "time": time_ms, "bbo": [level(bid), level(ask)]}}
    )


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def recorder(tmp_path: Path, clock: Clock, **kw: int) -> FrameRecorder:
    return FrameRecorder(
        tmp_path,
        max_bytes=kw.get("max_bytes", 10**9),
        min_free_bytes=kw.get("min_free_bytes", 0),
        now_ms=clock,
        disk_free=lambda _p: kw.get("free", 10**12),
    )


def test_frames_and_gaps_read_back_in_order_with_receive_times(tmp_path: Path) -> None:
    clock = Clock(DAY1_NOON_MS)
    rec = recorder(tmp_path, clock)
    rec.frame(bbo_frame("xyz:TSLA", "100", "101"))
    clock.t += 250
    rec.gap("disconnected: test")
    clock.t += 1000
    rec.frame(bbo_frame("xyz:TSLA", "100.5", "101.5"))
    rec.flush()
    rec.close()

    items = list(read_recording(recording_files(tmp_path)))
    assert [type(i) for i in items] == [RecordedFrame, RecordedGap, RecordedFrame]
    assert [i.t_ms for i in items] == [DAY1_NOON_MS, DAY1_NOON_MS + 250, DAY1_NOON_MS + 1250]
    first, gap, last = items
    assert isinstance(first, RecordedFrame) and first.data["bbo"][0]["px"] == "100"
    assert isinstance(gap, RecordedGap) and gap.reason == "disconnected: test"
    assert isinstance(last, RecordedFrame) and last.data["bbo"][1]["px"] == "101.5"


def test_a_new_utc_day_starts_a_new_file_and_a_restart_appends(tmp_path: Path) -> None:
    clock = Clock(DAY1_NOON_MS + 11 * HOUR_MS)  # 23:00 UTC
    rec = recorder(tmp_path, clock)
    rec.frame(bbo_frame("xyz:A", "1", "2"))
    clock.t += 2 * HOUR_MS  # 01:00 the next day
    rec.frame(bbo_frame("xyz:B", "1", "2"))
    rec.close()
    # a restart on the same day appends a second gzip member to that day's file
    again = recorder(tmp_path, clock)
    again.frame(bbo_frame("xyz:C", "1", "2"))
    again.close()

    files = recording_files(tmp_path)
    assert [f.name for f in files] == ["frames-2026-01-01.jsonl.gz", "frames-2026-01-02.jsonl.gz"]
    coins = [i.data["coin"] for i in read_recording(files) if isinstance(i, RecordedFrame)]
    assert coins == ["xyz:A", "xyz:B", "xyz:C"]


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    rec = recorder(tmp_path, Clock(DAY1_NOON_MS))
    rec.frame(bbo_frame("xyz:A", "1", "2"))
    rec.close()
    (path,) = recording_files(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_flush_makes_the_data_readable_while_the_file_is_still_open(tmp_path: Path) -> None:
    """A crash after a flush loses nothing flushed: the reader stops cleanly at the cut."""
    rec = recorder(tmp_path, Clock(DAY1_NOON_MS))
    for i in range(50):
        rec.frame(bbo_frame("xyz:A", str(100 + i), str(101 + i)))
    rec.flush()
    (path,) = recording_files(tmp_path)
    stats = RecordingStats()
    frames = list(read_recording([path], stats))  # the gzip member is not closed yet
    assert len(frames) == 50 and stats.bad_lines == 0
    rec.close()


def test_over_the_byte_limit_recording_stops_and_says_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(DAY1_NOON_MS)
    rec = recorder(tmp_path, clock, max_bytes=2_000)
    n = 0
    while rec.stopped is None and n < 10_000:
        # incompressible enough to grow the file
        rec.frame(bbo_frame("xyz:A", str(n * 7919 % 100_003), str(n * 104_729 % 99_991), time_ms=n))
        n += 1
        if n % 50 == 0:
            rec.flush()
    assert rec.stopped is not None, "the byte limit never stopped the recorder"
    assert "over the limit" in rec.stopped and "delete" in rec.stopped
    assert any("recording stopped" in r.getMessage() for r in caplog.records)
    frames_when_stopped = rec.frames
    rec.frame(bbo_frame("xyz:A", "1", "2"))
    assert rec.frames == frames_when_stopped  # nothing more is written
    # what was written before the stop still reads back
    assert sum(1 for _ in read_recording(recording_files(tmp_path))) > 0


def test_low_free_disk_refuses_to_start(tmp_path: Path) -> None:
    rec = recorder(tmp_path, Clock(DAY1_NOON_MS), min_free_bytes=10**9, free=10**6)
    assert rec.stopped is not None and "free" in rec.stopped
    rec.frame(bbo_frame("xyz:A", "1", "2"))
    assert recording_files(tmp_path) == []


def test_a_torn_tail_after_a_crash_reads_up_to_the_last_flush(tmp_path: Path) -> None:
    rec = recorder(tmp_path, Clock(DAY1_NOON_MS))
    for i in range(10):
        rec.frame(bbo_frame("xyz:A", str(i + 1), str(i + 2)))
    rec.flush()
    rec.close()
    (path,) = recording_files(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data + gzip.compress(b'{"t": 1, "frame": "x"}\n' * 100)[:37])  # a torn member
    frames = [i for i in read_recording([path]) if isinstance(i, RecordedFrame)]
    assert len(frames) == 10


def test_the_record_command_refuses_bad_arguments_with_exit_2(tmp_path: Path) -> None:
    from hip3.service.cli import main

    assert main(["record", "--out", str(tmp_path)]) == 2  # no config
    cfg = tmp_path / "c.toml"
    cfg.write_text('mode = "observation"\n[markets]\ndex = "xyz"\ncoins = ["TSLA"]\n')
    assert main(["record", "--config", str(cfg), "--out", str(tmp_path), "--max-mb", "0"]) == 2
    assert main(["record", "--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path)]) == 2
