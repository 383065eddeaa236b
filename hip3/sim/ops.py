"""Runtime operations on a running simulator, in-process (`run_op(sim, op)`) or over HTTP
(`POST /control` with the same JSON object) for a simulator in its own process.

Each operation is `{"op": NAME, ...arguments}`; the answer is JSON. Operations:

* `liquidate` {user, coin, px?} — a liquidation of the user's position (fills without a cloid)
* `manual_close` {user, coin, sz?} — a market close without a cloid, as the web app sends it
* `foreign_order` {user, coin, is_buy, sz, px?, tif?, reduce_only?, cloid?} — another client's
  order on the account, with its own cloid
* `halt` / `resume_trading` {coin}; `set_oracle` {coin, px}; `internal_pricing` {on, coins?}
* `fault` {name, value} — set a `Faults` switch; `disconnect_all` {}
* `dislocations` {} — the dislocation records so far (for scoring a run from outside)

Only on the simulator's loopback port; it is a test double, not an exchange.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hip3.sim.faults import FAULT_NAMES
from hip3.sim.foreign import OpError, foreign_order, liquidate, manual_close
from hip3.sim.render import num

if TYPE_CHECKING:
    from hip3.sim.server import Sim

OP_NAMES = (
    "liquidate",
    "manual_close",
    "foreign_order",
    "halt",
    "resume_trading",
    "set_oracle",
    "internal_pricing",
    "fault",
    "disconnect_all",
    "dislocations",
)


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise OpError(f"{key}: expected a string, got {value!r}")
    return value


def _dec(body: dict[str, Any], key: str, *, required: bool = True) -> Decimal | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise OpError(f"{key}: expected a number as a string, got {value!r}")
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise OpError(f"{key}: not a number: {value!r}") from None
    if not result.is_finite() or result <= 0:
        raise OpError(f"{key}: expected a positive number, got {value!r}")
    return result


def _fault_value(name: str, current: Any, value: Any) -> Any:
    """A new value for fault `name`, of the same kind as its current one."""
    if isinstance(current, set):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OpError(f"value: {name} expects a list of coins, got {value!r}")
        return set(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise OpError(f"value: {name} expects true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise OpError(f"value: {name} expects a number >= 0, got {value!r}")
    return int(value) if isinstance(current, int) else float(value)


def _dislocation(d: Any) -> dict[str, Any]:
    return {
        "coin": d.coin,
        "side": d.side.value,
        "openedMs": d.opened_ms,
        "closedMs": d.closed_ms,
        "costBps": num(d.cost_bps),
        "bestEdgeBps": num(d.best_edge_bps.quantize(Decimal("0.0001"))),
        "bestMs": d.best_ms,
        "bestPx": num(d.best_px),
        "bestSz": num(d.best_sz),
        "oraclePx": num(d.oracle_px),
        "taken": [[who, num(sz)] for who, sz in d.taken],
        "pulled": d.pulled,
    }


def run_op(sim: Sim, body: Any) -> Any:
    """Apply one operation now and publish what it caused; raises `OpError` naming what was wrong."""
    if not isinstance(body, dict):
        raise OpError(f"expected a JSON object with an 'op', got {body!r}")
    op = body.get("op")
    engine = sim.engine
    try:
        match op:
            case "liquidate":
                result: Any = liquidate(
                    engine, _str(body, "user"), _str(body, "coin"), _dec(body, "px", required=False)
                )
            case "manual_close":
                result = manual_close(
                    engine, _str(body, "user"), _str(body, "coin"), _dec(body, "sz", required=False)
                )
            case "foreign_order":
                is_buy = body.get("is_buy")
                if not isinstance(is_buy, bool):
                    raise OpError(f"is_buy: expected true or false, got {is_buy!r}")
                cloid = body.get("cloid")
                if cloid is not None and not isinstance(cloid, str):
                    raise OpError(f"cloid: expected a 0x-prefixed 32-hex-digit string, got {cloid!r}")
                sz = _dec(body, "sz")
                assert sz is not None
                result = foreign_order(
                    engine,
                    _str(body, "user"),
                    _str(body, "coin"),
                    is_buy=is_buy,
                    sz=sz,
                    px=_dec(body, "px", required=False),
                    tif=body.get("tif", "Ioc"),
                    reduce_only=bool(body.get("reduce_only", False)),
                    cloid=cloid,
                    rng=sim.ops_rng,
                )
            case "halt":
                engine.halt(_str(body, "coin"))
                result = "ok"
            case "resume_trading":
                engine.resume_trading(_str(body, "coin"))
                result = "ok"
            case "set_oracle":
                px = _dec(body, "px")
                assert px is not None
                engine.set_oracle(_str(body, "coin"), px, freeze=bool(body.get("freeze", True)))
                result = "ok"
            case "internal_pricing":
                coins = body.get("coins")
                sim.model.set_internal_pricing(bool(body.get("on", True)), coins)
                result = "ok"
            case "fault":
                name = _str(body, "name")
                if name not in FAULT_NAMES:
                    raise OpError(f"name: unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})")
                setattr(sim.faults, name, _fault_value(name, getattr(sim.faults, name), body.get("value")))
                result = "ok"
            case "disconnect_all":
                sim.disconnect_all()
                result = "ok"
            case "dislocations":
                return [_dislocation(d) for d in sim.dislocations()]
            case _:
                raise OpError(f"op: expected one of {', '.join(OP_NAMES)}, got {op!r}")
    except KeyError as exc:
        raise OpError(str(exc.args[0])) from None
    sim.after_action()
    return result


__all__ = ["OP_NAMES", "OpError", "run_op"]
