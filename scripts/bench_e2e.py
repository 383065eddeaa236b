"""Tick-to-order and event-loop lag: the whole bot (`run_bot`) against `bench_exchange.py` in its own process.

Timing hooks (`hip3.timing`) stamp the marked dislocation frame as the WebSocket client hands it
over and the post frame right after the socket took it; the difference is tick-to-order through
the real feed → detector → executor (tracker reserve, signing) path, with the production log
level writing to a file. An event-loop probe measures, every millisecond, how long a task that
became runnable waits for the scheduler (the lag every other task sees too).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from hip3 import timing
from hip3.hyperliquid.signing import address_of
from hip3.service.app import run_bot
from hip3.service.config import config_from_mapping
from hip3.service.keys import SecretKey
from hip3.service.logs import setup_logging

MARKS = ('"dayNtlVlm":"777"', '"n":777')


#: How often the event-loop probe looks (it wakes the loop itself, so not too often).
PROBE_INTERVAL = 0.005


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Recorder:
    """The hooks: trigger arrival → next post sent, per phase; and loop-lag samples per phase."""

    def __init__(self) -> None:
        self.phase = "warmup"
        self.trigger_at = 0
        self.tick_to_order: dict[str, list[float]] = {}
        self.lag: dict[str, list[float]] = {}
        self.frames: dict[str, int] = {}
        self.stages: dict[str, list[dict[str, float]]] = {}
        self._stage_at: dict[str, int] = {}
        self._post_out = False
        self.socket_writes: dict[str, list[float]] = {}
        self.watching = False

    def frame_in(self, message: str | bytes) -> None:
        now = time.perf_counter_ns()
        self.frames[self.phase] = self.frames.get(self.phase, 0) + 1
        text = message if isinstance(message, str) else message.decode(errors="replace")
        if MARKS[0] in text or MARKS[1] in text:
            self.trigger_at = now
            self._stage_at = {}
            self._post_out = False

    def stage(self, name: str) -> None:
        if self.trigger_at and name not in self._stage_at:
            self._stage_at[name] = time.perf_counter_ns()

    def frame_out(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode(errors="replace")
        if self.trigger_at and text.startswith('{"method":"post"'):
            self.stage("handed over")
            self._post_out = True

    def socket_write(self, start: int, end: int) -> None:
        """The first socket write after the post frame was handed over: its bytes reach the kernel."""
        if not self._post_out:
            return
        self._post_out = False
        self.tick_to_order.setdefault(self.phase, []).append((start - self.trigger_at) / 1000)
        self.socket_writes.setdefault(self.phase, []).append((end - start) / 1000)
        marks = {"frame in": self.trigger_at, **self._stage_at, "to socket": start}
        self.stages.setdefault(self.phase, []).append({k: v / 1000 for k, v in marks.items()})
        self.trigger_at = 0

    @contextlib.contextmanager
    def watching_socket_writes(self) -> Iterator[None]:
        """Wrap trio's SocketStream.send_all (benchmark only) to stamp when the post's bytes leave."""
        original = trio.SocketStream.send_all
        recorder = self

        async def send_all(stream: trio.SocketStream, data: Any) -> None:
            start = time.perf_counter_ns()
            try:
                await original(stream, data)
            finally:
                recorder.socket_write(start, time.perf_counter_ns())

        trio.SocketStream.send_all = send_all  # type: ignore[method-assign]
        self.watching = True
        try:
            yield
        finally:
            trio.SocketStream.send_all = original  # type: ignore[method-assign]

    async def probe_lag(self) -> None:
        while True:
            await trio.sleep(PROBE_INTERVAL)
            start = time.perf_counter_ns()
            await trio.lowlevel.cancel_shielded_checkpoint()
            self.lag.setdefault(self.phase, []).append((time.perf_counter_ns() - start) / 1000)


def bot_config(urls: dict[str, str], master: str, state_dir: Path) -> Any:
    return config_from_mapping(
        {
            "mode": "trading",
            "network": {"name": "testnet", **urls},
            "account": {"address": master},
            "markets": {"dex": "xyz", "coins": ["*"]},
            "position": {
                "max_notional_per_market": 100,
                "max_total_notional": 400,
                "max_concurrent_positions": 4,
                "position_resync_interval_secs": 30,
            },
            # The exchange double has no weekend and no structural gap to learn first.
            "sessions": [],
            "detector": {"min_book_notional": 200, "min_edge_bps": 3, "baseline_warmup_secs": 0},
            "executor": {"max_orders_per_second": 50},
            "hard_stop": {"state_file": str(state_dir / "hard_stop.json")},
            "journal": {"path": os.environ.get("BENCH_JOURNAL", str(state_dir / "journal.sqlite"))},
        }
    )


async def run(triggers: int, burst: float) -> dict[str, Any]:
    agent_key = SecretKey("0x" + secrets.token_hex(32), source="throwaway bench key")
    master = address_of("0x" + secrets.token_hex(32))
    rec = Recorder()
    script = Path(__file__).with_name("bench_exchange.py")
    argv = [sys.executable, str(script), "--master", master, "--agent", agent_key.address]
    argv += ["--triggers", str(triggers), "--burst", str(burst)]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hip3-bench-") as tmp:
        log_file = open(Path(tmp) / "bot.log", "w")
        root = logging.getLogger()
        saved_logging = (root.level, list(root.handlers))
        setup_logging("INFO", stream=log_file)
        proc = await trio.lowlevel.open_process(argv, stdout=-1, stderr=open(os.devnull, "w"))
        try:
            assert proc.stdout is not None
            lines = _lines(proc.stdout)
            first = json.loads(await lines.__anext__())
            cfg = bot_config(first["urls"], master, Path(tmp))
            timing.on_frame_in, timing.on_frame_out = rec.frame_in, rec.frame_out
            timing.on_stage = rec.stage
            watch = rec.watching_socket_writes()
            watch.__enter__()
            stopped = trio.Event()

            async def bot_task(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await run_bot(
                        cfg,
                        key=agent_key,
                        mainnet_confirmed=True,
                        handle_signals=False,
                        task_status=task_status,
                    )
                finally:
                    stopped.set()

            async with trio.open_nursery() as nursery:
                bot = await nursery.start(bot_task)
                nursery.start_soon(rec.probe_lag)
                async for line in lines:
                    msg = json.loads(line)
                    if "phase" in msg:
                        rec.phase = msg["phase"]
                    elif "done" in msg:
                        result["double"] = msg["done"]
                        break
                rec.phase = "end"
                bot.request_stop()
                with trio.move_on_after(10):
                    await stopped.wait()
                nursery.cancel_scope.cancel()
            result["posted"] = bot.executor.stats.posted if bot.executor is not None else 0
        finally:
            timing.reset()
            if rec.watching:
                watch.__exit__(None, None, None)
            proc.terminate()
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
            root.handlers[:] = saved_logging[1]
            root.setLevel(saved_logging[0])
            log_file.close()
    result["tick_to_order"] = rec.tick_to_order
    result["lag"] = rec.lag
    result["frames"] = rec.frames
    result["stages"] = rec.stages
    result["socket_writes"] = rec.socket_writes
    return result


async def _lines(stream: Any) -> Any:
    buf = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode()


STAGES = ("frame in", "signal", "executor", "reserved", "signed", "posting", "handed over", "to socket")


def stage_profile(samples: list[dict[str, float]]) -> str:
    """p50 / p99 of each hop between consecutive stages that every sample passed."""
    parts = []
    for a, b in itertools.pairwise(STAGES):
        ds = [s[b] - s[a] for s in samples if a in s and b in s]
        if ds:
            parts.append(f"{a} → {b} {percentile(ds, 50):.0f} / {percentile(ds, 99):.0f}")
    return "; ".join(parts)


#: Dislocations per phase (normal rate, then the other markets at the burst rate).
TRIGGERS = 200
GOAL_P50_US, GOAL_P99_US = 200.0, 1000.0


def summary(result: dict[str, Any], burst: float) -> tuple[list[str], bool]:
    lines = []
    ok = True
    double = result.get("double", {})
    for phase, label in (("normal", "normal rates"), ("burst", f"other markets at {burst:g}x")):
        ttos = result["tick_to_order"].get(phase, [])
        lag = result["lag"].get(phase, [])
        p50, p99 = percentile(ttos, 50), percentile(ttos, 99)
        ok = ok and p50 <= GOAL_P50_US and p99 <= GOAL_P99_US
        lines.append(
            f"tick-to-order ({label}): p50 {p50:.0f} µs, p99 {p99:.0f} µs, max {max(ttos, default=float('nan')):.0f} µs "
            f"(goal p50 <= {GOAL_P50_US:.0f}, p99 <= {GOAL_P99_US:.0f}); {len(ttos)} orders, "
            f"{result['frames'].get(phase, 0):,} frames in; "
            f"event-loop lag p50 {percentile(lag, 50):.0f} µs, p99 {percentile(lag, 99):.0f} µs, "
            f"max {max(lag, default=float('nan')):.0f} µs"
        )
        stages = result.get("stages", {}).get(phase, [])
        if stages:
            lines.append("  where it goes (p50 / p99 µs): " + stage_profile(stages))
        writes = result.get("socket_writes", {}).get(phase, [])
        if writes:
            lines.append(
                f"  the socket write itself (after the figure above; on loopback it wakes the exchange "
                f"process): p50 {percentile(writes, 50):.0f} µs, p99 {percentile(writes, 99):.0f} µs"
            )
        rts = double.get("round_trips_us", {}).get(phase, [])
        if rts:
            lines.append(
                f"  seen from the exchange process (frame written → post read, incl. both loopback hops): "
                f"p50 {percentile(rts, 50):.0f} µs, p99 {percentile(rts, 99):.0f} µs"
            )
    if double:
        lines.append(
            f"  {double.get('triggers', 0)} dislocations, {double.get('posts', 0)} posts received by the exchange"
        )
    return lines, ok


if __name__ == "__main__":
    res = trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else TRIGGERS, 10.0)
    print("\n".join(summary(res, 10.0)[0]))
