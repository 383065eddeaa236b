"""The detector task: for every market whose cell changed, market gates first, then the detector.

Thin loop around pure functions (`hip3.strategy.gates.evaluate_gates`, `hip3.strategy.detector.evaluate`);
the per-market gate and detector states live here and nowhere else. Signals go to the executor
through a small buffer: a signal the executor can't take at once is stale by the time it could,
so it is dropped and counted rather than queued.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

import attrs
import trio

from hip3 import timing
from hip3.clock import utc_now
from hip3.core import MarketKey, MarketSpec
from hip3.market.cells import MarketCells
from hip3.strategy.detector import NO_OVERRIDES, DetectorMarketState, DetectorParams, evaluate, observe_oracle
from hip3.strategy.fees import FeeTable
from hip3.strategy.gates import GateLog, GateParams, GateState, GateVerdict, evaluate_gates
from hip3.strategy.sessions import OPEN, SessionCalendar, SessionVerdict, SessionWindow
from hip3.trading.messages import Signal

log = logging.getLogger(__name__)

#: The gate name a market is blocked by while evaluating it raises (absurd data that got through).
EVALUATION_ERROR = "evaluation_error"


@attrs.define
class DetectorStats:
    evaluations: int = 0
    blocked: Counter[str] = attrs.field(factory=Counter)
    #: (market, gate) -> evaluations blocked; read by the metrics endpoint.
    blocked_by_market: Counter[tuple[MarketKey, str]] = attrs.field(factory=Counter)
    signals: int = 0
    signals_by_market: Counter[tuple[MarketKey, str]] = attrs.field(factory=Counter)
    signals_dropped_busy: int = 0


class SignalScanner:
    """Holds the per-market gate and detector state; `scan` is called with changed markets."""

    def __init__(
        self,
        specs: Mapping[MarketKey, MarketSpec],
        detector_params: DetectorParams,
        gate_params: GateParams,
        *,
        max_notional: Decimal,
        threshold_overrides: Mapping[str, Decimal] = NO_OVERRIDES,
        edge_ceilings: Mapping[str, Decimal] = NO_OVERRIDES,
        fees: FeeTable | None = None,
        calendar: SessionCalendar | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.specs = specs
        self.detector_params = detector_params
        self.gate_params = gate_params
        self.max_notional = max_notional
        self.threshold_overrides = threshold_overrides
        self.edge_ceilings = edge_ceilings
        # Without the exchange's figures (tests) every market pays the tier-0 launch rule.
        self.fees = fees if fees is not None else FeeTable(specs)
        self.calendar = calendar if calendar is not None else SessionCalendar()
        self.wall_clock = wall_clock
        self.sessions: dict[MarketKey, SessionVerdict] = {}
        self.gate_states: dict[MarketKey, GateState] = {m: GateState() for m in specs}
        self.detector_states: dict[MarketKey, DetectorMarketState] = {m: DetectorMarketState() for m in specs}
        self.gate_log = GateLog()
        self.stats = DetectorStats()

    def scan(self, cells: MarketCells, changed: set[MarketKey], now: float) -> list[Signal]:
        signals: list[Signal] = []
        windows = self.calendar.open_windows(self.wall_clock()) if self.calendar.windows else ()
        for market in sorted(changed):
            try:
                signal = self._scan_one(cells, market, now, windows)
            except Exception as exc:  # bad data must cost this market, never the detector task
                self._block_after_error(market, exc, now)
                continue
            if signal is not None:
                signals.append(signal)
        return signals

    def structural_gap_bps(self, market: MarketKey, now: float) -> Decimal | None:
        """The market's structural book–oracle gap (bps) once measured, for exits to judge "caught
        up" by; None while it warms up, when the baseline is off, or for an unknown market."""
        state = self.detector_states.get(market)
        return state.baseline_bps(now, self.detector_params) if state is not None else None

    def _block_after_error(self, market: MarketKey, exc: Exception, now: float) -> None:
        verdict = GateVerdict(ok=False, gate=EVALUATION_ERROR, detail=f"{type(exc).__name__}: {exc}")
        self.stats.evaluations += 1
        self.stats.blocked[EVALUATION_ERROR] += 1
        self.stats.blocked_by_market[(market, EVALUATION_ERROR)] += 1
        line = self.gate_log.observe(market, verdict, now)
        if line:
            log.error("%s", line, exc_info=exc)

    def _session(self, market: MarketKey, windows: tuple[SessionWindow, ...]) -> SessionVerdict:
        """The calendar's verdict for this market now; a change of threshold scale is logged once."""
        verdict = self.calendar.verdict(market, windows) if windows else OPEN
        before = self.sessions.get(market, OPEN)
        if verdict.threshold_multiplier != before.threshold_multiplier:
            if verdict.scaled_by:
                log.info(
                    "market %s: entry threshold × %s (%s)",
                    market,
                    verdict.threshold_multiplier,
                    ", ".join(verdict.scaled_by),
                )
            else:
                log.info(
                    "market %s: entry threshold back to normal (%s ended)",
                    market,
                    ", ".join(before.scaled_by),
                )
        self.sessions[market] = verdict
        return verdict

    def _scan_one(
        self, cells: MarketCells, market: MarketKey, now: float, windows: tuple[SessionWindow, ...] = ()
    ) -> Signal | None:
        spec = self.specs.get(market)
        if spec is None:
            return None
        state = cells.get(market)
        cond = cells.conditions(market)
        session = self._session(market, windows)
        verdict, self.gate_states[market] = evaluate_gates(
            state,
            self.gate_states[market],
            self.gate_params,
            oi_cap=cond.oi_cap,
            halted=cond.halted,
            params_changed=cond.params_changed,
            now=now,
            session_block=session.blocked_by,
            max_edge_bps=self.edge_ceilings.get(market.coin),
            warming_up=self.detector_states[market].warming_up(now, self.detector_params),
            baseline_bps=self.detector_states[market].baseline_bps(now, self.detector_params),
        )
        line = self.gate_log.observe(market, verdict, now)
        if line:
            log.info("%s", line)
        self.stats.evaluations += 1
        if not verdict.ok:
            self.stats.blocked[verdict.gate or "?"] += 1
            self.stats.blocked_by_market[(market, verdict.gate or "?")] += 1
            # The oracle's direction is history the detector needs once the gate opens again. The
            # book's gap to an oracle that follows the book (a session) or is not trusted (the
            # sanity bound) is no structure: not sampled.
            self.detector_states[market] = observe_oracle(
                state,
                self.detector_states[market],
                self.detector_params,
                now,
                sample_gap=session.blocked_by is None and verdict.gate != "oracle_sanity",
            )
            return None
        signal, self.detector_states[market] = evaluate(
            state,
            self.detector_states[market],
            spec,
            self.detector_params,
            now,
            max_notional=self.max_notional,
            taker_fee_bps=self.fees.taker_bps(market),
            threshold_override=self.threshold_overrides.get(market.coin),
            session_multiplier=session.threshold_multiplier,
        )
        if signal is not None:
            self.stats.signals += 1
            self.stats.signals_by_market[(market, signal.side.name.lower())] += 1
        return signal


def describe_signal(signal: Signal) -> str:
    gap_sign = "−" if signal.structural_gap_bps >= 0 else "+"
    gap = f" (raw {signal.raw_edge_bps:.1f} {gap_sign} structural gap {abs(signal.structural_gap_bps):.1f})"
    return (
        f"signal {signal.market} {signal.side}: edge {signal.edge_bps:.1f} bps"
        f"{gap if signal.structural_gap_bps else ''} > threshold "
        f"{signal.threshold_detail or f'{signal.threshold_bps:.1f} bps'} (oracle {signal.oracle_px}, "
        f"best {signal.best_px} x {signal.best_sz}, size {signal.suggested_size})"
    )


#: How long after handing a signal to the executor its log line is written: the order is on the
#: wire by then, so formatting and writing the line never delays it.
SIGNAL_LOG_DELAY_SECS = 0.005


async def run_detector(
    cells: MarketCells,
    scanner: SignalScanner,
    signals_out: trio.MemorySendChannel[Signal] | None,
    *,
    on_signal: Callable[[Signal], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`signals_out` None means observation mode: signals are logged and recorded only."""
    log_send, log_receive = trio.open_memory_channel[tuple[float, Signal]](100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_log_signals_later, log_receive)
        task_status.started()
        while True:
            changed = await cells.wait_changed()
            for signal in scanner.scan(cells, changed, trio.current_time()):
                if timing.on_stage is not None:
                    timing.on_stage("signal")
                if signals_out is not None:
                    try:
                        signals_out.send_nowait(signal)
                    except trio.WouldBlock:
                        scanner.stats.signals_dropped_busy += 1
                        log.debug("executor busy: dropped %s", describe_signal(signal))
                if on_signal is not None:
                    on_signal(signal)
                try:
                    log_send.send_nowait((trio.current_time() + SIGNAL_LOG_DELAY_SECS, signal))
                except trio.WouldBlock:
                    log.info("%s", describe_signal(signal))  # a flood of signals: log it now


async def _log_signals_later(signals: trio.MemoryReceiveChannel[tuple[float, Signal]]) -> None:
    async with signals:
        async for at, signal in signals:
            await trio.sleep_until(at)
            log.info("%s", describe_signal(signal))
