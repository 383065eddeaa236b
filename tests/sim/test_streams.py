"""Push cadence as the exchange has it: activeAssetCtx about once a second (unchanged frames too),
bbo once per block and only when it changed."""

from __future__ import annotations

import itertools
import json
from typing import Any

import attrs
import trio
from trio_websocket import open_websocket_url

from hip3.sim.config import SimConfig
from hip3.sim.server import open_sim

from .helpers import NOW_MS, send_json


async def _frames(ws: Any, seconds: float) -> list[tuple[float, dict[str, Any]]]:
    out: list[tuple[float, dict[str, Any]]] = []
    with trio.move_on_after(seconds):
        while True:
            text = await ws.get_message()
            if text.startswith("{"):
                out.append((trio.current_time(), json.loads(text)))
    return out


async def test_ctx_every_second_even_unchanged_and_bbo_per_block_on_change(
    config: SimConfig, autojump_clock: Any
) -> None:
    async with open_sim(attrs.evolve(config, start_time_ms=NOW_MS)) as sim:
        # the start price, and a book around it: the mark (median of oracle, bid, ask) stays put
        sim.engine.set_oracle("GOLD", "4061.3")
        sim.engine.set_book("GOLD", bids=[("4060.3", "1")], asks=[("4062.3", "1")])
        async with open_websocket_url(sim.ws_url) as ws:
            for kind in ("activeAssetCtx", "bbo"):
                await send_json(
                    ws, {"method": "subscribe", "subscription": {"type": kind, "coin": "xyz:GOLD"}}
                )
            frames = await _frames(ws, 10.0)
            ctx = [(t, m["data"]) for t, m in frames if m.get("channel") == "activeAssetCtx"]
            bbo = [m for _, m in frames if m.get("channel") == "bbo"]
            # snapshot + one a second for 10 s, all identical (nothing changed)
            assert 10 <= len(ctx) <= 12, len(ctx)
            assert all(data == ctx[0][1] for _, data in ctx)
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(ctx[1:])]
            assert all(0.9 <= g <= 1.1 for g in gaps), gaps
            assert len(bbo) == 1  # the snapshot; the frozen book never changed
            start = trio.current_time()
            sim.engine.set_book("GOLD", bids=[("4060.1", "1")], asks=[("4062.3", "1")])
            changed = await _frames(ws, 1.0)
            bbo_times = [t for t, m in changed if m.get("channel") == "bbo"]
            assert len(bbo_times) == 1 and bbo_times[0] - start <= config.model.stream_tick + 1e-6
