"""READY: whether the bot's picture of the exchange is complete enough to open positions.

READY = connected
      ∧ a bbo and an asset context received for every configured market since the last (re)connect
      ∧ (trading) `userFills` and `orderUpdates` subscriptions acknowledged — the ack, not a data
        message, because an idle account never gets order updates
      ∧ (trading) fills missed while disconnected caught up
      ∧ (trading) positions synced from the exchange at startup.

A disconnect clears everything but the startup sync, so entries stay blocked until READY again.
Each `on_*` returns True when it flipped `is_ready`, so the caller logs transitions once.
"""

from __future__ import annotations

from collections.abc import Iterable

from hip3.core import MarketKey

USER_CHANNELS = ("userFills", "orderUpdates")
#: How many missing markets `why_not` names before summarising the rest.
MAX_NAMED_MARKETS = 6


class ReadyState:
    def __init__(self, markets: Iterable[MarketKey], *, trading: bool = True) -> None:
        self.markets = frozenset(markets)
        self.trading = trading
        self.connected = False
        self.positions_synced = False
        self.caught_up = False
        self._bbo: set[MarketKey] = set()
        self._ctx: set[MarketKey] = set()
        self._acked: set[str] = set()

    # -----------------------------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        # Asked before every order: counts, not the sorted list `missing_market_data` builds.
        if not self.connected or len(self._bbo) < len(self.markets) or len(self._ctx) < len(self.markets):
            return False
        if not self.trading:
            return True
        return all(ch in self._acked for ch in USER_CHANNELS) and self.caught_up and self.positions_synced

    def missing_market_data(self) -> list[MarketKey]:
        """Configured markets still waiting for a bbo or an asset context, in name order."""
        return sorted((m for m in self.markets if m not in self._bbo or m not in self._ctx), key=str)

    def why_not(self) -> str:
        """What READY is waiting for, e.g. "waiting for market data: xyz:GOLD, xyz:NVDA; userFills not acked"."""
        reasons: list[str] = []
        if not self.connected:
            reasons.append("not connected")
        missing = self.missing_market_data()
        if missing:
            names = ", ".join(str(m) for m in missing[:MAX_NAMED_MARKETS])
            if len(missing) > MAX_NAMED_MARKETS:
                names += f" and {len(missing) - MAX_NAMED_MARKETS} more"
            reasons.append(f"waiting for market data: {names}")
        if self.trading:
            reasons.extend(f"{ch} not acked" for ch in USER_CHANNELS if ch not in self._acked)
            if not self.caught_up:
                reasons.append("missed fills not caught up")
            if not self.positions_synced:
                reasons.append("positions not synced")
        return "; ".join(reasons) if reasons else "ready"

    @property
    def fills_in_sync(self) -> bool:
        """Connected, the user channels acked and missed fills caught up: every fill so far was seen."""
        return self.connected and self.caught_up and all(ch in self._acked for ch in USER_CHANNELS)

    # -----------------------------------------------------------------------------------------
    # Events; each returns whether READY flipped.

    def on_connected(self) -> bool:
        before = self.is_ready
        self._clear_session()  # data and acks count only from this connection on
        self.connected = True
        return self.is_ready != before

    def on_disconnected(self) -> bool:
        before = self.is_ready
        self._clear_session()
        return self.is_ready != before

    def on_bbo(self, market: MarketKey) -> bool:
        if market not in self.markets or market in self._bbo:
            return False
        before = self.is_ready
        self._bbo.add(market)
        return self.is_ready != before

    def on_ctx(self, market: MarketKey) -> bool:
        if market not in self.markets or market in self._ctx:
            return False
        before = self.is_ready
        self._ctx.add(market)
        return self.is_ready != before

    def on_ack(self, sub_type: str) -> bool:
        """A subscription ack; only the user channels matter (market channels are proven by data)."""
        if sub_type not in USER_CHANNELS:
            return False
        before = self.is_ready
        self._acked.add(sub_type)
        return self.is_ready != before

    def on_caught_up(self) -> bool:
        before = self.is_ready
        self.caught_up = True
        return self.is_ready != before

    def on_positions_synced(self) -> bool:
        before = self.is_ready
        self.positions_synced = True
        return self.is_ready != before

    # -----------------------------------------------------------------------------------------

    def _clear_session(self) -> None:
        self.connected = False
        self.caught_up = False
        self._bbo.clear()
        self._ctx.clear()
        self._acked.clear()
