"""Timing hooks for benchmarks: off (None) unless a benchmark installs them.

The WebSocket client calls `on_frame_in` with every inbound frame as soon as the connection hands
it over, and `on_frame_out` with every outbound frame as it is handed to the connection; the
detector and the executor call `on_stage` with a stage name as an entry passes it ("signal",
"executor", "reserved", "signed", "posting"). Off, each costs one attribute read and a
comparison; nothing in the bot installs them.
"""

from __future__ import annotations

from collections.abc import Callable

FrameHook = Callable[[str | bytes], None]
StageHook = Callable[[str], None]

on_frame_in: FrameHook | None = None
on_frame_out: FrameHook | None = None
on_stage: StageHook | None = None


def reset() -> None:
    """Turn every hook off."""
    global on_frame_in, on_frame_out, on_stage
    on_frame_in = on_frame_out = None
    on_stage = None
