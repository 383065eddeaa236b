"""The journal writes signals and position events durably without blocking the caller."""

from decimal import Decimal
from pathlib import Path

import trio

from hip3.core import MarketKey, Side
from hip3.service.journal import Journal, open_journal
from hip3.trading.messages import PositionClosed, Signal

TSLA = MarketKey("xyz", "TSLA", 110001)


def make_signal() -> Signal:
    return Signal(
        market=TSLA,
        side=Side.BUY,
        raw_edge_bps=Decimal("31.5"),
        threshold_bps=Decimal("16"),
        oracle_px=Decimal("250.10"),
        best_px=Decimal("249.31"),
        best_sz=Decimal("2.5"),
        suggested_size=Decimal("0.2"),
        created_at=1.5,
    )


async def test_records_reach_sqlite_with_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.sqlite3"
    async with trio.open_nursery() as nursery:
        journal = await open_journal(str(path), nursery)
        assert journal is not None
        journal.record(make_signal())
        journal.record(
            PositionClosed(
                TSLA,
                Side.BUY,
                Decimal("0.2"),
                Decimal("249.31"),
                Decimal("250.05"),
                Decimal("0.148"),
                3.0,
                4.5,
            )
        )
        while journal.written < 2:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    rows = journal.read()
    journal.close()
    assert [r.kind for r in rows] == ["signal", "position_closed"]
    assert rows[0].market == "xyz:TSLA"
    assert rows[0].data["raw_edge_bps"] == "31.5" and rows[0].data["side"] == "buy"
    assert rows[1].data["realized_pnl"] == "0.148"
    # a fresh connection sees the same rows: it is on disk
    again = Journal(path)
    assert len(again.read("signal")) == 1
    again.close()


async def test_empty_path_means_no_journal() -> None:
    async with trio.open_nursery() as nursery:
        assert await open_journal("", nursery) is None


def test_a_full_journal_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for _ in range(10_001):
        journal.record(make_signal())
    assert journal.dropped == 1
    journal.close()
