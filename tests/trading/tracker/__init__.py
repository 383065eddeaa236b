"""Shared builders for the tracker tests: markets, requests, fills and updates with plain values."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.trading.messages import ReserveRequest
from hip3.trading.reports import AccountSnapshot, FillReport, OrderReport, PositionReport, TradeId
from hip3.trading.tracker import Tracker

TSLA = MarketKey("xyz", "TSLA", 110000)
NVDA = MarketKey("xyz", "NVDA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
MARKETS = {m.name: m for m in (TSLA, NVDA, GOLD)}

_tids = itertools.count(1_000_000)


def D(x: object) -> Decimal:
    return Decimal(str(x))


def make_tracker(
    *,
    per_market: object = 50,
    total: object = 1000,
    concurrent: int = 3,
    memory: float = 6 * 3600.0,
) -> Tracker:
    return Tracker(
        MARKETS,
        max_notional_per_market=D(per_market),
        max_total_notional=D(total),
        max_concurrent_positions=concurrent,
        fill_memory_secs=memory,
    )


def req(
    market: MarketKey = TSLA,
    side: Side = Side.BUY,
    size: object = 1,
    px: object = 10,
    *,
    reduce_only: bool = False,
    cloid: Cloid | None = None,
) -> ReserveRequest:
    return ReserveRequest(
        cloid=cloid or Cloid.random(),
        market=market,
        side=side,
        size=Size(D(size)),
        limit_px=Price(D(px)),
        reduce_only=reduce_only,
        reason="flatten" if reduce_only else "entry",
    )


def fill(
    market: MarketKey,
    side: Side,
    sz: object,
    px: object,
    *,
    cloid: Cloid | None = None,
    tid: int | None = None,
    fee: object = 0,
    coin: str | None = None,
    time_ms: int = 1_700_000_000_000,
) -> FillReport:
    return FillReport(
        trade_id=TradeId(coin or market.name, next(_tids) if tid is None else tid),
        cloid=cloid,
        side=side,
        px=D(px),
        sz=D(sz),
        fee=D(fee),
        time_ms=time_ms,
        oid=42,
    )


def fills_msg(*fills: FillReport) -> tuple[FillReport, ...]:
    return fills


def update(
    cloid: Cloid,
    status: str,
    orig_sz: object,
    sz: object,
    market: MarketKey = TSLA,
    side: Side = Side.BUY,
) -> tuple[OrderReport, ...]:
    return (OrderReport(cloid=cloid, status=status, orig_sz=D(orig_sz), remaining_sz=D(sz), oid=42),)


def chs(*positions: tuple[MarketKey | str, object, object], time_ms: int | None = None) -> AccountSnapshot:
    """An account snapshot with (market or coin, signed size, entry px) positions."""
    return AccountSnapshot(
        positions=tuple(
            PositionReport(coin=m.name if isinstance(m, MarketKey) else m, size=D(szi), entry_px=D(px))
            for m, szi, px in positions
        ),
        time_ms=time_ms,
    )
