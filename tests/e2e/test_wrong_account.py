"""The signer check at startup, against the simulator: the two stories from issue 12.1.

1. The agent's own address configured as the account (an easy mistake): orders would land on the
   real master while every query reads the empty agent. Refused before anything is sent.
2. A key the master never approved: refused at startup, not after six order rejects.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
import trio

from hip3.hyperliquid import signing
from hip3.hyperliquid.info import open_info_client
from hip3.service.app import EXIT_REFUSED, run_bot
from hip3.service.keys import SecretKey
from hip3.sim import Sim
from tests.e2e.conftest import Accounts, FrozenMarket, bot_config, running_bot

pytestmark = pytest.mark.usefixtures("market")


async def start_refused(sim: Sim, account: str, key: SecretKey, tmp_path: Path) -> int:
    """run_bot must return by itself (a refusal), never reach READY."""
    cfg = bot_config(sim, account, tmp_path)
    with trio.fail_after(10):
        return await run_bot(cfg, key=key, handle_signals=False, mainnet_confirmed=True)


def orders_of(sim: Sim) -> list[object]:
    return list(sim.engine.orders.values())


async def test_the_agent_address_configured_as_the_account_is_refused(
    sim: Sim, accounts: Accounts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        code = await start_refused(sim, accounts.agent.address, accounts.agent, tmp_path)
    assert code == EXIT_REFUSED
    assert orders_of(sim) == []
    refusal = next(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert f"account.address {accounts.agent.address} is an API wallet (agent)" in refusal
    assert f"set account.address = {accounts.master.lower()}" in refusal


async def test_a_key_the_master_never_approved_is_refused(
    sim: Sim, accounts: Accounts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = SecretKey("0x" + secrets.token_hex(32), source="throwaway test key")
    with caplog.at_level(logging.INFO):
        code = await start_refused(sim, accounts.master, stranger, tmp_path)
    assert code == EXIT_REFUSED
    assert orders_of(sim) == []
    refusal = next(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert stranger.address in refusal and accounts.master.lower() in refusal
    assert "not an API wallet approved by" in refusal


async def test_an_agent_of_another_account_is_refused(
    sim: Sim, accounts: Accounts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = signing.address_of("0x" + secrets.token_hex(32))
    sim.engine.fund(other, 100)
    with caplog.at_level(logging.INFO):
        code = await start_refused(sim, other, accounts.agent, tmp_path)
    assert code == EXIT_REFUSED
    assert f"agent) of {accounts.master.lower()}, not of account.address {other.lower()}" in caplog.text


async def test_the_master_key_itself_and_an_approved_agent_may_trade(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    for key in (accounts.agent, SecretKey(accounts.master_key, source="throwaway master key")):
        cfg = bot_config(sim, accounts.master, tmp_path / key.address)
        async with running_bot(cfg, key) as run:
            assert run.b.trading
        assert run.code == 0


async def test_the_simulator_answers_user_role_and_extra_agents(sim: Sim, accounts: Accounts) -> None:
    async with open_info_client(sim.info_url) as info:
        master = await info.user_role(accounts.master)
        agent = await info.user_role(accounts.agent.address)
        nobody = await info.user_role(signing.address_of("0x" + secrets.token_hex(32)))
        agents = await info.extra_agents(accounts.master)
    assert master.role == "user"
    assert (agent.role, agent.master) == ("agent", accounts.master.lower())
    assert nobody.role == "missing"
    assert [a.address for a in agents] == [accounts.agent.address]
