"""Record the exchange's market-data frames as they arrived, for replay and for the simulator.

Format (read back by `hip3.sim.recording.read_recording`): gzip-compressed JSON lines, one file per
UTC day (`frames-YYYY-MM-DD.jsonl.gz`), one object per line:

    {"t": <receive time, ms since epoch>, "frame": "<the raw WebSocket frame text>"}
    {"t": <ms>, "gap": "<reason>"}      the link went down: nothing was received until the next frame

A restart appends a new gzip member to the day's file (readers see one stream). Each flush ends
with a sync point, so a crash loses at most the last second and the file still reads up to there.
Disk use is bounded: past `max_bytes` of recordings in the folder, or below `min_free_bytes` free on
its disk, recording stops (`stopped` says which limit was hit and what to do; logged at ERROR).
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import os
import shutil
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson

log = logging.getLogger("hip3.market.recorder")

FILE_PREFIX = "frames-"
FILE_SUFFIX = ".jsonl.gz"


def wall_ms() -> float:
    return time.time_ns() / 1_000_000


def recording_files(folder: Path) -> list[Path]:
    """The folder's recording files, oldest day first."""
    return sorted(folder.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))


def _day_of(t_ms: float) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


class FrameRecorder:
    """Writes frames and gaps; synchronous and cheap per frame (compression is buffered)."""

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int,
        min_free_bytes: int,
        now_ms: Callable[[], float] = wall_ms,
        disk_free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._now_ms = now_ms
        self._disk_free = disk_free
        self._day = ""
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self.frames = 0
        self.gaps = 0
        self.stopped: str | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.check_budget()

    # ------------------------------------------------------------------------------------------

    def frame(self, text: str) -> None:
        """One inbound frame, stamped with its receive time."""
        if self.stopped is None:
            self._write({"t": self._now_ms(), "frame": text})
            self.frames += 1

    def gap(self, reason: str) -> None:
        """The link went down (or data was lost): replay must not bridge this span."""
        if self.stopped is None:
            self._write({"t": self._now_ms(), "gap": reason})
            self.gaps += 1

    def flush(self) -> None:
        """Make everything written so far readable on disk, then check the disk limits."""
        if self.stopped is not None:
            return
        if self._gz is not None and self._raw is not None:
            try:
                self._gz.flush(zlib.Z_SYNC_FLUSH)
                self._raw.flush()
            except OSError as exc:
                self._fail(f"cannot write to {self.folder}: {exc}")
        self.check_budget()

    def check_budget(self) -> None:
        used = sum(p.stat().st_size for p in recording_files(self.folder))
        if used > self.max_bytes:
            self._fail(
                f"{self.folder} holds {used / 1e6:.1f} MB of recordings, over the limit of "
                f"{self.max_bytes / 1e6:.1f} MB: move or delete old frames-*.jsonl.gz files, or raise the limit"
            )
        free = self._disk_free(self.folder)
        if free < self.min_free_bytes:
            self._fail(
                f"only {free / 1e6:.1f} MB free on the disk of {self.folder} (keeping at least "
                f"{self.min_free_bytes / 1e6:.1f} MB free): free space or lower the floor"
            )

    def close(self) -> None:
        if self._gz is not None:
            try:
                self._gz.close()
            except OSError as exc:
                log.error("recording: closing %s failed: %s", self._day, exc)
        if self._raw is not None:
            self._raw.close()
        self._gz = self._raw = None

    # ------------------------------------------------------------------------------------------

    def _write(self, entry: dict[str, object]) -> None:
        day = _day_of(float(entry["t"]))  # type: ignore[arg-type]
        if day != self._day:
            self._open(day)
        if self._gz is None:
            return  # opening failed: `stopped` says why
        try:
            self._gz.write(orjson.dumps(entry) + b"\n")
        except OSError as exc:
            self._fail(f"cannot write to {self.folder}: {exc}")

    def _open(self, day: str) -> None:
        self.close()
        path = self.folder / f"{FILE_PREFIX}{day}{FILE_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            self._fail(f"cannot open {path}: {exc}")
            return
        self._raw = os.fdopen(fd, "ab")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="ab")
        self._day = day
        log.info("recording to %s", path)

    def _fail(self, why: str) -> None:
        # Never raises: the tap runs inside the websocket reader. The owner polls `stopped`.
        if self.stopped is None:
            self.stopped = why
            log.error("recording stopped: %s", why)
        self.close()


__all__ = ["FILE_PREFIX", "FILE_SUFFIX", "FrameRecorder", "recording_files", "wall_ms"]
