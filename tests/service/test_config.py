"""Config loading: defaults, every validation path with its key path, money as exact Decimal."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.service.config import (
    README_TABLE_END,
    README_TABLE_START,
    Config,
    ConfigError,
    config_from_mapping,
    config_from_text,
    config_to_text,
    load_config,
    mask_url,
    reference_table,
    unusual_values,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"
ADDRESS = "0x" + "ab" * 20


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_text(text)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(text: str) -> str:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# Defaults -----------------------------------------------------------------------------------------

# The values the task spec lists, written out independently of the schema.
SPEC_DEFAULTS: dict[str, dict[str, object]] = {
    "position": {
        "max_notional_per_market": Decimal(50),
        "max_total_notional": Decimal(300),
        "max_concurrent_positions": 5,
        "position_resync_interval_secs": 60,
    },
    "shutdown": {"flatten_on_shutdown": True, "settle_timeout_secs": 10},
    "detector": {
        "taker_fee_bps": None,  # from the exchange
        "min_edge_bps": Decimal("0.5"),
        "min_exit_cost_bps": Decimal(1),
        "exit_cost_secs": 60,
        "baseline_secs": 300,
        "baseline_warmup_secs": 5,
        "min_book_notional": Decimal(50),
        "min_order_notional": Decimal(11),
        "oracle_direction_filter": True,
        "oracle_window_secs": 10,
        "min_consecutive_oracle_moves": 1,
        "min_oracle_move_bps": Decimal(2),
        "signal_dedup": True,
        "max_entry_spread_bps": Decimal(0),
    },
    "gates": {
        "max_bbo_age_ms": 0,
        "max_ctx_age_ms": 8000,
        "max_mark_mid_divergence_bps": Decimal(0),
        "max_oracle_mark_bps": Decimal(200),
        "max_edge_bps": Decimal(200),
        "max_oracle_unchanged_secs": 60,
        "spread_ewma_alpha": Decimal("0.05"),
        "spread_shock_multiplier": Decimal(3),
        "spread_shock_min_samples": 20,
        "max_oi_fraction": Decimal("0.95"),
        "time_regression_tolerance_ms": 250,
        "time_regression_hold_secs": 2,
        "param_check_interval_secs": 300,
    },
    "hard_stop": {
        "max_daily_loss_usd": Decimal(50),
        "max_rejects": 5,
        "reject_window_secs": 3600,
        "max_flatten_failures": 3,
        "state_file": Path("var/hard_stop.json"),
    },
    "executor": {
        "max_slippage_bps": Decimal(10),
        "post_timeout_secs": 5,
        "resolve_timeout_secs": 60,
        "http_fallback": True,
        "max_orders_per_second": 10,
        "entry_expiry_secs": 2,
    },
    "exits": {
        "time_stop_secs": 20,
        "mark_regression_bps": Decimal(5),
        "min_holding_secs": 1,
        "flatten_slippage_bps": Decimal(50),
        "retry_backoff_initial_secs": 1,
        "retry_backoff_max_secs": 30,
        "check_interval_secs": 0.25,
    },
    "websocket": {
        "ping_after_secs": 45,
        "silence_timeout_secs": 30,
        "reconnect_initial_secs": 0.5,
        "reconnect_max_secs": 30,
        "healthy_after_secs": 60,
    },
    "journal": {"path": "var/journal.sqlite3"},
    "logging": {"level": "INFO", "json": False},
    "markets": {"dex": "xyz", "coins": ("*",), "threshold_bps": {}},
}


def test_empty_file_gives_spec_defaults() -> None:
    cfg = config_from_text("")
    assert cfg.mode == "observation"
    assert cfg.network.name == "mainnet" and cfg.is_mainnet
    assert cfg.network.info_url == "https://api.hyperliquid.xyz/info"
    assert cfg.network.exchange_url == "https://api.hyperliquid.xyz/exchange"
    assert cfg.network.ws_url == "wss://api.hyperliquid.xyz/ws"
    assert cfg.account.address is None and cfg.account.key_file is None
    for section, values in SPEC_DEFAULTS.items():
        for key, expected in values.items():
            actual = getattr(getattr(cfg, section), key)
            assert actual == expected, f"{section}.{key}"
            assert type(actual) is not float or isinstance(expected, int | float), f"{section}.{key}"
    money = [
        cfg.position.max_notional_per_market,
        cfg.detector.min_edge_bps,
        cfg.hard_stop.max_daily_loss_usd,
    ]
    assert all(isinstance(m, Decimal) for m in money)


def test_defaults_are_frozen() -> None:
    cfg = config_from_text("")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.position.max_total_notional = Decimal(1)  # type: ignore[misc]


def test_example_sets_every_key_to_its_default() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    for attribute in attrs.fields(Config):
        if attribute.type is None or not attrs.has(attribute.type):
            continue
        # Keys whose default is "not set" cannot be written in TOML: they are shown commented out.
        expected = {f.name for f in attrs.fields(attribute.type) if f.default is not None}
        if attribute.name == "account":  # identity keys are shown commented out
            expected = set()
        assert set(raw.get(attribute.name, {})) == expected, attribute.name
    assert load_config(EXAMPLE) == config_from_text("", base_dir=EXAMPLE.parent)


def test_effective_config_text_round_trips() -> None:
    text = f"""
mode = "trading"
[network]
name = "testnet"
info_url = "http://127.0.0.1:8787/info"
[account]
address = "{ADDRESS.upper().replace("0X", "0x")}"
key_file = "/tmp/k"
[markets]
coins = ["TSLA", "NVDA"]
threshold_bps = {{ TSLA = 20.5, NVDA = "25" }}
[detector]
min_edge_bps = 0.1
"""
    cfg = config_from_text(text)
    shown = config_to_text(cfg)
    assert config_from_text(shown) == cfg
    assert 'address = "' + ADDRESS + '"' in shown  # normalised to lower case
    assert 'ws_url = "wss://api.hyperliquid-testnet.xyz/ws"' in shown


# Values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [("0.1", Decimal("0.1")), ('"0.1"', Decimal("0.1")), ("7", Decimal(7)), ('"1e2"', Decimal(100))],
)
def test_money_is_exact_decimal(written: str, expected: Decimal) -> None:
    cfg = config_from_text(f"[hard_stop]\nmax_daily_loss_usd = {written}\n")
    value = cfg.hard_stop.max_daily_loss_usd
    assert isinstance(value, Decimal)
    assert value == expected
    if written == "0.1":
        assert str(value) == "0.1"  # not 0.1000000000000000055511151231257827


def test_network_testnet_defaults_and_overrides() -> None:
    cfg = config_from_text('[network]\nname = "testnet"\nws_url = "ws://127.0.0.1:9000/ws"\n')
    assert not cfg.is_mainnet
    assert cfg.network.info_url == "https://api.hyperliquid-testnet.xyz/info"
    assert cfg.network.exchange_url == "https://api.hyperliquid-testnet.xyz/exchange"
    assert cfg.network.ws_url == "ws://127.0.0.1:9000/ws"


def test_trading_with_address() -> None:
    cfg = config_from_text(f'mode = "trading"\n[account]\naddress = "{ADDRESS}"\n')
    assert cfg.is_trading and cfg.account.address == ADDRESS


def test_threshold_overrides_and_coins() -> None:
    cfg = config_from_text('[markets]\ncoins = ["TSLA", "GOLD"]\nthreshold_bps = { TSLA = 20 }\n')
    assert cfg.markets.coins == ("TSLA", "GOLD")
    assert cfg.markets.threshold_bps == {"TSLA": Decimal(20)}
    assert not cfg.markets.all_coins


def test_fee_overrides() -> None:
    cfg = config_from_text('[detector]\ntaker_fee_bps = 4.5\n[markets]\ntaker_fee_bps = { TSLA = "0.9" }\n')
    assert cfg.detector.taker_fee_bps == Decimal("4.5") and cfg.markets.taker_fee_bps == {
        "TSLA": Decimal("0.9")
    }
    assert config_from_text("").detector.taker_fee_bps is None  # from the exchange


# Problems, each with its exact key path ---------------------------------------------------------------


def test_out_of_range() -> None:
    assert only_problem("[position]\nmax_notional_per_market = -5\n") == (
        "position.max_notional_per_market: must be > 0, got -5"
    )


def test_unknown_nested_key() -> None:
    assert (
        only_problem('[markets]\ncoinz = ["TSLA"]\n') == 'markets.coinz: unknown key (did you mean "coins"?)'
    )


def test_unknown_key_without_suggestion() -> None:
    assert only_problem("[gates]\nbanana = 1\n") == "gates.banana: unknown key"


def test_unknown_top_level_key_and_section() -> None:
    problems = problems_of("colour = 1\n[risk]\nx = 1\n")
    assert problems == ["colour: unknown key", "risk: unknown key"]


def test_wrong_type_number() -> None:
    assert only_problem('[position]\nmax_total_notional = "abc"\n') == (
        'position.max_total_notional: expected a number, got "abc"'
    )


def test_wrong_types_of_each_kind() -> None:
    problems = problems_of(
        """
[position]
max_concurrent_positions = 2.5
[shutdown]
flatten_on_shutdown = "yes"
settle_timeout_secs = "ten"
[journal]
path = 5
[detector]
taker_fee_bps = true
"""
    )
    assert problems == [
        "position.max_concurrent_positions: expected an integer, got 2.5",
        'shutdown.flatten_on_shutdown: expected true or false, got "yes"',
        'shutdown.settle_timeout_secs: expected a number, got "ten"',
        "detector.taker_fee_bps: expected a number, got true",
        "journal.path: expected a string, got 5",
    ]


def test_section_that_is_not_a_table() -> None:
    assert only_problem("position = 5\n") == "position: expected a table [position], got 5"


def test_bad_mode_and_network() -> None:
    problems = problems_of('mode = "paper"\n[network]\nname = "devnet"\n')
    assert problems == [
        'mode: must be "observation" or "trading", got "paper"',
        'network.name: must be "mainnet" or "testnet", got "devnet"',
    ]


def test_bad_log_level() -> None:
    assert only_problem('[logging]\nlevel = "LOUD"\n') == (
        'logging.level: must be one of "DEBUG", "INFO", "WARNING", "ERROR"; got "LOUD"'
    )


def test_bad_urls() -> None:
    problems = problems_of('[network]\ninfo_url = "ftp://x/info"\nws_url = "https://x/ws"\n')
    assert [p.split(":")[0] for p in problems] == ["network.info_url", "network.ws_url"]
    assert "http:// or https://" in problems[0] and "ws:// or wss://" in problems[1]


def test_trading_requires_address() -> None:
    assert only_problem('mode = "trading"\n').startswith('account.address: required when mode = "trading"')


def test_bad_address() -> None:
    assert only_problem('[account]\naddress = "0x1234"\n') == (
        "account.address: must be 0x followed by 40 hex digits, got 6 characters"
    )


def test_private_key_in_config_is_refused_without_echo() -> None:
    key = "0x" + "5a" * 32
    problems = problems_of(f'[account]\nprivate_key = "{key}"\naddress = "{key}"\n')
    assert problems == [
        "account.address: must be 0x followed by 40 hex digits, got 66 characters",
        "account.private_key: unknown key (never put a key in the config: set HIP3_PRIVATE_KEY or account.key_file)",
    ]


def test_key_like_string_is_not_echoed_in_type_errors() -> None:
    key = "5a" * 32
    problem = only_problem(f'[position]\nmax_total_notional = "{key}"\n')
    assert key not in problem and "looks like a private key" in problem


def test_coin_rules() -> None:
    problems = problems_of('[markets]\ncoins = ["xyz:TSLA", 5]\n')
    assert problems == [
        'markets.coins[0]: write the coin without the dex prefix ("TSLA")',
        "markets.coins[1]: expected a string, got 5",
    ]
    assert only_problem('[markets]\ncoins = ["*", "TSLA"]\n') == (
        'markets.coins: "*" (every market) must be the only entry'
    )
    assert only_problem("[markets]\ncoins = []\n").startswith("markets.coins: must list at least one coin")
    assert only_problem('[markets]\ncoins = "TSLA"\n') == 'markets.coins: expected an array, got "TSLA"'


def test_threshold_rules() -> None:
    problems = problems_of('[markets]\ncoins = ["TSLA"]\nthreshold_bps = { TSLA = 0, NVDA = "x" }\n')
    assert problems == [
        "markets.threshold_bps.TSLA: must be > 0, got 0",
        'markets.threshold_bps.NVDA: expected a number, got "x"',
    ]
    assert only_problem('[markets]\ncoins = ["TSLA"]\nthreshold_bps = { NVDA = 20 }\n') == (
        "markets.threshold_bps.NVDA: NVDA is not in markets.coins"
    )


def test_cross_field_rules() -> None:
    problems = problems_of(
        """
[position]
max_notional_per_market = 500
max_total_notional = 300
[exits]
retry_backoff_initial_secs = 60
min_holding_secs = 20
[executor]
post_timeout_secs = 90
[websocket]
reconnect_initial_secs = 31
"""
    )
    assert problems == [
        "position.max_notional_per_market: must be <= position.max_total_notional (300), got 500",
        "executor.post_timeout_secs: must be <= executor.resolve_timeout_secs (60.0), got 90.0",
        "exits.retry_backoff_initial_secs: must be <= exits.retry_backoff_max_secs (30.0), got 60.0",
        "exits.min_holding_secs: must be < exits.time_stop_secs (20.0), got 20.0",
        "websocket.reconnect_initial_secs: must be <= websocket.reconnect_max_secs (30.0), got 31.0",
    ]


def test_min_order_must_fit_in_per_market_cap() -> None:
    assert only_problem("[position]\nmax_notional_per_market = 10\n") == (
        "detector.min_order_notional: must be <= position.max_notional_per_market (10), got 11"
    )


def test_exchange_minimum_order() -> None:
    assert only_problem("[detector]\nmin_order_notional = 5\n") == (
        "detector.min_order_notional: must be >= 10, got 5"
    )


def test_fractions_and_counts() -> None:
    problems = problems_of(
        "[detector]\nmin_edge_bps = -1\n[gates]\nmax_oi_fraction = 1.5\n[hard_stop]\nmax_rejects = 0\n"
    )
    assert problems == [
        "detector.min_edge_bps: must be >= 0, got -1",
        "gates.max_oi_fraction: must be <= 1, got 1.5",
        "hard_stop.max_rejects: must be >= 1, got 0",
    ]


def test_nonfinite_numbers_refused() -> None:
    assert only_problem("[shutdown]\nsettle_timeout_secs = inf\n") == (
        "shutdown.settle_timeout_secs: expected a finite number, got inf"
    )
    assert only_problem("[position]\nmax_total_notional = nan\n") == (
        "position.max_total_notional: expected a finite number, got nan"
    )


def test_zero_means_off_where_documented() -> None:
    cfg = config_from_text(
        "[gates]\nmax_bbo_age_ms = 0\nparam_check_interval_secs = 0\n[position]\nposition_resync_interval_secs = 0\n"
        '[detector]\nmax_entry_spread_bps = 0\n[journal]\npath = ""\n'
    )
    assert cfg.gates.max_bbo_age_ms == 0 and not cfg.journal.enabled


def test_many_problems_reported_together() -> None:
    problems = problems_of(
        """
mode = "paper"
[markets]
coinz = 1
[position]
max_notional_per_market = -5
max_total_notional = "abc"
[logging]
json = 1
"""
    )
    assert problems == [
        'mode: must be "observation" or "trading", got "paper"',
        'markets.coinz: unknown key (did you mean "coins"?)',
        "position.max_notional_per_market: must be > 0, got -5",
        'position.max_total_notional: expected a number, got "abc"',
        "logging.json: expected true or false, got 1",
    ]


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.problems == [f"{tmp_path / 'nope.toml'}: config file not found"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[position\nx = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert len(info.value.problems) == 1 and "not valid TOML" in info.value.problems[0]


def test_mask_url() -> None:
    assert mask_url("https://user:pw@host:1/info?token=abc") == "https://***@host:1/info?***"
    assert mask_url("http://127.0.0.1:8787/info") == "http://127.0.0.1:8787/info"
    cfg = config_from_text('[network]\ninfo_url = "https://u:secretpw@example.com/info"\n')
    assert "secretpw" not in config_to_text(cfg)


# Robustness: any TOML-shaped input gives a Config or a ConfigError, never another exception ------------

_SECTION_KEYS = {
    attribute.name: [f.name for f in attrs.fields(attribute.type)] + ["bogus"]
    for attribute in attrs.fields(Config)
    if attribute.type is not None and attrs.has(attribute.type)
}
_toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.dates(),
)
_toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _raw_configs(draw: st.DrawFn) -> dict[str, object]:
    raw: dict[str, object] = {}
    for section in draw(st.lists(st.sampled_from(sorted(_SECTION_KEYS)), max_size=5, unique=True)):
        chosen = draw(st.lists(st.sampled_from(_SECTION_KEYS[section]), max_size=4, unique=True))
        raw[section] = {key: draw(_toml_values) for key in chosen}
    if draw(st.booleans()):
        raw["mode"] = draw(_toml_values)
    return raw


@given(_raw_configs())
@settings(max_examples=300, deadline=None)
def test_any_input_gives_config_or_config_error(raw: dict[str, object]) -> None:
    try:
        cfg = config_from_mapping(raw)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and ": " in p for p in exc.problems)
    else:
        assert config_from_text(config_to_text(cfg)) == cfg


def test_config_text_round_trips_any_string() -> None:
    # Beyond U+FFFF (json.dumps would write a surrogate pair TOML refuses), DEL, quotes, backslashes.
    for odd in ("𐀀", "a\x7fb", 'say "hi" \\ bye', "tab\there", "ünï"):
        cfg = config_from_mapping({"hard_stop": {"state_file": odd}})
        assert config_from_text(config_to_text(cfg)) == cfg, repr(odd)


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=6)
)  # the largest legal limit
def test_money_strings_are_exact(value: Decimal) -> None:
    cfg = config_from_text(f'[hard_stop]\nmax_daily_loss_usd = "{value}"\n')
    assert cfg.hard_stop.max_daily_loss_usd == value


def test_rules_across_sections_are_reported_with_the_other_problems() -> None:
    problems = problems_of(
        'mode = "trading"\n[position]\nmax_notional_per_market = -5\n[markets]\ncoinz = []\n'
    )
    assert problems[0] == 'markets.coinz: unknown key (did you mean "coins"?)'
    assert "position.max_notional_per_market: must be > 0, got -5" in problems
    assert any(p.startswith("account.address: required") for p in problems)
    # a rule about a section that already failed is not repeated with that section's defaults
    assert not any(p.startswith("detector.min_order_notional") for p in problems)
    assert len(problems) == 3


# One declaration per section -------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def _sections() -> list[tuple[str, type]]:
    return [(a.name, a.type) for a in attrs.fields(Config) if a.type is not None and attrs.has(a.type)]


def test_readme_reference_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index(README_TABLE_START) + len(README_TABLE_START)
    end = text.index(README_TABLE_END)
    assert text[start:end].strip() == reference_table(), "run scripts/config_reference.py"


def test_reference_table_has_one_row_per_key_and_nothing_else() -> None:
    rows = reference_table().splitlines()[2:]
    keys = [row.split("`")[1] for row in rows]
    expected = ["mode"] + [f"{name}.{f.name}" for name, cls in _sections() for f in attrs.fields(cls)]
    assert keys == expected
    # config/example.toml holds the same keys with these defaults: test_example_sets_every_key_to_its_default


def test_every_key_has_a_description() -> None:
    for name, cls in _sections():
        for f in attrs.fields(cls):
            assert f.metadata.get("hip3.doc"), f"{name}.{f.name} has no description"


def test_task_sections_are_the_classes_the_tasks_receive() -> None:
    from hip3.hyperliquid.ws import WebsocketParams
    from hip3.strategy.detector import DetectorParams
    from hip3.strategy.gates import GateParams
    from hip3.trading.executor.task import ExecutorParams
    from hip3.trading.exits import ExitParams, ShutdownParams
    from hip3.trading.hardstop import HardStopParams
    from hip3.trading.limits import PositionParams

    sections = dict(_sections())
    assert sections["detector"] is DetectorParams
    assert sections["gates"] is GateParams
    assert sections["hard_stop"] is HardStopParams
    assert sections["executor"] is ExecutorParams
    assert sections["exits"] is ExitParams
    assert sections["shutdown"] is ShutdownParams
    assert sections["websocket"] is WebsocketParams
    assert sections["position"] is PositionParams


def test_building_a_section_directly_applies_the_same_limits_and_rules() -> None:
    from hip3.strategy.detector import DetectorParams
    from hip3.trading.executor.task import ExecutorParams

    with pytest.raises(ValueError, match=r"^detector.exit_cost_secs: must be > 0, got 0.0$"):
        DetectorParams(exit_cost_secs=0)
    assert problems_of("[detector]\nexit_cost_secs = 0\n") == [
        "detector.exit_cost_secs: must be > 0, got 0.0"
    ]
    with pytest.raises(
        ValueError, match=r"executor\.post_timeout_secs: must be <= executor\.resolve_timeout_secs"
    ):
        ExecutorParams(post_timeout_secs=90)
    assert ExecutorParams(max_orders_per_second=0.5).max_orders_per_second == 0.5
    assert config_from_text("[executor]\nmax_orders_per_second = 0.5\n").executor.max_orders_per_second == 0.5
    assert DetectorParams(taker_fee_bps="4.5").taker_fee_bps == Decimal("4.5")  # type: ignore[arg-type]


# Ranges that make sense for money; legal but unusual values are warned about --------------------------


def test_a_flatten_slippage_that_would_make_longs_unflattenable_is_refused() -> None:
    problem = only_problem("[exits]\nflatten_slippage_bps = 10000\n")
    assert problem.startswith("exits.flatten_slippage_bps: must be <= 1000, got 10000 (")
    assert "sell" in problem  # the reason says what the value would do
    assert only_problem("[exits]\nflatten_slippage_bps = 5000\n").startswith(
        "exits.flatten_slippage_bps: must be <= 1000"
    )
    assert config_from_text("[exits]\nflatten_slippage_bps = 1000\n").exits.flatten_slippage_bps == 1000


def test_entry_slippage_is_bounded_too() -> None:
    assert only_problem("[executor]\nmax_slippage_bps = 2000\n").startswith(
        "executor.max_slippage_bps: must be <= 1000, got 2000 ("
    )


@pytest.mark.parametrize(
    "text",
    [
        "[position]\nmax_notional_per_market = 1e12\nmax_total_notional = 1e12\n",
        "[position]\nmax_total_notional = 1e12\n",
        "[hard_stop]\nmax_daily_loss_usd = 1e12\n",
    ],
)
def test_caps_and_the_daily_loss_limit_have_sane_maxima(text: str) -> None:
    problems = problems_of(text)
    assert problems and all("must be <= 1000000" in p and "(" in p for p in problems), problems


def test_a_fee_override_is_never_negative() -> None:
    assert config_from_text("[detector]\ntaker_fee_bps = 0\n").detector.taker_fee_bps == 0
    assert only_problem("[detector]\ntaker_fee_bps = -1\n").startswith("detector.taker_fee_bps: must be >= 0")


def test_a_threshold_below_the_round_trips_configured_fees_is_refused() -> None:
    # With a fee override of 4.5 bps per fill, a 5 bps all-in threshold trades edges the fees eat.
    problem = only_problem(
        '[detector]\ntaker_fee_bps = 4.5\n[markets]\ncoins = ["TSLA"]\nthreshold_bps = { TSLA = 5 }\n'
    )
    assert problem.startswith("markets.threshold_bps.TSLA: must be >= the round trip's taker fees (9.0 bps")
    cfg = config_from_text(
        '[detector]\ntaker_fee_bps = 4.5\n[markets]\ncoins = ["TSLA"]\nthreshold_bps = { TSLA = 9 }\n'
    )
    assert cfg.markets.threshold_bps["TSLA"] == 9
    # Without an override the fee is the exchange's, known at startup (a warning then).
    assert config_from_text(
        '[markets]\ncoins = ["TSLA"]\nthreshold_bps = { TSLA = 5 }\n'
    ).markets.threshold_bps


def test_unusual_but_legal_values_are_listed_for_a_startup_warning() -> None:
    assert unusual_values(config_from_text("")) == []
    cfg = config_from_text(
        "[exits]\nflatten_slippage_bps = 500\n[gates]\nmax_ctx_age_ms = 0\n"
        "[hard_stop]\nmax_daily_loss_usd = 400\n[shutdown]\nflatten_on_shutdown = false\n"
    )
    warnings = unusual_values(cfg)
    assert [w.split(" = ")[0] for w in warnings] == [
        "shutdown.flatten_on_shutdown",
        "gates.max_ctx_age_ms",
        "hard_stop.max_daily_loss_usd",
        "exits.flatten_slippage_bps",
    ]
    assert all(len(w.split(": ", 1)[1]) > 20 for w in warnings)  # each says why


def test_check_config_prints_the_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hip3.service.cli import check_config

    path = tmp_path / "c.toml"
    path.write_text("[exits]\nflatten_slippage_bps = 500\n")
    check_config(str(path))
    assert "hip3: warning: exits.flatten_slippage_bps = 500: a flatten may fill" in capsys.readouterr().err


# Relative paths resolve against the config file's directory ---------------------------------------------


def test_relative_paths_resolve_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "hip3"
    conf_dir.mkdir(parents=True)
    path = conf_dir / "bot.toml"
    path.write_text(
        '[hard_stop]\nstate_file = "var/hs.json"\n[journal]\npath = "var/journal.sqlite3"\n'
        '[account]\nkey_file = "keys/signing.key"\n'
    )
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    cfg = load_config(path)
    assert cfg.hard_stop.state_file == conf_dir / "var" / "hs.json"
    assert cfg.journal.path == str(conf_dir / "var" / "journal.sqlite3")
    assert cfg.account.key_file == conf_dir / "keys" / "signing.key"
    # a relative path to the config itself resolves the same way
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("etc/hip3/bot.toml")) == cfg


def test_defaults_absolute_paths_and_an_empty_journal_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[journal]\npath = ""\n[account]\nkey_file = "/etc/hip3/signing.key"\n')
    monkeypatch.chdir("/")
    cfg = load_config(path)
    assert cfg.hard_stop.state_file == tmp_path / "var" / "hard_stop.json"  # the default, resolved too
    assert cfg.journal.path == "" and not cfg.journal.enabled
    assert cfg.account.key_file == Path("/etc/hip3/signing.key")


def test_reset_hard_stop_from_another_directory_finds_the_latch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hip3.service.cli import reset_hard_stop
    from hip3.trading.hardstop import HardStop

    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "bot.toml").write_text('[hard_stop]\nstate_file = "state/hs.json"\n')
    monkeypatch.chdir(conf_dir)  # the bot ran from here
    stop = HardStop.load(load_config("bot.toml").hard_stop)
    stop.trigger("test latch")
    assert (conf_dir / "state" / "hs.json").exists()
    monkeypatch.chdir(tmp_path)  # the operator resets from elsewhere
    assert reset_hard_stop(str(conf_dir / "bot.toml")) == 0
    assert "removed hard-stop state" in capsys.readouterr().out
    assert not (conf_dir / "state" / "hs.json").exists()
