"""Entries carry expiresAfter (flattens do not); an expired entry is refused and the refusal is benign."""

from __future__ import annotations

import secrets
from decimal import Decimal

import attrs
import pytest
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action as sdk_sign_l1_action

from hip3.core import Cloid, Price, Size
from hip3.hyperliquid.events import ActionErr, ActionOk, Filled
from hip3.hyperliquid.parse import parse_action_response
from hip3.hyperliquid.signing import NonceManager, address_of
from hip3.sim.config import load_sim_config
from hip3.sim.engine import Engine
from hip3.trading.executor.signer import L1OrderSigner, expires_after_of
from hip3.trading.hardstop import is_benign_reject

NOW_MS = 1_700_000_000_000
TSLA = 110000  # first market of the shipped simulator


def signer(key: str, now_ms: int, expiry: float | None = 2.0) -> L1OrderSigner:
    return L1OrderSigner(
        key,
        is_mainnet=True,
        nonces=NonceManager(now_ms=lambda: now_ms),
        entry_expiry_secs=expiry,
        now_ms=lambda: now_ms,
    )


def test_entry_carries_expires_after_and_the_signature_covers_it() -> None:
    key = "0x" + secrets.token_hex(32)
    body = signer(key, NOW_MS).sign_order(
        TSLA, True, Price(Decimal("432.1")), Size(Decimal("0.1")), False, Cloid.random()
    )
    assert body["expiresAfter"] == NOW_MS + 2000 == expires_after_of(body)
    wallet = Account.from_key(key)
    expected = sdk_sign_l1_action(wallet, body["action"], None, body["nonce"], NOW_MS + 2000, True)
    assert body["signature"] == expected


def test_flattens_never_expire_and_expiry_can_be_off() -> None:
    key = "0x" + secrets.token_hex(32)
    flatten = signer(key, NOW_MS).sign_order(
        TSLA, False, Price(Decimal("430")), Size(Decimal("0.1")), True, Cloid.random()
    )
    assert "expiresAfter" not in flatten and expires_after_of(flatten) is None
    entry = signer(key, NOW_MS, expiry=None).sign_order(
        TSLA, True, Price(Decimal("432.1")), Size(Decimal("0.1")), False, Cloid.random()
    )
    assert "expiresAfter" not in entry


def test_the_exchange_refuses_a_late_entry_and_the_refusal_is_benign() -> None:
    clock = [NOW_MS]
    # this test signs mainnet-style (as the SDK comparison above): the simulator switched to match
    engine = Engine(attrs.evolve(load_sim_config(None), is_mainnet=True), clock_ms=lambda: clock[0])
    engine.set_oracle("TSLA", "100.1")
    engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
    key = "0x" + secrets.token_hex(32)
    engine.fund(address_of(key), 10_000)
    sign = signer(key, NOW_MS)
    late = sign.sign_order(TSLA, True, Price(Decimal("100.1")), Size(Decimal("0.2")), False, Cloid.random())
    in_time = sign.sign_order(
        TSLA, True, Price(Decimal("100.1")), Size(Decimal("0.2")), False, Cloid.random()
    )
    # One that arrives within its 2 s fills.
    clock[0] = NOW_MS + 1500
    filled = parse_action_response(engine.handle_exchange(in_time))
    assert isinstance(filled, ActionOk) and isinstance(filled.statuses[0], Filled)
    # One that arrives 2.5 s after it was signed is refused, and nothing more is filled.
    clock[0] = NOW_MS + 2500
    refused = parse_action_response(engine.handle_exchange(late))
    assert isinstance(refused, ActionErr) and is_benign_reject(refused.message), refused
    assert engine.position(address_of(key), "TSLA") == Decimal("0.2")


# ---------------------------------------------------------------------------------------------
# Resolving an unanswered entry: its expiry bounds the wait


async def _unanswered_entry_resolved_after(expiry_ms: int | None) -> float | None:
    """Trio seconds until an entry whose post got no answer is resolved as never executed."""
    import trio

    from hip3.hyperliquid.events import OrderStatusResult
    from hip3.hyperliquid.ws import ConnectionLost
    from tests.fakes.trading import TSLA, Side, signal
    from tests.trading.test_executor import running

    async with running() as h:
        plain = h.signer.sign_order

        def with_expiry(*args: object) -> dict[str, object]:
            body = plain(*args)  # type: ignore[arg-type]
            if expiry_ms is not None:
                body["expiresAfter"] = 1_700_000_000_000 + expiry_ms  # the harness's exchange clock
            return body

        h.signer.sign_order = with_expiry  # type: ignore[method-assign, assignment]
        h.ws.raise_exc = ConnectionLost("dropped")
        h.info.status_answers = [OrderStatusResult(known=False)]
        start = trio.current_time()
        await h.signals.send(signal(TSLA, Side.BUY, "250", "1"))
        while not h.tracker.resolved and trio.current_time() - start < 30:
            await trio.sleep(0.05)
        return trio.current_time() - start if h.tracker.resolved else None


async def test_an_expired_entry_is_final_without_waiting_for_the_grace(autojump_clock: object) -> None:
    from hip3.trading.executor.resolution import EXPIRY_MARGIN_SECS
    from hip3.trading.executor.task import ExecutorParams

    without = await _unanswered_entry_resolved_after(None)
    with_expiry = await _unanswered_entry_resolved_after(2000)
    grace = ExecutorParams().unknown_oid_grace_secs
    assert without is not None and without >= grace  # "unknownOid" may mean "not in a block yet"
    # 2 s expiry + the margin: after that the exchange can no longer execute it.
    assert with_expiry is not None and with_expiry < grace
    assert with_expiry == pytest.approx(2.0 + EXPIRY_MARGIN_SECS, abs=0.1)
