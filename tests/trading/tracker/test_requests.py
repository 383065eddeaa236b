"""Every tracker input is a frozen message: recorded, it folds again into the same state; and the
tracker never depends on the exchange's shapes."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import attrs
import trio

from hip3.core import Side
from hip3.trading.reports import NotSent, OrderNotFound, PostFilled, PostUnknown
from hip3.trading.tracker import Tracker, TrackerRequest, fold, run_tracker

from . import GOLD, NVDA, TSLA, D, chs, fill, fills_msg, make_tracker, req, update

ROOT = Path(__file__).resolve().parents[3]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_no_tracker_module_imports_the_exchange_protocol_even_indirectly() -> None:
    tracker_dir = ROOT / "hip3" / "trading" / "tracker"
    modules = sorted(tracker_dir.glob("*.py"))
    assert len(modules) >= 3  # the scan sees the package
    seen: set[Path] = set()
    todo = list(modules)
    chains: dict[Path, Path] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            assert not module.startswith("hip3.hyperliquid"), (
                f"{path.relative_to(ROOT)} imports {module} (reached from {chains.get(path, path).name})"
            )
            if module.startswith("hip3."):
                target = _module_file(module)
                if target is not None and target not in seen:
                    chains[target] = chains.get(path, path)
                    todo.append(target)


def test_the_scan_would_notice_an_exchange_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from hip3.hyperliquid.events import Fill\nimport hip3.hyperliquid.ws\n")
    assert {"hip3.hyperliquid.events", "hip3.hyperliquid.ws"} <= _imports(bad)


async def _scripted_run(tracker: Tracker, record: Any) -> None:
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(
            lambda task_status: run_tracker(
                tracker, evict_interval=50.0, record=record, task_status=task_status
            )
        )
        entry = req(TSLA, Side.BUY, 2, 10)
        await handle.reserve(entry)
        await trio.sleep(1)
        await handle.post_result(entry.cloid, PostFilled(total_sz=D(2), avg_px=D(10), oid=1))
        await handle.report_fills(fills_msg(fill(TSLA, Side.BUY, 2, 10, cloid=entry.cloid, fee="0.01")))
        lost = req(NVDA, Side.SELL, 1, 20)
        await handle.reserve(lost)
        await handle.post_result(lost.cloid, PostUnknown("no answer within 5 s"))
        await trio.sleep(30)
        assert await handle.stale_reservations(10.0) == [lost.cloid]
        await handle.order_resolved(OrderNotFound(lost.cloid))
        blocked = req(GOLD, Side.BUY, 1, 5)
        await handle.reserve(blocked)
        await handle.post_result(blocked.cloid, NotSent("entries blocked: hard_stop"))
        flatten = req(TSLA, Side.SELL, 2, 9, reduce_only=True)
        await handle.reserve(flatten)
        await handle.report_orders(update(flatten.cloid, "canceled", 2, 1, TSLA, Side.SELL))
        await handle.report_fills(fills_msg(fill(TSLA, Side.SELL, 1, 11, cloid=flatten.cloid)))
        await handle.abandon(flatten.cloid, "test")
        await trio.sleep(60)  # an eviction runs
        await handle.report_fills(fills_msg(fill(GOLD, Side.SELL, 1, 5)))  # not ours: a manual trade
        fence = await handle.begin_fetch()
        await handle.apply_snapshot(fence, chs((TSLA, 1, 10), (GOLD, -1, 5), time_ms=1_700_000_100_000))
        await handle.apply_snapshot(await handle.begin_fetch(), chs(time_ms=1_700_000_200_000))
        await handle.apply_snapshot(await handle.begin_fetch(), chs(time_ms=1_700_000_300_000))
        nursery.cancel_scope.cancel()


async def test_recorded_inputs_fold_into_an_identical_tracker(autojump_clock: Any) -> None:
    recorded: list[tuple[float, TrackerRequest]] = []
    original = make_tracker()
    await _scripted_run(original, lambda now, request: recorded.append((now, request)))

    kinds = {type(r).__name__ for _, r in recorded}
    assert kinds >= {
        "Reserve",
        "RecordPostOutcome",
        "RecordFills",
        "RecordOrderReports",
        "ResolveOrder",
        "ListStaleReservations",
        "Abandon",
        "BeginFetch",
        "ApplySnapshot",
        "Evict",
    }
    assert all(attrs.has(type(r)) and attrs.fields(type(r)) is not None for _, r in recorded)
    # the run did things worth replaying: a position, fees, a correction, a flat
    assert original.stats.corrections >= 1 and original.fees > 0

    replayed = fold(make_tracker(), recorded)
    assert replayed.view() == original.view()
    assert vars(replayed) == vars(original)


async def test_a_changed_record_folds_into_a_different_state(autojump_clock: Any) -> None:
    # The comparison above can fail: drop one input and the states differ.
    recorded: list[tuple[float, TrackerRequest]] = []
    original = make_tracker()
    await _scripted_run(original, lambda now, request: recorded.append((now, request)))
    without_first_fill = [r for r in recorded if type(r[1]).__name__ != "RecordFills"]
    assert vars(fold(make_tracker(), without_first_fill)) != vars(original)
