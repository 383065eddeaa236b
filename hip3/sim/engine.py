"""The simulated exchange's state: accounts, nonces, order validation, books and matching.

Pure and synchronous: the server calls `handle_exchange(body)` and then drains `take_events()`
(fills, order updates, trades) to publish; the market model calls `set_oracle`,
`replace_maker_quotes` and `update_mark`. Exchange timestamps come from the injected `clock_ms`.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from attrs import define, field, frozen

from hip3.core import MarketSpec, Side
from hip3.sim.config import SimConfig
from hip3.sim.fees import UserRates, hip3_multiplier
from hip3.sim.render import direction, num, px_text, usd
from hip3.sim.requests import (
    CancelAction,
    CancelByCloidAction,
    ExchangeRequest,
    NoopAction,
    OrderAction,
    OrderWire,
    ScheduleCancelAction,
    UnsupportedAction,
    UpdateLeverageAction,
    parse_exchange_body,
)

DAY_MS = 86_400_000
HALTED = "Trading is halted."
NONCE_WINDOW = 100
BPS = Decimal("0.0001")

#: (canonical action, nonce, signature dict, vault, expires_after) -> lowercase signer address
RecoverSigner = Callable[[dict[str, Any], int, dict[str, Any], str | None, int | None], str]


@frozen
class Publish:
    """Something to push to WebSocket subscribers: `key` is a user address or a coin name."""

    channel: str  # "userFills" | "orderUpdates" | "trades"
    key: str
    data: Any


@define
class Order:
    oid: int
    user: str
    coin: str
    asset: int
    side: Side
    limit_px: Decimal
    sz: Decimal
    orig_sz: Decimal
    timestamp: int
    tif: str
    reduce_only: bool
    cloid: str | None
    seq: int
    status: str = "open"
    status_timestamp: int = 0
    reserved: Decimal = Decimal(0)  # isolated margin held for the opening part while resting

    def wire(self) -> dict[str, Any]:
        """The `order` object of orderUpdates / openOrders."""
        out: dict[str, Any] = {
            "coin": self.coin,
            "side": self.side.value,
            "limitPx": num(self.limit_px),
            "sz": num(self.sz),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "origSz": num(self.orig_sz),
        }
        if self.cloid is not None:
            out["cloid"] = self.cloid
        if self.reduce_only:
            out["reduceOnly"] = True
        return out

    def frontend(self) -> dict[str, Any]:
        """The `order` object of orderStatus / frontendOpenOrders."""
        return {
            "coin": self.coin,
            "side": self.side.value,
            "limitPx": num(self.limit_px),
            "sz": num(self.sz),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": self.reduce_only,
            "orderType": "Limit",
            "origSz": num(self.orig_sz),
            "tif": self.tif,
            "cloid": self.cloid,
        }


@define
class Position:
    szi: Decimal = Decimal(0)
    entry_px: Decimal = Decimal(0)
    margin: Decimal = Decimal(0)  # isolated margin (rawUsd side of the position)
    cum_funding: Decimal = Decimal(0)


@define
class Account:
    address: str
    balance: Decimal
    default_leverage: int
    leverage: dict[str, int] = field(factory=dict)
    positions: dict[str, Position] = field(factory=dict)
    fills: list[dict[str, Any]] = field(factory=list)  # oldest first
    realized_pnl: Decimal = Decimal(0)
    fees_paid: Decimal = Decimal(0)
    scheduled_cancel_ms: int | None = None
    rates: UserRates = field(factory=UserRates)
    cross_volume: Decimal = Decimal(0)  # taker notional (userFees dailyUserVlm userCross)
    add_volume: Decimal = Decimal(0)  # maker notional (userAdd)


@define
class NonceSet:
    """The 100 highest nonces a signer has used; a new nonce must beat the smallest and be unused."""

    heap: list[int] = field(factory=list)
    used: set[int] = field(factory=set)

    def check(self, nonce: int, now_ms: int) -> str | None:
        if nonce in self.used:
            return f"Invalid nonce: duplicate nonce {nonce}"
        low = now_ms - 2 * DAY_MS
        if nonce <= low:
            return f"Invalid nonce: nonce too low {nonce} < {low}"
        if len(self.heap) >= NONCE_WINDOW and nonce <= self.heap[0]:
            return f"Invalid nonce: nonce too low {nonce} < {self.heap[0]}"
        high = now_ms + DAY_MS
        if nonce >= high:
            return f"Invalid nonce: nonce too high {nonce} > {high}"
        return None

    def add(self, nonce: int) -> None:
        heapq.heappush(self.heap, nonce)
        self.used.add(nonce)
        while len(self.heap) > NONCE_WINDOW:
            self.used.discard(heapq.heappop(self.heap))


@define
class Market:
    spec: MarketSpec
    start_px: Decimal
    oracle_px: Decimal
    mark_px: Decimal
    bids: list[Order] = field(factory=list)  # best first: price desc, then time
    asks: list[Order] = field(factory=list)  # best first: price asc, then time
    halted: bool = False
    oracle_frozen: bool = False  # set_oracle was called: the model's walk leaves this market alone
    book_frozen: bool = False  # set_book was called: the makers leave this market alone
    last_trade_px: Decimal | None = None
    day_ntl_vlm: Decimal = Decimal(0)
    day_base_vlm: Decimal = Decimal(0)
    book_version: int = 0
    open_interest: Decimal = Decimal(0)  # the simulated crowd's OI plus every account's |position|
    fee_scale: Decimal = Decimal(1)  # meta deployerFeeScale
    growth_mode: bool = False  # meta growthMode "enabled"
    structural_gap_bps: Decimal = Decimal(0)  # the makers' quotes centre on oracle × (1 + this)

    @property
    def fee_multiplier(self) -> Decimal:
        return hip3_multiplier(self.fee_scale, self.growth_mode)

    @property
    def coin(self) -> str:
        return self.spec.key.name

    @property
    def asset(self) -> int:
        return self.spec.key.asset

    def side_book(self, side: Side) -> list[Order]:
        return self.bids if side is Side.BUY else self.asks

    def sort(self) -> None:
        self.bids.sort(key=lambda o: (-o.limit_px, o.seq))
        self.asks.sort(key=lambda o: (o.limit_px, o.seq))

    def best(self, side: Side) -> Order | None:
        book = self.side_book(side)
        return book[0] if book else None

    def mid(self) -> Decimal | None:
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        if bid is None or ask is None:
            return None
        return (bid.limit_px + ask.limit_px) / 2

    def levels(self, side: Side, depth: int = 20) -> list[tuple[Decimal, Decimal, int]]:
        out: list[tuple[Decimal, Decimal, int]] = []
        for order in self.side_book(side):
            if out and out[-1][0] == order.limit_px:
                px, sz, n = out[-1]
                out[-1] = (px, sz + order.sz, n + 1)
            elif len(out) == depth:
                break
            else:
                out.append((order.limit_px, order.sz, 1))
        return out


@frozen
class _Match:
    maker: Order
    px: Decimal
    sz: Decimal


def _err(asset: int, text: str) -> dict[str, Any]:
    return {"error": f"{text} asset={asset}"}


class Engine:
    """All exchange state. Not thread-safe and not async: call it from one trio task at a time."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock_ms: Callable[[], int],
        recover_signer: RecoverSigner | None = None,
    ) -> None:
        self.config = config
        self._clock_ms = clock_ms
        self.backwards_ms = 0  # fault: exchange clock set back by this much
        self._recover = recover_signer or default_recover_signer(config.is_mainnet)
        self.maker_address = config.maker_address
        self.default_rates = UserRates(config.user_cross_rate, config.user_add_rate)
        #: called before a user's order that can take liquidity is matched (the model may pull stale quotes)
        self.before_taker: Callable[[Market, Order], None] | None = None
        self.markets: dict[str, Market] = {}
        self.by_asset: dict[int, Market] = {}
        for coin, spec in config.market_specs().items():
            mc = next(m for m in config.markets if m.coin == spec.key.coin)
            px = spec.round_price(mc.price, up=False)
            market = Market(
                spec=spec,
                start_px=px,
                oracle_px=px,
                mark_px=px,
                fee_scale=mc.deployer_fee_scale,
                growth_mode=mc.growth_mode,
                structural_gap_bps=mc.structural_gap_bps,
                halted=mc.halted,
            )
            market.open_interest = spec.round_size(Decimal(2_000_000) / px)  # ~$2M of background OI
            self.markets[coin] = market
            self.by_asset[spec.key.asset] = market
        self.accounts: dict[str, Account] = {}
        self.agents: dict[str, str] = {}  # agent -> master
        self.vaults: set[str] = set(config.vaults)
        self.nonces: dict[str, NonceSet] = {}
        self.orders: dict[int, Order] = {}  # every order ever accepted, by oid
        self._cloids: dict[tuple[str, str], int] = {}  # (user, cloid) -> oid
        self._events: list[Publish] = []
        self._next_oid = 9_000_000_000 + (config.seed % 1000) * 1_000_000
        self._next_tid = 400_000_000_000_000 + (config.seed % 1000) * 1_000_000_000
        self._seq = 0
        self._action_count = 0
        for acct in config.accounts:
            self.fund(acct.address, acct.balance, leverage=acct.leverage)
            self.set_user_fees(
                acct.address,
                referral_discount=acct.referral_discount,
                staking_discount=acct.staking_discount,
            )
            for agent in acct.agents:
                self.approve_agent(acct.address, agent)

    # -----------------------------------------------------------------------------------------
    # clock and ids

    def now_ms(self) -> int:
        return self._clock_ms() - self.backwards_ms

    def _oid(self) -> int:
        self._next_oid += 1
        return self._next_oid

    def _tid(self) -> int:
        self._next_tid += 1
        return self._next_tid

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def take_events(self) -> list[Publish]:
        events, self._events = self._events, []
        return events

    # -----------------------------------------------------------------------------------------
    # accounts (also the test/demo API)

    def fund(self, address: str, usd_amount: Decimal | int | str, *, leverage: int = 5) -> Account:
        """Create the account if needed and add `usd_amount` USDC to its dex balance."""
        address = address.lower()
        acct = self.accounts.get(address)
        if acct is None:
            acct = Account(
                address=address, balance=Decimal(0), default_leverage=leverage, rates=self.default_rates
            )
            self.accounts[address] = acct
        acct.balance += Decimal(usd_amount)
        return acct

    def set_user_fees(
        self,
        address: str,
        *,
        cross: Decimal | str | None = None,
        add: Decimal | str | None = None,
        referral_discount: Decimal | str | None = None,
        staking_discount: Decimal | str | None = None,
    ) -> UserRates:
        """Change an account's base fee rates or discounts (what `userFees` reports and fills pay)."""
        acct = self.accounts.get(address.lower()) or self.fund(address, 0)
        old = acct.rates
        acct.rates = UserRates(
            old.cross if cross is None else Decimal(cross),
            old.add if add is None else Decimal(add),
            old.referral_discount if referral_discount is None else Decimal(referral_discount),
            old.staking_discount if staking_discount is None else Decimal(staking_discount),
        )
        return acct.rates

    def fee_rate(self, acct: Account, market: Market, *, crossed: bool) -> Decimal:
        """The fraction of notional a fill pays: the account's (discounted) base rate × the asset multiplier."""
        multiplier = market.fee_multiplier
        return acct.rates.taker_rate(multiplier) if crossed else acct.rates.maker_rate(multiplier)

    def round_trip_cost_bps(self, coin: str, side: Side) -> Decimal:
        """What a dislocation taken on `side` must beat in `coin`: two taker fees at the base rates,
        the exit through the book once the makers have caught up, and `dislocation_exit_cost_bps`."""
        market = self.market(coin)
        taker = self.default_rates.taker_rate(market.fee_multiplier) / BPS
        return 2 * taker + self.exit_spread_bps(market, side) + self.config.model.dislocation_exit_cost_bps

    def exit_spread_bps(self, market: Market, side: Side) -> Decimal:
        """What getting out of a `side` entry pays against fair value once the makers have caught up:
        the distance to their first level, half their spread rounded outwards onto the tick grid (a
        long sells into the bid, a short buys the ask)."""
        fair = market.oracle_px * (1 + market.structural_gap_bps * BPS)
        if fair <= 0:
            return Decimal(0)
        half = fair * self.config.model.maker_half_spread_bps * BPS
        if side is Side.BUY:
            distance = fair - market.spec.round_price(max(fair - half, BPS * fair), up=False)
        else:
            distance = market.spec.round_price(fair + half, up=True) - fair
        return distance / fair / BPS

    def approve_agent(self, master: str, agent: str) -> None:
        master, agent = master.lower(), agent.lower()
        if master not in self.accounts:
            self.fund(master, 0)
        self.agents[agent] = master

    def account(self, address: str) -> Account | None:
        return self.accounts.get(address.lower())

    def position(self, address: str, coin: str) -> Decimal:
        acct = self.account(address)
        if acct is None:
            return Decimal(0)
        pos = acct.positions.get(self.coin_name(coin))
        return pos.szi if pos is not None else Decimal(0)

    def positions(self, address: str) -> dict[str, Decimal]:
        acct = self.account(address)
        if acct is None:
            return {}
        return {coin: p.szi for coin, p in acct.positions.items() if p.szi != 0}

    def fills(self, address: str) -> list[dict[str, Any]]:
        acct = self.account(address)
        return list(acct.fills) if acct is not None else []

    def open_orders(self, address: str) -> list[Order]:
        address = address.lower()
        out = [o for m in self.markets.values() for o in (*m.bids, *m.asks) if o.user == address]
        return sorted(out, key=lambda o: -o.seq)

    def coin_name(self, coin: str) -> str:
        """Accept ``TSLA`` or ``xyz:TSLA``."""
        return coin if ":" in coin else f"{self.config.dex}:{coin}"

    def market(self, coin: str) -> Market:
        name = self.coin_name(coin)
        if name not in self.markets:
            raise KeyError(f"unknown market {coin!r}; known: {sorted(self.markets)}")
        return self.markets[name]

    # -----------------------------------------------------------------------------------------
    # market control (model + tests)

    def set_oracle(self, coin: str, px: Decimal | int | str, *, freeze: bool = True) -> None:
        """Set the oracle price; by default the model's random walk then leaves this market alone."""
        market = self.market(coin)
        market.oracle_px = Decimal(px)
        market.oracle_frozen = market.oracle_frozen or freeze

    def update_mark(self, coin: str, mark_px: Decimal) -> None:
        market = self.market(coin)
        if mark_px != market.mark_px:
            market.mark_px = mark_px

    def set_book(
        self,
        coin: str,
        bids: Iterable[tuple[Decimal | str | int, Decimal | str | int]],
        asks: Iterable[tuple[Decimal | str | int, Decimal | str | int]],
        *,
        freeze: bool = True,
    ) -> None:
        """Replace the makers' levels (one maker order per (px, sz)); by default the makers then stop requoting."""
        market = self.market(coin)
        market.book_frozen = market.book_frozen or freeze
        self.replace_maker_quotes(
            coin,
            [(Decimal(p), Decimal(s)) for p, s in bids],
            [(Decimal(p), Decimal(s)) for p, s in asks],
        )

    def replace_maker_quotes(
        self, coin: str, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]
    ) -> None:
        """Cancel every maker order in `coin` and place the given levels; a level that crosses a user's
        resting order trades with it (the user is the maker of that fill)."""
        market = self.market(coin)
        if market.halted:
            return
        market.bids = [o for o in market.bids if o.user != self.maker_address]
        market.asks = [o for o in market.asks if o.user != self.maker_address]
        now = self.now_ms()
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for px, sz in levels:
                if sz <= 0:
                    continue
                order = Order(
                    oid=self._oid(),
                    user=self.maker_address,
                    coin=market.coin,
                    asset=market.asset,
                    side=side,
                    limit_px=px,
                    sz=sz,
                    orig_sz=sz,
                    timestamp=now,
                    tif="Alo",
                    reduce_only=False,
                    cloid=None,
                    seq=self._next_seq(),
                )
                matches = self._match(market, order, now)
                if matches:
                    self._settle(market, order, matches, now, self._action_hash(order.user, order.oid))
                if order.sz > 0:
                    market.side_book(side).append(order)
        market.sort()
        market.book_version += 1

    def halt(self, coin: str) -> None:
        """Halt trading: cancel all orders, settle every position at the mark (no fee), refuse new orders."""
        market = self.market(coin)
        now = self.now_ms()
        for order in (*market.bids, *market.asks):
            self._finish(order, "canceled", now)
        market.bids.clear()
        market.asks.clear()
        for acct in self.accounts.values():
            pos = acct.positions.get(market.coin)
            if pos is None or pos.szi == 0:
                continue
            pnl = usd((market.mark_px - pos.entry_px) * pos.szi)
            acct.balance += pos.margin + pnl
            acct.realized_pnl += pnl
            del acct.positions[market.coin]
        market.halted = True
        market.book_version += 1

    def resume_trading(self, coin: str) -> None:
        """Lift a halt: orders are accepted again (the makers requote on their next round)."""
        market = self.market(coin)
        market.halted = False

    def run_scheduled_cancels(self) -> None:
        """Cancel all open orders of users whose scheduleCancel time has passed (status scheduledCancel)."""
        now = self.now_ms()
        for acct in self.accounts.values():
            if acct.scheduled_cancel_ms is not None and now >= acct.scheduled_cancel_ms:
                acct.scheduled_cancel_ms = None
                for order in self.open_orders(acct.address):
                    self._remove_from_book(order)
                    self._finish(order, "scheduledCancel", now)

    # -----------------------------------------------------------------------------------------
    # /exchange

    def handle_exchange(self, body: Any) -> dict[str, Any]:
        """Execute one POST /exchange body; raises `BadRequest` (HTTP 422) for an undeserializable body."""
        if isinstance(body, dict) and isinstance(body.get("action"), dict):
            canonicalize(body["action"])  # the deserializer's messages for bad action fields come first
        request = parse_exchange_body(body)
        canonical = canonicalize(request.raw_action)
        try:
            signer = self._recover(
                canonical, request.nonce, request.signature.raw, request.vault_address, request.expires_after
            ).lower()
        except ValueError:
            return {"status": "err", "response": "Invalid signature."}
        master = signer if signer in self.accounts else self.agents.get(signer)
        if master is None:
            return {"status": "err", "response": f"User or API Wallet {signer} does not exist."}
        now = self.now_ms()
        nonces = self.nonces.setdefault(signer, NonceSet())
        problem = nonces.check(request.nonce, now)
        if problem is not None:
            return {"status": "err", "response": problem}
        nonces.add(request.nonce)
        if request.vault_address is not None:
            if request.vault_address not in self.vaults or request.vault_address not in self.accounts:
                return {"status": "err", "response": f"Vault not registered: {request.vault_address}"}
            master = request.vault_address
        if request.expires_after is not None and request.expires_after < now:
            return {"status": "err", "response": "Action already expired"}
        acct = self.accounts[master]
        if acct.balance <= 0 and not acct.positions:
            return {"status": "err", "response": f"Must deposit before performing actions. User: {master}"}
        self._action_count += 1
        return self._dispatch(acct, request, signer)

    def _dispatch(self, acct: Account, request: ExchangeRequest, signer: str) -> dict[str, Any]:
        action = request.action
        match action:
            case OrderAction(orders=orders):
                if len(orders) > 200:
                    return {"status": "err", "response": "Signed action over weight limit of 200."}
                hash_ = self._action_hash(signer, request.nonce)
                statuses = [self._place(acct, o, hash_) for o in orders]
                return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
            case CancelAction(cancels=cancels):
                if len(cancels) > 200:
                    return {"status": "err", "response": "Signed action over weight limit of 200."}
                statuses = [self._cancel(acct, asset, self.orders.get(oid)) for asset, oid in cancels]
                return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}
            case CancelByCloidAction(cancels=by_cloid):
                if len(by_cloid) > 200:
                    return {"status": "err", "response": "Signed action over weight limit of 200."}
                statuses = []
                for asset, cloid in by_cloid:
                    oid = self._cloids.get((acct.address, cloid))
                    statuses.append(self._cancel(acct, asset, self.orders.get(oid) if oid else None))
                return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}
            case ScheduleCancelAction(time=when):
                if when is not None and when < self.now_ms() + 5000:
                    return {
                        "status": "err",
                        "response": "Scheduled cancel time too early, must be at least 5 seconds from now.",
                    }
                acct.scheduled_cancel_ms = when
                return {"status": "ok", "response": {"type": "default"}}
            case UpdateLeverageAction(asset=asset, is_cross=is_cross, leverage=leverage):
                market = self.by_asset.get(asset)
                if market is None:
                    return {"status": "err", "response": f"Invalid asset: {asset}"}
                if is_cross:
                    return {"status": "err", "response": "Cross margin is not allowed for this asset."}
                if not 1 <= leverage <= market.spec.max_leverage:
                    return {"status": "err", "response": "Invalid leverage value"}
                acct.leverage[market.coin] = leverage
                return {"status": "ok", "response": {"type": "default"}}
            case NoopAction():
                return {"status": "ok", "response": {"type": "default"}}
            case UnsupportedAction(type=kind):
                return {"status": "err", "response": f"Action type not supported by the simulator: {kind}"}
        raise AssertionError(f"unhandled action {action!r}")

    def _action_hash(self, signer: str, nonce: int) -> str:
        return "0x" + hashlib.sha256(f"{signer}:{nonce}:{self._action_count}".encode()).hexdigest()

    def leverage_for(self, acct: Account, market: Market) -> int:
        return min(acct.leverage.get(market.coin, acct.default_leverage), market.spec.max_leverage)

    def available(self, acct: Account) -> Decimal:
        """USDC free for new margin: balance minus what resting orders hold."""
        reserved = sum((o.reserved for o in self.open_orders(acct.address)), Decimal(0))
        return acct.balance - reserved

    # -----------------------------------------------------------------------------------------
    # orders

    def _check(self, acct: Account, market: Market, wire: OrderWire) -> tuple[str, str] | Decimal:
        """The exchange's pre-trade checks, in order: (history status, error text) or the size to trade."""
        spec = market.spec
        if market.halted:
            return "rejected", HALTED
        if not spec.is_valid_price(wire.px):
            return "tickRejected", "Price must be divisible by tick size."
        if abs(wire.px - market.oracle_px) > market.oracle_px * Decimal("0.8"):
            return "rejected", "Order price cannot be more than 80% away from the reference price."
        if wire.sz == 0:
            return "rejected", "Order has zero size."
        if not spec.is_valid_size(wire.sz):
            return "rejected", "Order has invalid size."
        side = Side.from_is_buy(wire.is_buy)
        pos = acct.positions.get(market.coin)
        szi = pos.szi if pos is not None else Decimal(0)
        sz = wire.sz
        if wire.reduce_only:
            if szi == 0 or (szi > 0) == wire.is_buy:
                return "reduceOnlyRejected", "Reduce only order would increase position."
            sz = min(sz, abs(szi))  # a larger reduce-only order is shrunk to the position
        opening = self._opening_size(szi, side, sz) if not wire.reduce_only else Decimal(0)
        if opening > 0 and wire.px * sz < 10:
            return "minTradeNtlRejected", "Order must have minimum value of $10."
        if opening > 0 and wire.px * opening / self.leverage_for(acct, market) > self.available(acct):
            return "perpMarginRejected", "Insufficient margin to place order."
        if wire.tif == "Alo":
            best = market.best(side.opposite)
            if best is not None and (wire.px >= best.limit_px if wire.is_buy else wire.px <= best.limit_px):
                bid, ask = market.best(Side.BUY), market.best(Side.SELL)
                bbo = f"{num(bid.limit_px) if bid else 'None'}@{num(ask.limit_px) if ask else 'None'}"
                return "badAloPxRejected", f"Post only order would have immediately matched, bbo was {bbo}."
        return sz

    def _place(self, acct: Account, wire: OrderWire, hash_: str) -> Any:
        market = self.by_asset.get(wire.asset)
        if market is None:
            return _err(wire.asset, "Invalid asset.")
        asset = market.asset
        if wire.tif is None:
            return _err(asset, "Trigger orders are not supported by the simulator.")
        checked = self._check(acct, market, wire)
        sz = wire.sz if isinstance(checked, tuple) else checked
        side = Side.from_is_buy(wire.is_buy)
        leverage = self.leverage_for(acct, market)
        now = self.now_ms()
        order = Order(
            oid=self._oid(),
            user=acct.address,
            coin=market.coin,
            asset=asset,
            side=side,
            limit_px=wire.px,
            sz=sz,
            orig_sz=sz,
            timestamp=now,
            tif=wire.tif,
            reduce_only=wire.reduce_only,
            cloid=wire.cloid,
            seq=self._next_seq(),
            status_timestamp=now,
        )
        self.orders[order.oid] = order
        if order.cloid is not None:
            self._cloids[(acct.address, order.cloid)] = order.oid
        if isinstance(checked, tuple):  # rejected: recorded (orderStatus answers it), never booked
            status, text = checked
            self._finish(order, status, now)
            # the one capture of this error has no " asset=" suffix
            return {"error": text} if text == HALTED else _err(asset, text)
        if wire.tif != "Alo" and self.before_taker is not None and acct.address != self.maker_address:
            self.before_taker(market, order)  # cancels execute before IOC/GTC orders in a block
        matches = self._match(market, order, now) if wire.tif != "Alo" else []
        if wire.tif == "Ioc" and not matches:
            self._finish(order, "iocCancelRejected", now)
            return _err(asset, "Order could not immediately match against any resting orders.")
        filled = sum((m.sz for m in matches), Decimal(0))
        if matches:
            self._settle(market, order, matches, now, hash_)
        ident: dict[str, Any] = {"oid": order.oid}
        if order.cloid is not None:
            ident["cloid"] = order.cloid
        if order.sz == 0:
            self._finish(order, "filled", now)
            avg = sum((m.px * m.sz for m in matches), Decimal(0)) / filled
            return {"filled": {"totalSz": num(filled), "avgPx": px_text(avg), **ident}}
        if wire.tif == "Ioc":
            self._finish(order, "canceled", now)  # the unfilled remainder of an IOC
            avg = sum((m.px * m.sz for m in matches), Decimal(0)) / filled
            return {"filled": {"totalSz": num(filled), "avgPx": px_text(avg), **ident}}
        # GTC remainder / ALO: rest on the book
        pos = acct.positions.get(market.coin)
        szi = pos.szi if pos is not None else Decimal(0)
        if not order.reduce_only:
            order.reserved = order.limit_px * self._opening_size(szi, side, order.sz) / leverage
        market.side_book(side).append(order)
        market.sort()
        market.book_version += 1
        self._events.append(Publish("orderUpdates", acct.address, [self._update(order, "open", now)]))
        return {"resting": ident}

    @staticmethod
    def _opening_size(szi: Decimal, side: Side, sz: Decimal) -> Decimal:
        """How much of an order of `sz` on `side` adds exposure to a position `szi`."""
        if szi == 0 or (szi > 0) == side.is_buy:
            return sz
        return max(Decimal(0), sz - abs(szi))

    def _match(self, market: Market, taker: Order, now: int) -> list[_Match]:
        """Take liquidity for `taker` (price-time priority); self-trades cancel the resting order."""
        book = market.side_book(taker.side.opposite)
        matches: list[_Match] = []
        while taker.sz > 0 and book:
            maker = book[0]
            crosses = (
                maker.limit_px <= taker.limit_px if taker.side.is_buy else maker.limit_px >= taker.limit_px
            )
            if not crosses:
                break
            if maker.user == taker.user:
                book.pop(0)
                self._finish(maker, "selfTradeCanceled", now)
                continue
            sz = min(maker.sz, taker.sz)
            matches.append(_Match(maker, maker.limit_px, sz))
            maker.sz -= sz
            taker.sz -= sz
            if maker.sz == 0:
                book.pop(0)
        if matches:
            market.book_version += 1
        return matches

    def _settle(self, market: Market, taker: Order, matches: list[_Match], now: int, hash_: str) -> None:
        """Book the fills of one taker order: one fill record per maker order matched."""
        taker_acct = self.accounts.get(taker.user)
        taker_fills: list[dict[str, Any]] = []
        trades: list[dict[str, Any]] = []
        maker_fills: dict[str, list[dict[str, Any]]] = {}
        touched: set[str] = set()
        for m in matches:
            tid = self._tid()
            if taker_acct is not None:
                taker_fills.append(
                    self._fill(taker_acct, market, taker, m.px, m.sz, now, hash_, tid, crossed=True)
                )
                touched.add(taker_acct.address)
            maker_acct = self.accounts.get(m.maker.user)
            if maker_acct is not None:
                fill = self._fill(maker_acct, market, m.maker, m.px, m.sz, now, hash_, tid, crossed=False)
                maker_fills.setdefault(maker_acct.address, []).append(fill)
                touched.add(maker_acct.address)
                if m.maker.sz == 0:
                    self._finish(m.maker, "filled", now)
                else:
                    m.maker.reserved = m.maker.reserved * m.maker.sz / (m.maker.sz + m.sz)
            buyer, seller = (taker.user, m.maker.user) if taker.side.is_buy else (m.maker.user, taker.user)
            trades.append(
                {
                    "coin": market.coin,
                    "side": taker.side.value,
                    "px": num(m.px),
                    "sz": num(m.sz),
                    "hash": hash_,
                    "time": now,
                    "tid": tid,
                    "users": [buyer, seller],
                }
            )
            market.last_trade_px = m.px
            market.day_ntl_vlm += m.px * m.sz
            market.day_base_vlm += m.sz
        if taker_acct is not None and taker_fills:
            self._events.append(
                Publish("userFills", taker_acct.address, {"user": taker_acct.address, "fills": taker_fills})
            )
        for user, fills in maker_fills.items():
            self._events.append(Publish("userFills", user, {"user": user, "fills": fills}))
        self._events.append(Publish("trades", market.coin, trades))
        for user in sorted(touched):
            self._fix_reduce_only(self.accounts[user], market, now)

    def _fill(
        self,
        acct: Account,
        market: Market,
        order: Order,
        px: Decimal,
        sz: Decimal,
        now: int,
        hash_: str,
        tid: int,
        *,
        crossed: bool,
    ) -> dict[str, Any]:
        """Apply one fill to an isolated-margin position and return its fill record."""
        pos = acct.positions.setdefault(market.coin, Position())
        start = pos.szi
        market.open_interest += abs(start + (sz if order.side.is_buy else -sz)) - abs(start)
        delta = sz if order.side.is_buy else -sz
        leverage = self.leverage_for(acct, market)
        closed_pnl = Decimal(0)
        if start == 0 or (start > 0) == (delta > 0):
            new = start + delta
            pos.entry_px = (abs(start) * pos.entry_px + sz * px) / abs(new)
            margin = px * sz / leverage
            pos.margin += margin
            acct.balance -= margin
            pos.szi = new
        else:
            close_sz = min(sz, abs(start))
            sign = 1 if start > 0 else -1
            closed_pnl = usd((px - pos.entry_px) * close_sz * sign)
            released = pos.margin * close_sz / abs(start)
            pos.margin -= released
            acct.balance += released + closed_pnl
            pos.szi = start - sign * close_sz
            open_sz = sz - close_sz
            if pos.szi == 0:
                acct.balance += pos.margin  # rounding dust
                pos.margin = Decimal(0)
                pos.entry_px = Decimal(0)
            if open_sz > 0:  # flip: the rest opens the other way at this price
                pos.szi = -sign * open_sz
                pos.entry_px = px
                pos.margin = px * open_sz / leverage
                acct.balance -= pos.margin
        if pos.szi == 0:
            del acct.positions[market.coin]
        fee = usd(px * sz * self.fee_rate(acct, market, crossed=crossed))
        if crossed:
            acct.cross_volume += px * sz
        else:
            acct.add_volume += px * sz
        acct.balance -= fee
        acct.fees_paid += fee
        acct.realized_pnl += closed_pnl
        record: dict[str, Any] = {
            "coin": market.coin,
            "px": num(px),
            "sz": num(sz),
            "side": order.side.value,
            "time": now,
            "startPosition": num(start),
            "dir": direction(start, delta),
            "closedPnl": num(closed_pnl),
            "hash": hash_,
            "oid": order.oid,
            "crossed": crossed,
            "fee": num(fee),
            "tid": tid,
            "feeToken": "USDC",
            "twapId": None,
        }
        if order.cloid is not None:
            record["cloid"] = order.cloid
        acct.fills.append(record)
        return record

    def _fix_reduce_only(self, acct: Account, market: Market, now: int) -> None:
        """Resting reduce-only orders shrink with the position and are canceled when it is flat."""
        pos = acct.positions.get(market.coin)
        szi = pos.szi if pos is not None else Decimal(0)
        for order in [o for o in (*market.bids, *market.asks) if o.user == acct.address and o.reduce_only]:
            if szi == 0 or (szi > 0) == order.side.is_buy:
                self._remove_from_book(order)
                self._finish(order, "reduceOnlyCanceled", now)
            elif order.sz > abs(szi):
                order.sz = abs(szi)
                market.book_version += 1

    def _remove_from_book(self, order: Order) -> None:
        market = self.markets[order.coin]
        book = market.side_book(order.side)
        if order in book:
            book.remove(order)
            market.book_version += 1

    def _cancel(self, acct: Account, asset: int, order: Order | None) -> Any:
        if order is None or order.user != acct.address or order.asset != asset or order.status != "open":
            return _err(asset, "Order was never placed, already canceled, or filled.")
        self._remove_from_book(order)
        self._finish(order, "canceled", self.now_ms())
        return "success"

    def _finish(self, order: Order, status: str, now: int) -> None:
        """Give an order its final status and tell its owner on orderUpdates."""
        order.status = status
        order.status_timestamp = now
        order.reserved = Decimal(0)
        if order.user in self.accounts:
            self._events.append(Publish("orderUpdates", order.user, [self._update(order, status, now)]))

    @staticmethod
    def _update(order: Order, status: str, now: int) -> dict[str, Any]:
        return {"order": order.wire(), "status": status, "statusTimestamp": now}

    def order_status(self, user: str, ident: int | str) -> dict[str, Any]:
        user = user.lower()
        oid = ident if isinstance(ident, int) else self._cloids.get((user, ident.lower()))
        order = self.orders.get(oid) if oid is not None else None
        if order is None or order.user != user:
            return {"status": "unknownOid"}
        return {
            "status": "order",
            "order": {
                "order": order.frontend(),
                "status": order.status,
                "statusTimestamp": order.status_timestamp,
            },
        }


# ---------------------------------------------------------------------------------------------
# protocol glue: canonical order + signer recovery from the shared protocol layer


def canonicalize(action: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an action in the exchange's hash order (hip3.hyperliquid.wire); 422 on bad fields."""
    from hip3.sim.protocol import canonical_action

    return canonical_action(action)


def default_recover_signer(is_mainnet: bool) -> RecoverSigner:
    from hip3.sim.protocol import recover_l1_signer

    def recover(
        action: dict[str, Any], nonce: int, signature: dict[str, Any], vault: str | None, expires: int | None
    ) -> str:
        return recover_l1_signer(
            action, nonce, signature, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires
        )

    return recover


__all__ = ["Account", "Engine", "Market", "Order", "Position", "Publish"]
