"""Read a market-data recording: gzip-compressed JSON lines, one object per line.

    {"t": <receive time, ms since epoch>, "frame": "<the raw WebSocket frame text>"}
    {"t": <ms>, "gap": "<reason>"}          (the recorder lost data: a reconnect, a stall)

Frames of the channels `bbo`, `activeAssetCtx`, `trades` and `l2Book` are kept; anything else
(acks, pongs, the greeting) is skipped. A line that is not such an object is counted and skipped,
never fatal: a recording cut off by a crash still replays up to where it ends.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from attrs import define, frozen

log = logging.getLogger("hip3.sim.recording")

MARKET_CHANNELS = ("bbo", "activeAssetCtx", "trades", "l2Book")


@frozen
class RecordedFrame:
    t_ms: float
    channel: str
    data: Any


@frozen
class RecordedGap:
    t_ms: float
    reason: str


@define
class RecordingStats:
    frames: int = 0
    gaps: int = 0
    skipped: int = 0  # other channels, non-JSON frames
    bad_lines: int = 0


def _parse_line(line: str, where: str, stats: RecordingStats) -> RecordedFrame | RecordedGap | None:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if (
        not isinstance(entry, dict)
        or isinstance(entry.get("t"), bool)
        or not isinstance(entry.get("t"), int | float)
    ):
        stats.bad_lines += 1
        if stats.bad_lines <= 3:
            log.warning("recording %s: skipping a line that is not {t, frame|gap}: %.80r", where, line)
        return None
    t = float(entry["t"])
    if "gap" in entry:
        stats.gaps += 1
        return RecordedGap(t, str(entry["gap"]))
    text = entry.get("frame")
    if not isinstance(text, str):
        stats.bad_lines += 1
        return None
    try:
        message = json.loads(text)
    except ValueError:
        stats.skipped += 1  # the greeting or a broken frame the recorder kept as it came
        return None
    channel = message.get("channel") if isinstance(message, dict) else None
    if channel not in MARKET_CHANNELS:
        stats.skipped += 1
        return None
    stats.frames += 1
    return RecordedFrame(t, channel, message.get("data"))


def read_recording(
    paths: Iterable[str | Path], stats: RecordingStats | None = None
) -> Iterator[RecordedFrame | RecordedGap]:
    """Every frame and gap of the given files, in file order (pass daily files oldest first)."""
    stats = stats if stats is not None else RecordingStats()
    for path in paths:
        where = str(path)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        item = _parse_line(line, where, stats)
                        if item is not None:
                            yield item
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a file cut off mid-write
            log.warning("recording %s ends early (%s): replayed up to there", where, exc)


__all__ = ["MARKET_CHANNELS", "RecordedFrame", "RecordedGap", "RecordingStats", "read_recording"]
