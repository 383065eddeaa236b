"""`hip3 journal PATH QUESTION`: the owner's questions answered from a journal, as tables or CSV."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import Fill, OrderUpdate, OrderUpdates, UserFills
from hip3.service import cli
from hip3.service.journal import Journal, prepare_journal
from hip3.service.journal_report import QUESTIONS, answer
from hip3.trading.messages import Correction, Signal

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
DATA = Path(__file__).resolve().parents[1] / "data"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def fill(
    tid: int,
    side: Side,
    sz: str,
    px: str,
    start: str,
    *,
    fee: str,
    pnl: str = "0",
    cloid: Cloid | None,
    t: int,
) -> Fill:
    return Fill(
        coin="xyz:TSLA",
        px=D(px),
        sz=D(sz),
        side=side,
        time=t,
        start_position=D(start),
        dir="x",
        closed_pnl=D(pnl),
        hash="0x0",
        oid=tid,
        crossed=True,
        fee=D(fee),
        tid=tid,
        cloid=cloid,
    )


def rejected(cloid: Cloid, status: str) -> OrderUpdate:
    return OrderUpdate("xyz:TSLA", Side.BUY, D(1), D(1), 1, 1, D(1), status, T0, cloid)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert j is not None
    db = j.connection()
    entry, exit_ = Cloid.random(), Cloid.random()
    # The signal: ask 100.00 under an oracle 30 bps higher; the entry buys 0.2 in two fills.
    j.record(Signal(TSLA, Side.BUY, D("30"), D("16"), D("100.3"), D("100.00"), D(5), D("0.2"), 1.0))
    j.flush()
    db.execute("UPDATE records SET at_ms = ?", (T0 - 50,))
    j.order_sending(entry, TSLA, Side.BUY, D("0.2"), D("100.1"), False, "entry")
    j.order_sending(exit_, TSLA, Side.SELL, D("0.2"), D("99"), True, "mark_regression")
    db.execute("UPDATE orders SET sent_ms = ? WHERE cloid = ?", (T0 - 10, str(entry)))
    db.execute("UPDATE orders SET sent_ms = ? WHERE cloid = ?", (T0 + 2_990, str(exit_)))
    fills = (
        fill(1, Side.BUY, "0.1", "100.00", "0", fee="0.0045", cloid=entry, t=T0),
        fill(2, Side.BUY, "0.1", "100.02", "0.1", fee="0.0045", cloid=entry, t=T0),
        fill(3, Side.SELL, "0.2", "100.21", "0.2", fee="0.009", pnl="0.04", cloid=exit_, t=T0 + 3_000),
        # a fill the bot did not send (a manual trade), the next day
        fill(4, Side.SELL, "0.1", "101", "0", fee="0.005", cloid=None, t=T0 + 86_400_000),
    )
    j.user_fills(UserFills("0xu", False, fills))
    j.order_updates(
        OrderUpdates(
            (rejected(Cloid.random(), "iocCancelRejected"), rejected(Cloid.random(), "iocCancelRejected"))
        )
    )
    j.order_updates(
        OrderUpdates((rejected(Cloid.random(), "minTradeNtlRejected"), rejected(entry, "filled")))
    )
    j.record(Correction(TSLA, D("0.1"), D(0), None, 5.0))
    j.note("hard_stop", "", {"event": "latched", "reason": "daily loss $51 reached limit $50"})
    j.flush()
    return j


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_round_trips_with_their_edge_accounting(journal: Journal) -> None:
    [trip, open_trip] = rows(answer(journal.path, "trips", as_csv=True))
    # entry vwap 100.01 against the signal's ask 100.00: 1 bps of slippage; exit 100.21
    assert (trip["market"], trip["side"], trip["size"]) == ("xyz:TSLA", "long", "0.2")
    assert (trip["entry_px"], trip["exit_px"], trip["held_s"]) == ("100.01", "100.21", "3.0")
    assert (trip["signal_edge_bps"], trip["threshold_bps"], trip["entry_slippage_bps"]) == ("30", "16", "1")
    # gross 0.04 on 20.002 notional = 20.0 bps; fees 0.018 = 9.0 bps; net 0.022 = 11.0 bps
    assert (trip["realized"], trip["fees"], trip["net"]) == ("0.04", "0.018", "0.022")
    assert (trip["gross_bps"], trip["fee_bps"], trip["net_bps"]) == ("20", "9", "11")
    # the manual short the next day is a trip of its own, still open, with no signal
    assert (open_trip["side"], open_trip["held_s"], open_trip["signal_edge_bps"]) == ("short", "open", "")


def test_pnl_and_fees_by_day_and_market(journal: Journal) -> None:
    day1, day2, total = rows(answer(journal.path, "pnl", as_csv=True))
    assert (day1["day"], day1["fills"], day1["realized"], day1["fees"], day1["net"]) == (
        "2026-01-01",
        "3",
        "0.04",
        "0.018",
        "0.022",
    )
    assert (day2["day"], day2["fees"], day2["net"]) == ("2026-01-02", "0.005", "-0.005")
    assert (total["day"], total["fills"], total["net"]) == ("total", "4", "0.017")


def test_orders_with_their_outcome_and_fills(journal: Journal) -> None:
    entry, exit_ = rows(answer(journal.path, "orders", as_csv=True))
    assert (entry["kind"], entry["outcome"], entry["filled"], entry["avg_px"], entry["fees"]) == (
        "entry",
        "filled",
        "0.2",
        "100.01",
        "0.009",
    )
    assert (exit_["kind"], exit_["reason"], exit_["outcome"], exit_["filled"]) == (
        "flatten",
        "mark_regression",
        "no outcome recorded",
        "0.2",
    )


def test_rejects_by_reason_corrections_and_hard_stops(journal: Journal) -> None:
    assert [(r["reason"], r["count"]) for r in rows(answer(journal.path, "rejects", as_csv=True))] == [
        ("iocCancelRejected", "2"),
        ("minTradeNtlRejected", "1"),
    ]
    [correction] = rows(answer(journal.path, "corrections", as_csv=True))
    assert (correction["market"], correction["bot had"], correction["exchange had"]) == (
        "xyz:TSLA",
        "0.1",
        "0",
    )
    [stop] = rows(answer(journal.path, "hard-stops", as_csv=True))
    assert stop["reason"] == "daily loss $51 reached limit $50"


def test_restarts_say_what_was_counted_while_the_bot_was_down(journal: Journal) -> None:
    journal.note(
        "restart",
        "",
        {"in_doubt": 0, "resolved": {}, "fills_found": 0, "fills_while_down": 1, "net_while_down": "-30.75"},
    )
    journal.note("restart", "", {"in_doubt": 0, "resolved": {}, "fills_found": 0})  # an older bot's
    journal.flush()
    new, old = rows(answer(journal.path, "restarts", as_csv=True))[-2:]
    assert new["while down"] == "1 fills, net -30.75"
    assert old["while down"] == ""


def test_fills_table_and_limit(journal: Journal) -> None:
    text = answer(journal.path, "fills", limit=2)
    lines = text.splitlines()
    assert lines[0] == "fills (newest 2)" and len(lines) == 4
    assert "(not ours)" in lines[-1] and "100.21" in lines[-2]


def test_the_cli_prints_a_table_or_csv_and_refuses_a_missing_file(
    journal: Journal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["journal", str(journal.path), "pnl"]) == 0
    assert "2026-01-01" in capsys.readouterr().out
    assert cli.main(["journal", str(journal.path), "trips", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("opened,market,side,")
    assert cli.main(["journal", str(tmp_path / "nope.sqlite3"), "pnl"]) == 2
    assert "no journal at" in capsys.readouterr().err
    assert set(cli.JOURNAL_QUESTIONS) == set(QUESTIONS)


def test_a_first_schema_journal_answers_too(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(DATA / "journal_v1.sqlite3", path)
    [correction] = rows(answer(path, "corrections", as_csv=True))
    assert (correction["market"], correction["bot had"]) == ("xyz:GOLD", "-0.02")
    assert rows(answer(path, "trips", as_csv=True)) == []


def test_a_trips_signal_edge_is_the_edge_that_counts_after_the_structural_gap(tmp_path: Path) -> None:
    # A book that lives 30 bps above its oracle: its ask 10 bps above the oracle is 20 bps under
    # where it settles. The signal's raw edge is −10 and its structural part −30; the trip was taken
    # on 20 bps of edge against a 16 bps threshold, and the table must say so (not "−10 vs 16").
    j = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert j is not None
    db = j.connection()
    entry = Cloid.random()
    j.record(
        Signal(
            TSLA, Side.BUY, D("-10"), D("16"), D("100"), D("100.10"), D(5), D("0.2"), 1.0,
            structural_gap_bps=D("-30"),
        )
    )  # fmt: skip
    j.flush()
    db.execute("UPDATE records SET at_ms = ?", (T0 - 50,))
    j.order_sending(entry, TSLA, Side.BUY, D("0.2"), D("100.1"), False, "entry")
    db.execute("UPDATE orders SET sent_ms = ? WHERE cloid = ?", (T0 - 10, str(entry)))
    j.user_fills(
        UserFills("0xu", False, (fill(1, Side.BUY, "0.2", "100.10", "0", fee="0.009", cloid=entry, t=T0),))
    )
    j.flush()
    [trip] = rows(answer(j.path, "trips", as_csv=True))
    assert (trip["signal_edge_bps"], trip["threshold_bps"]) == ("20", "16")
