"""Durable record (SQLite) of signals, orders, fills, position transitions and corrections.

One `Journal` owns the SQLite connection and every write happens on the event loop's thread, in
two ways:

* **Batched.** `record`, `note`, `user_fills` and `order_updates` only append to a list (no
  conversion, no I/O); the writer task (`Journal.run`) writes what accumulated every
  `flush_interval` seconds in short transactions, yielding between chunks. A worker thread was
  measured contending for the GIL with the order path, so nothing here runs on one except the
  periodic WAL checkpoint (its own connection; SQLite releases the GIL while it copies pages).
* **Write-ahead.** `order_sending` inserts one row and commits it before the order leaves, so a
  restart knows which orders may have been in flight. WAL with `synchronous=NORMAL`: a commit is
  a write() into the WAL without fsync, which survives the process being killed (the OS keeps
  the pages) but not a power loss.

`prepare_journal` opens and checks the file before the exchange is touched: a corrupt file is
moved aside (the bot starts a new one and says where the old one went); a file that cannot be
used at all stops the start with a message saying how to recover. Files are created 0600.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from hip3.clock import utc_now, wall_clock_ms
from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import Fill, OrderUpdates, UserFills
from hip3.service.journal_schema import SchemaTooNew, migrate
from hip3.trading.messages import (
    Correction,
    PositionChanged,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    Signal,
)

log = logging.getLogger(__name__)

#: Exchange order statuses after which an order can no longer execute.
LIVE_ORDER_STATUSES = frozenset({"open", "triggered"})
#: Signals beyond this many unwritten records are dropped (and counted); other records never are.
MAX_PENDING_SIGNALS = 50_000
#: Records written per transaction before the writer yields to other tasks (~10 µs each: a
#: chunk keeps the loop for well under a millisecond).
FLUSH_CHUNK = 16
CHECKPOINT_INTERVAL_SECS = 30.0


class JournalUnusable(Exception):
    """The journal can be neither used nor moved aside; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Records (the generic table)


@attrs.frozen
class Record:
    kind: str
    market: str
    data: dict[str, Any]


_KINDS: dict[type, str] = {
    Signal: "signal",
    PositionOpened: "position_opened",
    PositionClosed: "position_closed",
    PositionChanged: "position_changed",
    Correction: "correction",
}


def _plain(value: Any) -> Any:
    """JSON-ready: numbers that are money stay exact as strings; ids and enums by their text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(a.name for a in attrs.fields(cls) if a.name != "market") for cls in _KINDS
}


def record_of(item: Signal | PositionEvent) -> Record:
    cls = type(item)
    data = {name: _plain(getattr(item, name)) for name in _FIELDS[cls]}
    return Record(_KINDS[cls], str(item.market), data)


# ---------------------------------------------------------------------------------------------
# Opening and checking the file


def _create_private(path: Path) -> None:
    """Create the file 0600 if missing; tighten an existing one that group or others can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            log.warning("journal %s was readable by others (mode %o); now 0600", path, mode)
        return
    os.close(fd)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # A commit writes into the WAL without fsync: it survives kill -9, not a power loss.
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (which do fsync) run on a worker thread, never inside a commit on the loop.
        db.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        db.close()
        raise
    return db


def _problems(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("PRAGMA quick_check").fetchall()
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows[:5]]


class _Corrupt(Exception):
    pass


def _is_corruption(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (
        type(exc) is sqlite3.DatabaseError
    )


def open_checked(path: Path) -> sqlite3.Connection:
    """Open, check (SQLite quick_check) and migrate; raises `_Corrupt` or `JournalUnusable`."""
    try:
        _create_private(path)
        db = _connect(path)
    except sqlite3.Error as exc:
        if _is_corruption(exc):
            raise _Corrupt(str(exc)) from exc
        raise JournalUnusable(f"journal {path}: cannot open: {exc}") from exc
    except OSError as exc:
        raise JournalUnusable(f"journal {path}: cannot create: {exc.strerror or exc}") from exc
    try:
        problems = _problems(db)
        if problems:
            raise _Corrupt("; ".join(problems))
        found, now = migrate(db)
        if found not in (0, now):
            log.warning("journal %s: schema migrated from version %d to %d", path, found, now)
        return db
    except sqlite3.Error as exc:
        db.close()
        if _is_corruption(exc):
            raise _Corrupt(str(exc)) from exc
        raise JournalUnusable(f"journal {path}: {exc}") from exc
    except SchemaTooNew as exc:
        db.close()
        raise JournalUnusable(f"journal {path}: {exc}") from exc
    except BaseException:
        db.close()
        raise


def _companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def move_aside(path: Path, stamp: str) -> Path:
    """Rename the journal (and its -wal/-shm) to `<name>.corrupt-<stamp>`; returns the new main path."""
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for src in _companions(path):
        if src.exists():
            src.rename(src.with_name(src.name.replace(path.name, target.name, 1)))
    return target


def prepare_journal(path_text: str, *, now: datetime | None = None) -> Journal | None:
    """Open the journal before anything touches the exchange; "" means no journal.

    A corrupt file is moved aside and a fresh one started (the error says where the old one is);
    raises `JournalUnusable` when neither works, with what to do about it.
    """
    if not path_text:
        return None
    path = Path(path_text)
    try:
        return Journal(open_checked(path), path)
    except _Corrupt as exc:
        stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
        try:
            aside = move_aside(path, stamp)
        except OSError as move_exc:
            raise JournalUnusable(
                f"journal {path} is corrupt ({exc}) and could not be moved aside "
                f"({move_exc.strerror or move_exc}); move it away by hand "
                f"(mv {path} {path}.corrupt) or set [journal] path to a new file, then start again"
            ) from move_exc
        log.error(
            "journal %s is corrupt (%s): moved it to %s and started a new one; orders in flight "
            "when the previous run stopped are not known from the journal (positions are still "
            "adopted from the exchange)",
            path,
            exc,
            aside,
        )
        try:
            journal = Journal(open_checked(path), path)
        except _Corrupt as again:
            raise JournalUnusable(f"journal {path}: a new file is unusable too: {again}") from again
        journal.moved_aside = aside
        return journal


# ---------------------------------------------------------------------------------------------
# The journal


@attrs.frozen
class SentOrder:
    """A write-ahead row: an order that was about to be sent."""

    cloid: str
    market: str
    side: str
    size: Decimal
    limit_px: Decimal
    reduce_only: bool
    reason: str
    sent_ms: int


_RECORD, _NOTE, _FILLS, _UPDATES = range(4)


class Journal:
    """The journal file and its writer; `prepare_journal` is the way to get one."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        *,
        flush_interval: float = 0.25,
        max_pending_signals: int = MAX_PENDING_SIGNALS,
    ) -> None:
        self.path = path
        self._db = db
        self.flush_interval = flush_interval
        self.max_pending_signals = max_pending_signals
        self._pending: list[tuple[int, int, Any]] = []
        self._pending_signals = 0
        self.written = 0
        self.dropped = 0
        self.write_failures = 0
        self.moved_aside: Path | None = None
        self._closed = False

    # -- on the event loop, per event: append only -----------------------------------------

    def record(self, item: Signal | PositionEvent) -> None:
        if isinstance(item, Signal):
            if self._pending_signals >= self.max_pending_signals:
                self.dropped += 1
                return
            self._pending_signals += 1
        self._pending.append((_RECORD, wall_clock_ms(), item))

    def note(self, kind: str, market: str, data: dict[str, Any]) -> None:
        """A record that is not a bot message (hard-stop events, restarts)."""
        self._pending.append((_NOTE, wall_clock_ms(), Record(kind, market, data)))

    def user_event(self, event: UserFills | OrderUpdates) -> None:
        if isinstance(event, UserFills):
            self.user_fills(event)
        else:
            self.order_updates(event)

    def user_fills(self, msg: UserFills) -> None:
        # Snapshot fills too: after a restart they fill in what the previous run missed.
        if msg.fills:
            self._pending.append((_FILLS, 0, msg.fills))

    def order_updates(self, msg: OrderUpdates) -> None:
        if msg.updates:
            self._pending.append((_UPDATES, wall_clock_ms(), msg))

    # -- write-ahead: direct, before the order leaves ------------------------------------------

    def order_sending(
        self,
        cloid: Cloid,
        market: MarketKey,
        side: Side,
        size: Decimal,
        limit_px: Decimal,
        reduce_only: bool,
        reason: str,
    ) -> None:
        """Commit the order's row before it is sent; raises (so it is not sent) if that fails."""
        self._db.execute(
            "INSERT INTO orders (cloid, market, side, size, limit_px, reduce_only, reason, sent_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(cloid),
                str(market),
                str(side),
                str(size),
                str(limit_px),
                int(reduce_only),
                reason,
                wall_clock_ms(),
            ),
        )

    # -- the writer ------------------------------------------------------------------------------

    def flush(self, limit: int | None = None) -> int:
        """Write up to `limit` pending records in one transaction; returns how many were taken."""
        if not self._pending:
            return 0
        n = len(self._pending) if limit is None else min(limit, len(self._pending))
        batch, self._pending = self._pending[:n], self._pending[n:]
        records: list[tuple[str, str, str, int]] = []
        fills: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for tag, at_ms, item in batch:
            if tag == _RECORD:
                if isinstance(item, Signal):
                    self._pending_signals -= 1
                rec = record_of(item)
                records.append((rec.kind, rec.market, json.dumps(rec.data, sort_keys=True), at_ms))
            elif tag == _NOTE:
                records.append((item.kind, item.market, json.dumps(item.data, sort_keys=True), at_ms))
            elif tag == _FILLS:
                fills.extend(_fill_row(f) for f in item)
            else:
                for u in item.updates:
                    final = u.status not in LIVE_ORDER_STATUSES
                    if u.cloid is not None:
                        events.append(
                            (str(u.cloid), u.status_timestamp or at_ms, "stream", u.status, final, "")
                        )
        try:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO records (kind, market, data, at_ms, at_wall) VALUES "
                    "(?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', ?4 / 1000.0, 'unixepoch'))",
                    records,
                )
                self._db.executemany(_INSERT_FILL, fills)
                self._db.executemany(_INSERT_EVENT, events)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self.write_failures += 1
            self.dropped += len(batch)
            log.error("journal %s: write failed, %d records lost: %s", self.path, len(batch), exc)
            return n
        self.written += len(batch)
        return n

    async def flush_all(self) -> None:
        """Write everything pending, a chunk per transaction, letting other tasks run in between."""
        while self._pending:
            self.flush(FLUSH_CHUNK)
            await trio.sleep(0)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_checkpoint = trio.current_time() + CHECKPOINT_INTERVAL_SECS
        try:
            while True:
                await trio.sleep(self.flush_interval)
                await self.flush_all()
                if trio.current_time() >= next_checkpoint:
                    next_checkpoint = trio.current_time() + CHECKPOINT_INTERVAL_SECS
                    await trio.to_thread.run_sync(self._checkpoint)
        finally:
            if not self._closed:
                self.flush()  # an orderly stop keeps the last records (no await: may be cancelled)

    def _checkpoint(self) -> None:
        # A connection of its own, on the worker thread: copying pages and fsync happen here.
        try:
            with sqlite3.connect(self.path, isolation_level=None) as db:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("journal %s: checkpoint failed: %s", self.path, exc)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("journal %s: final checkpoint failed: %s", self.path, exc)
        self._db.close()
        self._closed = True

    # -- reads and direct writes for restarts and tests ----------------------------------------

    def read(self, kind: str | None = None) -> list[Record]:
        query = "SELECT kind, market, data FROM records"
        args: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            args = (kind,)
        rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Record(k, m, json.loads(d)) for k, m, d in rows]

    def orders_in_doubt(self, window_ms: int) -> list[SentOrder]:
        """Orders with no final outcome, sent within `window_ms` before the newest order.

        Older ones had the previous run's whole resolution time behind them; their effects on
        positions are in the exchange's state, which a restart adopts.
        """
        # Newest first by rowid (rows are appended in time order), stopping at the window's start:
        # a restart reads only the last minutes, however long the journal is.
        rows = self._db.execute(
            "SELECT cloid, market, side, size, limit_px, reduce_only, reason, sent_ms, "
            "EXISTS (SELECT 1 FROM order_events e WHERE e.cloid = o.cloid AND e.final) "
            "FROM orders o ORDER BY id DESC"
        )
        doubt: list[SentOrder] = []
        newest: int | None = None
        for c, m, side, sz, px, ro, r, ms, final in rows:
            newest = ms if newest is None else newest
            if ms < newest - window_ms:
                break
            if not final:
                doubt.append(SentOrder(c, m, side, Decimal(sz), Decimal(px), bool(ro), r, ms))
        doubt.reverse()
        return doubt

    def sent_cloids(self) -> list[str]:
        return [c for (c,) in self._db.execute("SELECT cloid FROM orders ORDER BY id")]

    def add_order_event(self, cloid: str, status: str, *, final: bool, source: str, detail: str = "") -> None:
        self._db.execute(_INSERT_EVENT, (cloid, wall_clock_ms(), source, status, final, detail))

    def add_fills(self, fills: Sequence[Fill]) -> list[Fill]:
        """Insert now; returns the fills that were not journaled before."""
        new: list[Fill] = []
        self._db.execute("BEGIN")
        try:
            for f in fills:
                if self._db.execute(_INSERT_FILL, _fill_row(f)).rowcount:
                    new.append(f)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return new

    def fills_not_journaled(self, fills: Sequence[Fill]) -> list[Fill]:
        """Those of `fills` whose (coin, tid) the journal does not hold: the bot never saw them."""
        return [
            f
            for f in fills
            if self._db.execute("SELECT 1 FROM fills WHERE coin = ? AND tid = ?", (f.coin, f.tid)).fetchone()
            is None
        ]

    def connection(self) -> sqlite3.Connection:
        """For the query commands and tests."""
        return self._db


_INSERT_FILL = (
    "INSERT OR IGNORE INTO fills (coin, tid, time_ms, cloid, oid, side, px, sz, fee, closed_pnl, "
    "start_position, dir, crossed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO order_events (cloid, at_ms, source, status, final, detail) VALUES (?, ?, ?, ?, ?, ?)"
)


def _fill_row(f: Fill) -> tuple[Any, ...]:
    return (
        f.coin,
        f.tid,
        f.time,
        str(f.cloid) if f.cloid is not None else None,
        f.oid,
        f.side.value,
        str(f.px),
        str(f.sz),
        str(f.fee),
        str(f.closed_pnl),
        str(f.start_position),
        f.dir,
        int(f.crossed),
    )


async def open_journal(path: str, nursery: trio.Nursery) -> Journal | None:
    """Prepare the journal and start its writer in `nursery`; "" means no journal."""
    journal = prepare_journal(path)
    if journal is not None:
        await nursery.start(journal.run)
        log.info("journal: %s", journal.path)
    return journal
