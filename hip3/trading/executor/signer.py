"""Turning one order into a signed /exchange body: built once, signed once (DESIGN.md rule 6).

`OrderSigner` is what the executor needs; `L1OrderSigner` is the real one (wire + L1 signing).
The private key is held only here and never appears in a repr, a log line or an error.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from hip3.core import Cloid, Price, Size


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
    """Signs IOC orders with an API-wallet key (no vault: `vaultAddress` is omitted)."""

    private_key: str = attrs.field(repr=False)
    is_mainnet: bool
    nonces: NonceSource | None = None

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
        signature = signing.sign_l1_action(self.private_key, action, nonce, is_mainnet=self.is_mainnet)
        return {"action": action, "nonce": nonce, "signature": signature}
