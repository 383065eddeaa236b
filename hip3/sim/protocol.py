"""The simulator's use of the shared protocol layer (one place to adapt if its API moves)."""

from __future__ import annotations

from typing import Any

from hip3.hyperliquid.signing import recover_l1_signer as _recover
from hip3.hyperliquid.wire import WireError
from hip3.hyperliquid.wire import canonical_action as _canonical
from hip3.sim.requests import BadRequest


def canonical_action(action: dict[str, Any]) -> dict[str, Any]:
    """The action rebuilt in hash order; a field the exchange could not deserialize is a 422."""
    try:
        return _canonical(action)
    except WireError as exc:
        raise BadRequest(str(exc)) from None


def recover_l1_signer(
    action: dict[str, Any],
    nonce: int,
    signature: dict[str, Any],
    *,
    is_mainnet: bool,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> str:
    return _recover(
        action,
        nonce,
        signature,
        is_mainnet=is_mainnet,
        vault_address=vault_address,
        expires_after=expires_after,
    )
