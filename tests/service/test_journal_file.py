"""The journal file at startup: checked before the exchange is touched, moved aside when corrupt,
created readable by its owner only (and the hard-stop state file likewise)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from hip3.hyperliquid.info import InfoError
from hip3.service import app
from hip3.service.config import Config, config_from_mapping
from hip3.service.journal import open_journal
from hip3.trading.hardstop import HardStop, HardStopParams
from tests.service.test_journal import make_signal

GARBAGE = b"this is not a database, it is what a bad disk or a stray write leaves behind" * 100


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files are world-readable unless created otherwise
    yield
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config(tmp_path: Path, journal: Path) -> Config:
    return config_from_mapping(
        {
            "mode": "observation",
            "network": {
                "name": "testnet",
                "info_url": "http://127.0.0.1:9/info",
                "ws_url": "ws://127.0.0.1:9/ws",
            },
            "markets": {"dex": "xyz", "coins": ["TSLA"]},
            "hard_stop": {"state_file": str(tmp_path / "hard_stop.json")},
            "journal": {"path": str(journal)},
        }
    )


def is_sqlite(path: Path) -> bool:
    try:
        with sqlite3.connect(path) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.DatabaseError:
        return False


class ExchangeWatch:
    """Stands in for the info client: notes what the journal file looked like when it was first used."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.journal_was_usable: bool | None = None

    @asynccontextmanager
    async def open(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.journal_was_usable = self.journal.exists() and is_sqlite(self.journal)
        yield self

    async def discover(self, *args: Any) -> Any:
        raise InfoError("the test's exchange is not there")


async def test_a_corrupt_journal_is_moved_aside_before_the_exchange_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "journal.sqlite3"
    journal.write_bytes(GARBAGE)
    watch = ExchangeWatch(journal)
    monkeypatch.setattr(app, "open_info_client", watch.open)
    with caplog.at_level(logging.INFO):
        code = await app.run_bot(config(tmp_path, journal), handle_signals=False)
    assert watch.journal_was_usable is True, "the exchange was queried before the journal was checked"
    assert code == app.EXIT_FAILED  # from the discovery failure, not from the journal
    [aside] = tmp_path.glob("journal.sqlite3.corrupt-*")
    assert aside.read_bytes() == GARBAGE
    [line] = [r for r in caplog.records if "is corrupt" in r.getMessage()]
    assert line.levelno == logging.ERROR and str(aside) in line.getMessage()
    assert not any(r.exc_info for r in caplog.records)


async def test_a_corrupt_journal_that_cannot_be_moved_refuses_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "journal.sqlite3"
    journal.write_bytes(GARBAGE)
    watch = ExchangeWatch(journal)
    monkeypatch.setattr(app, "open_info_client", watch.open)

    def cannot_rename(self: Path, target: Any) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "rename", cannot_rename)
    code = await app.run_bot(config(tmp_path, journal), handle_signals=False)
    assert code == app.EXIT_REFUSED
    assert watch.journal_was_usable is None, "the exchange must not be touched"
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "is corrupt" in message and f"mv {journal}" in message and "Permission denied" in message
    assert not any(r.exc_info for r in caplog.records)
    assert journal.read_bytes() == GARBAGE  # left as it was


async def test_the_journal_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    async with trio.open_nursery() as nursery:
        journal = await open_journal(str(path), nursery)
        assert journal is not None
        journal.record(make_signal())
        with trio.fail_after(5):
            while journal.written < 1:
                await trio.sleep(0.01)
        for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if companion.exists():
                assert mode_of(companion) == 0o600, companion
        nursery.cancel_scope.cancel()
    journal.close()
    assert mode_of(path) == 0o600


def test_the_hard_stop_state_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "var" / "hard_stop.json"
    stop = HardStop(HardStopParams(state_file=state))
    assert stop.trigger("test")
    assert mode_of(state) == 0o600
