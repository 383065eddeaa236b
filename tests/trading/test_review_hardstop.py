"""Adversarial review of the hard stop's daily loss: amounts reported late, for an earlier day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from hip3.trading.hardstop import HardStop, HardStopParams

D = Decimal
YESTERDAY = date(2026, 11, 24)
TODAY = date(2026, 11, 25)


def make(tmp_path: Path) -> HardStop:
    params = HardStopParams(state_file=tmp_path / "hard_stop.json", max_daily_loss_usd=D(50))  # type: ignore[call-arg]
    return HardStop(params, wall_clock=lambda: datetime(2026, 11, 25, 0, 5, tzinfo=UTC))


def test_a_late_fill_of_yesterday_never_erases_todays_loss(tmp_path: Path) -> None:
    # Today's losses so far: 40 of 50. A restart just after midnight recovers an order of the
    # previous run that filled at 23:59 yesterday (recovery counts it under the fill's own day).
    # The day's total must not restart from that fill: a further 10 today reaches the limit.
    stop = make(tmp_path)
    assert not stop.record_pnl(D(-40), D(0), TODAY)
    stop.record_pnl(D(-1), D("0.1"), YESTERDAY)
    assert stop.pnl_day == TODAY
    assert stop.record_pnl(D(-9), D(0), TODAY)
    assert stop.latched
