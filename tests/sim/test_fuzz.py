"""Arbitrary JSON never crashes the engine: it answers, or raises BadRequest (HTTP 422)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hip3.sim.config import load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.info import handle_info
from hip3.sim.requests import BadRequest

from .helpers import NOW_MS, TSLA, SdkClient

CONFIG = load_sim_config(None)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    ["a", "b", "p", "s", "r", "t", "c", "type", "orders", "grouping", "cancels", "o", "nonce"]
)


def _engine() -> Engine:
    engine = Engine(CONFIG, clock_ms=lambda: NOW_MS)
    engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
    return engine


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_exchange_bodies(body: Any) -> None:
    try:
        response = _engine().handle_exchange(body)
    except BadRequest as exc:
        assert exc.message.startswith("Failed to deserialize the JSON body into the target type: ")
    else:
        assert response["status"] in ("ok", "err")


CLIENT = SdkClient()
VALID = CLIENT.order(TSLA, True, "100.1", "0.5", cloid="0x" + "11" * 16)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys, json_values)
def test_mutated_order_fields(key: str, value: Any) -> None:
    body = {**VALID, "action": {**VALID["action"], "orders": [dict(VALID["action"]["orders"][0])]}}
    if key in ("type", "orders", "grouping", "cancels"):
        body["action"][key] = value
    elif key == "nonce":
        body["nonce"] = value
    else:
        body["action"]["orders"][0][key] = value
    engine = _engine()
    engine.fund(CLIENT.address, 1000)
    try:
        response = engine.handle_exchange(body)
    except BadRequest:
        return
    assert response["status"] in ("ok", "err")


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "user", "dex", "coin", "oid", "startTime", "endTime"]), json_values
    )
)
def test_random_info_requests(body: dict[str, Any]) -> None:
    engine = _engine()
    for kind in ("clearinghouseState", "orderStatus", "userFillsByTime", "l2Book", "openOrders", None):
        request = dict(body) if kind is None else {**body, "type": kind}
        try:
            handle_info(engine, request)
        except BadRequest:
            pass
