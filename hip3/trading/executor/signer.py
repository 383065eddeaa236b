"""Turning one order into a signed /exchange body: built once, signed once (DESIGN.md rule 6).

`OrderSigner` is what the executor needs; `L1OrderSigner` is the real one (wire + L1 signing).
The private key is held only here and never appears in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs

from hip3.clock import wall_clock_ms
from hip3.core import Cloid, Price, Size

#: Default lifetime of an entry order: a dislocation lasts 1–3 s, so an entry that reaches the
#: exchange later than this is refused there rather than filled against a book that has moved on.
DEFAULT_ENTRY_EXPIRY_SECS = 2.0


def expires_after_of(body: dict[str, Any]) -> int | None:
    """The expiresAfter (exchange ms) a signed body carries, or None."""
    value = body.get("expiresAfter")
    return value if isinstance(value, int) else None


class OrderSigner(Protocol):
    def sign_order(
        self, asset: int, is_buy: bool, price: Price, size: Size, reduce_only: bool, cloid: Cloid
    ) -> dict[str, Any]:
        """Return the body `{"action", "nonce", "signature"}` for one IOC limit order."""
        ...


class NonceSource(Protocol):
    def next(self) -> int: ...


@attrs.define
class L1OrderSigner:
    """Signs IOC orders with an API-wallet key (no vault: `vaultAddress` is omitted).

    Entries (not reduce-only) carry `expiresAfter` = now + `entry_expiry_secs` (None: no expiry),
    so the exchange refuses an entry that arrives late ("Action already expired"). Flattens never
    expire: a late close is still wanted.
    """

    private_key: str = attrs.field(repr=False)
    is_mainnet: bool
    nonces: NonceSource | None = None
    entry_expiry_secs: float | None = DEFAULT_ENTRY_EXPIRY_SECS
    now_ms: Callable[[], int] = wall_clock_ms

    def sign_order(
        self, asset: int, is_buy: bool, price: Price, size: Size, reduce_only: bool, cloid: Cloid
    ) -> dict[str, Any]:
        # Imported here so the executor's rules can be used and tested without the protocol layer.
        from hip3.hyperliquid import signing, wire

        if self.nonces is None:
            self.nonces = signing.NonceManager()
        order = wire.order_wire(asset, is_buy, price, size, reduce_only, "Ioc", cloid=str(cloid))
        action = wire.order_action([order])
        nonce = self.nonces.next()
        expires_after = None
        if not reduce_only and self.entry_expiry_secs is not None:
            expires_after = self.now_ms() + round(self.entry_expiry_secs * 1000)
        signature = signing.sign_l1_action(
            self.private_key, action, nonce, is_mainnet=self.is_mainnet, expires_after=expires_after
        )
        body: dict[str, Any] = {"action": action, "nonce": nonce, "signature": signature}
        if expires_after is not None:
            body["expiresAfter"] = expires_after
        return body
