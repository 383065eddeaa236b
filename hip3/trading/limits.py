"""The account's position limits: `[position]`, read by the tracker (caps) and the resync task."""

from __future__ import annotations

from attrs import frozen

from hip3.params import Count, SecsOrOff, Usd, must_be_le, param, parameters


@frozen(field_transformer=parameters("position"))
class PositionParams:
    """`[position]`: caps count pending entry orders as well as open positions."""

    max_notional_per_market: Usd = param(
        50, "largest notional (USD, at mark) in one market, pending included"
    )
    max_total_notional: Usd = param(300, "largest notional across all markets, pending included")
    max_concurrent_positions: Count = param(5, "most markets with an open position at once")
    position_resync_interval_secs: SecsOrOff = param(
        60.0, "reconcile positions against the exchange this often (0 = off)"
    )

    def problems(self) -> list[str]:
        return list(
            must_be_le(
                "position.max_notional_per_market",
                self.max_notional_per_market,
                "position.max_total_notional",
                self.max_total_notional,
            )
        )
