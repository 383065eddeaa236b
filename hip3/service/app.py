"""The bot: startup, then every task under one root nursery, then an orderly shutdown.

Startup (trading mode): discover markets (asset ids from meta(dex)), sync positions from
clearinghouseState(dex), cancel orphaned open orders, subscribe market and user channels. Then
the root nursery runs tracker, feed, detector, executor, exits, resync and a status reporter. A
task that dies takes the nursery down and the process exits non-zero, so systemd restarts it —
nothing is restarted silently.

Shutdown on SIGTERM/SIGINT (or `stop` in tests and the demo): stop entries, let in-flight orders
settle, flatten when configured, exit 0. A second signal exits at once.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import attrs
import trio

from hip3.clock import utc_day, wall_clock_ms
from hip3.core import MarketKey, MarketSpec
from hip3.histogram import LAG_BUCKETS_SECS, Histogram
from hip3.hyperliquid import signing, wire
from hip3.hyperliquid.events import ActionOk, Meta, OrderError, StatusSuccess, UserFees, UserFills
from hip3.hyperliquid.info import InfoClient, InfoError, NotListedError, open_info_client
from hip3.hyperliquid.ws import WsSession, open_ws_session
from hip3.market.cells import MarketCells
from hip3.market.checks import MarketChecker, initial_conditions, run_market_checks
from hip3.market.feed import Feed, market_subscriptions, run_feed, user_subscriptions
from hip3.market.ready import ReadyState
from hip3.service.account_check import SignerRefused, verify_signer
from hip3.service.config import Config, unusual_values
from hip3.service.config_schema import parse_listen
from hip3.service.downtime import (
    DowntimeFills,
    DowntimeFillsUnknown,
    count_fills_while_down,
    count_history_after_the_query,
)
from hip3.service.instance_lock import InstanceLocked, instance_lock
from hip3.service.journal import Journal, JournalUnusable, prepare_journal
from hip3.service.keys import KeyLoadError, SecretKey, load_signing_key
from hip3.service.metrics import bot_registry, run_loop_lag_probe, serve_metrics
from hip3.service.recovery import Recovered, RecoveryFailed, count_then_journal, settle_orders_in_doubt
from hip3.service.sdnotify import Notifier, notifier_from_env, run_service_notify, watchdog_interval
from hip3.strategy.accounting import EdgeLedger
from hip3.strategy.fees import TIER0_FEES, FeeTable
from hip3.strategy.scanner import SignalScanner, run_detector
from hip3.strategy.sessions import SessionCalendar
from hip3.trading.edge import account_snapshot
from hip3.trading.executor.signer import L1OrderSigner
from hip3.trading.executor.task import Executor, run_executor
from hip3.trading.exits import ExitPlanner, ShutdownOutcome, run_exits, shutdown_sequence
from hip3.trading.hardstop import HardStop, is_benign_reject, run_hard_stop_persistence
from hip3.trading.messages import (
    FlattenRequest,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    Signal,
)
from hip3.trading.resync import ResyncStats, ResyncTrigger, run_resync
from hip3.trading.tracker import Tracker
from hip3.trading.tracker.task import TrackerHandle, run_tracker

log = logging.getLogger("hip3.service.app")

#: Exit codes: 0 clean, 1 startup failure (systemd retries), 2 refused by configuration,
#: 3 stopped without knowing the account flat (orders with unknown outcome, or positions left
#: although flatten_on_shutdown), 130 aborted by a second stop request.
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_NOT_SETTLED, EXIT_ABORTED = 0, 1, 2, 3, 130
STATUS_INTERVAL_SECS = 10.0


def signal_scanner(
    cfg: Config, specs: Mapping[MarketKey, MarketSpec], fees: FeeTable | None = None
) -> SignalScanner:
    """The detector task's state, configured from the [detector], [gates], [position], [markets]
    and [[sessions]] sections; `fees` holds each market's taker fee (tier 0 when None)."""
    return SignalScanner(
        specs,
        cfg.detector,
        cfg.gates,
        max_notional=cfg.position.max_notional_per_market,
        threshold_overrides=cfg.markets.threshold_bps,
        edge_ceilings=cfg.markets.max_edge_bps,
        fees=fees if fees is not None else fee_table(cfg, specs),
        calendar=SessionCalendar(cfg.sessions),
    )


def fee_table(
    cfg: Config,
    specs: Mapping[MarketKey, MarketSpec],
    account: UserFees | None = None,
    source: str = "tier 0",
) -> FeeTable:
    """Taker fees per market: the account's rates (tier 0 without them) and the configured overrides."""
    overrides: dict[MarketKey, Decimal] = {}
    for market in specs:
        override = cfg.markets.taker_fee_bps.get(market.coin, cfg.detector.taker_fee_bps)
        if override is not None:
            overrides[market] = override
    return FeeTable(specs, account or TIER0_FEES, account_source=source, overrides=overrides)


async def startup_fees(
    cfg: Config, info: InfoClient, specs: Mapping[MarketKey, MarketSpec], meta: Meta | None
) -> FeeTable:
    """The account's rates from `userFees` (tier 0 without an account, or when the query fails: the
    highest rate, so the threshold errs towards not trading), applied to each market's meta entry."""
    account: UserFees | None = None
    source = "tier 0 (no account configured)"
    if cfg.account.address is not None:
        try:
            account = await info.user_fees(cfg.account.address)
            source = f"userFees of {cfg.account.address}"
        except InfoError as exc:
            source = "tier 0 (userFees failed)"
            log.warning("userFees query failed, using tier-0 fees (the highest): %s", exc)
    fees = fee_table(cfg, specs, account, source)
    if meta is not None:
        fees.apply_meta(meta)
    log.info(
        "account taker rate %s bps (%s)", f"{(fees.account_rate * 10_000).normalize():f}", fees.account_source
    )
    for line in fees.describe():
        log.info("%s", line)
    for market in specs:
        threshold = cfg.markets.threshold_bps.get(market.coin)
        if threshold is not None and threshold < 2 * fees.taker_bps(market):
            log.warning(
                "markets.threshold_bps.%s = %s is below the round trip's taker fees (2 x %s bps): "
                "every entry there loses its fees",
                market.coin,
                threshold,
                fees.taker_bps(market),
            )
    return fees


@attrs.define
class Bot:
    """Everything one run of the bot holds; tests and the demo read it, nothing else writes it."""

    cfg: Config
    specs: Mapping[MarketKey, MarketSpec]
    markets: Mapping[str, MarketKey]
    cells: MarketCells
    ready: ReadyState
    hard_stop: HardStop
    scanner: SignalScanner
    tracker: TrackerHandle | None = None
    executor: Executor | None = None
    exits: ExitPlanner | None = None
    resync: ResyncStats | None = None
    ws: WsSession | None = None
    stop_requested: trio.Event = attrs.field(factory=trio.Event)
    abort_requested: trio.Event = attrs.field(factory=trio.Event)
    journal: Journal | None = None
    market_checks: MarketChecker | None = None
    signals_seen: int = 0
    flat_at_exit: bool | None = None
    metrics_address: tuple[str, int] | None = None  # where GET /metrics is served, when on
    shutdown: ShutdownOutcome | None = None
    #: Round trips priced against the oracle (edge accounting).
    edge: EdgeLedger = attrs.field(default=None)
    #: What the startup counted of the fills while the bot was down (trading mode).
    downtime: DowntimeFills | None = None

    def __attrs_post_init__(self) -> None:
        if self.edge is None:
            self.edge = EdgeLedger(
                oracle_of=lambda m: self.cells.get(m).oracle_px, taker_bps_of=self.scanner.fees.taker_bps
            )

    @property
    def trading(self) -> bool:
        return self.cfg.mode == "trading"

    def request_stop(self) -> None:
        """First call: orderly shutdown. Second call: stop at once."""
        if self.stop_requested.is_set():
            log.warning("second stop request: exiting at once")
            self.abort_requested.set()
        else:
            log.info("stop requested: no new entries; settling in-flight orders")
            self.stop_requested.set()


async def run_bot(
    cfg: Config,
    *,
    mainnet_confirmed: bool = False,
    key: SecretKey | None = None,
    handle_signals: bool = True,
    on_signal: Callable[[Signal], None] | None = None,
    task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run until stopped; returns the process exit code."""
    trading = cfg.mode == "trading"
    if trading and cfg.network.is_mainnet and not mainnet_confirmed:
        log.error(
            "refusing to trade on mainnet without confirmation: pass --mainnet "
            '(or set mode = "observation" to watch without orders)'
        )
        return EXIT_REFUSED
    if trading:
        if cfg.account.address is None:
            log.error("account.address: required in trading mode")
            return EXIT_REFUSED
        if key is None:
            try:
                key = load_signing_key(cfg)
            except KeyLoadError as exc:
                log.error("%s", exc)
                return EXIT_REFUSED
        log.info("trading as %s, signing with %s (%s)", cfg.account.address, key.address, cfg.network.name)
    else:
        log.info("observation mode: market data and signals only, no orders")
    for line in unusual_values(cfg):
        log.warning("unusual setting: %s", line)

    with contextlib.ExitStack() as held:
        if trading:
            assert cfg.account.address is not None
            state_dir = cfg.hard_stop.state_file.parent
            try:
                held.enter_context(instance_lock(state_dir, cfg.account.address, cfg.markets.dex))
            except InstanceLocked as exc:
                log.error("refusing to start: %s", exc)
                return EXIT_REFUSED
            except OSError as exc:
                log.error("refusing to start: cannot take the instance lock in %s: %s", state_dir, exc)
                return EXIT_REFUSED
        return await _start(cfg, key, handle_signals, on_signal, task_status)


async def _start(
    cfg: Config,
    key: SecretKey | None,
    handle_signals: bool,
    on_signal: Callable[[Signal], None] | None,
    task_status: trio.TaskStatus[Bot],
) -> int:
    """Everything after the local checks (and, when trading, with the instance lock held)."""
    trading = cfg.mode == "trading"
    hard_stop = HardStop.load(cfg.hard_stop, arm=trading)  # observing writes nothing
    # The journal first: a file that cannot be used stops the start before the exchange is touched.
    try:
        journal = prepare_journal(cfg.journal.path)
    except JournalUnusable as exc:
        log.error("%s", exc)
        return EXIT_REFUSED
    try:
        return await _discover_and_run(
            cfg, trading, key, journal, hard_stop, handle_signals, on_signal, task_status
        )
    finally:
        if journal is not None:
            journal.close()


async def _discover_and_run(
    cfg: Config,
    trading: bool,
    key: SecretKey | None,
    journal: Journal | None,
    hard_stop: HardStop,
    handle_signals: bool,
    on_signal: Callable[[Signal], None] | None,
    task_status: trio.TaskStatus[Bot],
) -> int:
    async with open_info_client(cfg.network.info_url, exchange_url=cfg.network.exchange_url or None) as info:
        if trading:
            assert cfg.account.address is not None and key is not None
            try:
                await verify_signer(info, cfg.account.address, key.address, wall_clock_ms())
            except SignerRefused as exc:
                log.error("refusing to trade: %s", exc)
                return EXIT_REFUSED
            except InfoError as exc:
                log.error("could not check that the signing key may trade the account: %s", exc)
                return EXIT_FAILED
        try:
            # Before any subscription: one unknown coin would make the exchange drop the socket.
            discovery = await info.discover(cfg.markets.dex, list(cfg.markets.coins))
        except NotListedError as exc:
            log.error("configuration does not match the exchange: %s", exc)
            return EXIT_REFUSED
        except InfoError as exc:
            log.error("market discovery failed: %s", exc)
            return EXIT_FAILED
        by_coin = discovery.specs
        if not by_coin:
            log.error("market discovery: dex %r has no tradable markets", cfg.markets.dex)
            return EXIT_FAILED
        specs = {spec.key: spec for spec in by_coin.values()}
        markets = {spec.key.name: spec.key for spec in by_coin.values()}
        if trading and cfg.markets.all_coins:
            log.warning(
                'trading every market of dex %r (coins = ["*"]): a newly listed market is traded '
                "without review; list the coins to trade explicitly",
                cfg.markets.dex,
            )
        log.info(
            "markets: %s",
            ", ".join(
                f"{k.name} (asset {k.asset}, szDecimals {s.sz_decimals})" for k, s in sorted(specs.items())
            ),
        )
        bot = Bot(
            cfg=cfg,
            specs=specs,
            markets=markets,
            cells=MarketCells(specs, initial_conditions(discovery.perp_dex, specs)),
            ready=ReadyState(specs, trading=trading),
            hard_stop=hard_stop,
            journal=journal,
            scanner=signal_scanner(cfg, specs, await startup_fees(cfg, info, specs, discovery.meta)),
        )
        return await _run(bot, info, key, handle_signals, on_signal, task_status)


async def _run(
    bot: Bot,
    info: InfoClient,
    key: SecretKey | None,
    handle_signals: bool,
    on_signal: Callable[[Signal], None] | None,
    task_status: trio.TaskStatus[Bot],
) -> int:
    cfg = bot.cfg
    wsc = cfg.websocket
    async with (
        open_ws_session(
            cfg.network.ws_url,
            ping_after=wsc.ping_after_secs,
            silence_timeout=wsc.silence_timeout_secs,
            post_timeout=cfg.executor.post_timeout_secs,
            backoff_initial=wsc.reconnect_initial_secs,
            backoff_max=wsc.reconnect_max_secs,
            healthy_after=wsc.healthy_after_secs,
        ) as ws,
        trio.open_nursery() as nursery,
    ):
        bot.ws = ws
        notifier = notifier_from_env(os.environ)
        if notifier is not None:
            nursery.start_soon(_notify_systemd_until_cancelled, bot, notifier)
        if bot.journal is not None:
            await nursery.start(bot.journal.run)
            log.info("journal: %s", bot.journal.path)
        if handle_signals:
            nursery.start_soon(_watch_os_signals, bot)
        listen = parse_listen(cfg.metrics.listen)
        if listen is not None:
            await _start_metrics(bot, nursery, *listen)
        await nursery.start(run_hard_stop_persistence, bot.hard_stop)
        tracker = Tracker(
            bot.markets,
            max_notional_per_market=cfg.position.max_notional_per_market,
            max_total_notional=cfg.position.max_total_notional,
            max_concurrent_positions=cfg.position.max_concurrent_positions,
        )
        handle: TrackerHandle = await nursery.start(run_tracker, tracker)
        bot.tracker = handle
        # Subscribed before anything can trade, so the hooks see every transition.
        position_events = handle.subscribe()
        user = cfg.account.address
        nonces = signing.NonceManager()
        if bot.trading:
            assert user is not None and key is not None
            if not await _startup_sync(bot, info, handle, user, key, nonces):
                nursery.cancel_scope.cancel()
                return EXIT_FAILED

        feed = Feed(
            bot.cells,
            bot.markets,
            bot.ready,
            user=user if bot.trading else None,
            sink=handle if bot.trading else None,
            fetch_fills_since=(lambda since: info.user_fills_by_time(user, since))
            if bot.trading and user
            else None,
            record=bot.journal.user_event if bot.journal is not None and bot.trading else None,
            on_history=_count_first_history(bot) if bot.trading else None,
        )
        ws.route_market_data(feed.on_market_data)
        await nursery.start(run_feed, ws.events, feed)
        for sub in market_subscriptions(bot.markets):
            await ws.subscribe(sub)
        if bot.trading and user:
            for sub in user_subscriptions(user):
                await ws.subscribe(sub)

        signals_send, signals_recv = trio.open_memory_channel[Signal](4)
        flattens_send, flattens_recv = trio.open_memory_channel[FlattenRequest](100)

        def count_signal(sig: Signal) -> None:
            bot.signals_seen += 1
            bot.edge.on_signal(sig)
            if bot.journal is not None:
                bot.journal.record(sig)
            if on_signal is not None:
                on_signal(sig)

        await nursery.start(
            functools.partial(run_detector, on_signal=count_signal),
            bot.cells,
            bot.scanner,
            signals_send if bot.trading else None,
        )
        bot.market_checks = await nursery.start(
            functools.partial(run_market_checks, on_meta=functools.partial(_apply_fees, bot.scanner.fees)),
            info,
            cfg.markets.dex,
            bot.specs,
            bot.cells,
            cfg.gates.param_check_interval_secs,
        )
        if bot.trading:
            assert key is not None and user is not None
            resync_trigger = ResyncTrigger()
            bot.executor = Executor(
                tracker=handle,
                cells=bot.cells,
                specs=bot.specs,
                signer=L1OrderSigner(
                    key.hex, cfg.network.is_mainnet, nonces, entry_expiry_secs=cfg.executor.entry_expiry_secs
                ),
                user=user,
                ws=ws,
                info=info,
                hard_stop=bot.hard_stop,
                ready=bot.ready,
                is_benign_reject=is_benign_reject,
                params=cfg.executor,
                exit_params=cfg.exits,
                write_ahead=bot.journal.order_sending if bot.journal is not None else None,
                # Without a periodic resync nobody would serve the request: a refused flatten then
                # counts towards the hard stop as any other.
                request_resync=resync_trigger.request
                if cfg.position.position_resync_interval_secs > 0
                else None,
            )
            await nursery.start(run_executor, bot.executor, signals_recv, flattens_recv)
            bot.exits = await nursery.start(
                functools.partial(run_exits, structural_gap=bot.scanner.structural_gap_bps),
                handle,
                bot.cells,
                flattens_send,
                cfg.exits,
            )
            bot.resync = await nursery.start(
                functools.partial(
                    run_resync,
                    may_run=lambda: bot.ready.connected and bot.ready.caught_up,
                    # Any disconnect or reconnect during the fetch voids the snapshot.
                    link_epoch=lambda: (ws.connections, ws.is_connected, bot.ready.caught_up),
                    trigger=resync_trigger,
                ),
                handle,
                info,
                user,
                cfg.markets.dex,
                cfg.position.position_resync_interval_secs,
            )
            nursery.start_soon(_watch_positions, bot, position_events)
            nursery.start_soon(_watch_money, bot, handle)
            nursery.start_soon(_mark_running, bot)
        if bot.journal is not None:
            nursery.start_soon(_journal_hard_stop, bot, bot.journal)
            nursery.start_soon(_journal_gate_blocks, bot, bot.journal)
        nursery.start_soon(_report_status, bot)
        task_status.started(bot)
        # Startup built everything long-lived (markets, specs, clients, tasks): move it out of the
        # collector's sight so collections during trading only scan what trading allocates.
        gc.collect()
        gc.freeze()

        await bot.stop_requested.wait()
        with trio.CancelScope() as shutdown_scope:
            nursery.start_soon(_abort_on_second_request, bot, shutdown_scope)
            if bot.trading and bot.executor is not None:
                bot.shutdown = await shutdown_sequence(
                    handle,
                    flattens_send,
                    bot.executor,
                    flatten_on_shutdown=cfg.shutdown.flatten_on_shutdown,
                    settle_timeout_secs=cfg.shutdown.settle_timeout_secs,
                )
                bot.flat_at_exit = bot.shutdown.flat
        nursery.cancel_scope.cancel()
    bot.hard_stop.flush()  # what the writer task had not written yet
    if bot.abort_requested.is_set():
        return EXIT_ABORTED
    code = exit_code_after_shutdown(bot.shutdown, flatten_on_shutdown=cfg.shutdown.flatten_on_shutdown)
    if code != EXIT_OK:
        log.error("stopped, but the account is not known to be flat (exit code %d)", code)
        return code
    log.info("stopped cleanly")
    return EXIT_OK


def exit_code_after_shutdown(outcome: ShutdownOutcome | None, *, flatten_on_shutdown: bool) -> int:
    """EXIT_NOT_SETTLED if an order's outcome was unknown at the end, or positions were left open
    although they should have been flattened; EXIT_OK otherwise (observation mode: no outcome)."""
    if outcome is None:
        return EXIT_OK
    if outcome.unresolved or (flatten_on_shutdown and outcome.positions_left):
        return EXIT_NOT_SETTLED
    return EXIT_OK


async def _startup_sync(
    bot: Bot, info: InfoClient, handle: TrackerHandle, user: str, key: SecretKey, nonces: signing.NonceManager
) -> bool:
    """Orphaned orders cancelled, then positions from clearinghouseState. False: do not trade.

    Cancelling first means none of our orders can fill between the position snapshot and the
    userFills subscription (whose snapshot is history and never rebuilds positions).
    """
    dex = bot.cfg.markets.dex
    if not await _cancel_orphans(bot, info, user, key, nonces):
        return False
    recovered = await _settle_previous_run(bot, info, user)
    if recovered is None:
        return False
    try:
        fence = await handle.begin_fetch()
        state = await info.clearinghouse_state(user, dex)
        await handle.apply_snapshot(fence, account_snapshot(state), dex=dex)
    except InfoError as exc:
        # Never start from "flat" because a query failed: a failed query is unknown, not empty.
        log.error("startup position sync failed, not trading: %s", exc)
        return False
    view = handle.view()
    held = ", ".join(f"{m} {p.size} @ {p.entry_px}" for m, p in sorted(view.positions.items())) or "none"
    log.info("positions at startup (dex %s, account value %s): %s", dex, state.account_value, held)
    # After the positions were read, so the window reaches as close to the subscription as it can.
    try:
        down = await count_fills_while_down(
            info, user, coins=bot.markets, dex=dex, hard_stop=bot.hard_stop, journal=bot.journal
        )
    except DowntimeFillsUnknown as exc:
        # Never start as if nothing happened while down: a failed query is unknown, not empty.
        log.error("%s; not trading (the day's loss is unknown)", exc)
        return False
    bot.downtime = down
    if bot.journal is not None:
        bot.journal.note(
            "restart",
            "",
            {
                "in_doubt": recovered.in_doubt,
                "resolved": recovered.resolved,
                "fills_found": len(recovered.new_fills),
                "fills_while_down": len(down.fills),
                "net_while_down": str(down.realized - down.fees),
                "positions": {str(m): str(p.size) for m, p in sorted(view.positions.items())},
                "note": _restart_note(bot.journal.moved_aside, recovered.fills_unknown),
            },
        )
    bot.ready.on_positions_synced()
    return True


def _restart_note(moved_aside: Path | None, fills_unknown: tuple[str, ...]) -> str:
    parts = []
    if moved_aside:
        parts.append(f"journal was corrupt, moved to {moved_aside}")
    if fills_unknown:
        parts.append(f"fills of {', '.join(fills_unknown)} may be missing (userFillsByTime incomplete)")
    return "; ".join(parts)


async def _settle_previous_run(bot: Bot, info: InfoClient, user: str) -> Recovered | None:
    """Settle the orders the journal says may have been in flight; None: do not trade."""
    executor = bot.cfg.executor
    if bot.journal is None:
        return Recovered(0, {}, [])
    if bot.journal.moved_aside is not None:
        # Which orders were in flight is lost with the old file: give any of them time to land
        # before positions are read.
        log.warning(
            "journal was replaced: waiting %g s before reading positions", executor.unknown_oid_grace_secs
        )
        await trio.sleep(executor.unknown_oid_grace_secs)
    try:
        recovered = await settle_orders_in_doubt(
            bot.journal,
            info,
            user,
            grace_ms=int(executor.unknown_oid_grace_secs * 1000),
            timeout_secs=executor.resolve_timeout_secs,
        )
    except RecoveryFailed as exc:
        log.error("%s; not trading", exc)
        return None
    count_then_journal(recovered.new_fills, bot.hard_stop, bot.journal)
    return recovered


#: A cancel answered with this error found the order already gone: the goal is met.
ALREADY_GONE = "Order was never placed, already canceled, or filled"


async def _cancel_orphans(
    bot: Bot, info: InfoClient, user: str, key: SecretKey, nonces: signing.NonceManager
) -> bool:
    """Cancel open orders left in our markets by an earlier run; True only when none is left."""
    dex = bot.cfg.markets.dex
    try:
        orders = await info.open_orders(user, dex)
    except InfoError as exc:
        log.error("startup open-order query failed, not trading: %s", exc)
        return False
    ours = [o for o in orders if o.coin in bot.markets]
    if not ours:
        return True
    action = wire.cancel_action([(bot.markets[o.coin].asset, o.oid) for o in ours])
    nonce = nonces.next()
    signature = signing.sign_l1_action(key.hex, action, nonce, is_mainnet=bot.cfg.network.is_mainnet)
    try:
        result = await info.post_exchange({"action": action, "nonce": nonce, "signature": signature})
    except InfoError as exc:
        log.error("cancelling %d orphaned orders failed, not trading: %s", len(ours), exc)
        return False
    refused: list[str] = []
    match result:
        case ActionOk(statuses=statuses) if len(statuses) == len(ours):
            for order, status in zip(ours, statuses, strict=True):
                match status:
                    case StatusSuccess():
                        pass
                    case OrderError(message=message) if message.startswith(ALREADY_GONE):
                        pass
                    case _:
                        refused.append(f"{order.coin} oid {order.oid}: {status}")
        case _:
            refused.append(f"{result}")
    if refused:
        log.error("orphaned orders could not be cancelled, not trading: %s", "; ".join(refused))
        return False
    log.warning(
        "cancelled %d orphaned open orders: %s", len(ours), ", ".join(f"{o.coin} oid {o.oid}" for o in ours)
    )
    return True


async def _notify_systemd_until_cancelled(bot: Bot, notifier: Notifier) -> None:
    """READY, STATUS, WATCHDOG and STOPPING to systemd (`Type=notify`), from the root nursery."""
    try:
        await run_service_notify(
            notifier,
            is_ready=lambda: bot.ready.is_ready,
            status=lambda: status_line(bot),
            stopping=bot.stop_requested,
            watchdog_secs=watchdog_interval(os.environ),
        )
    finally:
        notifier.close()


async def _start_metrics(bot: Bot, nursery: trio.Nursery, host: str, port: int) -> None:
    """The Prometheus endpoint; one that cannot listen is logged and left off (trading goes on,
    and the scraper's `up == 0` says the metrics are missing)."""
    lag = Histogram(LAG_BUCKETS_SECS)
    try:
        bot.metrics_address = await nursery.start(serve_metrics, bot_registry(bot, lag), host, port)
    except OSError as exc:
        log.error("metrics.listen: cannot listen on %s:%d (%s); running without metrics", host, port, exc)
        return
    nursery.start_soon(run_loop_lag_probe, lag)


async def _watch_os_signals(bot: Bot) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            bot.request_stop()


async def _abort_on_second_request(bot: Bot, scope: trio.CancelScope) -> None:
    await bot.abort_requested.wait()
    scope.cancel()


async def _watch_positions(bot: Bot, events: trio.MemoryReceiveChannel[PositionEvent]) -> None:
    """Position hooks: every transition to the journal (money reaches the hard stop in `_watch_money`)."""
    async with events:
        async for event in events:
            if bot.journal is not None:
                bot.journal.record(event)
            # Edge accounting: each round trip priced against the oracle (the hard stop gets its
            # money from `_watch_money`).
            match event:
                case PositionClosed():
                    trip = bot.edge.on_closed(event)
                    log.info("%s", trip.describe())
                    if bot.journal is not None:
                        bot.journal.note("round_trip", str(trip.market), trip.record_data())
                case PositionOpened():
                    bot.edge.on_opened(event)
                case _:
                    pass


def _apply_fees(fees: FeeTable, meta: Meta) -> None:
    """A fresh meta(dex) from the periodic market check: fee changes are logged per market."""
    for line in fees.apply_meta(meta):
        log.warning("%s", line)


async def _watch_money(bot: Bot, tracker: TrackerHandle) -> None:
    """Every realized PnL amount and fee the tracker learns of counts against the daily loss limit,
    when it is learnt: a partial close (a manual one in the web app, say) counts at once, not when
    the rest of the position closes, and is not lost if a resync closes the rest unseen."""
    view = tracker.view()
    realized_seen, fees_seen = view.realized_pnl, view.fees
    while True:
        view = await tracker.wait_view_change(view.seq)
        realized, fees = view.realized_pnl - realized_seen, view.fees - fees_seen
        if realized or fees:
            realized_seen, fees_seen = view.realized_pnl, view.fees
            bot.hard_stop.record_pnl(realized, fees, utc_day(), trio.current_time())
            if bot.journal is not None:
                await _journal_after_the_total(bot.hard_stop, bot.journal)


async def _journal_after_the_total(hard_stop: HardStop, journal: Journal) -> None:
    """The day's total on disk first, then the fills it came from in the journal (the feed queued
    them before the tracker counted them). A restart skips fills the journal holds, so a crash
    between the two counts them twice, not never; left to the journal's own flush (every 0.25 s)
    that gap was a quarter second wide. (That flush can still land in the millisecond before
    the total's write: a crash exactly then leaves a fill journaled but not counted.)"""
    with trio.move_on_after(PNL_WRITE_WAIT_SECS):
        await hard_stop.wait_written()
    await journal.flush_all()


def _count_first_history(bot: Bot) -> Callable[[UserFills], None]:
    """For the feed: the first userFills snapshot's fills between the startup count's query and
    the subscription go to the daily loss (later snapshots follow a reconnect, whose catch-up
    hands the missed fills to the tracker)."""
    done = False

    def count(history: UserFills) -> None:
        nonlocal done
        if done or bot.downtime is None:
            return
        done = True
        count_history_after_the_query(
            history.fills, bot.downtime, coins=bot.markets, hard_stop=bot.hard_stop, journal=bot.journal
        )

    return count


async def _mark_running(bot: Bot, period: float | None = None) -> None:
    """Every `period`, while the user streams are live and caught up, mark the hard-stop
    state with the time: fills before it were seen (and counted) by this run, so a restart after
    a crash counts only the fills after it. While disconnected the mark stays where it was."""
    while True:
        await trio.sleep(RUNNING_MARK_SECS if period is None else period)
        if bot.ready.fills_in_sync:
            bot.hard_stop.mark_running(bot.cfg.markets.dex, wall_clock_ms())


#: How long the journal's copy of a fill waits for the daily total to reach the disk.
PNL_WRITE_WAIT_SECS = 1.0
#: How often the running mark is written (a restart re-reads at most this much more).
RUNNING_MARK_SECS = 10.0
GATE_BLOCKS_EVERY_SECS = 60.0
HARD_STOP_POLL_SECS = 1.0


async def _journal_hard_stop(bot: Bot, journal: Journal) -> None:
    """Journal each hard-stop latch (and one restored at startup) once."""
    noted: str | None = None
    event = "restored at startup"
    while True:
        stop = bot.hard_stop
        if stop.latched and stop.reason != noted:
            journal.note(
                "hard_stop", "", {"event": event, "reason": stop.reason, "latched_wall": stop.latched_wall}
            )
            noted = stop.reason
        elif not stop.latched:
            noted = None
        event = "latched"
        await trio.sleep(HARD_STOP_POLL_SECS)


async def _journal_gate_blocks(bot: Bot, journal: Journal, period: float = GATE_BLOCKS_EVERY_SECS) -> None:
    """Every `period`, per market, how many evaluations each gate blocked since the last note (the
    report's "gate blocks by reason"); once more when the task is cancelled at shutdown."""
    seen: Counter[tuple[MarketKey, str]] = Counter()

    def note_changes() -> None:
        now = Counter(bot.scanner.stats.blocked_by_market)
        per_market: dict[str, dict[str, int]] = {}
        for (market, gate), count in now.items():
            delta = count - seen[(market, gate)]
            if delta > 0:
                per_market.setdefault(str(market), {})[gate] = delta
        for name, gates in sorted(per_market.items()):
            journal.note("gate_blocks", name, gates)
        seen.clear()
        seen.update(now)

    try:
        while True:
            await trio.sleep(period)
            note_changes()
    finally:
        note_changes()


async def _report_status(bot: Bot) -> None:
    while True:
        await trio.sleep(STATUS_INTERVAL_SECS)
        log.info("%s", status_line(bot))


def status_line(bot: Bot) -> str:
    parts = ["READY" if bot.ready.is_ready else f"not ready ({bot.ready.why_not()})"]
    parts.append(f"signals {bot.signals_seen}")
    if bot.tracker is not None and bot.trading:
        view = bot.tracker.view()
        held = ", ".join(f"{m.coin} {p.size}@{p.entry_px}" for m, p in sorted(view.positions.items()))
        parts.append(f"positions [{held}]")
        net = view.realized_pnl - view.fees
        parts.append(f"PnL net {net:.4f} (realized {view.realized_pnl:.4f}, fees {view.fees:.4f})")
    if bot.executor is not None:
        stats = bot.executor.stats
        parts.append(f"orders posted {stats.posted} filled {stats.filled} rejected {stats.rejected}")
    if bot.hard_stop.latched:
        parts.append(f"HARD STOP: {bot.hard_stop.describe()}")
    return "; ".join(parts)
