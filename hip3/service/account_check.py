"""Startup check that the signing key may trade `account.address`, before anything is sent.

The exchange attributes a signed order to the signer's master: the signer itself when it is an
account, its approving account when it is an API wallet (agent). Queries, on the other hand, use
the configured address. So an agent's own address configured as the account trades the real
master while every position query reads an empty account, and a key nobody approved is refused
order by order only. Both are refused here, naming which address is which.
"""

from __future__ import annotations

import logging

from hip3.hyperliquid.events import ExtraAgent, UserRole
from hip3.hyperliquid.info import InfoClient

log = logging.getLogger(__name__)

#: Warn when the agent's approval ends sooner than this (ms).
EXPIRY_WARNING_MS = 7 * 24 * 3600 * 1000


class SignerRefused(Exception):
    """The key cannot trade the configured account; the message says which address is which."""


def account_problem(account: str, role: UserRole) -> str | None:
    """Why `account` (account.address) cannot be the traded account, or None."""
    match role.role:
        case "user":
            return None
        case "agent":
            return (
                f"account.address {account} is an API wallet (agent) of the account {role.master}, not an "
                f"account: orders would trade {role.master} while every query reads the empty agent; "
                f"set account.address = {role.master}"
            )
        case "missing":
            return (
                f"account.address {account} is unknown to the exchange (no deposit): check the address "
                "and the network"
            )
        case "vault" | "subAccount":
            owner = f" of {role.master}" if role.master else ""
            return (
                f"account.address {account} is a {role.role}{owner}: trading it needs a vaultAddress on "
                "every order, which hip3 does not send; use the account itself"
            )
    return f"account.address {account}: unexpected role {role.role!r} from the exchange"


def signer_problem(account: str, signer: str, role: UserRole) -> str | None:
    """Why the key with address `signer` may not trade `account`, or None. `role` is the signer's."""
    if role.role == "agent" and role.master == account:
        return None
    match role.role:
        case "agent":
            return (
                f"the signing key's address {signer} is an API wallet (agent) of {role.master}, not of "
                f"account.address {account}: its orders would trade {role.master}"
            )
        case "missing":
            return (
                f"the signing key's address {signer} is not an API wallet approved by account.address "
                f"{account} (the exchange does not know it): approve it from {account}, or use the right key"
            )
    return (
        f"the signing key's address {signer} is itself a {role.role}, not an API wallet of account.address "
        f"{account}: its orders would trade {signer}"
    )


def expiry_problem(
    account: str, signer: str, agents: list[ExtraAgent], now_ms: int
) -> tuple[str | None, str | None]:
    """(refusal, warning) from the agent's listed validity; unnamed agents are not listed."""
    for agent in agents:
        if agent.address != signer or agent.valid_until is None:
            continue
        if agent.valid_until <= now_ms:
            return (f"the API wallet {signer} of {account} ({agent.name or 'unnamed'}) has expired"), None
        if agent.valid_until - now_ms < EXPIRY_WARNING_MS:
            days = (agent.valid_until - now_ms) / 86_400_000
            return None, f"the API wallet {signer} of {account} expires in {days:.1f} days: approve a new one"
    return None, None


async def verify_signer(info: InfoClient, account: str, signer: str, now_ms: int) -> None:
    """Raise `SignerRefused` unless `signer` is `account` itself or an agent `account` approved.

    Query failures raise `hip3.hyperliquid.info.InfoError` (unknown is not approved).
    """
    account, signer = account.lower(), signer.lower()
    problem = account_problem(account, await info.user_role(account))
    if problem is not None:
        raise SignerRefused(problem)
    if signer == account:
        log.warning(
            "signing with the account's own key %s: an API wallet (agent) key limits the damage of a leak",
            signer,
        )
        return
    problem = signer_problem(account, signer, await info.user_role(signer))
    if problem is not None:
        raise SignerRefused(problem)
    refusal, warning = expiry_problem(account, signer, await info.extra_agents(account), now_ms)
    if refusal is not None:
        raise SignerRefused(refusal)
    if warning is not None:
        log.warning("%s", warning)
    log.info("signer %s is an API wallet approved by account %s", signer, account)
