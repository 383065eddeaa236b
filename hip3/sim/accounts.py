"""Throwaway accounts for demos: a fresh master and an approved agent key, generated per run."""

from __future__ import annotations

import secrets
from decimal import Decimal

from attrs import frozen

from hip3.hyperliquid.signing import address_of
from hip3.sim.engine import Engine


@frozen(repr=False)
class ThrowawayAccount:
    """A funded master and its agent. `agent_key` signs; it is generated here and worth nothing."""

    master: str
    agent: str
    agent_key: str

    def __repr__(self) -> str:  # never show the key by accident
        return f"ThrowawayAccount(master={self.master}, agent={self.agent})"


def create_throwaway_account(
    engine: Engine, balance: Decimal = Decimal(10000), leverage: int = 5
) -> ThrowawayAccount:
    """Fund a new random master and approve a new random agent for it."""
    master = address_of("0x" + secrets.token_hex(32))  # the master key is discarded: only the agent signs
    agent_key = "0x" + secrets.token_hex(32)
    agent = address_of(agent_key)
    engine.fund(master, balance, leverage=leverage)
    engine.approve_agent(master, agent)
    return ThrowawayAccount(master, agent, agent_key)
