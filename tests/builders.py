"""Test data many tests need: markets and their specs, book and asset-context events, configs.

Numbers are written as strings and become exact Decimals. Defaults describe one quiet market
(`xyz:TSLA` at about 100), so a test names only what it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.service.config import Config, config_from_mapping

D = Decimal

#: Markets of the `xyz` dex with the asset ids the shipped simulator gives them.
TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
USER = "0x" + "ab" * 20


def spec(market: MarketKey = TSLA, sz_decimals: int = 2, **extra: Any) -> MarketSpec:
    return MarketSpec(market, sz_decimals=sz_decimals, **extra)


def level(px: str, sz: str = "1", n: int = 1) -> BookLevel:
    return BookLevel(D(px), D(sz), n)


def bbo(
    bid: str | None = "100",
    ask: str | None = "100.5",
    *,
    market: MarketKey = TSLA,
    time: int = 1,
    bid_sz: str = "1",
    ask_sz: str = "1",
) -> Bbo:
    """A best bid/offer; `None` leaves that side empty."""
    return Bbo(
        market.name,
        time,
        level(bid, bid_sz) if bid is not None else None,
        level(ask, ask_sz) if ask is not None else None,
    )


def ctx(
    oracle: str = "100.2",
    mark: str | None = None,
    *,
    market: MarketKey = TSLA,
    open_interest: str = "0",
    funding: str = "0",
    mid: str | None = None,
) -> AssetCtx:
    """An asset context; the mark defaults to the oracle."""
    return AssetCtx(
        market.name,
        D(oracle),
        D(mark if mark is not None else oracle),
        D(mid) if mid is not None else None,
        D(open_interest),
        D(funding),
    )


def _merged(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(dict(out[key]), value)
        else:
            out[key] = value
    return out


def config_mapping(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A config as parsed TOML: observation mode, state files under `tmp_path`, journal off.

    Keyword arguments are merged section by section (`position={"max_total_notional": 100}`).
    """
    base: dict[str, Any] = {
        "mode": "observation",
        "network": {"name": "testnet"},
        "markets": {"dex": "xyz", "coins": ["*"]},
        "hard_stop": {"state_file": str(tmp_path / "hard_stop.json")},
        "journal": {"path": ""},
    }
    return _merged(base, sections)


def config(tmp_path: Path, **sections: Any) -> Config:
    return config_from_mapping(config_mapping(tmp_path, **sections))


def sim_config(sim: Any, tmp_path: Path, **sections: Any) -> Config:
    """`config` pointed at a running `hip3.sim` (testnet signing, its URLs)."""
    urls = {"info_url": sim.info_url, "exchange_url": sim.exchange_url, "ws_url": sim.ws_url}
    return config(tmp_path, **_merged({"network": urls}, sections))
