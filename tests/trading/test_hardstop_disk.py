"""Hard stop against the disk: non-finite or malformed state loads latched, a latch that cannot be
written still reaches the disk (the armed spare) or is said loudly, persistence runs off the event
loop, and a latch written by another process on the same state file is seen."""

from __future__ import annotations

import errno
import json
import logging
import stat
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.trading import hardstop
from hip3.trading.hardstop import HardStop, HardStopParams

D = Decimal
DAY1 = date(2026, 11, 24)
FIXED = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)


def params(tmp_path: Path, **overrides: Any) -> HardStopParams:
    return HardStopParams(state_file=tmp_path / "var" / "hard_stop.json", **overrides)


def write_state(path: Path, **fields: Any) -> None:
    state: dict[str, Any] = {
        "latched": False,
        "reason": None,
        "latched_wall": None,
        "daily": {"day": DAY1.isoformat(), "net_pnl": "0"},
    }
    state.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))


def saved_pnl(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["daily"]["net_pnl"])
    except FileNotFoundError:
        return None


def disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


# ---------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("net_pnl", ["NaN", "Infinity", "-Infinity", "sNaN", "1e999999", "-9e999999", 12.5])
def test_non_finite_or_absurd_daily_pnl_loads_latched(tmp_path: Path, net_pnl: Any) -> None:
    p = params(tmp_path)
    write_state(p.state_file, daily={"day": DAY1.isoformat(), "net_pnl": net_pnl})
    stop = HardStop.load(p)
    assert stop.latched
    assert stop.reason is not None and "corrupt" in stop.reason
    # and nothing raises afterwards: a PnL update on the latched stop is plain arithmetic
    stop.record_pnl(D(-1000), D(0), DAY1)


@pytest.mark.parametrize(
    "state",
    [
        {},  # no "latched" at all: not something the bot wrote
        {"latched": "false"},
        {"latched": False, "daily": "today"},
        {"latched": False, "daily": {"day": 20261124, "net_pnl": "0"}},
        {"latched": True, "reason": None},  # latched stays latched, whatever else is missing
        {"latched": False, "running": {"xyz": "1767225600000"}},
        {"latched": False, "running": {"xyz": -1}},
        {"latched": False, "running": {"xyz": 1.5e12}},
        {"latched": False, "running": 1767225600000},
    ],
)
def test_malformed_state_loads_latched(tmp_path: Path, state: dict[str, Any]) -> None:
    p = params(tmp_path)
    p.state_file.parent.mkdir(parents=True)
    p.state_file.write_text(json.dumps(state))
    assert HardStop.load(p).latched


def test_a_loss_past_the_limit_latches_after_a_restart(tmp_path: Path) -> None:
    p = params(tmp_path, max_daily_loss_usd=50)
    write_state(p.state_file, daily={"day": DAY1.isoformat(), "net_pnl": "-20"})
    stop = HardStop.load(p)
    assert not stop.latched
    assert stop.record_pnl(D(-1000), D(0), DAY1)


def test_the_running_mark_survives_a_restart_and_belongs_to_its_dex(tmp_path: Path) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p)
    assert stop.last_running_ms("xyz") is None  # never ran: unknown
    stop.mark_running("xyz", 1_767_225_600_000)
    again = HardStop.load(p)
    assert not again.latched
    assert again.last_running_ms("xyz") == 1_767_225_600_000
    assert again.last_running_ms("abc") is None  # no mark of another dex's bot
    # files written before the mark existed load as before
    write_state(p.state_file)
    old = HardStop.load(p)
    assert not old.latched and old.last_running_ms("xyz") is None


def test_bots_of_two_dexes_on_one_state_file_keep_each_others_running_marks(tmp_path: Path) -> None:
    p = params(tmp_path)
    xyz, abc = HardStop.load(p), HardStop.load(p)
    xyz.mark_running("xyz", 1_000)
    abc.mark_running("abc", 2_000)  # re-reads the file first: keeps xyz's mark
    xyz.mark_running("xyz", 3_000)
    restarted = HardStop.load(p)
    assert (restarted.last_running_ms("xyz"), restarted.last_running_ms("abc")) == (3_000, 2_000)


# ---------------------------------------------------------------------------------------------
# A latch the disk will not take


def test_a_latch_on_a_full_disk_reaches_the_disk_through_the_armed_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p)  # arms the spare while the disk still has room
    monkeypatch.setattr(hardstop, "write_atomically", disk_full)
    with caplog.at_level(logging.CRITICAL):
        assert stop.trigger("daily loss $60 on 2026-11-24 reached limit $50")
    assert stop.latched
    restarted = HardStop.load(p)
    assert restarted.latched
    assert restarted.reason is not None and "could not be written in full" in restarted.reason
    assert "No space left on device" in caplog.text


def test_a_latch_that_reaches_no_disk_is_said_loudly_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    p = params(tmp_path)
    stop = HardStop(p)  # never armed: no spare to fall back on
    monkeypatch.setattr(hardstop, "write_atomically", disk_full)
    with caplog.at_level(logging.CRITICAL):
        assert stop.trigger("test")
    assert stop.latched and not stop.persisted
    assert "NOT PERSISTED" in caplog.text
    assert "NOT PERSISTED" in stop.describe()


def test_a_restart_on_a_disk_that_cannot_take_the_latch_does_not_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = params(tmp_path)
    write_state(p.state_file, daily={"day": DAY1.isoformat(), "net_pnl": "-10"})
    monkeypatch.setattr(hardstop, "write_atomically", disk_full)
    stop = HardStop.load(p)
    assert stop.latched
    assert stop.reason is not None and "cannot" in stop.reason and "vouch" in stop.reason


def test_the_state_file_and_its_spare_are_private(tmp_path: Path) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p)
    stop.record_pnl(D(-1), D(0), DAY1)
    stop.trigger("test")
    for f in p.state_file.parent.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


# ---------------------------------------------------------------------------------------------
# Off the event loop


async def test_pnl_updates_are_written_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p)
    writers: list[str] = []
    real = hardstop.write_atomically

    def recording(path: Path, text: str) -> None:
        writers.append(threading.current_thread().name)
        real(path, text)

    monkeypatch.setattr(hardstop, "write_atomically", recording)
    async with trio.open_nursery() as nursery:
        await nursery.start(hardstop.run_hard_stop_persistence, stop)
        for _ in range(50):
            stop.record_pnl(D("-0.1"), D("0.01"), DAY1)
        assert writers == []  # nothing written on the event loop
        with trio.fail_after(5):
            while saved_pnl(p.state_file) != str(stop.daily_net_pnl):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    main = threading.main_thread().name
    assert writers and main not in writers
    assert len(writers) < 50  # coalesced
    assert HardStop.load(p).daily_net_pnl == D("-5.50")


async def test_a_failed_write_is_retried_until_the_disk_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real clock (the write runs in a thread, which a MockClock would jump past), short retry.
    monkeypatch.setattr(hardstop, "RETRY_SECS", 0.02)
    p = params(tmp_path)
    stop = HardStop(p)
    real = hardstop.write_atomically
    attempts: list[int] = []

    def full_then_free(path: Path, text: str) -> None:
        attempts.append(1)
        if len(attempts) < 4:
            disk_full()
        real(path, text)

    monkeypatch.setattr(hardstop, "write_atomically", full_then_free)
    async with trio.open_nursery() as nursery:
        await nursery.start(hardstop.run_hard_stop_persistence, stop)
        stop.trigger("test")
        assert not stop.persisted
        with trio.fail_after(5):
            while not stop.persisted:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert len(attempts) == 4
    assert HardStop.load(p).reason == "test"


# ---------------------------------------------------------------------------------------------
# Two processes, one state file


def test_a_latch_written_by_another_process_is_seen_before_the_next_entry(tmp_path: Path) -> None:
    p = params(tmp_path)
    first, second = HardStop.load(p), HardStop.load(p)
    assert not second.latched
    first.trigger("3 consecutive flatten failures in xyz:TSLA")
    assert second.latched
    assert second.reason is not None and "flatten failures" in second.reason
    assert not second.allows(reduce_only=False)


def test_a_pnl_write_never_clears_another_process_latch(tmp_path: Path) -> None:
    p = params(tmp_path)
    first, second = HardStop.load(p), HardStop.load(p)
    first.trigger("test")
    second.record_pnl(D(-1), D(0), DAY1)  # second has not looked at `latched` since
    assert HardStop.load(p).latched


def test_no_stat_storm_when_nothing_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p)
    reads: list[Path] = []
    real_read = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    for _ in range(1000):
        assert not stop.latched
    assert reads == []  # the file is re-read only when it changed


def test_observation_writes_nothing_to_the_state_directory(tmp_path: Path) -> None:
    p = params(tmp_path)
    stop = HardStop.load(p, arm=False)
    assert not stop.latched
    assert not p.state_file.parent.exists()


@pytest.mark.parametrize(
    "message",
    [
        "User or API Wallet 0x" + "ab" * 20 + " does not exist.",
        "L1 error: User or API Wallet 0x" + "ab" * 20 + " does not exist.",
        "Must deposit before performing actions. User: 0x" + "ab" * 20,
    ],
)
def test_a_key_the_exchange_no_longer_accepts_latches_at_once(tmp_path: Path, message: str) -> None:
    # An approval revoked (or expired) while running: every order would be refused; say so at once.
    stop = HardStop(params(tmp_path))
    assert stop.record_reject(message, 1.0)
    assert stop.reason is not None and "account" in stop.reason and message in stop.reason
