"""POST /info answers, built from engine state in the exchange's shapes (numbers as strings)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from hip3.core import Side
from hip3.sim.engine import Engine, Market
from hip3.sim.render import num, px_text, usd
from hip3.sim.requests import BadRequest, check_keys, need_address, need_int, need_map, need_str

INFO_TYPES = (
    "perpDexs",
    "meta",
    "metaAndAssetCtxs",
    "l2Book",
    "allMids",
    "clearinghouseState",
    "openOrders",
    "frontendOpenOrders",
    "orderStatus",
    "userFills",
    "userFillsByTime",
    "spotMeta",
    "userRole",
    "extraAgents",
    "userFees",
)

FEE_SCALE_CHANGED = "2026-09-29T00:00:00.000000000"  # a fixed, plausible time: nothing reads it
FUNDING = "0.0000125"  # the hourly funding shown in every ctx (funding is not simulated)
MAX_FILLS = 2000


def handle_info(engine: Engine, body: Any) -> Any:
    """Answer one info request; raises `BadRequest` (HTTP 422) for a body the exchange could not read."""
    request = need_map(body, "")
    kind = request.get("type")
    if not isinstance(kind, str):
        raise BadRequest(
            "missing field `type`" if kind is None else f"type: invalid type, expected a string, got {kind!r}"
        )
    if kind not in INFO_TYPES:
        raise BadRequest(
            f"unknown variant `{kind}`, expected one of {', '.join(f'`{t}`' for t in INFO_TYPES)}"
        )
    dex = request.get("dex", "")
    if not isinstance(dex, str):
        raise BadRequest(f"dex: invalid type: expected a string, got {dex!r}")
    ours = dex == engine.config.dex
    match kind:
        case "perpDexs":
            return perp_dexs(engine)
        case "spotMeta":
            return {"universe": [], "tokens": []}  # no spot markets (the SDK's Info asks at start)
        case "meta":
            return meta(engine, ours)
        case "metaAndAssetCtxs":
            return [meta(engine, ours), [asset_ctx(m) for m in engine.markets.values()] if ours else []]
        case "l2Book":
            coin = need_str(request.get("coin"), "coin")
            market = engine.markets.get(coin)
            return l2_book(engine, market) if market is not None else None
        case "allMids":
            return all_mids(engine) if ours else {}
        case "clearinghouseState":
            user = need_address(request.get("user"), "user")
            return clearinghouse_state(engine, user, ours)
        case "openOrders":
            user = need_address(request.get("user"), "user")
            return [o.wire() for o in engine.open_orders(user)] if ours else []
        case "frontendOpenOrders":
            user = need_address(request.get("user"), "user")
            return [o.frontend() for o in engine.open_orders(user)] if ours else []
        case "orderStatus":
            user = need_address(request.get("user"), "user")
            ident = request.get("oid")
            if isinstance(ident, str):
                return engine.order_status(user, ident)
            return engine.order_status(user, need_int(ident, "oid"))
        case "userFills":
            check_keys(request, ("type", "user", "aggregateByTime"), "")
            user = need_address(request.get("user"), "user")
            return list(reversed(engine.fills(user)))[:MAX_FILLS]
        case "userFees":
            user = need_address(request.get("user"), "user")
            return user_fees(engine, user)
        case "userFillsByTime":
            user = need_address(request.get("user"), "user")
            start = need_int(request.get("startTime"), "startTime")
            end_raw = request.get("endTime")
            end = None if end_raw is None else need_int(end_raw, "endTime")
            fills = [
                f for f in engine.fills(user) if f["time"] >= start and (end is None or f["time"] <= end)
            ]
            return fills[:MAX_FILLS]
        case "userRole":
            return user_role(engine, need_address(request.get("user"), "user"))
        case "extraAgents":
            return extra_agents(engine, need_address(request.get("user"), "user"))
    raise AssertionError(kind)


#: How long the simulator's agent approvals stay valid (it never expires them).
AGENT_VALIDITY_MS = 180 * 24 * 3600 * 1000


def user_role(engine: Engine, address: str) -> dict[str, Any]:
    """What the exchange says an address is: an agent (with its master), an account, a vault, or missing."""
    master = engine.agents.get(address)
    if master is not None:
        return {"role": "agent", "data": {"user": master}}
    if address in engine.vaults:
        return {"role": "vault"}
    if address in engine.accounts:
        return {"role": "user"}
    return {"role": "missing"}


def extra_agents(engine: Engine, user: str) -> list[dict[str, Any]]:
    """The agents `user` approved (the simulator names none: all are listed unnamed)."""
    until = engine.now_ms() + AGENT_VALIDITY_MS
    return [
        {"name": "", "address": agent, "validUntil": until}
        for agent, master in sorted(engine.agents.items())
        if master == user
    ]


def perp_dexs(engine: Engine) -> list[Any]:
    cfg = engine.config
    dexes: list[Any] = [None] * cfg.perp_dex_index
    names = sorted(m.coin for m in cfg.markets)
    dexes.append(
        {
            "name": cfg.dex,
            "fullName": cfg.dex_full_name,
            "deployer": "0x0000000000000000000000000000000000000de9",
            "oracleUpdater": None,
            "feeRecipient": None,
            # key-sorted, not in meta order, as on the exchange
            "assetToStreamingOiCap": [[f"{cfg.dex}:{c}", "100000000.0"] for c in names],
            "assetToFundingMultiplier": [[f"{cfg.dex}:{c}", "1.0"] for c in names],
        }
    )
    # indexes between 1 and ours hold other builders' dexes; keep them non-null placeholders
    for i in range(1, cfg.perp_dex_index):
        dexes[i] = {
            "name": f"dx{i}",
            "fullName": f"other dex {i}",
            "deployer": "0x" + "00" * 19 + f"{i:02x}",
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [],
            "assetToFundingMultiplier": [],
        }
    return dexes


def meta(engine: Engine, ours: bool) -> dict[str, Any]:
    if not ours:
        return {"universe": [], "marginTables": [], "collateralToken": 0}
    universe = []
    tables: dict[int, Any] = {}
    for market in engine.markets.values():
        spec = market.spec
        table_id = 50 + spec.max_leverage
        tables[table_id] = {
            "description": "",
            "marginTiers": [{"lowerBound": "0.0", "maxLeverage": spec.max_leverage}],
        }
        entry: dict[str, Any] = {
            "szDecimals": spec.sz_decimals,
            "name": market.coin,
            "maxLeverage": spec.max_leverage,
            "marginTableId": table_id,
            "onlyIsolated": True,
            "marginMode": "strictIsolated",
            # per-asset fees (reference §11): the HIP-3 multiplier is scale + max(scale, 1), × 0.1 in growth mode
            "deployerFeeScale": num(market.fee_scale),
            "lastFeeScaleChangeTime": FEE_SCALE_CHANGED,
        }
        if market.growth_mode:  # absent = not in growth mode (as for an ineligible asset)
            entry["growthMode"] = "enabled"
            entry["lastGrowthModeChangeTime"] = FEE_SCALE_CHANGED
        if market.halted:
            entry["isDelisted"] = True
        universe.append(entry)
    return {
        "universe": universe,
        "marginTables": [[k, v] for k, v in sorted(tables.items())],
        "collateralToken": 0,
    }


def asset_ctx(market: Market) -> dict[str, Any]:
    bid, ask = market.best(Side.BUY), market.best(Side.SELL)
    mid = market.mid()
    oi = market.open_interest
    premium = (mid - market.oracle_px) / market.oracle_px if mid is not None else None
    return {
        "funding": FUNDING,
        "openInterest": num(oi),
        "prevDayPx": num(market.start_px),
        "dayNtlVlm": num(usd(market.day_ntl_vlm)),
        "premium": px_text(premium) if premium is not None else None,
        "oraclePx": num(market.oracle_px),
        "markPx": num(market.mark_px),
        "midPx": px_text(mid) if mid is not None else None,
        "impactPxs": [num(bid.limit_px), num(ask.limit_px)] if bid and ask else None,
        "dayBaseVlm": num(market.day_base_vlm),
    }


def book_level(px: Decimal, sz: Decimal, n: int) -> dict[str, Any]:
    return {"px": num(px), "sz": num(sz), "n": n}


def l2_book(engine: Engine, market: Market, depth: int = 20) -> dict[str, Any]:
    return {
        "coin": market.coin,
        "time": engine.now_ms(),
        "levels": [
            [book_level(*lvl) for lvl in market.levels(Side.BUY, depth)],
            [book_level(*lvl) for lvl in market.levels(Side.SELL, depth)],
        ],
    }


def bbo(engine: Engine, market: Market) -> dict[str, Any]:
    sides = []
    for side in (Side.BUY, Side.SELL):
        levels = market.levels(side, 1)
        sides.append(book_level(*levels[0]) if levels else None)
    return {"coin": market.coin, "time": engine.now_ms(), "bbo": sides}


def all_mids(engine: Engine) -> dict[str, str]:
    out = {}
    for market in engine.markets.values():
        mid = market.mid()
        if mid is None:
            mid = market.last_trade_px
        if mid is not None:
            out[market.coin] = px_text(mid)
    return out


def clearinghouse_state(engine: Engine, user: str, ours: bool) -> dict[str, Any]:
    acct = engine.account(user) if ours else None
    positions = []
    ntl = margin_used = upnl_total = Decimal(0)
    if acct is not None:
        for coin, pos in acct.positions.items():
            if pos.szi == 0:
                continue
            market = engine.markets[coin]
            leverage = engine.leverage_for(acct, market)
            value = abs(pos.szi) * market.mark_px
            upnl = (market.mark_px - pos.entry_px) * pos.szi
            ntl += value
            margin_used += pos.margin + upnl
            upnl_total += upnl
            roe = upnl / pos.margin if pos.margin else Decimal(0)
            # isolated: liquidation when margin + upnl falls to maintenance (half the initial rate)
            maint = Decimal(1) / (2 * market.spec.max_leverage)
            liq = (pos.entry_px * pos.szi - pos.margin) / (pos.szi - maint * abs(pos.szi))
            raw_usd = (
                pos.margin - pos.entry_px * pos.szi
            )  # HL's rawUsd: collateral minus the signed entry notional
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": coin,
                        "szi": num(pos.szi),
                        "leverage": {"type": "isolated", "value": leverage, "rawUsd": num(usd(raw_usd))},
                        "entryPx": px_text(pos.entry_px),
                        "positionValue": num(usd(value)),
                        "unrealizedPnl": num(usd(upnl)),
                        "returnOnEquity": px_text(roe),
                        "liquidationPx": px_text(liq) if liq > 0 else None,
                        "marginUsed": num(usd(pos.margin + upnl)),
                        "maxLeverage": market.spec.max_leverage,
                        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                    },
                }
            )
    balance = acct.balance if acct is not None else Decimal(0)
    withdrawable = engine.available(acct) if acct is not None else Decimal(0)
    account_value = balance + margin_used
    summary = {
        "accountValue": num(usd(account_value)),
        "totalNtlPos": num(usd(ntl)),
        "totalRawUsd": num(usd(account_value - upnl_total - ntl)),
        "totalMarginUsed": num(usd(margin_used)),
    }
    return {
        "marginSummary": summary,
        "crossMarginSummary": {
            "accountValue": num(usd(balance)),
            "totalNtlPos": "0.0",
            "totalRawUsd": num(usd(balance)),
            "totalMarginUsed": "0.0",
        },
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": num(usd(max(withdrawable, Decimal(0)))),
        "assetPositions": positions,
        "time": engine.now_ms(),
    }


def user_fees(engine: Engine, user: str) -> dict[str, Any]:
    """The account's fee rates as `userFees` reports them: base rates before the HIP-3 multiplier."""
    acct = engine.account(user)
    rates = acct.rates if acct is not None else engine.default_rates
    cross = acct.cross_volume if acct is not None else Decimal(0)
    add = acct.add_volume if acct is not None else Decimal(0)
    today = time.strftime("%Y-%m-%d", time.gmtime(engine.now_ms() / 1000))
    return {
        "dailyUserVlm": [
            {"date": today, "userCross": num(usd(cross)), "userAdd": num(usd(add)), "exchange": "0.0"}
        ],
        "feeSchedule": {
            "cross": num(engine.default_rates.cross),
            "add": num(engine.default_rates.add),
            "spotCross": "0.0007",
            "spotAdd": "0.0004",
            "tiers": {"vip": [], "mm": []},
            "referralDiscount": "0.04",
            "stakingDiscountTiers": [{"bpsOfMaxSupply": "0.0", "discount": "0.0"}],
        },
        "userCrossRate": num(rates.cross),
        "userAddRate": num(rates.add),
        "userSpotCrossRate": "0.0007",
        "userSpotAddRate": "0.0004",
        "activeReferralDiscount": num(rates.referral_discount),
        "trial": None,
        "feeTrialEscrow": "0.0",
        "nextTrialAvailableTimestamp": None,
        "stakingLink": None,
        "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": num(rates.staking_discount)},
    }
