"""Executor: rounding and drops before reserve (a size that floors to zero), gates it owns, posting, outcomes, rule 6."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from eth_account import Account
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
)
from hyperliquid.utils.signing import sign_l1_action as sdk_sign_l1_action
from hyperliquid.utils.types import Cloid as SdkCloid
from hypothesis import given
from hypothesis import strategies as st

from hip3.core import Cloid, MarketKey, MarketSpec, Price, Side, Size
from hip3.hyperliquid.events import (
    ActionErr,
    ActionOk,
    ActionResult,
    AssetPosition,
    ClearinghouseState,
    Filled,
    OrderError,
    OrderStatusResult,
    PostError,
)
from hip3.hyperliquid.signing import NonceManager, address_of, recover_l1_signer
from hip3.hyperliquid.ws import ConnectionLost, NotConnected, PostTimeout
from hip3.trading.edge import order_status_report
from hip3.trading.executor import (
    DropReason,
    Executor,
    ExecutorParams,
    L1OrderSigner,
    RateLimiter,
    entry_terms,
    flatten_terms,
    run_executor,
)
from hip3.trading.hardstop import HardStop, HardStopParams
from hip3.trading.hardstop import is_benign_reject as risk_is_benign_reject
from hip3.trading.messages import (
    FlattenRequest,
    ReserveDecision,
    ReserveGranted,
    ReserveRequest,
    Signal,
)
from hip3.trading.reports import NotSent, OrderNotFound, PostFilled, PostUnknown
from hip3.trading.resync import run_resync
from hip3.trading.tracker import Tracker, run_tracker
from tests.fakes.trading import (
    GOLD,
    SPECS,
    TSLA,
    D,
    FakeCells,
    FakeHardStop,
    FakeInfo,
    FakeReady,
    FakeSigner,
    FakeTracker,
    FakeWs,
    bbo,
    cloid_of,
    ctx,
    fill,
    filled_all,
    is_benign_reject,
    order_error,
    signal,
)

USER = "0x" + "ab" * 20


@attrs.define
class Harness:
    executor: Executor
    tracker: FakeTracker
    ws: FakeWs
    info: FakeInfo
    signer: FakeSigner
    hard_stop: FakeHardStop
    ready: FakeReady
    cells: FakeCells
    signals: trio.MemorySendChannel[Signal]
    flattens: trio.MemorySendChannel[FlattenRequest]

    async def signal(self, sig: Signal) -> None:
        await self.signals.send(sig)
        await trio.sleep(0.5)  # let it be reserved, posted and answered

    async def flatten(self, market: MarketKey, reason: str = "time_stop") -> None:
        await self.flattens.send(FlattenRequest(market, reason))
        await trio.sleep(0.5)


@asynccontextmanager
async def running(params: ExecutorParams | None = None, **kw: Any) -> AsyncIterator[Harness]:
    signer = FakeSigner()
    tracker = kw.get("tracker") or FakeTracker()
    ws = FakeWs(filled_all(signer))
    info = FakeInfo()
    info.exchange_respond = filled_all(signer)
    hard_stop, ready, cells = FakeHardStop(), FakeReady(), FakeCells()
    executor = Executor(
        tracker=tracker,
        cells=cells,
        specs=SPECS,
        signer=signer,
        user=USER,
        ws=ws,
        info=info,
        hard_stop=hard_stop,
        ready=ready,
        is_benign_reject=is_benign_reject,
        params=params or ExecutorParams(),
        now_ms=lambda: 1_700_000_000_000,
    )
    sig_send, sig_recv = trio.open_memory_channel[Signal](10)
    fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        yield Harness(executor, tracker, ws, info, signer, hard_stop, ready, cells, sig_send, fl_send)
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# Pure order terms


def test_entry_terms_hand_computed() -> None:
    spec = SPECS[TSLA]  # szDecimals 3: 5 significant figures, at most 3 decimals
    buy = entry_terms(spec, Side.BUY, D("250.37"), D("0.12345"), D(10))
    # 250.37 × 1.001 = 250.62037 -> down onto the grid (2 decimals at this magnitude) = 250.62
    assert buy == entry_terms(spec, Side.BUY, D("250.37"), D("0.1239"), D(10))
    assert not isinstance(buy, DropReason)
    assert (buy.size, buy.limit_px) == (D("0.123"), D("250.62"))
    sell = entry_terms(spec, Side.SELL, D("250.37"), D("0.12345"), D(10))
    # 250.37 × 0.999 = 250.11963 -> up = 250.12
    assert not isinstance(sell, DropReason)
    assert (sell.size, sell.limit_px) == (D("0.123"), D("250.12"))


def test_size_that_rounds_to_zero_is_dropped() -> None:
    # PLATINUM lot 0.0001, suggested 0.00005.
    assert (
        entry_terms(SPECS[GOLD], Side.BUY, D("2000"), D("0.00005"), D(10)) is DropReason.SIZE_ROUNDS_TO_ZERO
    )


def test_opening_notional_under_ten_dollars_is_dropped() -> None:
    assert entry_terms(SPECS[TSLA], Side.BUY, D("100"), D("0.099"), D(10)) is DropReason.UNDER_MIN_NOTIONAL
    # 0.1 × 100 = $10 exactly passes (the exchange minimum is inclusive).
    assert not isinstance(entry_terms(SPECS[TSLA], Side.BUY, D("100"), D("0.1"), D(10)), DropReason)
    # A sell's limit is below the bid: 0.1 × 99.9 < $10 at the limit -> dropped.
    assert entry_terms(SPECS[TSLA], Side.SELL, D("100"), D("0.1"), D(10)) is DropReason.UNDER_MIN_NOTIONAL


@given(
    sz_decimals=st.integers(0, 5),
    mantissa=st.integers(10_000, 99_999),
    exponent=st.integers(-6, 3),
    slip=st.integers(0, 200),
)
def test_entry_price_never_exceeds_the_slippage_bound(
    sz_decimals: int, mantissa: int, exponent: int, slip: int
) -> None:
    spec = MarketSpec(TSLA, sz_decimals=sz_decimals)
    best = spec.round_price(Decimal(mantissa).scaleb(exponent), up=False)
    size = D(10_000_000)
    for side in Side:
        terms = entry_terms(spec, side, best, size, D(slip))
        if isinstance(terms, DropReason):
            continue
        bound = best * (1 + D(slip) / 10_000) if side is Side.BUY else best * (1 - D(slip) / 10_000)
        assert spec.is_valid_price(terms.limit_px)
        if side is Side.BUY:
            assert best <= terms.limit_px <= bound
        else:
            assert bound <= terms.limit_px <= best


def test_flatten_terms_stay_marketable() -> None:
    spec = SPECS[TSLA]
    long = flatten_terms(spec, D("1.5"), bbo(TSLA, "250.00", "250.10"), None, D(50))
    # Sell into the bid: 250 × 0.995 = 248.75 (on the grid already)
    assert not isinstance(long, DropReason)
    assert (long.side, long.size, long.limit_px) == (Side.SELL, D("1.5"), D("248.75"))
    short = flatten_terms(spec, D("-2"), bbo(TSLA, "249.90", "250.01"), None, D(50))
    # Buy from the ask: 250.01 × 1.005 = 251.26005 -> UP onto the grid = 251.27 (so the flatten stays marketable)
    assert not isinstance(short, DropReason)
    assert (short.side, short.size, short.limit_px) == (Side.BUY, D("2"), D("251.27"))
    # Sell: 123.456 × 0.995 = 122.83872 -> DOWN = 122.83
    odd = flatten_terms(spec, D("1"), bbo(TSLA, "123.456", None), None, D(50))
    assert not isinstance(odd, DropReason) and odd.limit_px == D("122.83")


def test_flatten_terms_fall_back_to_mark_then_oracle() -> None:
    spec = SPECS[TSLA]
    no_bid = flatten_terms(spec, D("1"), bbo(TSLA, None, "251"), ctx(TSLA, "250", mark="249"), D(0))
    assert not isinstance(no_bid, DropReason) and no_bid.limit_px == D("249")
    assert flatten_terms(spec, D("1"), None, None, D(50)) is DropReason.FLATTEN_NO_PRICE


def test_rate_limiter_uses_a_rolling_second() -> None:
    limiter = RateLimiter(2)
    assert limiter.allows(0.0)
    limiter.record(0.0)
    limiter.record(0.5)
    assert not limiter.allows(0.9)
    assert limiter.allows(1.0)


# ---------------------------------------------------------------------------------------------
# The task


async def test_entry_is_reserved_signed_once_posted_and_reported(autojump_clock: Any) -> None:
    async with running() as h:
        await h.signal(signal(TSLA, Side.BUY, "250.37", "0.12345"))
        assert len(h.tracker.reserves) == 1
        req = h.tracker.reserves[0]
        assert (req.side, req.size, req.limit_px, req.reduce_only) == (
            Side.BUY,
            D("0.123"),
            D("250.62"),
            False,
        )
        assert len(h.signer.signed) == 1 and len(h.ws.posts) == 1
        assert cloid_of(h.ws.posts[0]) == req.cloid
        ((cloid, result),) = h.tracker.results
        assert cloid == req.cloid and isinstance(result, PostFilled)
        assert h.tracker.positions[TSLA].size == D("0.123")
        assert h.executor.stats.filled == 1 and h.executor.stats.posted == 1


async def test_zero_size_and_small_notional_never_reach_reserve_or_post(autojump_clock: Any) -> None:
    async with running() as h:
        await h.signal(signal(GOLD, Side.BUY, "2000", "0.00005"))
        await h.signal(signal(TSLA, Side.BUY, "100", "0.099"))
        assert h.tracker.reserves == [] and h.ws.posts == [] and h.signer.signed == []
        assert h.executor.stats.dropped == {"size_rounds_to_zero": 1, "under_min_notional": 1}


async def test_hard_stop_blocks_entries_but_not_flattens(autojump_clock: Any) -> None:
    async with running() as h:
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        h.hard_stop.latched = True
        await h.signal(signal(GOLD, Side.BUY, "2000", "0.01"))
        assert h.tracker.reserves == [] and h.executor.stats.dropped["hard_stop"] == 1
        await h.flatten(TSLA, "hard_stop")
        assert len(h.ws.posts) == 1 and h.tracker.reserves[0].reduce_only
        assert TSLA not in h.tracker.positions
        assert h.hard_stop.flatten_successes == [TSLA]


async def test_not_ready_blocks_entries_but_flattens_go_while_connected(autojump_clock: Any) -> None:
    async with running(ExecutorParams(http_fallback=False)) as h:
        h.ready.is_ready = False
        h.tracker.open(TSLA, "-1", "250")
        h.cells.set(TSLA, bbo(TSLA, "249.9", "250"))
        await h.signal(signal(GOLD, Side.BUY, "2000", "0.01"))
        assert h.tracker.reserves == [] and h.executor.stats.dropped["not_ready"] == 1
        await h.flatten(TSLA)
        assert len(h.ws.posts) == 1
        req = h.tracker.reserves[0]
        assert (req.side, req.size, req.limit_px, req.reduce_only) == (Side.BUY, D("1"), D("251.25"), True)
        # Disconnected and no HTTP fallback: nothing can leave, so nothing is reserved.
        h.tracker.open(TSLA, "-1", "250")
        h.ws.is_connected = False
        await h.flatten(TSLA)
        assert len(h.tracker.reserves) == 1 and len(h.ws.posts) == 1
        assert h.executor.stats.dropped["flatten_disconnected"] == 1
        assert h.hard_stop.flatten_failures == [(TSLA, "not connected")]


async def test_stopped_entries_are_dropped(autojump_clock: Any) -> None:
    async with running() as h:
        h.executor.stop_entries()
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.tracker.reserves == [] and h.executor.stats.dropped["shutting_down"] == 1


async def test_denied_reserve_is_counted_and_not_posted(autojump_clock: Any) -> None:
    async with running(tracker=FakeTracker(max_notional_per_market=D(50))) as h:
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert len(h.tracker.reserves) == 1 and h.ws.posts == [] and h.signer.signed == []
        assert h.executor.stats.denied == {"market_notional_cap": 1}


async def test_post_timeout_is_resolved_by_order_status_never_resent(autojump_clock: Any) -> None:
    params = ExecutorParams(post_timeout_secs=5, resolve_timeout_secs=60)
    async with running(params) as h:
        h.ws.hang = True
        h.info.status_answers = [
            OrderStatusResult(known=True, status="open"),
            OrderStatusResult(known=True, status="filled", sz=D(0), orig_sz=D("0.123")),
        ]
        start = trio.current_time()
        await h.signals.send(signal(TSLA, Side.BUY, "250.37", "0.123"))
        await trio.sleep(4.9)
        assert h.tracker.results == []  # still waiting for the answer
        await trio.sleep(0.2)
        ((cloid, result),) = h.tracker.results
        assert isinstance(result, PostUnknown)
        assert cloid in h.tracker.reservations  # stays counted until resolved (rule 6)
        await trio.sleep(10)
        assert [c for c, _ in h.tracker.resolved] == [cloid]
        assert h.tracker.resolved[0][1].status == "filled"
        assert cloid not in h.tracker.reservations
        # One signature, one post, whatever happened.
        assert len(h.signer.signed) == 1 and len(h.ws.posts) == 1 and h.info.exchange_posts == []
        assert [q[1] for q in h.info.status_queries] == [str(cloid), str(cloid)]
        assert h.info.status_queries[0][2] == pytest.approx(start + 5)
        assert h.executor.stats.unknown == 1 and h.executor.stats.resolved == 1


@pytest.mark.parametrize("exc", [PostTimeout("no reply"), ConnectionLost("dropped")])
async def test_ws_post_failures_are_unknown(autojump_clock: Any, exc: Exception) -> None:
    async with running() as h:
        h.ws.raise_exc = exc
        h.info.status_answers = [OrderStatusResult(known=False)]
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        ((cloid, result),) = h.tracker.results
        assert isinstance(result, PostUnknown)
        # "unknownOid" right after the loss may mean "not in a block yet": not an answer yet
        assert h.tracker.resolved == [] and cloid in h.tracker.reservations
        await trio.sleep(ExecutorParams().unknown_oid_grace_secs + 10)
        assert h.tracker.resolved == [(cloid, OrderNotFound(cloid))]
        assert cloid not in h.tracker.reservations
        assert len(h.ws.posts) == 1 and h.info.exchange_posts == []


async def test_unresolved_order_feeds_fills_then_abandons(autojump_clock: Any) -> None:
    params = ExecutorParams(post_timeout_secs=5, resolve_timeout_secs=60)
    async with running(params) as h:
        h.ws.raise_exc = PostTimeout("no reply")
        h.info.status_answers = [RuntimeError("info down")]
        await h.signals.send(signal(TSLA, Side.BUY, "250", "1"))
        await trio.sleep(1)
        cloid = h.tracker.reserves[0].cloid
        other = h.tracker.reserves[0].cloid.random()
        h.info.fills = [
            fill(TSLA, Side.BUY, "250", "1", 11, cloid),
            fill(TSLA, Side.BUY, "250", "1", 12, other),
        ]
        await trio.sleep(58)
        assert h.tracker.abandoned == []
        await trio.sleep(5)
        assert [c for c, _ in h.tracker.abandoned] == [cloid]
        (fed,) = h.tracker.fed_fills
        assert [f.trade_id.tid for f in fed] == [11]
        assert h.info.fill_queries == [(USER, 1_700_000_000_000 - 60_000)]
        assert len(h.ws.posts) == 1 and len(h.signer.signed) == 1
        assert h.executor.stats.abandoned == 1


async def test_order_status_polls_back_off(autojump_clock: Any) -> None:
    params = ExecutorParams(resolve_timeout_secs=60, resolve_poll_initial_secs=0.5, resolve_poll_max_secs=8)
    async with running(params) as h:
        h.ws.raise_exc = ConnectionLost("dropped")
        h.info.status_answers = [OrderStatusResult(known=True, status="open")]
        await h.signals.send(signal(TSLA, Side.BUY, "250", "1"))
        await trio.sleep(70)
        times = [t for _, _, t in h.info.status_queries]
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        assert gaps[:5] == [0.5, 1.0, 2.0, 4.0, 8.0] and max(gaps) == 8.0
        assert len(h.tracker.abandoned) == 1


async def test_action_err_and_order_error_release_and_classify(autojump_clock: Any) -> None:
    async with running() as h:
        h.ws.respond = lambda body: ActionErr("Invalid nonce: duplicate nonce 1")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        h.ws.respond = order_error("Order could not immediately match against any resting orders. asset=1")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        h.ws.respond = order_error("Order must have minimum value of $10. asset=110001")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        h.ws.respond = order_error("Insufficient margin to place order. asset=110001")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.tracker.reservations == {}
        h.ws.respond = lambda body: PostError("Error parsing JSON into valid websocket request")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        # An error reply to a post is not a refusal (it mirrors an HTTP error status): resolved by
        # orderStatus, then released.
        assert len(h.tracker.reservations) == 1
        await trio.sleep(ExecutorParams().unknown_oid_grace_secs + 10)
        assert h.tracker.reservations == {}
        kinds = [type(r).__name__ for _, r in h.tracker.results]
        assert kinds == ["PostRefused", "PostRefused", "PostRefused", "PostRefused", "PostUnknown"]
        # Benign rejects (IOC no match, minimum value) never reach the hard stop.
        assert h.hard_stop.rejects == [
            "Invalid nonce: duplicate nonce 1",
            "Insufficient margin to place order. asset=110001",
            "Error parsing JSON into valid websocket request",
        ]
        assert h.executor.stats.rejected == 5 and h.executor.stats.rejected_benign == 2


async def test_http_fallback_when_ws_is_down(autojump_clock: Any) -> None:
    async with running() as h:
        h.ws.is_connected = False
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.ws.posts == [] and len(h.info.exchange_posts) == 1
        assert h.executor.stats.posted_http == 1 and TSLA in h.tracker.positions


async def test_ws_not_connected_at_send_falls_back_to_http(autojump_clock: Any) -> None:
    async with running() as h:
        h.ws.raise_exc = NotConnected("not connected")
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert len(h.ws.posts) == 1 and len(h.info.exchange_posts) == 1
        assert isinstance(h.tracker.results[0][1], PostFilled)


async def test_no_connection_and_no_fallback_releases(autojump_clock: Any) -> None:
    async with running(ExecutorParams(http_fallback=False)) as h:
        h.ws.is_connected = False
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.ws.posts == [] and h.info.exchange_posts == []
        ((_, result),) = h.tracker.results
        assert isinstance(result, NotSent) and h.tracker.reservations == {}
        assert h.executor.stats.not_sent == 1 and h.hard_stop.rejects == []


async def test_rate_limit_on_new_orders(autojump_clock: Any) -> None:
    async with running(ExecutorParams(max_orders_per_second=1)) as h:
        await h.signals.send(signal(TSLA, Side.BUY, "250", "1"))
        await h.signals.send(signal(GOLD, Side.BUY, "2000", "0.01"))
        await trio.sleep(0.5)
        assert len(h.ws.posts) == 1 and h.executor.stats.dropped["rate_limited"] == 1
        await trio.sleep(0.6)
        await h.signal(signal(GOLD, Side.BUY, "2000", "0.01"))
        assert len(h.ws.posts) == 2


async def test_two_flattens_for_one_market_send_one_order(autojump_clock: Any) -> None:
    # The second request is denied by the tracker while the first is in flight.
    async with running() as h:
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        h.ws.hang = True
        await h.flattens.send(FlattenRequest(TSLA, "time_stop"))
        await h.flattens.send(FlattenRequest(TSLA, "mark_regression"))
        await trio.sleep(1)
        assert len(h.ws.posts) == 1 and len(h.signer.signed) == 1
        assert h.executor.stats.denied == {"flatten_in_progress": 1}


async def test_flatten_failure_and_success_reach_the_hard_stop(autojump_clock: Any) -> None:
    async with running() as h:
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        h.ws.respond = order_error("Order could not immediately match against any resting orders. asset=1")
        await h.flatten(TSLA)
        assert h.hard_stop.flatten_failures == [
            (TSLA, "Order could not immediately match against any resting orders. asset=1")
        ]
        assert h.hard_stop.rejects == [] and TSLA in h.tracker.positions
        h.ws.respond = lambda body: ActionOk("order", (Filled(D(1), D("249"), oid=3, cloid=cloid_of(body)),))
        await h.flatten(TSLA)
        assert h.hard_stop.flatten_successes == [TSLA] and TSLA not in h.tracker.positions


async def test_a_reduce_only_grant_cut_is_what_gets_signed(autojump_clock: Any) -> None:
    class CuttingTracker(FakeTracker):
        async def reserve(self, req: ReserveRequest) -> ReserveDecision:
            decision = await super().reserve(req)
            if isinstance(decision, ReserveGranted) and req.reduce_only:
                # The position shrank since the view was read: the tracker cuts the flatten.
                cut = Size(D("0.4"))
                self.reservations[req.cloid] = attrs.evolve(self.reservations[req.cloid], size=cut)
                return ReserveGranted(req.cloid, cut)
            return decision

    async with running(tracker=CuttingTracker()) as h:
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        await h.flatten(TSLA)
        assert h.tracker.reserves[0].size == D("1")
        assert [s.size for s in h.signer.signed] == [D("0.4")]


async def test_stale_reservations_nobody_resolves_are_chased(autojump_clock: Any) -> None:
    params = ExecutorParams(post_timeout_secs=5, resolve_timeout_secs=60)
    async with running(params) as h:
        orphan = ReserveRequest(Cloid.random(), TSLA, Side.BUY, Size(D(1)), Price(D(250)), False, "entry")
        h.tracker.reservations[orphan.cloid] = orphan  # e.g. left by a post task that died
        h.tracker.stale = [orphan.cloid]
        h.info.status_answers = [OrderStatusResult(known=False)]
        await trio.sleep(59)
        assert h.tracker.resolved == []
        await trio.sleep(2)
        assert h.tracker.resolved == [(orphan.cloid, OrderNotFound(orphan.cloid))]
        assert h.tracker.reservations == {} and h.ws.posts == []


async def test_hard_stop_latching_during_reserve_releases_the_grant(autojump_clock: Any) -> None:
    class LatchingTracker(FakeTracker):
        hard_stop: FakeHardStop | None = None

        async def reserve(self, req: ReserveRequest) -> ReserveDecision:
            decision = await super().reserve(req)
            assert self.hard_stop is not None
            self.hard_stop.latched = True  # latched by another task while we waited
            return decision

    tracker = LatchingTracker()
    async with running(tracker=tracker) as h:
        tracker.hard_stop = h.hard_stop
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.ws.posts == [] and h.signer.signed == [] and h.tracker.reservations == {}
        assert h.executor.stats.dropped["hard_stop"] == 1


async def test_flatten_without_position_is_dropped(autojump_clock: Any) -> None:
    async with running() as h:
        await h.flatten(TSLA)
        assert h.tracker.reserves == [] and h.executor.stats.dropped["flatten_no_position"] == 1


async def test_signing_failure_releases_the_reservation(autojump_clock: Any) -> None:
    async with running() as h:

        def broken(*args: Any) -> dict[str, Any]:
            raise ValueError("secret-ish detail")

        h.signer.sign_order = broken  # type: ignore[method-assign, assignment]
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.ws.posts == [] and h.tracker.reservations == {}
        assert isinstance(h.tracker.results[0][1], NotSent)


async def test_a_slow_post_does_not_block_other_markets(autojump_clock: Any) -> None:
    async with running(ExecutorParams(post_timeout_secs=5)) as h:
        slow: set[str] = set()

        async def post_action(payload: dict[str, Any]) -> Any:
            h.ws.posts.append(payload)
            if not slow:
                slow.add("first")
                await trio.sleep(4)
            return filled_all(h.signer)(payload)

        h.ws.post_action = post_action  # type: ignore[method-assign]
        await h.signals.send(signal(TSLA, Side.BUY, "250", "1"))
        await h.signals.send(signal(GOLD, Side.BUY, "2000", "0.01"))
        await trio.sleep(0.5)
        assert GOLD in h.tracker.positions and TSLA not in h.tracker.positions
        await trio.sleep(4)
        assert TSLA in h.tracker.positions


async def test_unexpected_status_is_resolved(autojump_clock: Any) -> None:
    from hip3.hyperliquid.events import StatusOther

    async with running() as h:
        h.ws.respond = lambda body: ActionOk("order", (StatusOther("waitingForFill"),))
        h.info.status_answers = [
            OrderStatusResult(known=True, status="iocCancelRejected", orig_sz=D(1), sz=D(1))
        ]
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        await trio.sleep(2)
        assert len(h.tracker.resolved) == 1 and h.tracker.reservations == {}


async def test_bad_signal_does_not_kill_the_executor(autojump_clock: Any) -> None:
    async with running() as h:
        await h.signal(signal(TSLA, Side.BUY, "-1", "1"))
        await h.signal(signal(MarketKey("xyz", "NOPE", 110099), Side.BUY, "250", "1"))
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        assert h.executor.stats.dropped["bad_price"] == 1
        assert h.executor.stats.dropped["unknown_market"] == 1
        assert len(h.ws.posts) == 1


# ---------------------------------------------------------------------------------------------
# With the real tracker, the real L1 signer and the real hard stop (no network)

MARKETS = {m.name: m for m in SPECS}


def test_l1_signer_matches_the_official_sdk() -> None:
    key = "0x" + secrets.token_hex(32)
    signer = L1OrderSigner(
        key, is_mainnet=True, nonces=NonceManager(now_ms=lambda: 1_700_000_000_000), entry_expiry_secs=None
    )
    cloid = Cloid.random()
    body = signer.sign_order(110001, True, Price(D("250.62")), Size(D("0.123")), False, cloid)
    assert key not in repr(signer)
    sdk_wire = order_request_to_order_wire(
        {
            "coin": "xyz:TSLA",
            "is_buy": True,
            "sz": 0.123,
            "limit_px": 250.62,
            "order_type": {"limit": {"tif": "Ioc"}},
            "reduce_only": False,
            "cloid": SdkCloid.from_str(str(cloid)),
        },
        110001,
    )
    sdk_action = order_wires_to_order_action([sdk_wire])
    assert body["action"] == sdk_action
    assert body["nonce"] == 1_700_000_000_000
    wallet = Account.from_key(key)
    assert body["signature"] == sdk_sign_l1_action(wallet, sdk_action, None, body["nonce"], None, True)
    assert recover_l1_signer(body["action"], body["nonce"], body["signature"], is_mainnet=True) == address_of(
        key
    )
    # The next order gets a fresh nonce.
    assert (
        signer.sign_order(110001, False, Price(D("250")), Size(D("1")), True, Cloid.random())["nonce"]
        > body["nonce"]
    )


class Exchange:
    """Exchange truth for the race test: fills every IOC in full and reports positions."""

    def __init__(self, signer: FakeSigner) -> None:
        self.signer = signer
        self.positions: dict[str, Decimal] = {}
        self.max_notional: dict[str, Decimal] = {}

    def respond(self, body: dict[str, Any]) -> ActionResult:
        order = next(o for o in self.signer.signed if o.cloid == cloid_of(body))
        market = next(m for m in SPECS if m.asset == order.asset)
        size = self.positions.get(market.name, D(0)) + (order.size if order.is_buy else -order.size)
        self.positions[market.name] = size
        notional = abs(size) * order.price
        self.max_notional[market.name] = max(self.max_notional.get(market.name, D(0)), notional)
        return ActionOk("order", (Filled(order.size, order.price, oid=1, cloid=order.cloid),))

    def state(self) -> ClearinghouseState:
        return ClearinghouseState(
            positions=tuple(
                AssetPosition(
                    coin=name,
                    szi=sz,
                    entry_px=D(250),
                    position_value=abs(sz) * 250,
                    unrealized_pnl=D(0),
                    leverage_type="isolated",
                    leverage=3,
                )
                for name, sz in self.positions.items()
                if sz != 0
            ),
            account_value=D(1000),
            total_margin_used=D(0),
            withdrawable=D(1000),
        )


async def test_resync_during_a_burst_never_lets_notional_exceed_the_cap(
    autojump_clock: Any, tmp_path: Path
) -> None:
    # In the original system a $50 cap reached $1,607 because a resync cleared the admission caches.
    tracker = Tracker(
        MARKETS, max_notional_per_market=D(50), max_total_notional=D(300), max_concurrent_positions=5
    )
    signer = FakeSigner()
    exchange = Exchange(signer)
    ws = FakeWs(exchange.respond)

    class StaleInfo(FakeInfo):
        async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState:
            snapshot = exchange.state()
            await trio.sleep(0.3)  # fills land while this answer is in the air: it is stale
            return snapshot

    info = StaleInfo()
    hard_stop = HardStop(HardStopParams(state_file=tmp_path / "hs.json"))
    cells = FakeCells()
    cells.set(TSLA, bbo(TSLA, "250", "250.1"))
    cells.set(GOLD, bbo(GOLD, "1999", "2000"))
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        executor = Executor(
            tracker=handle,
            cells=cells,
            specs=SPECS,
            signer=signer,
            user="0x" + "1" * 40,
            ws=ws,
            info=info,
            hard_stop=hard_stop,
            ready=FakeReady(),
            is_benign_reject=risk_is_benign_reject,
            params=ExecutorParams(max_orders_per_second=1000),
        )
        sig_send, sig_recv = trio.open_memory_channel[Signal](100)
        fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        resync = await nursery.start(run_resync, handle, info, "0x" + "1" * 40, "xyz", 0.5)
        for i in range(200):
            # $20 each: two would fit the cap, three would not.
            await sig_send.send(signal(TSLA, Side.BUY, "250", "0.08"))
            await sig_send.send(signal(GOLD, Side.SELL, "2000", "0.01"))
            if i % 25 == 24:  # positions come and go, so snapshots keep going stale
                await fl_send.send(FlattenRequest(TSLA, "time_stop"))
                await fl_send.send(FlattenRequest(GOLD, "time_stop"))
            await trio.sleep(0.013 * (i % 7))
            view = handle.view()
            for market, p in view.positions.items():
                assert p.notional + tracker.pending_notional(market) <= 50
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert exchange.max_notional["xyz:TSLA"] <= 50 and exchange.max_notional["xyz:GOLD"] <= 50
    view = handle.view()
    assert {m.name: p.size for m, p in view.positions.items()} == {
        name: sz for name, sz in exchange.positions.items() if sz != 0
    }
    assert not hard_stop.latched
    assert resync.runs > 10 and resync.failures == 0
    assert resync.corrections == 0  # no stale snapshot ever overwrote a fresh fill
    assert executor.stats.filled >= 20 and executor.stats.denied["has_position"] > 100


async def test_post_response_fill_moves_the_real_tracker_without_user_fills(
    autojump_clock: Any, tmp_path: Path
) -> None:
    tracker = Tracker(
        MARKETS, max_notional_per_market=D(1000), max_total_notional=D(3000), max_concurrent_positions=5
    )
    signer = FakeSigner()
    ws = FakeWs(lambda body: ActionOk("order", (OrderError("Order could not immediately match. asset=1"),)))
    hard_stop = HardStop(HardStopParams(state_file=tmp_path / "hs.json", max_rejects=1))
    cells = FakeCells()
    cells.set(TSLA, bbo(TSLA, "249", "250"))
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(run_tracker, tracker)
        executor = Executor(
            tracker=handle,
            cells=cells,
            specs=SPECS,
            signer=signer,
            user="0x" + "1" * 40,
            ws=ws,
            info=FakeInfo(),
            hard_stop=hard_stop,
            ready=FakeReady(),
            is_benign_reject=risk_is_benign_reject,
        )
        sig_send, sig_recv = trio.open_memory_channel[Signal](10)
        fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
        await nursery.start(run_executor, executor, sig_recv, fl_recv)
        # A benign reject releases the reservation and does not trip the hard stop (max_rejects=1).
        await sig_send.send(signal(TSLA, Side.BUY, "250", "1"))
        await sig_send.send(signal(TSLA, Side.BUY, "250", "1"))
        await trio.sleep(1)
        assert handle.view().pending_markets == frozenset() and not hard_stop.latched
        assert handle.view().positions == {}
        ws.respond = lambda body: ActionOk(
            "order", (Filled(D("1"), D("250.1"), oid=5, cloid=cloid_of(body)),)
        )
        await sig_send.send(signal(TSLA, Side.BUY, "250", "1"))
        await trio.sleep(1)
        position = handle.view().positions[TSLA]
        assert (position.size, position.entry_px) == (D("1"), D("250.1"))
        # Now flatten it through the same path.
        await fl_send.send(FlattenRequest(TSLA, "time_stop"))
        await trio.sleep(1)
        assert handle.view().positions == {}
        assert signer.signed[-1].reduce_only and signer.signed[-1].price == D("247.75")  # 249 × 0.995
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# End to end against hip3.sim on 127.0.0.1 (real clock, real signing, real WS post and HTTP)


async def test_against_the_simulator_with_a_dropped_post_response(tmp_path: Path) -> None:
    from hip3.hyperliquid.info import open_info_client
    from hip3.hyperliquid.ws import open_ws_session
    from hip3.sim.config import load_sim_config
    from hip3.sim.server import open_sim

    key = "0x" + secrets.token_hex(32)
    user = address_of(key)
    tsla = MarketKey("xyz", "TSLA", 110000)
    specs = {tsla: MarketSpec(tsla, sz_decimals=3)}
    tracker = Tracker(
        {tsla.name: tsla},
        max_notional_per_market=D(100),
        max_total_notional=D(300),
        max_concurrent_positions=5,
    )
    cells = FakeCells()
    cells.set(tsla, bbo(tsla, "100", "100.1"))
    hard_stop = HardStop(HardStopParams(state_file=tmp_path / "hs.json"))
    params = ExecutorParams(post_timeout_secs=0.3, resolve_timeout_secs=0.6, resolve_poll_initial_secs=0.1)
    with trio.fail_after(10):
        async with (
            open_sim(load_sim_config(None)) as sim,
            open_info_client(sim.info_url, exchange_url=sim.exchange_url, timeout=2) as info,
            open_ws_session(sim.ws_url, post_timeout=5) as ws,
            trio.open_nursery() as nursery,
        ):
            sim.engine.fund(user, 1000, leverage=5)
            sim.engine.set_oracle("TSLA", "100.1")
            sim.engine.set_book(
                "TSLA", bids=[("100", "1"), ("99.9", "2")], asks=[("100.1", "0.5"), ("100.2", "1")]
            )
            await ws.wait_connected()
            handle = await nursery.start(run_tracker, tracker)
            executor = Executor(
                tracker=handle,
                cells=cells,
                specs=specs,
                signer=L1OrderSigner(key, is_mainnet=False),
                user=user,
                ws=ws,
                info=info,
                hard_stop=hard_stop,
                ready=FakeReady(),
                is_benign_reject=risk_is_benign_reject,
                params=params,
            )
            sig_send, sig_recv = trio.open_memory_channel[Signal](10)
            fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
            await nursery.start(run_executor, executor, sig_recv, fl_recv)

            # 1. A WS post answered with a fill: the tracker moves with no userFills at all.
            await sig_send.send(signal(tsla, Side.BUY, "100.1", "0.2"))
            with trio.fail_after(3):
                while tsla not in handle.view().positions or handle.view().pending_markets:
                    await handle.wait_view_change(handle.view().seq)
            assert handle.view().positions[tsla].size == sim.engine.position(user, "xyz:TSLA") == D("0.2")

            # 2. The response is dropped: PostUnknown, orderStatus, userFillsByTime — never re-sent.
            sim.faults.drop_post_responses = True
            await fl_send.send(FlattenRequest(tsla, "time_stop"))
            with trio.fail_after(5):
                while tsla in handle.view().positions or handle.view().pending_markets:
                    await handle.wait_view_change(handle.view().seq)
            assert sim.engine.position(user, "xyz:TSLA") == 0
            assert executor.stats.unknown == 1 and executor.stats.posted == 2
            assert len(sim.engine.fills(user)) == 2  # one fill per order: nothing was sent twice
            assert not hard_stop.latched
            nursery.cancel_scope.cancel()


async def test_against_the_simulator_time_stop_and_shutdown_flatten(tmp_path: Path) -> None:
    from hip3.hyperliquid.info import open_info_client
    from hip3.hyperliquid.ws import open_ws_session
    from hip3.sim.config import load_sim_config
    from hip3.sim.server import open_sim
    from hip3.trading.exits import ExitParams, run_exits, shutdown_sequence

    key = "0x" + secrets.token_hex(32)
    user = address_of(key)
    tsla, nvda = MarketKey("xyz", "TSLA", 110000), MarketKey("xyz", "NVDA", 110001)
    specs = {tsla: MarketSpec(tsla, sz_decimals=3), nvda: MarketSpec(nvda, sz_decimals=3)}
    tracker = Tracker(
        {m.name: m for m in specs},
        max_notional_per_market=D(100),
        max_total_notional=D(300),
        max_concurrent_positions=5,
    )
    cells = FakeCells()
    cells.set(tsla, bbo(tsla, "100", "100.1"), ctx(tsla, "110"))  # far from the oracle: no regression exit
    cells.set(nvda, bbo(nvda, "50", "50.05"), ctx(nvda, "55"))
    with trio.fail_after(10):
        async with (
            open_sim(load_sim_config(None)) as sim,
            open_info_client(sim.info_url, exchange_url=sim.exchange_url, timeout=2) as info,
            open_ws_session(sim.ws_url, post_timeout=5) as ws,
            trio.open_nursery() as nursery,
        ):
            sim.engine.fund(user, 1000, leverage=5)
            for coin, bid, ask in (("TSLA", "100", "100.1"), ("NVDA", "50", "50.05")):
                sim.engine.set_oracle(coin, ask)
                sim.engine.set_book(coin, bids=[(bid, "5")], asks=[(ask, "5")])
            await ws.wait_connected()
            handle = await nursery.start(run_tracker, tracker)
            executor = Executor(
                tracker=handle,
                cells=cells,
                specs=specs,
                signer=L1OrderSigner(key, is_mainnet=False),
                user=user,
                ws=ws,
                info=info,
                hard_stop=HardStop(HardStopParams(state_file=tmp_path / "hs.json")),
                ready=FakeReady(),
                is_benign_reject=risk_is_benign_reject,
            )
            sig_send, sig_recv = trio.open_memory_channel[Signal](10)
            fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
            await nursery.start(run_executor, executor, sig_recv, fl_recv)
            exit_params = ExitParams(time_stop_secs=0.2, min_holding_secs=0.05, check_interval_secs=0.05)
            await nursery.start(run_exits, handle, cells, fl_send.clone(), exit_params)

            # The time stop closes a position on its own.
            await sig_send.send(signal(tsla, Side.BUY, "100.1", "0.2"))
            with trio.fail_after(3):
                while tsla not in handle.view().positions:
                    await handle.wait_view_change(handle.view().seq)
                opened = trio.current_time()
                while tsla in handle.view().positions:
                    await handle.wait_view_change(handle.view().seq)
            assert 0.15 <= trio.current_time() - opened < 1.0
            assert sim.engine.positions(user) == {}

            # Shutdown with flatten_on_shutdown: entries stop, the open position is closed.
            await sig_send.send(signal(nvda, Side.SELL, "50", "0.3"))
            with trio.fail_after(3):
                while nvda not in handle.view().positions:
                    await handle.wait_view_change(handle.view().seq)
            assert sim.engine.positions(user) == {"xyz:NVDA": D("-0.3")}
            flat = await shutdown_sequence(
                handle, fl_send, executor, flatten_on_shutdown=True, settle_timeout_secs=2
            )
            assert flat and handle.view().positions == {} and sim.engine.positions(user) == {}
            await sig_send.send(signal(tsla, Side.BUY, "100.1", "0.2"))
            await trio.sleep(0.1)
            assert sim.engine.positions(user) == {} and executor.stats.dropped["shutting_down"] == 1
            nursery.cancel_scope.cancel()


async def test_against_the_simulator_full_pipeline_with_faults(tmp_path: Path) -> None:
    # Feed (userFills duplicated and delivered before the post response) + tracker + executor +
    # resync (stale snapshots) + a dropped response in the middle: the bot's positions must end
    # equal to the simulator's, with no order ever sent twice.
    from hip3.hyperliquid.info import open_info_client
    from hip3.hyperliquid.ws import open_ws_session
    from hip3.market.cells import MarketCells
    from hip3.market.feed import Feed, market_subscriptions, run_feed, user_subscriptions
    from hip3.market.ready import ReadyState
    from hip3.sim.config import load_sim_config
    from hip3.sim.server import open_sim

    key = "0x" + secrets.token_hex(32)
    user = address_of(key)
    tsla, nvda = MarketKey("xyz", "TSLA", 110000), MarketKey("xyz", "NVDA", 110001)
    specs = {tsla: MarketSpec(tsla, sz_decimals=3), nvda: MarketSpec(nvda, sz_decimals=3)}
    names = {m.name: m for m in specs}
    tracker = Tracker(
        names, max_notional_per_market=D(100), max_total_notional=D(300), max_concurrent_positions=5
    )
    params = ExecutorParams(post_timeout_secs=0.3, resolve_timeout_secs=0.6, resolve_poll_initial_secs=0.1)
    with trio.fail_after(15):
        async with (
            open_sim(load_sim_config(None)) as sim,
            open_info_client(sim.info_url, exchange_url=sim.exchange_url, timeout=2) as info,
            open_ws_session(sim.ws_url, post_timeout=5) as ws,
            trio.open_nursery() as nursery,
        ):
            sim.engine.fund(user, 1000, leverage=5)
            for coin, bid, ask in (("TSLA", "100", "100.1"), ("NVDA", "50", "50.05")):
                sim.engine.set_oracle(coin, ask)
                sim.engine.set_book(coin, bids=[(bid, "50")], asks=[(ask, "50")])
            sim.faults.duplicate_user_fills = True
            sim.faults.fills_before_response = True
            sim.faults.stale_clearinghouse_delay = 0.1
            handle = await nursery.start(run_tracker, tracker)
            cells, ready = MarketCells(specs), ReadyState(specs)
            ready.on_positions_synced()

            async def fills_since(since: int) -> list[Any]:
                return await info.user_fills_by_time(user, since)

            feed = Feed(cells, names, ready, user=user, sink=handle, fetch_fills_since=fills_since)
            for sub in market_subscriptions(names) + user_subscriptions(user):
                await ws.subscribe(sub)
            await nursery.start(run_feed, ws.events, feed)
            with trio.fail_after(3):
                while not ready.is_ready:
                    await trio.sleep(0.02)
            executor = Executor(
                tracker=handle,
                cells=cells,
                specs=specs,
                signer=L1OrderSigner(key, is_mainnet=False),
                user=user,
                ws=ws,
                info=info,
                hard_stop=HardStop(HardStopParams(state_file=tmp_path / "hs.json")),
                ready=ready,
                is_benign_reject=risk_is_benign_reject,
                params=params,
            )
            sig_send, sig_recv = trio.open_memory_channel[Signal](10)
            fl_send, fl_recv = trio.open_memory_channel[FlattenRequest](10)
            await nursery.start(run_executor, executor, sig_recv, fl_recv)
            resync = await nursery.start(run_resync, handle, info, user, "xyz", 0.15)

            async def settle() -> None:
                with trio.fail_after(3):
                    while handle.view().pending_markets:
                        await handle.wait_view_change(handle.view().seq)

            for round_ in range(4):
                sim.faults.drop_post_responses = round_ == 2
                await sig_send.send(signal(tsla, Side.BUY, "100.1", "0.2"))
                await sig_send.send(signal(nvda, Side.SELL, "50", "0.3"))
                await trio.sleep(0.05)
                await settle()
                await fl_send.send(FlattenRequest(tsla, "time_stop"))
                await trio.sleep(0.05)
                await settle()
            await trio.sleep(0.3)  # a few resyncs with nothing pending
            theirs = sim.engine.positions(user)
            ours = {m.name: p.size for m, p in handle.view().positions.items()}
            assert ours == theirs == {"xyz:NVDA": D("-0.3")}
            assert executor.stats.unknown >= 1 and resync.runs >= 2, (resync, executor.stats)
            fills = sim.engine.fills(user)
            # Every posted order filled exactly once (one maker level each): none was sent twice.
            assert len({f["cloid"] for f in fills}) == len(fills) == executor.stats.posted == 9
            nursery.cancel_scope.cancel()


async def test_a_stale_flatten_chased_by_the_sweep_keeps_its_market_and_flag(autojump_clock: Any) -> None:
    # The sweep resolves an order whose post handling died; it must still count a
    # flatten's outcome for the hard stop, which needs the market and the reduce-only flag.
    params = ExecutorParams(post_timeout_secs=5, resolve_timeout_secs=60)
    async with running(params) as h:
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))

        h.ws.hang = True  # the post is sent but never answered...
        real_post_result = h.tracker.post_result

        async def fails(cloid: Cloid, result: object) -> None:
            raise RuntimeError("tracker call failed")  # ...and handing over its fate fails

        h.tracker.post_result = fails  # type: ignore[method-assign]
        await h.flatten(TSLA)
        await trio.sleep(params.post_timeout_secs + 1)
        h.tracker.post_result = real_post_result  # type: ignore[method-assign]
        [(cloid, _)] = [(c, r) for c, r in h.tracker.reservations.items() if r.reduce_only]
        h.tracker.stale = [cloid]
        h.info.status_answers = [OrderStatusResult(known=True, status="canceled", sz=D(1), orig_sz=D(1))]
        await trio.sleep(70)
        assert (cloid, order_status_report(cloid, h.info.status_answers[0])) in h.tracker.resolved
        assert [m for m, _ in h.hard_stop.flatten_failures] == [TSLA]


@pytest.mark.parametrize("exc", [PostTimeout("no reply"), ConnectionLost("dropped")])
async def test_an_unknown_oid_right_after_a_lost_post_keeps_the_reservation(
    autojump_clock: Any, exc: Exception
) -> None:
    """Right after a timeout or a dropped link the order may still be queued (a slow exchange, the
    frame in flight): an immediate `unknownOid` is not an outcome, or the order could fill after its
    reservation was freed for another entry (rule 6)."""
    async with running() as h:
        h.ws.raise_exc = exc
        h.info.status_answers = [
            OrderStatusResult(known=False),  # not in a block yet
            OrderStatusResult(known=True, status="filled", sz=D(0), orig_sz=D(1)),
        ]
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        ((cloid, result),) = h.tracker.results
        assert isinstance(result, PostUnknown)
        assert cloid in h.tracker.reservations


async def test_a_reduce_only_refusal_for_a_missing_position_resyncs_instead_of_counting(
    autojump_clock: Any,
) -> None:
    # The exchange refuses the flatten because the position is not there: the tracker holds a
    # phantom. That is evidence for a resync of the market, not a failed flatten for the hard stop.
    requested: list[MarketKey] = []
    async with running() as h:
        h.executor.request_resync = requested.append
        h.tracker.open(TSLA, "1", "250")
        h.cells.set(TSLA, bbo(TSLA, "250", "250.1"))
        h.ws.respond = order_error("Reduce only order would increase position. asset=110001")
        await h.flatten(TSLA)
        assert h.hard_stop.flatten_failures == []
        assert requested == [TSLA]
        # any other refusal still counts
        h.ws.respond = order_error("Order could not immediately match against any resting orders. asset=1")
        await h.flatten(TSLA)
        assert [m for m, _ in h.hard_stop.flatten_failures] == [TSLA]
        assert requested == [TSLA]
