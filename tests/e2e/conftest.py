"""End-to-end harness: the simulator on 127.0.0.1, a throwaway funded account, and the whole bot.

Everything runs on the real clock over loopback sockets (hypercorn, trio-websocket, httpx), so
every wait here is bounded. The master account and the agent key are generated per test; the
agent key is approved in the simulator the way `hip3.service.demo` does it. The simulator's TSLA market is
frozen (oracle and book set by the test) so the only dislocations are the ones a test makes.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from hip3 import clock
from hip3.hyperliquid import signing, wire
from hip3.service.app import Bot, run_bot
from hip3.service.config import Config, config_from_mapping
from hip3.service.keys import SecretKey
from hip3.sim import Sim, load_sim_config, open_sim
from hip3.trading.messages import Signal

D = Decimal
COIN = "TSLA"
TSLA = "xyz:TSLA"
#: The simulator's start price for TSLA (hip3/sim/markets.toml); oracle and mark start here.
START_PX = D("432.15")
TICK = D("0.01")  # TSLA below 1000 with szDecimals 3: 5 significant figures -> 2 decimals
LOT = D("0.001")
MAX_NOTIONAL = D(100)
#: hip3.strategy.detector caps the size at 99 % of max_notional_per_market (NOTIONAL_CAP_BUFFER).
CAP_BUFFER = D("0.99")
BOOK_SIZE = D(20)  # ~$8.6k per level: more than the cap, so the cap sets the size


def expected_entry_size(bid: Decimal, ask: Decimal) -> Decimal:
    """The detector's size for a buy on a thick book, by hand: 99 % of the cap at the ask taken, floored to the lot."""
    return min(BOOK_SIZE, (MAX_NOTIONAL * CAP_BUFFER / ask).quantize(LOT, rounding=ROUND_DOWN))


def px(value: Decimal) -> Decimal:
    return value.quantize(TICK)


# ---------------------------------------------------------------------------------------------
# The simulated market, driven by the test


@attrs.define
class FrozenMarket:
    """One simulator market under the test's control; the mark follows the simulator's own rule
    (median of oracle, best bid, best ask) at once, so the mark/mid gate sees a consistent market."""

    sim: Sim
    coin: str = COIN
    oracle: Decimal = START_PX
    bid: Decimal = START_PX - D("0.10")
    ask: Decimal = START_PX
    size: Decimal = BOOK_SIZE

    def set_oracle(self, value: Decimal) -> None:
        self.oracle = px(value)
        self.sim.engine.set_oracle(self.coin, self.oracle)
        self._mark()

    def quote(self, bid: Decimal, ask: Decimal, size: Decimal | None = None) -> None:
        """Replace the book with one level a side (a changed book is a fresh bbo for the bot)."""
        self.bid, self.ask = px(bid), px(ask)
        if size is not None:
            self.size = size
        self.sim.engine.set_book(self.coin, bids=[(self.bid, self.size)], asks=[(self.ask, self.size)])
        self._mark()

    def refresh(self) -> None:
        """Same prices, a slightly different size: the bbo changes, so the bot's copy is fresh."""
        self.quote(self.bid, self.ask, BOOK_SIZE + 1 if self.size == BOOK_SIZE else BOOK_SIZE)

    def _mark(self) -> None:
        self.sim.engine.update_mark(self.coin, sorted((self.oracle, self.bid, self.ask))[1])


# ---------------------------------------------------------------------------------------------
# Accounts


@attrs.frozen
class Accounts:
    """A throwaway master (its own key signs the test's setup orders) and an approved agent key for the bot."""

    master_key: str
    master: str
    agent: SecretKey


def make_accounts(sim: Sim, usd: int = 10_000) -> Accounts:
    master_key = "0x" + secrets.token_hex(32)
    master = signing.address_of(master_key)
    agent = SecretKey("0x" + secrets.token_hex(32), source="throwaway test key")
    sim.engine.fund(master, usd)
    sim.engine.approve_agent(master, agent.address)
    return Accounts(master_key=master_key, master=master, agent=agent)


_last_setup_nonce = 0


async def post_order_as_master(
    sim: Sim,
    accounts: Accounts,
    *,
    is_buy: bool,
    price: Decimal,
    size: Decimal,
    tif: str,
    reduce_only: bool = False,
) -> dict[str, Any]:
    """Sign one order with the master's own key and POST it to /exchange (what another client would do).

    Returns the order's status, e.g. {"filled": {...}} or {"resting": {"oid": ...}}.
    """
    global _last_setup_nonce
    asset = sim.engine.market(COIN).asset
    cloid = "0x" + secrets.token_hex(16)  # another client's cloid: unknown to the bot's tracker
    action = wire.order_action([wire.order_wire(asset, is_buy, price, size, reduce_only, tif, cloid)])
    nonce = max(clock.wall_clock_ms(), _last_setup_nonce + 1)
    _last_setup_nonce = nonce
    body = {
        "action": action,
        "nonce": nonce,
        "signature": signing.sign_l1_action(accounts.master_key, action, nonce, is_mainnet=False),
    }
    async with httpx.AsyncClient(timeout=3) as client:
        response = await client.post(sim.exchange_url, json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    assert result["status"] == "ok", result
    return result["response"]["data"]["statuses"][0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# The bot's configuration


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def bot_config(sim: Sim, master: str | None, tmp_path: Path, **sections: Any) -> Config:
    """Trading on the simulator's TSLA only, small caps, fast exits/timeouts; `sections` override tables."""
    base: dict[str, Any] = {
        "mode": "trading",
        "network": {
            "name": "testnet",
            "info_url": sim.info_url,
            "exchange_url": sim.exchange_url,
            "ws_url": sim.ws_url,
        },
        "account": {"address": master},
        "markets": {"dex": "xyz", "coins": [COIN]},
        "position": {
            "max_notional_per_market": int(MAX_NOTIONAL),
            "max_total_notional": 200,
            "max_concurrent_positions": 2,
            "position_resync_interval_secs": 30,
        },
        "exits": {
            "time_stop_secs": 30,
            "min_holding_secs": 0.2,
            "check_interval_secs": 0.05,
            "retry_backoff_initial_secs": 0.2,
            "retry_backoff_max_secs": 1,
        },
        "executor": {"post_timeout_secs": 1, "resolve_timeout_secs": 3},
        "shutdown": {"flatten_on_shutdown": True, "settle_timeout_secs": 3},
        "websocket": {"reconnect_initial_secs": 0.2, "reconnect_max_secs": 1},
        "hard_stop": {"state_file": str(tmp_path / "hard_stop.json")},
        "journal": {"path": str(tmp_path / "journal.sqlite3")},
        # The frozen market has no structural gap to learn and no trading week: neither the
        # baseline's warm-up nor the real date's session may decide when a test's entry happens.
        "detector": {"baseline_warmup_secs": 0},
        "sessions": [],
    }
    if master is None:
        del base["account"]
    return config_from_mapping(_merge(base, sections))


# ---------------------------------------------------------------------------------------------
# Running the bot


@attrs.define
class BotRun:
    bot: Bot | None = None
    code: int | None = None
    signals: list[Signal] = attrs.field(factory=list)
    done: trio.Event = attrs.field(factory=trio.Event)

    @property
    def b(self) -> Bot:
        assert self.bot is not None
        return self.bot

    async def stop(self, timeout: float = 10.0) -> int:
        """Orderly shutdown (what SIGTERM does); returns run_bot's exit code."""
        self.b.request_stop()
        with trio.fail_after(timeout):
            await self.done.wait()
        assert self.code is not None
        return self.code


@asynccontextmanager
async def running_bot(
    cfg: Config, key: SecretKey | None, *, start_timeout: float = 5.0
) -> AsyncIterator[BotRun]:
    """Start `run_bot` as the app does in tests; leaving the block stops it (orderly unless the test failed)."""
    run = BotRun()

    async def main(task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            run.code = await run_bot(
                cfg,
                key=key,
                handle_signals=False,
                on_signal=run.signals.append,
                task_status=task_status,
            )
        finally:
            run.done.set()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(start_timeout):
            run.bot = await nursery.start(main)
        try:
            yield run
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        if not run.done.is_set():
            await run.stop()


# ---------------------------------------------------------------------------------------------
# Observations


async def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 3.0, poll: float = 0.05
) -> None:
    try:
        with trio.fail_after(timeout):
            while not condition():
                await trio.sleep(poll)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


def bot_positions(bot: Bot) -> dict[str, Decimal]:
    assert bot.tracker is not None
    return {m.name: p.size for m, p in bot.tracker.view().positions.items()}


def sim_positions(sim: Sim, address: str) -> dict[str, Decimal]:
    return sim.engine.positions(address)


@attrs.frozen
class InfoRequest:
    at: float  # trio time the simulator received it
    at_ms: int  # the exchange clock then (the clock of fill "time" fields)
    body: Any


def record_info_requests(sim: Sim) -> list[InfoRequest]:
    """Every /info request the simulator answers from now on (HTTP and WS post), in arrival order."""
    seen: list[InfoRequest] = []
    answer_info = sim.answer_info

    def recording(body: Any) -> tuple[Any, float]:
        seen.append(InfoRequest(trio.current_time(), sim.engine.now_ms(), body))
        return answer_info(body)

    sim.answer_info = recording  # type: ignore[method-assign]
    return seen


def of_type(requests: list[InfoRequest], kind: str) -> list[InfoRequest]:
    return [r for r in requests if isinstance(r.body, dict) and r.body.get("type") == kind]


def settled(bot: Bot) -> bool:
    assert bot.tracker is not None
    view = bot.tracker.view()
    return not view.pending_markets and not view.flattening_markets


def cloid_counts(sim: Sim, address: str) -> Counter[str | None]:
    """How many orders the simulator accepted per cloid for this account (rejected ones included)."""
    address = address.lower()
    return Counter(o.cloid for o in sim.engine.orders.values() if o.user == address)


def assert_one_order_per_cloid(sim: Sim, address: str) -> None:
    counts = cloid_counts(sim, address)
    assert None not in counts, f"the bot sent an order without a cloid: {counts}"
    sent_twice = {c: n for c, n in counts.items() if n > 1}
    assert not sent_twice, f"orders sent more than once: {sent_twice}"


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    # The simulator accepts testnet signatures by default, as the bot signs with network.name = "testnet".
    config = load_sim_config(None)
    # activeAssetCtx every 0.1 s instead of the exchange's ~1 s: these tests time safety mechanics
    # (READY, catch-up windows, bbo age), not the oracle's delivery delay
    config = attrs.evolve(config, model=attrs.evolve(config.model, ctx_interval=0.1))
    async with open_sim(config, port=0) as running:
        yield running


@pytest.fixture
def market(sim: Sim) -> FrozenMarket:
    m = FrozenMarket(sim)
    m.set_oracle(START_PX)
    m.quote(START_PX - D("0.10"), START_PX, BOOK_SIZE)
    return m


@pytest.fixture
def accounts(sim: Sim) -> Accounts:
    return make_accounts(sim)
