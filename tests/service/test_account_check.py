"""The signer check's rules, one case per role the exchange can answer."""

from __future__ import annotations

import pytest

from hip3.hyperliquid.events import ExtraAgent, UserRole
from hip3.hyperliquid.parse import ParseError, parse_extra_agents, parse_user_role
from hip3.service.account_check import EXPIRY_WARNING_MS, account_problem, expiry_problem, signer_problem

MASTER = "0x" + "aa" * 20
AGENT = "0x" + "bb" * 20
OTHER = "0x" + "cc" * 20
NOW = 1_800_000_000_000


def test_parse_user_role_shapes() -> None:
    assert parse_user_role({"role": "user"}) == UserRole("user")
    assert parse_user_role(
        {"role": "agent", "data": {"user": MASTER.upper().replace("0X", "0x")}}
    ) == UserRole("agent", MASTER)
    assert parse_user_role({"role": "subAccount", "data": {"master": MASTER}}) == UserRole(
        "subAccount", MASTER
    )
    with pytest.raises(ParseError, match=r"data\.user"):
        parse_user_role({"role": "agent"})
    assert parse_extra_agents([{"name": "bot", "address": AGENT, "validUntil": NOW}]) == [
        ExtraAgent("bot", AGENT, NOW)
    ]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (UserRole("user"), None),
        (UserRole("agent", MASTER), f"set account.address = {MASTER}"),
        (UserRole("missing"), "unknown to the exchange"),
        (UserRole("vault"), "vaultAddress"),
        (UserRole("subAccount", MASTER), f"subAccount of {MASTER}"),
        (UserRole("somethingNew"), "unexpected role"),
    ],
)
def test_account_roles(role: UserRole, expected: str | None) -> None:
    problem = account_problem(AGENT, role)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and AGENT in problem


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (UserRole("agent", MASTER), None),
        (UserRole("agent", OTHER), f"agent) of {OTHER}, not of account.address {MASTER}"),
        (UserRole("missing"), "not an API wallet approved by"),
        (UserRole("user"), f"its orders would trade {AGENT}"),
        (UserRole("vault"), "is itself a vault"),
    ],
)
def test_signer_roles(role: UserRole, expected: str | None) -> None:
    problem = signer_problem(MASTER, AGENT, role)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_agent_expiry() -> None:
    assert expiry_problem(MASTER, AGENT, [], NOW) == (None, None)  # unnamed agents are not listed
    refusal, _ = expiry_problem(MASTER, AGENT, [ExtraAgent("bot", AGENT, NOW - 1)], NOW)
    assert refusal is not None and "expired" in refusal
    _, warning = expiry_problem(MASTER, AGENT, [ExtraAgent("bot", AGENT, NOW + EXPIRY_WARNING_MS // 2)], NOW)
    assert warning is not None and "3.5 days" in warning
    assert expiry_problem(MASTER, AGENT, [ExtraAgent("bot", OTHER, NOW - 1)], NOW) == (None, None)
