"""The account's position limits: `[position]`, read by the tracker (caps) and the resync task."""

from __future__ import annotations

from typing import Annotated

from attrs import frozen

from hip3.params import CapUsd, Count, SecsOrOff, Warn, must_be_le, param, parameters


@frozen(field_transformer=parameters("position"))
class PositionParams:
    """`[position]`: caps count pending entry orders as well as open positions."""

    max_notional_per_market: CapUsd = param(
        50, "largest notional (USD, at mark) in one market, pending included"
    )
    max_total_notional: CapUsd = param(300, "largest notional across all markets, pending included")
    max_concurrent_positions: Count = param(5, "most markets with an open position at once")
    position_resync_interval_secs: Annotated[
        float,
        SecsOrOff.__metadata__[0],
        Warn(lambda v: v == 0, "positions are never reconciled with the exchange while running"),
    ] = param(60.0, "reconcile positions against the exchange this often (0 = off)")

    def problems(self) -> list[str]:
        return list(
            must_be_le(
                "position.max_notional_per_market",
                self.max_notional_per_market,
                "position.max_total_notional",
                self.max_total_notional,
            )
        )
