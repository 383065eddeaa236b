"""Hard stop: triggers, first reason wins, persistence across restarts, manual reset, benign rejects."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.core import MarketKey
from hip3.trading.hardstop import HardStop, HardStopParams, is_benign_reject, reset_hard_stop

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
DAY1 = date(2026, 11, 24)
DAY2 = date(2026, 11, 25)
FIXED = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)


def make(tmp_path: Path, **overrides: object) -> HardStop:
    params = HardStopParams(state_file=tmp_path / "var" / "hard_stop.json", **overrides)  # type: ignore[arg-type]
    return HardStop(params, wall_clock=lambda: FIXED)


@pytest.mark.parametrize(
    "message",
    [
        "Order could not immediately match against any resting orders. asset=110001",
        "Order must have minimum value of $10. asset=110027",
        "Reduce only order would increase position. asset=110026",
        "Order has zero size",
        "  order could not immediately match against any resting orders.",
        "iocCancelRejected",
        "minTradeNtlRejected",
        "reduceOnlyRejected",
    ],
)
def test_benign_rejects(message: str) -> None:
    assert is_benign_reject(message)


@pytest.mark.parametrize(
    "message",
    [
        "Insufficient margin to place order. asset=110001",
        "Price must be divisible by tick size. asset=110001",
        "Order has invalid size. asset=110001",
        "User or API Wallet 0xabc does not exist.",
        "Invalid nonce: duplicate nonce 5",
        "",
    ],
)
def test_non_benign_rejects(message: str) -> None:
    assert not is_benign_reject(message)


def test_more_than_max_rejects_within_the_window_latches(tmp_path: Path) -> None:
    stop = make(tmp_path)
    for i in range(5):
        assert not stop.record_reject("Insufficient margin to place order. asset=1", float(i))
    assert not stop.latched
    assert stop.record_reject("Order has invalid size. asset=1", 10.0)
    assert stop.latched
    assert stop.reason is not None and "6 order rejects" in stop.reason and "invalid size" in stop.reason
    assert stop.latched_at == 10.0


def test_benign_rejects_never_latch(tmp_path: Path) -> None:
    stop = make(tmp_path)
    for i in range(100):
        stop.record_reject("Order could not immediately match against any resting orders. asset=1", float(i))
        stop.record_reject("Order must have minimum value of $10. asset=1", float(i))
    assert not stop.latched


def test_rejects_outside_the_window_expire(tmp_path: Path) -> None:
    stop = make(tmp_path)
    for i in range(5):
        stop.record_reject("Insufficient margin", float(i))
    assert not stop.record_reject("Insufficient margin", 3605.0)  # the first five are > 3600 s old
    assert not stop.latched


def test_daily_loss_latches_at_the_limit(tmp_path: Path) -> None:
    stop = make(tmp_path)
    assert not stop.record_pnl(D(-30), D(5), DAY1)  # −35
    assert stop.daily_net_pnl == D(-35)
    assert not stop.record_pnl(D(10), D("0.5"), DAY1)  # −25.5
    assert stop.record_pnl(D(-24), D("0.5"), DAY1)  # −50 ≤ −50
    assert stop.latched and stop.reason is not None and "daily loss $50" in stop.reason


def test_a_new_utc_day_starts_from_zero(tmp_path: Path) -> None:
    stop = make(tmp_path)
    stop.record_pnl(D(-45), D(0), DAY1)
    assert not stop.record_pnl(D(-45), D(0), DAY2)
    assert stop.daily_net_pnl == D(-45) and not stop.latched


def test_consecutive_flatten_failures_per_market(tmp_path: Path) -> None:
    stop = make(tmp_path)
    stop.record_flatten_failure(TSLA, "IOC no match")
    stop.record_flatten_failure(TSLA, "IOC no match")
    stop.record_flatten_success(TSLA)
    assert stop.flatten_failures(TSLA) == 0
    stop.record_flatten_failure(TSLA, "x")
    stop.record_flatten_failure(TSLA, "x")
    stop.record_flatten_failure(GOLD, "x")
    stop.record_flatten_failure(GOLD, "x")
    assert not stop.latched
    assert stop.record_flatten_failure(GOLD, "post timeout")
    assert stop.reason is not None and "3 consecutive flatten failures in xyz:GOLD" in stop.reason


def test_first_trigger_wins(tmp_path: Path) -> None:
    stop = make(tmp_path)
    assert stop.record_pnl(D(-60), D(0), DAY1)
    first = stop.reason
    for i in range(10):
        assert not stop.record_reject("Insufficient margin", float(i))
    assert not stop.trigger("manual")
    assert stop.reason == first


def test_latched_blocks_entries_not_exits(tmp_path: Path) -> None:
    stop = make(tmp_path)
    assert stop.allows(reduce_only=False) and stop.allows(reduce_only=True)
    stop.trigger("test")
    assert not stop.allows(reduce_only=False)
    assert stop.allows(reduce_only=True)


@pytest.mark.parametrize("limit", ["max_daily_loss_usd", "max_rejects", "max_flatten_failures"])
def test_no_trigger_can_be_turned_off(tmp_path: Path, limit: str) -> None:
    with pytest.raises(ValueError, match=f"hard_stop.{limit}: must be"):
        make(tmp_path, **{limit: 0})


# ---------------------------------------------------------------------------------------------
# Persistence and reset


def test_latch_is_persisted_and_restored(tmp_path: Path) -> None:
    stop = make(tmp_path)
    stop.trigger("3 consecutive flatten failures in xyz:TSLA", 5.0)
    path = tmp_path / "var" / "hard_stop.json"
    data = json.loads(path.read_text())
    assert data["latched"] is True
    assert data["reason"] == "3 consecutive flatten failures in xyz:TSLA"
    assert data["latched_wall"] == FIXED.isoformat()
    assert [p.name for p in path.parent.iterdir()] == ["hard_stop.json"]  # no temp file left behind

    restored = HardStop.load(stop.params)
    assert restored.latched
    assert restored.reason == stop.reason
    assert restored.latched_wall == FIXED.isoformat()
    assert not restored.allows(reduce_only=False)


def test_daily_pnl_survives_a_restart(tmp_path: Path) -> None:
    stop = make(tmp_path)
    stop.record_pnl(D(-40), D(0), DAY1)
    restored = HardStop.load(stop.params)
    assert not restored.latched
    assert restored.daily_net_pnl == D(-40) and restored.pnl_day == DAY1
    assert restored.record_pnl(D(-10), D(0), DAY1)


def test_reset_removes_the_file(tmp_path: Path) -> None:
    stop = make(tmp_path)
    stop.trigger("test")
    assert reset_hard_stop(stop.params.state_file)
    assert not stop.params.state_file.exists()
    assert not reset_hard_stop(str(stop.params.state_file))  # nothing left to remove
    assert not HardStop.load(stop.params).latched


def test_missing_file_loads_clear(tmp_path: Path) -> None:
    stop = HardStop.load(HardStopParams(state_file=tmp_path / "nope.json"))
    assert not stop.latched and stop.reason is None


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"daily": {"day": "yesterday"}}'])
def test_corrupt_file_loads_latched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "hard_stop.json"
    path.write_text(content)
    stop = HardStop.load(HardStopParams(state_file=path))
    assert stop.latched
    assert stop.reason is not None and "corrupt" in stop.reason


def test_unwritable_state_file_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    stop = HardStop(HardStopParams(state_file=blocker / "hard_stop.json"))
    with caplog.at_level(logging.ERROR):
        assert stop.trigger("test")
    assert stop.latched
    assert "could not write hard-stop state" in caplog.text


def test_params_from_config_values(tmp_path: Path) -> None:
    params = HardStopParams(max_daily_loss_usd=50.5, state_file=str(tmp_path / "x.json"))  # type: ignore[arg-type]
    assert params.max_daily_loss_usd == D("50.5")
    assert params.state_file == tmp_path / "x.json"
    with pytest.raises(ValueError, match="max_rejects"):
        HardStopParams(max_rejects=-1)
