"""A userFills frame with one absurd number, from the wire to the real tracker: the bad fill is
dropped at the parse edge (counted), its siblings are applied, nothing raises (issue 12.4)."""

from __future__ import annotations

import json
from decimal import Decimal

from hip3.hyperliquid.events import UserFills
from hip3.hyperliquid.parse import ParseStats, parse_ws_frame
from hip3.trading.edge import fill_reports
from tests.trading.tracker import NVDA, TSLA, make_tracker


def wire_fill(coin: str, tid: int, px: str, sz: str) -> dict[str, object]:
    return {
        "coin": f"xyz:{coin}",
        "px": px,
        "sz": sz,
        "side": "B",
        "time": 1_769_594_065_851 + tid,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0x" + "cd" * 32,
        "oid": 5000 + tid,
        "crossed": True,
        "fee": "0.01",
        "tid": tid,
        "feeToken": "USDC",
    }


def test_one_absurd_fill_never_drops_its_siblings_in_the_tracker() -> None:
    frame = json.dumps(
        {
            "channel": "userFills",
            "data": {
                "user": "0x" + "11" * 20,
                "fills": [
                    wire_fill("TSLA", 1, "432.15", "0.1"),
                    wire_fill("TSLA", 2, "1e999999999", "0.1"),
                    wire_fill("NVDA", 3, "180.5", "1e-999999999"),
                    wire_fill("NVDA", 4, "180.5", "0.2"),
                ],
            },
        }
    )
    stats = ParseStats()
    [msg] = parse_ws_frame(frame, stats)
    assert isinstance(msg, UserFills)
    tracker = make_tracker(per_market=1000, total=10_000)
    tracker.apply_fills(fill_reports(msg), 1.0)
    assert tracker.position_size(TSLA) == Decimal("0.1")
    assert tracker.position_size(NVDA) == Decimal("0.2")
    assert stats.counts["bad_fill"] == 2
