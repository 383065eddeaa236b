"""Test helpers: an independent client built on the official Hyperliquid SDK, and WS utilities."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any

import trio
from eth_account import Account
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid as SdkCloid

NOW_MS = 1_700_000_000_000
TSLA = 110000  # xyz:TSLA, szDecimals 3
NVDA = 110001


class SdkClient:
    """Signs actions with the official SDK (not with hip3's own signing code)."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key or "0x" + secrets.token_hex(32)
        self.wallet = Account.from_key(self.key)
        self.address = self.wallet.address.lower()
        self._nonce = NOW_MS

    def next_nonce(self) -> int:
        self._nonce += 1
        return self._nonce

    def sign(
        self,
        action: dict[str, Any],
        *,
        nonce: int | None = None,
        vault: str | None = None,
        expires_after: int | None = None,
        is_mainnet: bool = False,  # the simulator's default
    ) -> dict[str, Any]:
        nonce = self.next_nonce() if nonce is None else nonce
        signature = sign_l1_action(self.wallet, action, vault, nonce, expires_after, is_mainnet)
        return {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": vault,
            "expiresAfter": expires_after,
        }

    @staticmethod
    def order_action(
        asset: int,
        is_buy: bool,
        px: str | Decimal,
        sz: str | Decimal,
        tif: str = "Ioc",
        reduce_only: bool = False,
        cloid: str | None = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "coin": "unused",
            "is_buy": is_buy,
            "sz": float(sz),
            "limit_px": float(px),
            "order_type": {"limit": {"tif": tif}},
            "reduce_only": reduce_only,
            "cloid": SdkCloid.from_str(cloid) if cloid else None,
        }
        return order_wires_to_order_action([order_request_to_order_wire(request, asset)])  # type: ignore[arg-type]

    def order(
        self, asset: int, is_buy: bool, px: str | Decimal, sz: str | Decimal, tif: str = "Ioc", **kw: Any
    ) -> dict[str, Any]:
        reduce_only = kw.pop("reduce_only", False)
        cloid = kw.pop("cloid", None)
        return self.sign(self.order_action(asset, is_buy, px, sz, tif, reduce_only, cloid), **kw)

    def cancel(self, asset: int, oid: int, **kw: Any) -> dict[str, Any]:
        return self.sign({"type": "cancel", "cancels": [{"a": asset, "o": oid}]}, **kw)


def statuses(response: dict[str, Any]) -> list[Any]:
    assert response["status"] == "ok", response
    return response["response"]["data"]["statuses"]


async def recv_json(ws: Any, timeout: float = 2.0) -> Any:
    with trio.fail_after(timeout):
        text = await ws.get_message()
    return json.loads(text)


async def wait_for(ws: Any, predicate: Any, timeout: float = 2.0) -> Any:
    """Read frames until one (parsed) satisfies `predicate`; skips others."""
    with trio.fail_after(timeout):
        while True:
            text = await ws.get_message()
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if predicate(msg):
                return msg


async def send_json(ws: Any, value: Any) -> None:
    await ws.send_message(json.dumps(value))
