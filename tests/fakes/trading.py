"""Small in-memory fakes for the trading tasks: tracker handle, ws, info, signer, hard stop, READY.

The fake tracker is deliberately simple (one position per market, fills applied from post
results); it records every call so tests can assert what the executor, exits and resync did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import trio

from hip3.core import Cloid, MarketKey, MarketSpec, Price, Side, Size
from hip3.hyperliquid.events import (
    ActionOk,
    ActionResult,
    AssetCtx,
    Bbo,
    BookLevel,
    ClearinghouseState,
    Fill,
    Filled,
    OrderError,
    OrderStatusResult,
)
from hip3.market.cells import MarketState
from hip3.trading.messages import (
    Correction,
    DenyReason,
    PortfolioView,
    PositionView,
    ReserveDecision,
    ReserveDenied,
    ReserveGranted,
    ReserveRequest,
    Signal,
)
from hip3.trading.reports import (
    AccountSnapshot,
    FillReport,
    NotSent,
    OrderNotFound,
    OrderReport,
    PostFilled,
    PostOutcome,
    PostRefused,
    PostUnknown,
)

TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
SPECS = {TSLA: MarketSpec(TSLA, sz_decimals=3), GOLD: MarketSpec(GOLD, sz_decimals=4)}


def D(x: str | int) -> Decimal:
    return Decimal(x)


def bbo(market: MarketKey, bid: str | None, ask: str | None, sz: str = "100") -> Bbo:
    return Bbo(
        coin=market.name,
        time=0,
        bid=BookLevel(D(bid), D(sz), 1) if bid is not None else None,
        ask=BookLevel(D(ask), D(sz), 1) if ask is not None else None,
    )


def ctx(market: MarketKey, oracle: str, mark: str | None = None) -> AssetCtx:
    return AssetCtx(
        coin=market.name,
        oracle_px=D(oracle),
        mark_px=D(mark if mark is not None else oracle),
        mid_px=None,
        open_interest=D(0),
        funding=D(0),
    )


def signal(market: MarketKey, side: Side, best_px: str, size: str, oracle: str = "0") -> Signal:
    return Signal(
        market=market,
        side=side,
        raw_edge_bps=D(30),
        threshold_bps=D(15),
        oracle_px=D(oracle) if oracle != "0" else D(best_px),
        best_px=D(best_px),
        best_sz=D(100),
        suggested_size=D(size),
        created_at=0.0,
    )


def fill(market: MarketKey, side: Side, px: str, sz: str, tid: int, cloid: Cloid | None) -> Fill:
    return Fill(
        coin=market.name,
        px=D(px),
        sz=D(sz),
        side=side,
        time=0,
        start_position=D(0),
        dir="Open Long" if side is Side.BUY else "Open Short",
        closed_pnl=D(0),
        hash="0x0",
        oid=1,
        crossed=True,
        fee=D(0),
        tid=tid,
        cloid=cloid,
    )


class FakeCells:
    def __init__(self) -> None:
        self.states: dict[MarketKey, MarketState] = {}

    def set(self, market: MarketKey, book: Bbo | None = None, context: AssetCtx | None = None) -> None:
        old = self.states.get(market, MarketState(market))
        self.states[market] = attrs.evolve(
            old,
            bbo=book if book is not None else old.bbo,
            ctx=context if context is not None else old.ctx,
        )

    def get(self, market: MarketKey) -> MarketState:
        return self.states.get(market, MarketState(market))


@attrs.define
class FakeHardStop:
    latched: bool = False
    reason: str | None = None
    rejects: list[str] = attrs.field(factory=list)
    flatten_failures: list[tuple[MarketKey, str]] = attrs.field(factory=list)
    flatten_successes: list[MarketKey] = attrs.field(factory=list)

    def record_reject(self, message: str, now: float) -> None:
        self.rejects.append(message)

    def record_flatten_failure(self, market: MarketKey, reason: str) -> None:
        self.flatten_failures.append((market, reason))

    def record_flatten_success(self, market: MarketKey) -> None:
        self.flatten_successes.append(market)


@attrs.define
class FakeReady:
    is_ready: bool = True

    def why_not(self) -> str:
        return "" if self.is_ready else "user channels not acked"


BENIGN_PREFIXES = (
    "Order could not immediately match",
    "Order must have minimum value",
    "Reduce only order would increase position",
    "Order has zero size",
)


def is_benign_reject(message: str) -> bool:
    return message.startswith(BENIGN_PREFIXES)


@attrs.define
class SignedOrder:
    asset: int
    is_buy: bool
    price: Price
    size: Size
    reduce_only: bool
    cloid: Cloid


class FakeSigner:
    """Records each order and returns a distinct body; counts signatures (rule 6: one per order)."""

    def __init__(self) -> None:
        self.signed: list[SignedOrder] = []

    def sign_order(
        self, asset: int, is_buy: bool, price: Price, size: Size, reduce_only: bool, cloid: Cloid
    ) -> dict[str, Any]:
        self.signed.append(SignedOrder(asset, is_buy, price, size, reduce_only, cloid))
        nonce = len(self.signed)
        return {
            "action": {"type": "order", "orders": [{"a": asset, "c": str(cloid)}], "grouping": "na"},
            "nonce": nonce,
            "signature": {"r": "0x1", "s": "0x2", "v": 27},
        }


def cloid_of(body: dict[str, Any]) -> Cloid:
    return Cloid(body["action"]["orders"][0]["c"])


Responder = Callable[[dict[str, Any]], ActionResult]


def filled_all(fake_signer: FakeSigner) -> Responder:
    """A responder that fills every order completely at its limit price."""

    def respond(body: dict[str, Any]) -> ActionResult:
        order = next(o for o in fake_signer.signed if o.cloid == cloid_of(body))
        return ActionOk("order", (Filled(order.size, order.price, oid=7, cloid=order.cloid),))

    return respond


def order_error(message: str) -> Responder:
    return lambda body: ActionOk("order", (OrderError(message),))


class FakeWs:
    """post_action answers with `respond(body)`, raises `raise_exc`, or hangs while `hang` is set."""

    def __init__(self, respond: Responder | None = None, *, connected: bool = True) -> None:
        self.respond = respond
        self.is_connected = connected
        self.posts: list[dict[str, Any]] = []
        self.raise_exc: BaseException | None = None
        self.hang = False

    async def post_action(self, payload: dict[str, Any]) -> ActionResult:
        self.posts.append(payload)
        if self.raise_exc is not None:
            raise self.raise_exc
        if self.hang:
            await trio.sleep_forever()
        await trio.sleep(0.01)
        assert self.respond is not None
        return self.respond(payload)


class FakeInfo:
    """orderStatus answers from a list (last one repeats); clearinghouseState from a list of results."""

    def __init__(self) -> None:
        self.status_answers: list[OrderStatusResult | Exception] = [OrderStatusResult(known=False)]
        self.status_queries: list[tuple[str, int | str, float]] = []
        self.states: list[ClearinghouseState | Exception] = []
        self.state_queries: list[tuple[str, str, float]] = []
        self.fills: list[Fill] = []
        self.fill_queries: list[tuple[str, int]] = []
        self.exchange_posts: list[dict[str, Any]] = []
        self.exchange_respond: Responder | None = None

    async def order_status(self, user: str, oid_or_cloid: int | str) -> OrderStatusResult:
        self.status_queries.append((user, oid_or_cloid, trio.current_time()))
        answer = self.status_answers.pop(0) if len(self.status_answers) > 1 else self.status_answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]:
        self.fill_queries.append((user, start_ms))
        return list(self.fills)

    async def post_exchange(self, body: dict[str, Any]) -> ActionResult:
        self.exchange_posts.append(body)
        assert self.exchange_respond is not None
        return self.exchange_respond(body)

    async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
        self.state_queries.append((user, dex, trio.current_time()))
        answer = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def empty_state() -> ClearinghouseState:
    return ClearinghouseState(
        positions=(), account_value=D(1000), total_margin_used=D(0), withdrawable=D(1000)
    )


class FakeTracker:
    """A minimal tracker handle: reserve rules by market, fills from post results, recorded calls."""

    def __init__(
        self,
        *,
        max_notional_per_market: Decimal = Decimal(1_000_000),
        corrections: Iterable[Correction] = (),
    ) -> None:
        self.cap = max_notional_per_market
        self.positions: dict[MarketKey, PositionView] = {}
        self.reservations: dict[Cloid, ReserveRequest] = {}
        self.seq = 0
        self.changed = trio.Event()
        self.reserves: list[ReserveRequest] = []
        self.results: list[tuple[Cloid, object]] = []
        self.resolved: list[tuple[Cloid, OrderReport | OrderNotFound]] = []
        self.abandoned: list[tuple[Cloid, str]] = []
        self.fed_fills: list[tuple[FillReport, ...]] = []
        self.fences: list[int] = []
        self.snapshots: list[tuple[int, AccountSnapshot]] = []
        self.snapshot_dexes: list[str | None] = []
        self.corrections = list(corrections)
        self.stale: list[Cloid] = []
        # After a flatten fills, leave this much of the position (to simulate partial fills).
        self.flatten_leaves = D(0)

    # -- state helpers ------------------------------------------------------------------------

    def _bump(self) -> None:
        self.seq += 1
        self.changed.set()
        self.changed = trio.Event()

    def open(self, market: MarketKey, size: str, entry_px: str, opened_at: float | None = None) -> None:
        at = trio.current_time() if opened_at is None else opened_at
        self.positions[market] = PositionView(market, D(size), D(entry_px), at)
        self._bump()

    def close(self, market: MarketKey) -> None:
        self.positions.pop(market, None)
        self._bump()

    def _release(self, cloid: Cloid) -> None:
        if self.reservations.pop(cloid, None) is not None:
            self._bump()

    def _apply_fill(self, req: ReserveRequest, size: Decimal, px: Decimal) -> None:
        pos = self.positions.get(req.market)
        signed = size * req.side.sign
        if pos is None:
            self.positions[req.market] = PositionView(req.market, signed, px, trio.current_time())
        else:
            new = pos.size + signed
            if req.reduce_only and new != 0 and self.flatten_leaves:
                new = self.flatten_leaves * (1 if pos.size > 0 else -1)
            if new == 0:
                del self.positions[req.market]
            else:
                self.positions[req.market] = attrs.evolve(pos, size=new)

    # -- handle API -----------------------------------------------------------------------------

    def view(self) -> PortfolioView:
        pending = frozenset(r.market for r in self.reservations.values())
        flattening = frozenset(r.market for r in self.reservations.values() if r.reduce_only)
        return PortfolioView(
            seq=self.seq,
            positions=MappingProxyType(dict(self.positions)),
            pending_markets=pending,
            flattening_markets=flattening,
        )

    async def wait_view_change(self, seq: int) -> PortfolioView:
        while self.seq <= seq:
            await self.changed.wait()
        return self.view()

    def pending_notional(self, market: MarketKey) -> Decimal:
        return sum((r.notional for r in self.reservations.values() if r.market == market), D(0))

    async def reserve(self, req: ReserveRequest) -> ReserveDecision:
        await trio.lowlevel.checkpoint()
        self.reserves.append(req)
        mine = [r for r in self.reservations.values() if r.market == req.market]
        pos = self.positions.get(req.market)
        if req.reduce_only:
            if pos is None:
                return ReserveDenied(req.cloid, DenyReason.NO_POSITION)
            if any(r.reduce_only for r in mine):
                return ReserveDenied(req.cloid, DenyReason.FLATTEN_IN_PROGRESS)
            size = Size(min(req.size, abs(pos.size)))
        else:
            if any(r.reduce_only for r in mine):
                return ReserveDenied(req.cloid, DenyReason.FLATTEN_IN_PROGRESS)
            if pos is not None:
                return ReserveDenied(req.cloid, DenyReason.HAS_POSITION)
            if mine:
                return ReserveDenied(req.cloid, DenyReason.PENDING_ORDER)
            if req.notional > self.cap:
                return ReserveDenied(req.cloid, DenyReason.MARKET_NOTIONAL_CAP)
            size = req.size
        self.reservations[req.cloid] = attrs.evolve(req, size=size)
        self._bump()
        return ReserveGranted(req.cloid, size)

    async def post_result(self, cloid: Cloid, result: PostOutcome) -> None:
        await trio.lowlevel.checkpoint()
        self.results.append((cloid, result))
        req = self.reservations.get(cloid)
        if req is None:
            return
        match result:
            case PostFilled(total_sz=total, avg_px=avg):
                self._apply_fill(req, total, avg)
                self._release(cloid)
            case PostRefused() | NotSent():
                self._release(cloid)
            case PostUnknown():  # like the real tracker: outcome not known yet
                pass
            case _:
                pass

    async def order_resolved(self, report: OrderReport | OrderNotFound) -> None:
        await trio.lowlevel.checkpoint()
        cloid = report.cloid
        self.resolved.append((cloid, report))
        req = self.reservations.get(cloid)
        if req is None:
            return
        if isinstance(report, OrderReport) and report.status == "filled":
            self._apply_fill(req, req.size, req.limit_px)
        if isinstance(report, OrderNotFound) or not report.is_live:
            self._release(cloid)

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None:
        await trio.lowlevel.checkpoint()
        self.fed_fills.append(fills)

    async def stale_reservations(self, older_than: float) -> list[Cloid]:
        await trio.lowlevel.checkpoint()
        given_up = {c for c, _ in self.abandoned}
        return [c for c in self.stale if c in self.reservations and c not in given_up]

    async def abandon(self, cloid: Cloid, reason: str) -> None:
        # Like the real tracker: the reservation stays counted until a later resync settles it.
        await trio.lowlevel.checkpoint()
        self.abandoned.append((cloid, reason))

    async def begin_fetch(self) -> int:
        await trio.lowlevel.checkpoint()
        self.fences.append(self.seq)
        return self.seq

    async def apply_snapshot(
        self, fence: int, state: AccountSnapshot, *, dex: str | None = None
    ) -> list[Correction]:
        await trio.lowlevel.checkpoint()
        self.snapshots.append((fence, state))
        self.snapshot_dexes.append(dex)
        out, self.corrections = self.corrections, []
        return out
