"""Account activity the bot did not send: a liquidation, a manual close in the web app, and another
client's orders on the same account. Each goes through the engine's own matching and fill code
and leaves its events (fills, order updates, trades, the `user` liquidation event) to be published
like any other action's.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hip3.core import Side
from hip3.sim.engine import Engine, Order, Publish
from hip3.sim.render import num, usd
from hip3.sim.requests import OrderWire

#: the counterparty of a liquidation (the exchange's liquidator vault)
LIQUIDATOR = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
#: how far through the mark a market order (web app close, another client's IOC) is priced
MARKET_SLIPPAGE = Decimal("0.05")


class OpError(ValueError):
    """An operation that cannot be done (unknown account or coin, no position, bad value)."""


def _account(engine: Engine, user: str) -> Any:
    acct = engine.account(user)
    if acct is None:
        raise OpError(f"no simulator account {user}")
    return acct


def _market(engine: Engine, coin: str) -> Any:
    try:
        return engine.market(coin)
    except KeyError as exc:
        raise OpError(str(exc.args[0])) from None


def _market_px(engine: Engine, market: Any, is_buy: bool) -> Decimal:
    """A price that crosses the book like a market order: the mid (else the oracle) ± 5 %, on the grid."""
    factor = 1 + MARKET_SLIPPAGE if is_buy else 1 - MARKET_SLIPPAGE
    reference = market.mid() or market.oracle_px
    px: Decimal = market.spec.round_price(reference * factor, up=is_buy)
    return px


def liquidate(engine: Engine, user: str, coin: str, px: Decimal | str | None = None) -> list[dict[str, Any]]:
    """Liquidate `user`'s whole position in `coin` at `px` (default: the mark) against the liquidator.

    The user's open orders in that market are canceled (`liquidatedCanceled`); the close is one
    fill without a cloid, carrying a `liquidation` field; the `user` channel gets a `liquidation`
    event. Returns the user's fill records.
    """
    acct = _account(engine, user)
    market = _market(engine, coin)
    pos = acct.positions.get(market.coin)
    if pos is None or pos.szi == 0:
        raise OpError(f"{acct.address} has no position in {market.coin} to liquidate")
    now = engine.now_ms()
    for order in [o for o in engine.open_orders(acct.address) if o.coin == market.coin]:
        engine._remove_from_book(order)
        engine._finish(order, "liquidatedCanceled", now)
    fill_px = market.mark_px if px is None else Decimal(px)
    szi = pos.szi
    side = Side.SELL if szi > 0 else Side.BUY
    order = Order(
        oid=engine._oid(),
        user=acct.address,
        coin=market.coin,
        asset=market.asset,
        side=side,
        limit_px=fill_px,
        sz=Decimal(0),
        orig_sz=abs(szi),
        timestamp=now,
        tif="Ioc",
        reduce_only=True,
        cloid=None,
        seq=engine._next_seq(),
        status="filled",
        status_timestamp=now,
    )
    engine.orders[order.oid] = order
    hash_ = engine._action_hash(LIQUIDATOR, now)
    tid = engine._tid()
    fill = engine._fill(acct, market, order, fill_px, abs(szi), now, hash_, tid, crossed=True)
    fill["liquidation"] = {"liquidatedUser": acct.address, "markPx": num(market.mark_px), "method": "market"}
    buyer, seller = (acct.address, LIQUIDATOR) if side is Side.BUY else (LIQUIDATOR, acct.address)
    trade = {
        "coin": market.coin,
        "side": side.value,
        "px": num(fill_px),
        "sz": num(abs(szi)),
        "hash": hash_,
        "time": now,
        "tid": tid,
        "users": [buyer, seller],
    }
    market.last_trade_px = fill_px
    event = {
        "liquidation": {
            "lid": tid,
            "liquidator": LIQUIDATOR,
            "liquidated_user": acct.address,
            "liquidated_ntl_pos": num(usd(abs(szi) * fill_px)),
            "liquidated_account_value": num(usd(acct.balance)),
        }
    }
    engine._events.append(Publish("userFills", acct.address, {"user": acct.address, "fills": [fill]}))
    engine._events.append(Publish("userEvents", acct.address, event))
    engine._events.append(Publish("trades", market.coin, [trade]))
    engine._fix_reduce_only(acct, market, now)
    return [fill]


def manual_close(engine: Engine, user: str, coin: str, sz: Decimal | str | None = None) -> Any:
    """Close `user`'s position (or `sz` of it) with a market order and no cloid, as the web app does."""
    acct = _account(engine, user)
    market = _market(engine, coin)
    pos = acct.positions.get(market.coin)
    if pos is None or pos.szi == 0:
        raise OpError(f"{acct.address} has no position in {market.coin} to close")
    size = abs(pos.szi) if sz is None else min(Decimal(sz), abs(pos.szi))
    is_buy = pos.szi < 0
    wire = OrderWire(market.asset, is_buy, _market_px(engine, market, is_buy), size, True, "Ioc", None)
    return engine._place(acct, wire, engine._action_hash(acct.address, engine.now_ms()))


def foreign_order(
    engine: Engine,
    user: str,
    coin: str,
    *,
    is_buy: bool,
    sz: Decimal | str,
    px: Decimal | str | None = None,
    tif: str = "Ioc",
    reduce_only: bool = False,
    cloid: str | None = None,
    rng: random.Random | None = None,
) -> Any:
    """Another client's order on `user`'s account, with its own cloid (random unless given).

    `px` defaults to a market price (mid ± 5 %); returns the order's status as the exchange
    answers it (`filled`, `resting` or `error`).
    """
    acct = _account(engine, user)
    market = _market(engine, coin)
    if tif not in ("Ioc", "Gtc", "Alo"):
        raise OpError(f"tif: expected Ioc, Gtc or Alo, got {tif!r}")
    if cloid is None:
        cloid = "0x" + (rng or random.Random()).getrandbits(128).to_bytes(16, "big").hex()
    price = _market_px(engine, market, is_buy) if px is None else Decimal(px)
    wire = OrderWire(market.asset, is_buy, price, Decimal(sz), reduce_only, tif, cloid.lower())
    return engine._place(acct, wire, engine._action_hash(acct.address, engine.now_ms()))


__all__ = ["LIQUIDATOR", "OpError", "foreign_order", "liquidate", "manual_close"]
