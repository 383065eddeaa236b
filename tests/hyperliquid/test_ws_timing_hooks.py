"""The timing hooks see every inbound frame and every outbound frame, and are off by default."""

from __future__ import annotations

import random

import trio
import trio.testing

from hip3 import timing
from hip3.hyperliquid.parse import ParseStats
from hip3.hyperliquid.ws import open_ws_session
from tests.fakes.ws import FakeWsServer


def test_hooks_are_off_unless_installed() -> None:
    assert timing.on_frame_in is None and timing.on_frame_out is None and timing.on_stage is None


async def test_hooks_see_frames_in_and_out(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    seen_in: list[str | bytes] = []
    seen_out: list[str | bytes] = []
    timing.on_frame_in, timing.on_frame_out = seen_in.append, seen_out.append
    try:
        async with open_ws_session(
            "ws://fake/ws", connect=server.connect, rng=random.Random(7), stats=ParseStats()
        ) as ws:
            conn = await server.accept()
            await ws.wait_connected()
            await ws.subscribe({"type": "bbo", "coin": "xyz:TSLA"})
            await conn.receive_kind("subscribe")
            await conn.send('{"channel":"pong"}')
            with trio.fail_after(5):
                while not seen_in:
                    await trio.sleep(0.01)
    finally:
        timing.reset()
    assert seen_in == ['{"channel":"pong"}']
    assert seen_out == ['{"method":"subscribe","subscription":{"type":"bbo","coin":"xyz:TSLA"}}']
