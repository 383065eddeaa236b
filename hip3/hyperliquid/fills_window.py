"""Every fill of the account in a time window, paging through userFillsByTime.

One answer holds at most 2000 fills, oldest first, across every coin and dex of the account, and
only the 10 000 most recent fills are reachable at all (hyperliquid.md §6). The documented way on
is "the last returned timestamp as the next startTime": the next page starts at the newest time
of the last one, inclusive, because fills of one block share a millisecond and a page may end in
the middle of them. The overlap is dropped here (same trade, same order).

A walk that could not see the whole window says so (`complete` False, and why): the caller must
treat what is missing as unknown, never as "no fill".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from attrs import frozen

from hip3.hyperliquid.events import Fill

#: The most fills one userFillsByTime answer holds.
FILLS_PAGE_SIZE = 2000
#: Enough for the 10 000 reachable fills plus the pages' overlap; a walk needing more is cut short.
MAX_FILL_PAGES = 6

#: One userFillsByTime query from `start_ms` (inclusive) to the window's end.
FetchFillsPage = Callable[[int], Awaitable[list[Fill]]]


@frozen
class FillsWindow:
    """What a walk through the window found: `fills` without repeats, in the order seen."""

    fills: tuple[Fill, ...]
    complete: bool  # False: fills after the newest one here may exist and were not seen
    pages: int
    why_incomplete: str = ""


async def fetch_fills_window(
    fetch_page: FetchFillsPage,
    start_ms: int,
    end_ms: int | None = None,
    *,
    max_pages: int = MAX_FILL_PAGES,
    page_timeout_secs: float | None = None,
) -> FillsWindow:
    """Page from `start_ms` until a short page, a page reaching `end_ms`, or `max_pages`.

    `fetch_page(since)` queries from `since` to the window's end (`end_ms`, or now when None).

    A failed or unanswered page ends the walk as incomplete with what the earlier pages found.
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be >= 1, got {max_pages}")
    seen: set[tuple[str, int, int]] = set()
    fills: list[Fill] = []
    since = start_ms
    for page_no in range(1, max_pages + 1):
        try:
            page = await _fetch(fetch_page, since, page_timeout_secs)
        except Exception as exc:  # a failed page is unknown, not empty
            return _incomplete(fills, page_no - 1, f"page {page_no} from {since} failed: {exc}")
        for f in page:
            key = (f.coin, f.tid, f.oid)
            if key not in seen:
                seen.add(key)
                fills.append(f)
        if len(page) < FILLS_PAGE_SIZE:
            return FillsWindow(tuple(fills), True, page_no)
        newest = max(f.time for f in page)
        if end_ms is not None and newest >= end_ms:
            return FillsWindow(tuple(fills), True, page_no)
        if newest <= since:
            # A whole page inside one millisecond: the next start would be the same page again.
            return _incomplete(fills, page_no, f"{FILLS_PAGE_SIZE} fills at {since} ms fill a whole page")
        since = newest
    return _incomplete(fills, max_pages, f"stopped after {max_pages} full pages, the last ending at {since}")


async def _fetch(fetch_page: FetchFillsPage, since: int, timeout: float | None) -> list[Fill]:
    if timeout is None:
        return await fetch_page(since)
    try:
        with trio.fail_after(timeout):
            return await fetch_page(since)
    except trio.TooSlowError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None


def _incomplete(fills: list[Fill], pages: int, why: str) -> FillsWindow:
    return FillsWindow(tuple(fills), False, pages, why)
