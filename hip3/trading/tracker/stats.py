"""Counters for things the tracker saw that are normal but worth watching."""

from __future__ import annotations

from attrs import define


@define
class TrackerStats:
    duplicate_tids: int = 0
    unknown_coin_fills: int = 0
    unknown_cloid_updates: int = 0
    unknown_cloid_results: int = 0
    mismatched_fills: int = 0
    corrections: int = 0
    skipped_snapshot_markets: int = 0
    flat_unconfirmed: int = 0
    abandoned: int = 0
    evicted_tids: int = 0
    evicted_ledgers: int = 0
    fills_in_snapshot: int = 0
    fills_beyond_memory: int = 0
