"""The configuration's shape: frozen attrs classes, one per TOML section, with defaults and limits.

Limits ride along as `Annotated` metadata (`Gt(0)`, `Ge(0)`, ...) so `hip3.service.config` can check every
value during structuring and report all problems with their key paths. Cross-field rules (a minimum
below a maximum, ...) live in `hip3.service.config`.

Units are in the names: `*_bps` basis points, `*_secs` seconds (float, trio clock), `*_ms`
milliseconds (int), `*_notional`/`*_usd` US dollars. Money and bps are `Decimal`.
A value documented as "0 = off" disables that check; no other value means "off".
"""

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from attrs import field, frozen

from hip3.core import MIN_OPEN_NOTIONAL


class Check:
    """A per-value rule: returns the (possibly normalised) value or raises ValueError(message)."""

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError


def _show_number(value: Any) -> str:
    return str(value)


@frozen
class Bound(Check):
    """`value <op> limit` must hold; the message reads like `must be > 0, got -5`."""

    op: Literal[">", ">=", "<", "<="]
    limit: Decimal | int | float

    def __call__(self, value: Any) -> Any:
        ok = {
            ">": value > self.limit,
            ">=": value >= self.limit,
            "<": value < self.limit,
            "<=": value <= self.limit,
        }[self.op]
        if not ok:
            raise ValueError(f"must be {self.op} {_show_number(self.limit)}, got {_show_number(value)}")
        return value


def Gt(limit: Decimal | int | float) -> Bound:
    return Bound(">", limit)


def Ge(limit: Decimal | int | float) -> Bound:
    return Bound(">=", limit)


def Le(limit: Decimal | int | float) -> Bound:
    return Bound("<=", limit)


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@frozen
class EthAddress(Check):
    """0x + 40 hex digits; normalised to lowercase (the exchange reports addresses in lowercase)."""

    def __call__(self, value: Any) -> Any:
        if not _ADDRESS_RE.fullmatch(value):
            raise ValueError(f"must be 0x followed by 40 hex digits, got {len(value)} characters")
        return value.lower()


@frozen
class UrlScheme(Check):
    """A URL with one of the given schemes, or "" for the network's default."""

    schemes: tuple[str, ...]

    def __call__(self, value: Any) -> Any:
        if value == "":
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in self.schemes or not rest:
            wanted = " or ".join(f"{s}://" for s in self.schemes)
            raise ValueError(f'must be a URL starting with {wanted} (or "" for the default), got {value!r}')
        return value


def parse_listen(value: str) -> tuple[str, int] | None:
    """`""` off; `"9464"` a loopback port; `"HOST:PORT"` / `"[v6]:PORT"` that address. Raises ValueError."""
    text = value.strip()
    if not text:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]")
    if not host:
        raise ValueError(f"no host before the port in {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number 0..65535, got {port_text!r} in {value!r}")
    return host, int(port_text)


@frozen
class ListenAddress(Check):
    """`""` (off), a port (loopback) or HOST:PORT."""

    def __call__(self, value: Any) -> Any:
        try:
            parse_listen(value)
        except ValueError as exc:
            raise ValueError(f'must be "" (off), PORT or HOST:PORT: {exc}') from None
        return value


@frozen
class NonEmpty(Check):
    def __call__(self, value: Any) -> Any:
        if not value:
            raise ValueError("must not be empty")
        return value


@frozen
class CoinName(Check):
    """A coin name as the dex lists it, without the `dex:` prefix, or "*" for every market."""

    def __call__(self, value: Any) -> Any:
        if not value or value != value.strip():
            raise ValueError(f"not a coin name: {value!r}")
        if ":" in value:
            raise ValueError(f'write the coin without the dex prefix ("{value.split(":", 1)[1]}")')
        return value


@frozen
class DexName(Check):
    def __call__(self, value: Any) -> Any:
        if not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise ValueError(f'must be a dex name like "xyz" (letters, digits, _), got {value!r}')
        return value


# Value types with their limits ------------------------------------------------------------------

Usd = Annotated[Decimal, Gt(0)]
Bps = Annotated[Decimal, Ge(0)]
PositiveBps = Annotated[Decimal, Gt(0)]
Secs = Annotated[float, Gt(0)]
SecsOrOff = Annotated[float, Ge(0)]  # 0 = off
Count = Annotated[int, Ge(1)]
Fraction = Annotated[Decimal, Gt(0), Le(1)]
Address = Annotated[str, EthAddress()]
Url = Annotated[str, UrlScheme(("http", "https"))]
WsUrl = Annotated[str, UrlScheme(("ws", "wss"))]
Path = Annotated[str, NonEmpty()]

Mode = Literal["observation", "trading"]
NetworkName = Literal["mainnet", "testnet"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormatName = Literal["auto", "json", "text"]

#: Effective URLs when `network.*_url` is left empty.
DEFAULT_URLS: Mapping[str, Mapping[str, str]] = {
    "mainnet": {
        "info_url": "https://api.hyperliquid.xyz/info",
        "exchange_url": "https://api.hyperliquid.xyz/exchange",
        "ws_url": "wss://api.hyperliquid.xyz/ws",
    },
    "testnet": {
        "info_url": "https://api.hyperliquid-testnet.xyz/info",
        "exchange_url": "https://api.hyperliquid-testnet.xyz/exchange",
        "ws_url": "wss://api.hyperliquid-testnet.xyz/ws",
    },
}


# Sections ---------------------------------------------------------------------------------------


@frozen
class NetworkConfig:
    """`name` picks the signing domain (mainnet source "a", testnet "b") and the default URLs.

    After `load_config` the URLs are the effective ones (defaults filled in).
    """

    name: NetworkName = "mainnet"
    info_url: Url = ""
    exchange_url: Url = ""
    ws_url: WsUrl = ""

    @property
    def is_mainnet(self) -> bool:
        return self.name == "mainnet"


@frozen
class AccountConfig:
    """`address` is the master account that owns positions (user channels, clearinghouseState).

    The signing key never lives here: it comes from HIP3_PRIVATE_KEY or from `key_file` (see
    `hip3.service.keys`). `signer_address`, when set, must equal the address derived from that key (an
    API wallet's address differs from `address`, which is normal).
    """

    address: Address | None = None
    key_file: Path | None = None
    signer_address: Address | None = None


@frozen
class MarketsConfig:
    dex: Annotated[str, DexName()] = "xyz"
    coins: tuple[Annotated[str, CoinName()], ...] = ("*",)
    #: coin -> all-in entry threshold (replaces fee + slippage + min edge for that coin).
    threshold_bps: Mapping[str, PositiveBps] = field(factory=dict)

    @property
    def all_coins(self) -> bool:
        return self.coins == ("*",)


@frozen
class PositionConfig:
    max_notional_per_market: Usd = Decimal(50)
    max_total_notional: Usd = Decimal(300)
    max_concurrent_positions: Count = 5
    position_resync_interval_secs: SecsOrOff = 60.0  # 0 = off


@frozen
class ShutdownConfig:
    flatten_on_shutdown: bool = True
    settle_timeout_secs: Secs = 10.0


@frozen
class DetectorConfig:
    taker_fee_bps: Bps = Decimal("4.5")  # base tier, before the HIP-3 multiplier
    hip3_fee_multiplier: Annotated[Decimal, Ge(1)] = Decimal(2)
    slippage_bps: Bps = Decimal(2)
    min_edge_bps: Bps = Decimal(5)
    sizing_alpha: Fraction = Decimal("0.10")
    min_book_notional: Annotated[Decimal, Ge(0)] = Decimal(500)
    normal_book_notional: Usd = Decimal(5000)
    min_order_notional: Annotated[Decimal, Ge(MIN_OPEN_NOTIONAL)] = Decimal(11)
    oracle_direction_filter: bool = True
    oracle_window_secs: Secs = 10.0
    min_consecutive_oracle_moves: Annotated[int, Ge(0)] = 2
    min_oracle_move_bps: Bps = Decimal(2)
    signal_dedup: bool = True
    max_entry_spread_bps: Bps = Decimal(0)  # 0 = off

    @property
    def effective_taker_fee_bps(self) -> Decimal:
        """The taker fee a HIP-3 fill actually pays: base tier × the HIP-3 multiplier."""
        return self.taker_fee_bps * self.hip3_fee_multiplier


@frozen
class GatesConfig:
    max_bbo_age_ms: Annotated[int, Ge(0)] = 2000  # 0 = off
    max_ctx_age_ms: Annotated[int, Ge(0)] = 8000  # 0 = off
    max_mark_mid_divergence_bps: Bps = Decimal(50)  # 0 = off
    spread_ewma_alpha: Fraction = Decimal("0.05")
    spread_shock_multiplier: Annotated[Decimal, Ge(0)] = Decimal(3)  # 0 = off
    spread_shock_min_samples: Annotated[int, Ge(0)] = 20
    max_oi_fraction: Fraction = Decimal("0.95")
    time_regression_hold_secs: SecsOrOff = 30.0  # 0 = off
    param_check_interval_secs: SecsOrOff = 300.0  # 0 = off


@frozen
class HardStopConfig:
    max_daily_loss_usd: Usd = Decimal(50)
    max_rejects: Count = 5
    reject_window_secs: Secs = 3600.0
    max_flatten_failures: Count = 3
    state_file: Path = "var/hard_stop.json"


@frozen
class ExecutorConfig:
    max_slippage_bps: Bps = Decimal(10)
    post_timeout_secs: Secs = 5.0
    resolve_timeout_secs: Secs = 60.0
    http_fallback: bool = True
    max_orders_per_second: Count = 10


@frozen
class ExitsConfig:
    time_stop_secs: Secs = 20.0
    mark_regression_bps: Bps = Decimal(5)
    min_holding_secs: Annotated[float, Ge(0)] = 1.0
    flatten_slippage_bps: PositiveBps = Decimal(50)
    retry_backoff_initial_secs: Secs = 1.0
    retry_backoff_max_secs: Secs = 30.0
    check_interval_secs: Secs = 0.25


@frozen
class WebsocketConfig:
    ping_after_secs: Secs = 45.0
    silence_timeout_secs: Secs = 30.0
    reconnect_initial_secs: Secs = 0.5
    reconnect_max_secs: Secs = 30.0
    healthy_after_secs: Secs = 60.0


@frozen
class JournalConfig:
    path: str = "var/journal.sqlite3"  # "" = off

    @property
    def enabled(self) -> bool:
        return self.path != ""


@frozen
class MetricsConfig:
    #: Prometheus endpoint: "" = off, "9464" = 127.0.0.1:9464, or "HOST:PORT" (keep it off the internet).
    listen: Annotated[str, ListenAddress()] = ""


@frozen
class LoggingConfig:
    level: LogLevel = "INFO"
    #: "auto": JSON lines when stderr is not a terminal (journald, files), text on a terminal.
    format: LogFormatName = "auto"
    #: Older switch: true is the same as format = "json".
    json: bool = False

    @property
    def effective_format(self) -> LogFormatName:
        return "json" if self.json else self.format


@frozen
class Config:
    mode: Mode = "observation"
    network: NetworkConfig = field(factory=NetworkConfig)
    account: AccountConfig = field(factory=AccountConfig)
    markets: MarketsConfig = field(factory=MarketsConfig)
    position: PositionConfig = field(factory=PositionConfig)
    shutdown: ShutdownConfig = field(factory=ShutdownConfig)
    detector: DetectorConfig = field(factory=DetectorConfig)
    gates: GatesConfig = field(factory=GatesConfig)
    hard_stop: HardStopConfig = field(factory=HardStopConfig)
    executor: ExecutorConfig = field(factory=ExecutorConfig)
    exits: ExitsConfig = field(factory=ExitsConfig)
    websocket: WebsocketConfig = field(factory=WebsocketConfig)
    journal: JournalConfig = field(factory=JournalConfig)
    logging: LoggingConfig = field(factory=LoggingConfig)
    metrics: MetricsConfig = field(factory=MetricsConfig)

    @property
    def is_mainnet(self) -> bool:
        return self.network.is_mainnet

    @property
    def is_trading(self) -> bool:
        return self.mode == "trading"
