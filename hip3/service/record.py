"""`hip3 record --config PATH --out DIR`: keep the market-data frames the bot subscribes to.

The coins are checked against the exchange first (one unknown coin closes the whole socket), then
`bbo` and `activeAssetCtx` per market (optionally `trades` and `l2Book`) are written as they arrive
by `hip3.market.recorder`. The websocket session reconnects by itself; each outage is written as a
gap. Stops on SIGINT/SIGTERM, after `--seconds`, or when a disk limit is reached (exit 1, saying
which). Needs no key: it places no orders.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import trio

from hip3.hyperliquid.info import InfoError, NotListedError, open_info_client
from hip3.hyperliquid.ws import Disconnected, WsSession, open_ws_session
from hip3.market.feed import market_subscriptions
from hip3.market.recorder import FrameRecorder
from hip3.service.config import Config

log = logging.getLogger("hip3.service.record")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
FLUSH_EVERY_SECS = 1.0


def subscriptions(markets: dict[str, Any], *, trades: bool, l2book: bool) -> list[dict[str, Any]]:
    subs = market_subscriptions(markets)
    for name in sorted(markets):
        if trades:
            subs.append({"type": "trades", "coin": name})
        if l2book:
            subs.append({"type": "l2Book", "coin": name})
    return subs


async def _drain(ws: WsSession, recorder: FrameRecorder) -> None:
    """The session's events are not needed (the tap has the frames) except to mark outages."""
    async for event in ws.events:
        if isinstance(event, Disconnected):
            recorder.gap(f"disconnected: {event.reason}")


async def _flush_every(recorder: FrameRecorder, period: float, stop: trio.CancelScope) -> None:
    while recorder.stopped is None:
        await trio.sleep(period)
        recorder.flush()
    stop.cancel()


async def _stop_on_signal(cancel: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("recording: %s received, stopping", signal.Signals(signum).name)
            cancel.cancel()
            return


async def record(
    cfg: Config,
    out: Path,
    *,
    seconds: float | None = None,
    max_bytes: int,
    min_free_bytes: int,
    trades: bool = False,
    l2book: bool = False,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[FrameRecorder] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Record until stopped; returns the exit code."""
    async with open_info_client(cfg.network.info_url) as info:
        try:
            discovery = await info.discover(cfg.markets.dex, list(cfg.markets.coins))
        except NotListedError as exc:
            log.error("configuration does not match the exchange: %s", exc)
            return EXIT_REFUSED
        except InfoError as exc:
            log.error("market discovery failed: %s", exc)
            return EXIT_FAILED
    markets = {spec.key.name: spec.key for spec in discovery.specs.values()}
    if not markets:
        log.error("dex %r lists no markets to record", cfg.markets.dex)
        return EXIT_FAILED
    recorder = FrameRecorder(out, max_bytes=max_bytes, min_free_bytes=min_free_bytes)
    if recorder.stopped is not None:
        return EXIT_FAILED
    subs = subscriptions(markets, trades=trades, l2book=l2book)
    log.info("recording %d subscriptions (%s) into %s", len(subs), ", ".join(sorted(markets)), out)
    try:
        await _record_until_stopped(
            ws_config=cfg,
            recorder=recorder,
            subs=subs,
            seconds=seconds,
            handle_signals=handle_signals,
            task_status=task_status,
        )
    finally:
        recorder.flush()
        recorder.close()
    log.info("recorded %d frames and %d gaps into %s", recorder.frames, recorder.gaps, out)
    return EXIT_FAILED if recorder.stopped else EXIT_OK


async def _record_until_stopped(
    *,
    ws_config: Config,
    recorder: FrameRecorder,
    subs: list[dict[str, Any]],
    seconds: float | None,
    handle_signals: bool,
    task_status: trio.TaskStatus[FrameRecorder],
) -> None:
    cfg = ws_config
    wsc = cfg.websocket
    with trio.CancelScope() as scope:
        if seconds is not None:
            scope.deadline = trio.current_time() + seconds
        async with open_ws_session(
            cfg.network.ws_url,
            ping_after=wsc.ping_after_secs,
            silence_timeout=wsc.silence_timeout_secs,
            backoff_initial=wsc.reconnect_initial_secs,
            backoff_max=wsc.reconnect_max_secs,
            healthy_after=wsc.healthy_after_secs,
        ) as ws:
            ws.tap_frames(recorder.frame)
            for sub in subs:
                await ws.subscribe(sub)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, ws, recorder)
                nursery.start_soon(_flush_every, recorder, FLUSH_EVERY_SECS, scope)
                if handle_signals:
                    nursery.start_soon(_stop_on_signal, scope)
                task_status.started(recorder)


__all__ = ["record", "subscriptions"]
