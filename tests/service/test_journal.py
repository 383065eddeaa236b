"""The journal: batched records, the write-ahead order row, fills and order outcomes, the schema."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import Fill, OrderUpdate, OrderUpdates, UserFills
from hip3.service.journal import Journal, JournalUnusable, open_journal, prepare_journal
from hip3.service.journal_schema import SCHEMA_VERSION, file_version
from hip3.trading.messages import PositionClosed, Signal

TSLA = MarketKey("xyz", "TSLA", 110001)
DATA = Path(__file__).resolve().parents[1] / "data"
D = Decimal


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


def make_fill(
    tid: int, *, coin: str = "xyz:TSLA", cloid: Cloid | None = None, time_ms: int = 1_700_000_000_000
) -> Fill:
    return Fill(
        coin=coin,
        px=D("249.31"),
        sz=D("0.2"),
        side=Side.BUY,
        time=time_ms,
        start_position=D(0),
        dir="Open Long",
        closed_pnl=D(0),
        hash="0x0",
        oid=7,
        crossed=True,
        fee=D("0.0224"),
        tid=tid,
        cloid=cloid,
    )


def update(cloid: Cloid, status: str) -> OrderUpdate:
    return OrderUpdate(
        coin="xyz:TSLA",
        side=Side.BUY,
        limit_px=D("250"),
        sz=D(0),
        oid=7,
        timestamp=1,
        orig_sz=D("0.2"),
        status=status,
        status_timestamp=1_700_000_000_500,
        cloid=cloid,
    )


def journal_at(path: Path) -> Journal:
    journal = prepare_journal(str(path))
    assert journal is not None
    return journal


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
        with trio.fail_after(5):
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
    again = journal_at(path)
    assert len(again.read("signal")) == 1
    again.close()


async def test_empty_path_means_no_journal() -> None:
    async with trio.open_nursery() as nursery:
        assert await open_journal("", nursery) is None


def test_recording_only_queues_until_the_writer_flushes(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "j.sqlite3")
    for _ in range(3):
        journal.record(make_signal())
    assert journal.read() == [] and journal.written == 0
    assert journal.flush(limit=2) == 2
    assert len(journal.read()) == 2
    journal.flush()
    assert len(journal.read()) == 3 and journal.written == 3
    journal.close()


def test_too_many_unwritten_signals_are_dropped_and_counted_but_fills_never(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "j.sqlite3")
    journal.max_pending_signals = 10
    for _ in range(11):
        journal.record(make_signal())
    fills = tuple(make_fill(tid) for tid in range(20))
    journal.user_fills(UserFills(user="0xu", is_snapshot=False, fills=fills))
    assert journal.dropped == 1
    journal.flush()
    db = journal.connection()
    assert db.execute("SELECT count(*) FROM records").fetchone() == (10,)
    assert db.execute("SELECT count(*) FROM fills").fetchone() == (20,)
    journal.close()


def test_a_fill_is_journaled_once_per_coin_and_trade_id(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "j.sqlite3")
    journal.user_fills(UserFills(user="0xu", is_snapshot=True, fills=(make_fill(1), make_fill(2))))
    journal.user_fills(
        UserFills(user="0xu", is_snapshot=False, fills=(make_fill(2), make_fill(2, coin="xyz:GOLD")))
    )
    journal.flush()
    rows = journal.connection().execute("SELECT coin, tid, fee FROM fills ORDER BY coin, tid").fetchall()
    assert rows == [("xyz:GOLD", 2, "0.0224"), ("xyz:TSLA", 1, "0.0224"), ("xyz:TSLA", 2, "0.0224")]
    assert [f.tid for f in journal.add_fills([make_fill(2), make_fill(3)])] == [3]
    journal.close()


def test_the_write_ahead_row_is_committed_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = journal_at(path)
    cloid = Cloid.random()
    journal.order_sending(cloid, TSLA, Side.BUY, D("0.2"), D("250.5"), False, "entry")
    # another connection (a restarted process) sees it without any flush or close
    with sqlite3.connect(path) as other:
        rows = other.execute(
            "SELECT cloid, market, side, size, limit_px, reduce_only, reason FROM orders"
        ).fetchall()
    assert rows == [(str(cloid), "xyz:TSLA", "buy", "0.2", "250.5", 0, "entry")]
    journal.close()


def test_orders_in_doubt_are_the_recent_ones_without_a_final_outcome(tmp_path: Path) -> None:
    journal = journal_at(tmp_path / "j.sqlite3")
    db = journal.connection()
    cloids = [Cloid.random() for _ in range(5)]
    for i, cloid in enumerate(cloids):
        journal.order_sending(cloid, TSLA, Side.BUY, D("0.2"), D("250"), False, "entry")
        db.execute("UPDATE orders SET sent_ms = ? WHERE cloid = ?", (1_000_000 + i * 100_000, str(cloid)))
    # 0 is too old for the window; 1 ended (filled); 2 only went "open" (still live); 3 was rejected
    journal.order_updates(OrderUpdates((update(cloids[1], "filled"), update(cloids[2], "open"))))
    journal.order_updates(OrderUpdates((update(cloids[3], "iocCancelRejected"),)))
    journal.flush()
    doubt = journal.orders_in_doubt(window_ms=350_000)
    assert [o.cloid for o in doubt] == [str(cloids[2]), str(cloids[4])]
    assert doubt[0].side == "buy" and doubt[0].size == D("0.2") and not doubt[0].reduce_only
    journal.add_order_event(str(cloids[4]), "unknownOid", final=True, source="recovery")
    assert [o.cloid for o in journal.orders_in_doubt(window_ms=350_000)] == [str(cloids[2])]
    journal.close()


def test_a_journal_written_by_the_first_schema_opens_and_is_migrated(tmp_path: Path) -> None:
    # tests/data/journal_v1.sqlite3 was written by the journal code of main 56ccdd3 (no version).
    path = tmp_path / "journal.sqlite3"
    shutil.copy(DATA / "journal_v1.sqlite3", path)
    with sqlite3.connect(path) as db:
        assert file_version(db) == 1
    journal = journal_at(path)
    db = journal.connection()
    assert file_version(db) == SCHEMA_VERSION
    old = journal.read()
    assert [r.kind for r in old] == [
        "signal",
        "position_opened",
        "position_closed",
        "signal",
        "position_opened",
        "position_changed",
        "correction",
    ]
    assert old[2].data["realized_pnl"] == "0.296"
    # the old rows got a wall time in ms from their text timestamp
    (at_ms,) = db.execute("SELECT at_ms FROM records WHERE id = 1").fetchone()
    assert at_ms == 1_795_968_155_014  # 2026-11-29T16:02:35.014Z
    # and the new tables work
    journal.order_sending(Cloid.random(), TSLA, Side.SELL, D("1"), D("2"), True, "time_stop")
    journal.record(make_signal())
    journal.flush()
    assert len(journal.read("signal")) == 3
    journal.close()


def test_a_journal_from_a_newer_hip3_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal_at(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalUnusable, match="newer than this hip3"):
        prepare_journal(str(path))


def test_a_torn_write_at_the_end_of_the_wal_loses_only_the_last_commit(tmp_path: Path) -> None:
    # What a kill -9 (or a crash in the middle of a write) leaves on disk: the database file and a
    # WAL whose last frame is cut short. SQLite checks each frame's checksum and ignores a torn one.
    path = tmp_path / "journal.sqlite3"
    journal = journal_at(path)
    cloids = [Cloid.random() for _ in range(3)]
    for cloid in cloids:
        journal.order_sending(cloid, TSLA, Side.BUY, D("0.2"), D("250"), False, "entry")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(path, crashed / path.name)
    wal = path.with_name(path.name + "-wal").read_bytes()
    (crashed / (path.name + "-wal")).write_bytes(wal[:-100])  # the last commit's frame, torn
    journal.close()
    survivor = journal_at(crashed / path.name)
    assert survivor.sent_cloids() == [str(cloids[0]), str(cloids[1])]
    assert survivor.connection().execute("PRAGMA quick_check").fetchone() == ("ok",)
    survivor.order_sending(Cloid.random(), TSLA, Side.BUY, D("0.2"), D("250"), False, "entry")
    assert len(survivor.sent_cloids()) == 3
    survivor.close()
