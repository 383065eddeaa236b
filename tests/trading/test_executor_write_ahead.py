"""The executor's write-ahead hook: each order is journaled before it can leave, or not sent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hip3.core import Cloid, MarketKey, Side
from hip3.service.journal import prepare_journal
from hip3.trading.reports import NotSent
from tests.fakes.trading import GOLD, TSLA, bbo, cloid_of, signal
from tests.trading.test_executor import running

D = Decimal


async def test_each_order_is_journaled_before_it_is_posted(autojump_clock: Any, tmp_path: Path) -> None:
    journal = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert journal is not None
    async with running() as h:
        posts_when_journaled: list[int] = []

        def write_ahead(cloid: Cloid, market: MarketKey, *rest: Any) -> None:
            posts_when_journaled.append(len(h.ws.posts))
            journal.order_sending(cloid, market, *rest)

        h.executor.write_ahead = write_ahead
        await h.signal(signal(TSLA, Side.BUY, "250.37", "0.12345"))
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        await h.flatten(TSLA, "time_stop")
        assert posts_when_journaled == [0, 1]  # each row was committed before its post
        rows = (
            journal.connection()
            .execute("SELECT cloid, side, size, reduce_only, reason FROM orders")
            .fetchall()
        )
        assert rows == [
            (str(cloid_of(h.ws.posts[0])), "buy", "0.123", 0, "entry"),
            (str(cloid_of(h.ws.posts[1])), "sell", "0.123", 1, "time_stop"),
        ]
    journal.close()


async def test_an_entry_the_journal_cannot_record_is_not_sent_but_a_flatten_is(autojump_clock: Any) -> None:
    async with running() as h:

        def full_disk(*args: Any) -> None:
            raise OSError(28, "No space left on device")

        h.executor.write_ahead = full_disk
        await h.signal(signal(GOLD, Side.BUY, "2000", "0.01"))
        assert h.ws.posts == [] and h.tracker.reservations == {}
        assert isinstance(h.tracker.results[0][1], NotSent)
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        await h.flatten(TSLA, "time_stop")
        assert len(h.ws.posts) == 1 and TSLA not in h.tracker.positions
