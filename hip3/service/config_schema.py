"""The configuration's shape: `Config` composes one section per task, each declared once beside its task.

Each section is a `hip3.params.parameters` class (defaults, limits as `Annotated` metadata, a
description per key, rules across its fields in `problems()`): `hip3.trading.limits.PositionParams`,
`hip3.strategy.detector.DetectorParams`, `hip3.strategy.gates.GateParams`,
`hip3.trading.hardstop.HardStopParams`, `hip3.trading.executor.task.ExecutorParams`,
`hip3.trading.exits.ExitParams`/`ShutdownParams`, `hip3.hyperliquid.ws.WebsocketParams`. The
service's own sections (network, account, markets, journal, logging) are declared here. Rules
across sections live in `hip3.service.config`.

Units are in the names: `*_bps` basis points, `*_secs` seconds (float, trio clock), `*_ms`
milliseconds (int), `*_notional`/`*_usd` US dollars. Money and bps are `Decimal`.
A value documented as "0 = off" disables that check; no other value means "off".
"""

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from attrs import field, frozen

from hip3.hyperliquid.ws import WebsocketParams
from hip3.params import (
    Address,
    Bps,
    Check,
    CoinName,
    DexName,
    FilePath,
    PositiveBps,
    Url,
    WsUrl,
    param,
    parameters,
)
from hip3.strategy.detector import DetectorParams
from hip3.strategy.gates import GateParams
from hip3.strategy.sessions import XYZ_WEEKEND, SessionWindow
from hip3.trading.executor.task import ExecutorParams
from hip3.trading.exits import ExitParams, ShutdownParams
from hip3.trading.hardstop import HardStopParams
from hip3.trading.limits import PositionParams


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


# Sections of the service itself (the tasks' sections live beside their tasks) -----------------------


@frozen(field_transformer=parameters("network"))
class NetworkConfig:
    """`name` picks the signing domain (mainnet source "a", testnet "b") and the default URLs.

    After `load_config` the URLs are the effective ones (defaults filled in).
    """

    name: NetworkName = param("mainnet", '"mainnet" or "testnet": the signing domain and default URLs')
    info_url: Url = param("", 'info endpoint ("" = the network\'s default)')
    exchange_url: Url = param("", 'exchange endpoint ("" = the network\'s default)')
    ws_url: WsUrl = param("", 'websocket endpoint ("" = the network\'s default)')

    @property
    def is_mainnet(self) -> bool:
        return self.name == "mainnet"


@frozen(field_transformer=parameters("account"))
class AccountConfig:
    """`address` is the master account that owns positions (user channels, clearinghouseState).

    The signing key never lives here: it comes from HIP3_PRIVATE_KEY or from `key_file` (see
    `hip3.service.keys`). `signer_address`, when set, must equal the address derived from that key (an
    API wallet's address differs from `address`, which is normal).
    """

    address: Address | None = param(None, "the master account that owns the positions")
    key_file: FilePath | None = param(None, "file holding the signing key (else HIP3_PRIVATE_KEY)")
    signer_address: Address | None = param(None, "the address the signing key must derive (optional check)")


@frozen(field_transformer=parameters("markets"))
class MarketsConfig:
    dex: Annotated[str, DexName()] = param("xyz", "the HIP-3 dex whose markets are traded")
    coins: tuple[Annotated[str, CoinName()], ...] = param(("*",), 'coins without the dex prefix, or ["*"]')
    threshold_bps: Mapping[str, PositiveBps] = param(
        factory=dict, doc="per-coin all-in entry threshold, replacing fees + exit cost + min edge"
    )
    taker_fee_bps: Mapping[str, Bps] = param(
        factory=dict, doc="per-coin taker fee (bps per fill) overriding the exchange's"
    )
    max_edge_bps: Mapping[str, Bps] = param(
        factory=dict, doc="per-coin edge ceiling (bps) replacing gates.max_edge_bps"
    )

    @property
    def all_coins(self) -> bool:
        return self.coins == ("*",)


@frozen(field_transformer=parameters("journal"))
class JournalConfig:
    path: str = param(
        "var/journal.sqlite3",
        "SQLite journal: orders (written before they are sent), fills, signals, positions, corrections, "
        'hard stops, restarts ("" = off; keep it on when trading: a restart uses it)',
    )

    @property
    def enabled(self) -> bool:
        return self.path != ""


@frozen(field_transformer=parameters("metrics"))
class MetricsConfig:
    # Keep it off the internet: it shows positions and PnL.
    listen: Annotated[str, ListenAddress()] = param(
        "", 'Prometheus endpoint: "" = off, "9464" = 127.0.0.1:9464, or "HOST:PORT"'
    )


@frozen(field_transformer=parameters("logging"))
class LoggingConfig:
    level: LogLevel = param("INFO", "DEBUG, INFO, WARNING or ERROR")
    format: LogFormatName = param(
        "auto", '"auto": JSON lines when stderr is not a terminal, text on one; or "json" / "text"'
    )
    json: bool = param(False, 'older switch: true is the same as format = "json"')

    @property
    def effective_format(self) -> LogFormatName:
        return "json" if self.json else self.format


@frozen
class Config:
    """The whole file: one section per task (declared beside it) plus the service's own sections."""

    mode: Mode = "observation"
    network: NetworkConfig = field(factory=NetworkConfig)
    account: AccountConfig = field(factory=AccountConfig)
    markets: MarketsConfig = field(factory=MarketsConfig)
    position: PositionParams = field(factory=PositionParams)
    shutdown: ShutdownParams = field(factory=ShutdownParams)
    detector: DetectorParams = field(factory=DetectorParams)
    gates: GateParams = field(factory=GateParams)
    hard_stop: HardStopParams = field(factory=HardStopParams)
    executor: ExecutorParams = field(factory=ExecutorParams)
    exits: ExitParams = field(factory=ExitParams)
    websocket: WebsocketParams = field(factory=WebsocketParams)
    journal: JournalConfig = field(factory=JournalConfig)
    logging: LoggingConfig = field(factory=LoggingConfig)
    metrics: MetricsConfig = field(factory=MetricsConfig)

    #: Oracle sessions ([[sessions]] tables); the trade.xyz weekend unless the file says otherwise.
    sessions: tuple[SessionWindow, ...] = field(default=(XYZ_WEEKEND,))

    @property
    def is_mainnet(self) -> bool:
        return self.network.is_mainnet

    @property
    def is_trading(self) -> bool:
        return self.mode == "trading"
