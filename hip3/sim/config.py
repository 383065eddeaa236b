"""Simulator configuration: TOML → frozen attrs objects, with errors that name the bad key.

The shipped defaults live in `hip3/sim/markets.toml`; `load_sim_config(path)` reads another file
with the same layout. Tables: `[exchange]`, `[model]`, `[[markets]]`, `[[accounts]]`, `[faults]`.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import attrs
from attrs import field, frozen

from hip3.core import MarketKey, MarketSpec
from hip3.sim.faults import FAULT_NAMES, Faults
from hip3.sim.fees import TIER0_ADD_RATE, TIER0_CROSS_RATE


class SimConfigError(ValueError):
    """A config file or value the simulator cannot use; the message names the key."""


_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


# ---------------------------------------------------------------------------------------------
# value converters (each raises ValueError with a short reason; the loader adds the key path)


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, float):
        value = repr(value)  # TOML floats: take the written digits, never binary noise
    if not isinstance(value, int | str | Decimal):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.match(value):
        raise ValueError(f"expected a 0x-prefixed 40-hex-digit address, got {value!r}")
    return value.lower()


def _addresses(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of addresses, got {value!r}")
    return tuple(_address(v) for v in value)


def _coins(value: object) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of coin names, got {value!r}")
    return set(value)


# ---------------------------------------------------------------------------------------------
# config objects


@frozen
class MarketConfig:
    coin: str = field(metadata={"conv": _str})
    sz_decimals: int = field(metadata={"conv": _int})
    max_leverage: int = field(metadata={"conv": _int})
    price: Decimal = field(metadata={"conv": _decimal})
    #: the deployer's fee scale for this asset (meta `deployerFeeScale`): 0-3, or 0-10 in growth mode
    deployer_fee_scale: Decimal = field(default=Decimal(1), metadata={"conv": _decimal})
    #: growth mode: fees, rebates and volume contribution × 0.1 (meta `growthMode: "enabled"`)
    growth_mode: bool = field(default=False, metadata={"conv": _bool})
    #: the makers quote around oracle × (1 + this): a book that sits persistently away from the oracle
    structural_gap_bps: Decimal = field(default=Decimal(0), metadata={"conv": _decimal})
    #: trading halted from the start (new HIP-3 assets start halted)
    halted: bool = field(default=False, metadata={"conv": _bool})


@frozen
class AccountConfig:
    address: str = field(metadata={"conv": _address})
    balance: Decimal = field(default=Decimal(10000), metadata={"conv": _decimal})
    leverage: int = field(default=5, metadata={"conv": _int})
    agents: tuple[str, ...] = field(default=(), metadata={"conv": _addresses})
    #: active discounts (fractions) on the account's base fee rates (`userFees`)
    referral_discount: Decimal = field(default=Decimal(0), metadata={"conv": _decimal})
    staking_discount: Decimal = field(default=Decimal(0), metadata={"conv": _decimal})


@frozen
class ModelConfig:
    oracle_interval: float = field(default=3.0, metadata={"conv": _float})
    oracle_vol_bps: Decimal = field(default=Decimal(4), metadata={"conv": _decimal})
    jump_probability: float = field(default=0.03, metadata={"conv": _float})
    jump_min_bps: Decimal = field(default=Decimal(25), metadata={"conv": _decimal})
    jump_max_bps: Decimal = field(default=Decimal(80), metadata={"conv": _decimal})
    oracle_max_move_pct: Decimal = field(default=Decimal(1), metadata={"conv": _decimal})
    mark_max_move_pct: Decimal = field(default=Decimal(1), metadata={"conv": _decimal})
    price_band_multiple: Decimal = field(default=Decimal(10), metadata={"conv": _decimal})
    maker_requote_interval: float = field(default=0.5, metadata={"conv": _float})
    maker_lag: float = field(default=2.0, metadata={"conv": _float})
    maker_half_spread_bps: Decimal = field(default=Decimal(2), metadata={"conv": _decimal})
    maker_level_step_bps: Decimal = field(default=Decimal(3), metadata={"conv": _decimal})
    maker_levels: int = field(default=5, metadata={"conv": _int})
    maker_level_notional_min: Decimal = field(default=Decimal(2000), metadata={"conv": _decimal})
    maker_level_notional_max: Decimal = field(default=Decimal(12000), metadata={"conv": _decimal})
    l2_book_interval: float = field(default=0.5, metadata={"conv": _float})
    #: activeAssetCtx is pushed this often per coin, changed or not (the exchange: about once a second)
    ctx_interval: float = field(default=1.0, metadata={"conv": _float})
    #: one block: the market-data loop period; bbo is pushed per block when it changed
    stream_tick: float = field(default=0.07, metadata={"conv": _float})
    #: probability that the makers pull a stale quote (one through the oracle) before a taker's
    #: order reaches it: cancels execute before IOC orders within a block
    stale_quote_pull_probability: float = field(default=0.2, metadata={"conv": _float})
    #: internal-pricing session (trade.xyz weekends, feed gaps): the oracle follows the book
    internal_pricing: bool = field(default=False, metadata={"conv": _bool})
    #: a cost of getting out beyond the caught-up book's spread (which is counted anyway: the
    #: makers' first level on the tick grid), added to what a dislocation must beat
    dislocation_exit_cost_bps: Decimal = field(default=Decimal(0), metadata={"conv": _decimal})


@frozen
class SimConfig:
    markets: tuple[MarketConfig, ...]
    model: ModelConfig = field(factory=ModelConfig)
    accounts: tuple[AccountConfig, ...] = ()
    faults: Faults = field(factory=Faults)
    dex: str = field(default="xyz", metadata={"conv": _str})
    dex_full_name: str = field(default="XYZ (simulated)", metadata={"conv": _str})
    perp_dex_index: int = field(default=1, metadata={"conv": _int})
    #: accept mainnet-style signatures (source "a") instead of testnet-style ("b", the default: what
    #: the official SDK signs for any URL but mainnet's, and what hip3 signs with network.name = "testnet")
    is_mainnet: bool = field(default=False, metadata={"conv": _bool})
    seed: int = field(default=7, metadata={"conv": _int})
    port: int = field(default=3001, metadata={"conv": _int})
    start_time_ms: int = field(default=0, metadata={"conv": _int})
    #: every account's base fee rates (`userFees` userCrossRate / userAddRate), before the HIP-3 multiplier
    user_cross_rate: Decimal = field(default=TIER0_CROSS_RATE, metadata={"conv": _decimal})
    user_add_rate: Decimal = field(default=TIER0_ADD_RATE, metadata={"conv": _decimal})
    ws_idle_timeout: float = field(default=60.0, metadata={"conv": _float})
    #: a WS client with more than this many bytes waiting to be sent to it is too slow: disconnected
    ws_max_queued_bytes: int = field(default=4_000_000, metadata={"conv": _int})
    vaults: tuple[str, ...] = field(default=(), metadata={"conv": _addresses})
    maker_address: str = field(
        default="0x00000000000000000000000000000000000b00c5", metadata={"conv": _address}
    )
    #: recordings to serve as market data instead of the model ([replay] paths), oldest first
    replay_paths: tuple[str, ...] = ()
    #: how much faster than recorded ([replay] speed): 2.0 plays an hour in 30 minutes
    replay_speed: float = 1.0

    def with_replay(self, paths: list[str] | tuple[str, ...], speed: float = 1.0) -> SimConfig:
        """The same config serving these recordings as its market data."""
        if speed <= 0:
            raise SimConfigError(f"replay.speed: expected > 0, got {speed}")
        return attrs.evolve(self, replay_paths=tuple(str(p) for p in paths), replay_speed=speed)

    def with_seed(self, seed: int) -> SimConfig:
        """The same config with another market-model seed."""
        return attrs.evolve(self, seed=seed)

    def market_keys(self) -> list[MarketKey]:
        base = 100000 + self.perp_dex_index * 10000
        return [MarketKey(self.dex, m.coin, base + i) for i, m in enumerate(self.markets)]

    def market_specs(self) -> dict[str, MarketSpec]:
        """Keyed by the exchange coin name (``xyz:TSLA``)."""
        return {
            key.name: MarketSpec(key, m.sz_decimals, m.max_leverage, True)
            for key, m in zip(self.market_keys(), self.markets, strict=True)
        }


# ---------------------------------------------------------------------------------------------
# loading

_EXCHANGE_KEYS = {
    "dex",
    "dex_full_name",
    "perp_dex_index",
    "is_mainnet",
    "seed",
    "port",
    "start_time_ms",
    "user_cross_rate",
    "user_add_rate",
    "ws_idle_timeout",
    "ws_max_queued_bytes",
    "vaults",
    "maker_address",
}
_TOP_KEYS = {"exchange", "model", "markets", "accounts", "faults", "replay"}

T = TypeVar("T")


def _convert_table(
    cls: type[Any], table: object, where: str, allowed: set[str] | None = None
) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise SimConfigError(f"{where}: expected a table, got {table!r}")
    fields = {f.name: f for f in attrs.fields(cls) if "conv" in f.metadata}
    names = allowed if allowed is not None else set(fields)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise SimConfigError(f"{where}: unknown key {key!r}")
        try:
            out[key] = fields[key].metadata["conv"](value)
        except ValueError as exc:
            raise SimConfigError(f"{where}.{key}: {exc}") from None
    missing = [n for n in names if fields[n].default is attrs.NOTHING and n not in out]
    if missing:
        raise SimConfigError(f"{where}: missing key {sorted(missing)[0]!r}")
    return out


def _faults(table: object) -> Faults:
    if not isinstance(table, Mapping):
        raise SimConfigError(f"faults: expected a table, got {table!r}")
    faults = Faults()
    converters: dict[str, Callable[[object], Any]] = {
        "stalled_markets": _coins,
        "timestamps_backwards_ms": _int,
        "info_429_next": _int,
    }
    for key, value in table.items():
        if key not in FAULT_NAMES:
            raise SimConfigError(f"faults: unknown key {key!r}")
        default = getattr(faults, key)
        conv = converters.get(key, _bool if isinstance(default, bool) else _float)
        try:
            setattr(faults, key, conv(value))
        except ValueError as exc:
            raise SimConfigError(f"faults.{key}: {exc}") from None
    return faults


def sim_config_from_dict(data: Mapping[str, Any]) -> SimConfig:
    """Build a `SimConfig` from parsed TOML; every problem raises `SimConfigError` naming the key."""
    for key in data:
        if key not in _TOP_KEYS:
            raise SimConfigError(f"unknown top-level key {key!r} (expected one of {sorted(_TOP_KEYS)})")
    exchange = _convert_table(SimConfig, data.get("exchange", {}), "exchange", _EXCHANGE_KEYS)
    model = ModelConfig(**_convert_table(ModelConfig, data.get("model", {}), "model"))
    raw_markets = data.get("markets", [])
    if not isinstance(raw_markets, list) or not raw_markets:
        raise SimConfigError("markets: expected at least one [[markets]] table")
    markets = tuple(
        MarketConfig(**_convert_table(MarketConfig, m, f"markets[{i}]")) for i, m in enumerate(raw_markets)
    )
    raw_accounts = data.get("accounts", [])
    if not isinstance(raw_accounts, list):
        raise SimConfigError("accounts: expected a list of [[accounts]] tables")
    accounts = tuple(
        AccountConfig(**_convert_table(AccountConfig, a, f"accounts[{i}]"))
        for i, a in enumerate(raw_accounts)
    )
    faults = _faults(data.get("faults", {}))
    config = SimConfig(markets=markets, model=model, accounts=accounts, faults=faults, **exchange)
    replay = data.get("replay", {})
    if not isinstance(replay, Mapping):
        raise SimConfigError(f"replay: expected a table, got {replay!r}")
    for key in replay:
        if key not in ("paths", "speed"):
            raise SimConfigError(f"replay: unknown key {key!r}")
    if replay:
        paths = replay.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise SimConfigError(f"replay.paths: expected a list of file names, got {paths!r}")
        try:
            speed = _float(replay.get("speed", 1.0))
        except ValueError as exc:
            raise SimConfigError(f"replay.speed: {exc}") from None
        config = config.with_replay(paths, speed)
    validate_sim_config(config)
    faults.rng.seed(config.seed)
    return config


def validate_sim_config(config: SimConfig) -> None:
    coins = [m.coin for m in config.markets]
    for i, m in enumerate(config.markets):
        if not m.coin or ":" in m.coin:
            raise SimConfigError(f"markets[{i}].coin: expected a bare coin name like 'TSLA', got {m.coin!r}")
        if coins.count(m.coin) > 1:
            raise SimConfigError(f"markets[{i}].coin: duplicate coin {m.coin!r}")
        if not 0 <= m.sz_decimals <= 6:
            raise SimConfigError(f"markets[{i}].sz_decimals: expected 0..6, got {m.sz_decimals}")
        if m.max_leverage < 1:
            raise SimConfigError(f"markets[{i}].max_leverage: expected >= 1, got {m.max_leverage}")
        if m.price <= 0:
            raise SimConfigError(f"markets[{i}].price: expected > 0, got {m.price}")
        top_scale = 10 if m.growth_mode else 3
        if not 0 <= m.deployer_fee_scale <= top_scale:
            raise SimConfigError(
                f"markets[{i}].deployer_fee_scale: expected 0..{top_scale}"
                f"{' in growth mode' if m.growth_mode else ''}, got {m.deployer_fee_scale}"
            )
        if abs(m.structural_gap_bps) >= 1000:
            raise SimConfigError(
                f"markets[{i}].structural_gap_bps: expected within ±1000, got {m.structural_gap_bps}"
            )
    if config.perp_dex_index < 1:
        raise SimConfigError(f"exchange.perp_dex_index: expected >= 1, got {config.perp_dex_index}")
    if not re.fullmatch(r"[a-z]{2,6}", config.dex):
        raise SimConfigError(f"exchange.dex: expected 2-6 lowercase letters, got {config.dex!r}")
    for i, a in enumerate(config.accounts):
        if a.balance < 0:
            raise SimConfigError(f"accounts[{i}].balance: expected >= 0, got {a.balance}")
        if a.leverage < 1:
            raise SimConfigError(f"accounts[{i}].leverage: expected >= 1, got {a.leverage}")
        for name in ("referral_discount", "staking_discount"):
            value = getattr(a, name)
            if not 0 <= value < 1:
                raise SimConfigError(f"accounts[{i}].{name}: expected a fraction in [0, 1), got {value}")
    for name in ("user_cross_rate", "user_add_rate"):
        value = getattr(config, name)
        if not -Decimal("0.01") < value < Decimal("0.01"):
            raise SimConfigError(f"exchange.{name}: expected a rate like 0.00045, got {value}")
    if not 0 <= config.model.stale_quote_pull_probability <= 1:
        raise SimConfigError("model.stale_quote_pull_probability: expected 0..1")
    if config.model.ctx_interval <= 0:
        raise SimConfigError("model.ctx_interval: expected > 0")
    if config.ws_max_queued_bytes < 64_000:
        raise SimConfigError(
            f"exchange.ws_max_queued_bytes: expected >= 64000, got {config.ws_max_queued_bytes}"
        )
    if config.model.maker_levels < 1:
        raise SimConfigError("model.maker_levels: expected >= 1")
    if config.model.stream_tick <= 0:
        raise SimConfigError("model.stream_tick: expected > 0")


def _default_text() -> str:
    return importlib.resources.files("hip3.sim").joinpath("markets.toml").read_text(encoding="utf-8")


def load_sim_config(path: str | Path | None = None) -> SimConfig:
    """Read a simulator config; `None` loads the shipped defaults (`hip3/sim/markets.toml`)."""
    if path is None:
        text, where = _default_text(), "hip3/sim/markets.toml"
    else:
        try:
            text, where = Path(path).read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise SimConfigError(f"cannot read simulator config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SimConfigError(f"{where}: not valid TOML: {exc}") from None
    try:
        return sim_config_from_dict(data)
    except SimConfigError as exc:
        raise SimConfigError(f"{where}: {exc}") from None
