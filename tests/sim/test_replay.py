"""A recording served as the simulator's market data: original spacing, derived oracle/mark/book,
orders filled against the recorded book."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from trio_websocket import open_websocket_url

from hip3.sim.cli import main as sim_main
from hip3.sim.config import SimConfig, SimConfigError, _default_text, load_sim_config
from hip3.sim.recording import RecordedFrame, RecordingStats, read_recording
from hip3.sim.server import open_sim

from .helpers import NOW_MS, TSLA, SdkClient, send_json, statuses

T0 = 1_764_000_000_000.0
D = Decimal


def _bbo(t: float, bid: str, ask: str, coin: str = "xyz:TSLA") -> dict[str, Any]:
    data = {
        "coin": coin,
        "time": int(t),
        "bbo": [{"px": bid, "sz": "2.0", "n": 1}, {"px": ask, "sz": "3.0", "n": 2}],
    }
    return {"t": t, "frame": json.dumps({"channel": "bbo", "data": data})}


def _ctx(t: float, oracle: str, mark: str) -> dict[str, Any]:
    ctx = {
        "funding": "0.0",
        "openInterest": "1.0",
        "prevDayPx": oracle,
        "dayNtlVlm": "0.0",
        "premium": None,
        "oraclePx": oracle,
        "markPx": mark,
        "midPx": None,
        "impactPxs": None,
        "dayBaseVlm": "0.0",
    }
    return {
        "t": t,
        "frame": json.dumps({"channel": "activeAssetCtx", "data": {"coin": "xyz:TSLA", "ctx": ctx}}),
    }


def _write(path: Path, entries: list[Any]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for entry in entries:
            out.write((entry if isinstance(entry, str) else json.dumps(entry)) + "\n")
    return path


def _recording(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "rec.jsonl.gz",
        [
            {"t": T0 - 5, "frame": "Websocket connection established."},
            _ctx(T0, "100.0", "100.0"),
            _bbo(T0 + 10, "99.9", "100.1"),
            "not json at all",
            _bbo(T0 + 510, "100.0", "100.2"),
            {"t": T0 + 700, "gap": "reconnect"},
            _ctx(T0 + 1010, "101.0", "100.5"),
            _bbo(T0 + 1500, "100.9", "101.1"),
            _bbo(T0 + 2000, "99.0", "99.2", coin="xyz:NOPE"),  # not in the config: skipped
        ],
    )


def test_reader_keeps_market_frames_and_gaps_and_counts_the_rest(tmp_path: Path) -> None:
    stats = RecordingStats()
    items = list(read_recording([_recording(tmp_path)], stats))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["RecordedFrame"] * 3 + ["RecordedGap"] + ["RecordedFrame"] * 3
    assert isinstance(items[0], RecordedFrame) and items[0].channel == "activeAssetCtx"
    assert (stats.frames, stats.gaps, stats.skipped, stats.bad_lines) == (6, 1, 1, 1)


async def _serve(config: SimConfig, path: Path, speed: float) -> list[tuple[float, dict[str, Any]]]:
    seen: list[tuple[float, dict[str, Any]]] = []
    async with open_sim(attrs.evolve(config.with_replay([str(path)], speed), start_time_ms=NOW_MS)) as sim:
        start = trio.current_time()
        async with open_websocket_url(sim.ws_url) as ws:
            for kind in ("bbo", "activeAssetCtx"):
                await send_json(
                    ws, {"method": "subscribe", "subscription": {"type": kind, "coin": "xyz:TSLA"}}
                )
            assert sim.replay is not None
            with trio.move_on_after(3.0 / speed):
                while True:
                    text = await ws.get_message()
                    message = json.loads(text) if text.startswith("{") else {}
                    if message.get("channel") in ("bbo", "activeAssetCtx"):
                        seen.append((trio.current_time() - start, message))
        assert sim.replay.finished.is_set() and sim.replay.unknown_coins == {"xyz:NOPE"}
        market = sim.engine.market("TSLA")
        assert (market.oracle_px, market.mark_px) == (D("101.0"), D("100.5"))
    return seen


async def test_recording_is_served_with_its_spacing(
    config: SimConfig, tmp_path: Path, autojump_clock: Any
) -> None:
    path = _recording(tmp_path)
    for speed in (1.0, 2.0):
        seen = await _serve(config, path, speed)
        bbos = [
            (t, *(side["px"] if side else None for side in m["data"]["bbo"]))
            for t, m in seen
            if m["channel"] == "bbo"
        ]
        ctxs = [(t, m["data"]["ctx"]["oraclePx"]) for t, m in seen if m["channel"] == "activeAssetCtx"]
        # the subscribe snapshot, then each recorded change within one block of its recorded time
        recorded = [(0.010, "99.9", "100.1"), (0.510, "100.0", "100.2"), (1.500, "100.9", "101.1")]
        assert [(b, a) for _, b, a in bbos[-3:]] == [(b, a) for _, b, a in recorded]
        for (t, _, _), (rt, _, _) in zip(bbos[-3:], recorded, strict=True):
            assert rt / speed <= t <= rt / speed + config.model.stream_tick + 1e-6, (speed, t, rt)
        assert [px for _, px in ctxs[-2:]] == ["100.0", "101.0"]
        assert abs(ctxs[-1][0] - 1.010 / speed) < 1e-6


async def test_orders_fill_against_the_recorded_book(
    config: SimConfig, tmp_path: Path, autojump_clock: Any
) -> None:
    path = _recording(tmp_path)
    async with open_sim(attrs.evolve(config.with_replay([str(path)]), start_time_ms=NOW_MS)) as sim:
        trader = SdkClient()
        sim.engine.fund(trader.address, 10000)
        await trio.sleep(0.2)  # the first bbo (99.9 / 100.1 × 3) is in
        body = trader.order(TSLA, True, "100.1", "0.5", nonce=sim.engine.now_ms())
        [status] = statuses(sim.execute_action(body)[0])
        assert status["filled"] == {**status["filled"], "totalSz": "0.5", "avgPx": "100.1"}
        resting = trader.order(TSLA, False, "100.8", "0.2", "Gtc", nonce=sim.engine.now_ms() + 1)
        assert "resting" in statuses(sim.execute_action(resting)[0])[0]
        await trio.sleep(2.0)  # the recorded bid of 100.9 crosses the resting ask: it fills as maker
        fills = sim.engine.fills(trader.address)
        assert [(f["px"], f["sz"], f["crossed"]) for f in fills] == [
            ("100.1", "0.5", True),
            ("100.8", "0.2", False),
        ]
        assert sim.engine.position(trader.address, "TSLA") == D("0.3")


def test_replay_config_and_cli_errors(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(_default_text() + '\n[replay]\npaths = ["a.jsonl.gz"]\nspeed = 4\n')
    config = load_sim_config(path)
    assert config.replay_paths == ("a.jsonl.gz",) and config.replay_speed == 4.0
    path.write_text(_default_text() + "\n[replay]\nspeed = 0\n")
    with pytest.raises(SimConfigError, match=r"replay\.speed: expected > 0"):
        load_sim_config(path)
    path.write_text(_default_text() + "\n[replay]\nfile = 1\n")
    with pytest.raises(SimConfigError, match="replay: unknown key 'file'"):
        load_sim_config(path)
    assert sim_main(["--replay", str(tmp_path / "missing.jsonl.gz")]) == 2
