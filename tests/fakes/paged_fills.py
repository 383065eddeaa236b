"""A userFillsByTime that answers like the exchange: at most 2000 fills from startTime on, oldest first."""

from __future__ import annotations

from decimal import Decimal

from hip3.core import Cloid, Side
from hip3.hyperliquid.events import Fill

PAGE = 2000


def account_fill(
    tid: int, time_ms: int, *, cloid: Cloid | None = None, coin: str = "abc:OTHER", pnl: str = "0"
) -> Fill:
    return Fill(
        coin=coin,
        px=Decimal(10),
        sz=Decimal(1),
        side=Side.SELL,
        time=time_ms,
        start_position=Decimal(1),
        dir="Close Long",
        closed_pnl=Decimal(pnl),
        hash="0x0",
        oid=tid,
        crossed=True,
        fee=Decimal("0.01"),
        tid=tid,
        cloid=cloid,
    )


class PagedFills:
    """The account's fill history; every query is recorded as (startTime, endTime)."""

    def __init__(self, fills: list[Fill] | None = None) -> None:
        self.fills: list[Fill] = sorted(fills or [], key=lambda f: f.time)
        self.queries: list[tuple[int, int | None]] = []
        self.fail_from_query: int | None = None  # 1-based: this query and later ones raise

    def add(self, fills: list[Fill]) -> None:
        self.fills = sorted([*self.fills, *fills], key=lambda f: f.time)

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        self.queries.append((start_ms, end_ms))
        if self.fail_from_query is not None and len(self.queries) >= self.fail_from_query:
            raise RuntimeError("info down")
        return [f for f in self.fills if f.time >= start_ms and (end_ms is None or f.time <= end_ms)][:PAGE]


def busy_account(count: int, start_ms: int, *, per_ms: int = 1, first_tid: int = 10_000) -> list[Fill]:
    """`count` fills of other markets, `per_ms` of them in each millisecond from `start_ms`."""
    return [account_fill(first_tid + i, start_ms + i // per_ms) for i in range(count)]
