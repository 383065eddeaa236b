"""The journal's SQLite schema: a version number (`PRAGMA user_version`) and the migrations to it.

Version 1 is the first layout (one generic `records` table), written without a version number:
a file with `records` and `user_version` 0 is a version 1 file. Each migration runs in one
transaction together with the new version number, so a file is either migrated or untouched.
A file newer than this code is refused: an older hip3 must not write a layout it does not know.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2


class SchemaTooNew(Exception):
    """The file was written by a newer hip3."""


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE IF NOT EXISTS records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_wall TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            kind TEXT NOT NULL,
            market TEXT NOT NULL,
            data TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS records_kind_market ON records (kind, market)")


def _v2(db: sqlite3.Connection) -> None:
    # Records get a wall time in milliseconds (taken when recorded, not when written); older rows
    # get theirs from the text timestamp.
    db.execute("ALTER TABLE records ADD COLUMN at_ms INTEGER")
    db.execute(
        "UPDATE records SET at_ms = CAST(ROUND((julianday(at_wall) - 2440587.5) * 86400000) AS INTEGER)"
    )
    # Write-ahead: one row per order, committed before the order is sent. Deliberately without a
    # secondary index, so the commit on the order path touches as few pages as possible.
    db.execute(
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            cloid TEXT NOT NULL,
            market TEXT NOT NULL,
            side TEXT NOT NULL,
            size TEXT NOT NULL,
            limit_px TEXT NOT NULL,
            reduce_only INTEGER NOT NULL,
            reason TEXT NOT NULL,
            sent_ms INTEGER NOT NULL
        )"""
    )
    # What became of an order: exchange statuses from orderUpdates, and what a restart found out.
    db.execute(
        """CREATE TABLE order_events (
            id INTEGER PRIMARY KEY,
            cloid TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            final INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX order_events_cloid ON order_events (cloid)")
    # The account's fills as the exchange reported them; a trade id is unique per coin.
    db.execute(
        """CREATE TABLE fills (
            coin TEXT NOT NULL,
            tid INTEGER NOT NULL,
            time_ms INTEGER NOT NULL,
            cloid TEXT,
            oid INTEGER NOT NULL,
            side TEXT NOT NULL,
            px TEXT NOT NULL,
            sz TEXT NOT NULL,
            fee TEXT NOT NULL,
            closed_pnl TEXT NOT NULL,
            start_position TEXT NOT NULL,
            dir TEXT NOT NULL,
            crossed INTEGER NOT NULL,
            PRIMARY KEY (coin, tid)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX fills_time ON fills (time_ms)")
    db.execute("CREATE INDEX fills_cloid ON fills (cloid)")


#: MIGRATIONS[n] brings a version-n file to version n + 1 (0 is an empty file).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2)
assert len(MIGRATIONS) == SCHEMA_VERSION


def file_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone():
        return 1  # the first layout carried no version number
    return int(version)


def migrate(db: sqlite3.Connection) -> tuple[int, int]:
    """Bring `db` (autocommit mode) to SCHEMA_VERSION; returns (version found, version now)."""
    found = file_version(db)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"journal schema version {found} is newer than this hip3's ({SCHEMA_VERSION}); "
            "run the newer hip3, or point [journal] path at another file"
        )
    for version in range(found, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return found, SCHEMA_VERSION
