"""Durable record (SQLite) of signals, position transitions and resync corrections.

Writers never wait on the disk: records go through a bounded memory channel to one task that
writes them in batches on a worker thread. If the journal falls behind, records are counted as
dropped rather than slowing the feed → detector → executor path; the log still has every event.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import trio

from hip3.trading.messages import (
    Correction,
    PositionChanged,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    Signal,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_wall TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind TEXT NOT NULL,
    market TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind_market ON records (kind, market);
"""


@attrs.frozen
class Record:
    kind: str
    market: str
    data: dict[str, Any]


def _plain(value: Any) -> Any:
    """JSON-ready: numbers that are money stay exact as strings; ids and enums by their text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record_of(item: Signal | PositionEvent) -> Record:
    kind = {
        Signal: "signal",
        PositionOpened: "position_opened",
        PositionClosed: "position_closed",
        PositionChanged: "position_changed",
        Correction: "correction",
    }[type(item)]
    data = {a.name: _plain(getattr(item, a.name)) for a in attrs.fields(type(item)) if a.name != "market"}
    return Record(kind, str(item.market), data)


class Journal:
    """Append-only SQLite file; `open_journal` is the way to get one."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self.written = 0
        self.dropped = 0
        send, self._receive = trio.open_memory_channel[Record](10_000)
        self._send = send

    def record(self, item: Signal | PositionEvent) -> None:
        try:
            self._send.send_nowait(record_of(item))
        except trio.WouldBlock:
            self.dropped += 1

    def write_batch(self, records: Iterable[Record]) -> int:
        rows = [(r.kind, r.market, json.dumps(r.data, sort_keys=True)) for r in records]
        with self._db:
            self._db.executemany("INSERT INTO records (kind, market, data) VALUES (?, ?, ?)", rows)
        return len(rows)

    def read(self, kind: str | None = None) -> list[Record]:
        query = "SELECT kind, market, data FROM records"
        args: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            args = (kind,)
        rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Record(k, m, json.loads(d)) for k, m, d in rows]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._receive:
            async for first in self._receive:
                batch = [first]
                while True:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    self.written += await trio.to_thread.run_sync(self.write_batch, batch)
                except sqlite3.Error as exc:
                    self.dropped += len(batch)
                    log.error("journal %s: write failed, %d records lost: %s", self.path, len(batch), exc)

    def close(self) -> None:
        self._send.close()
        self._db.close()


async def open_journal(path: str, nursery: trio.Nursery) -> Journal | None:
    """Start the journal task in `nursery`; "" means no journal."""
    if not path:
        return None
    journal = Journal(Path(path))
    await nursery.start(journal.run)
    log.info("journal: %s", journal.path)
    return journal
