"""Second review: one field the bot never reads must not cost it a fill."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from hip3.hyperliquid.events import UserFills
from hip3.hyperliquid.parse import ParseStats, parse_ws_frame

# The recorded mainnet userFills push quoted in hyperliquid.md §7.4.
RECORDED_FILL: dict[str, Any] = {
    "coin": "xyz:SILVER",
    "px": "112.89",
    "sz": "2.7",
    "side": "B",
    "time": 1769594065851,
    "startPosition": "-6.66",
    "dir": "Close Short",
    "closedPnl": "-0.02673",
    "hash": "0x403b2645eccc82d441b4043434c1a3020115002b87cfa1a6e403d198abc05cbe",
    "oid": 304587174168,
    "crossed": True,
    "fee": "0.023317",
    "tid": 694586448408875,
    "cloid": "0xd2ed5e997c5a4cb9946d84c35f0b737c",
    "feeToken": "USDC",
    "twapId": None,
}
USER = "0x0116a3d95994bcc7d6a84380ed6256fbb32cd25d"


def fills_of(data: dict[str, Any]) -> list[tuple[int, Decimal]]:
    events = parse_ws_frame(orjson.dumps({"channel": "userFills", "data": data}).decode(), ParseStats())
    return [(f.tid, f.sz) for e in events if isinstance(e, UserFills) for f in e.fills]


def test_the_recorded_frame_parses() -> None:
    # Control for the xfail tests below: the unmodified recorded push yields its fill.
    assert fills_of({"user": USER, "fills": [RECORDED_FILL]}) == [(694586448408875, Decimal("2.7"))]


@pytest.mark.parametrize("field", ["hash", "crossed", "dir", "startPosition", "closedPnl"])
def test_a_fill_without_a_field_the_tracker_never_reads_is_still_applied(field: str) -> None:
    """R7: parse.py:246-264 requires every documented fill field; the tracker uses coin, px, sz, side,
    time, tid, cloid and fee only (book.py:411-458). A fill lacking (or null in) any other one is
    dropped, and only a resync can repair the position."""
    fill = {k: v for k, v in RECORDED_FILL.items() if k != field}
    assert fills_of({"user": USER, "fills": [fill]}) == [(694586448408875, Decimal("2.7"))]


def test_a_userfills_push_without_the_user_field_keeps_its_fills() -> None:
    """R7: parse.py:358 reads data.user after the fills; without it the whole frame, every fill in
    it, is dropped. The feed never uses it (there is one user per connection)."""
    assert fills_of({"fills": [RECORDED_FILL]}) == [(694586448408875, Decimal("2.7"))]
