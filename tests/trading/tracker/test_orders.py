"""Per-cloid reconciliation arithmetic and tid memory, checked against hand-computed values."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from hip3.core import Cloid, Side
from hip3.trading.reports import TradeId
from hip3.trading.tracker.orders import Delta, Orders, TrackedOrder, TradeMemory

from . import TSLA, D


def entry(reserved: object = 10, px: object = 5, **kw: object) -> TrackedOrder:
    return TrackedOrder(
        cloid=Cloid.random(),
        market=TSLA,
        side=Side.BUY,
        created_at=0.0,
        reserved_size=D(reserved),
        limit_px=D(px),
        reserved=True,
        **kw,  # type: ignore[arg-type]
    )


def test_stream_first_then_post_total_applies_the_difference_at_the_right_price():
    e = entry()
    e.record_stream_fill(1, D(1), D(100), 0.0)
    assert e.take_delta() == Delta(size=D(1), px=D(100))
    e.record_post_fill(D(3), D(101), 0.0)  # VWAP 101 over 3 => the other 2 cost 203
    assert e.take_delta() == Delta(size=D(2), px=D("101.5"))
    e.record_stream_fill(2, D(1), D(101), 0.0)
    e.record_stream_fill(3, D(1), D(102), 0.0)
    assert e.take_delta() is None
    assert (e.applied_sz, e.applied_ntl) == (D(3), D(303))


def test_post_first_then_stream_applies_nothing_more():
    e = entry()
    e.record_post_fill(D(2), D(10), 0.0)
    assert e.take_delta() == Delta(size=D(2), px=D(10))
    e.record_stream_fill(1, D(2), D(10), 0.0)
    assert e.take_delta() is None


def test_repeated_tid_and_repeated_post_never_add():
    e = entry()
    assert e.record_stream_fill(7, D(1), D(10), 0.0)
    assert not e.record_stream_fill(7, D(1), D(10), 0.0)
    e.record_post_fill(D(1), D(10), 0.0)
    e.record_post_fill(D(1), D(10), 0.0)
    assert e.take_delta() == Delta(size=D(1), px=D(10))
    assert e.take_delta() is None


def test_open_until_final_and_applied():
    e = entry(reserved=4, px=10)
    assert e.is_open and e.pending_notional == D(40)
    e.record_stream_fill(1, D(1), D(10), 0.0)
    e.take_delta()
    assert e.pending_notional == D(30)  # only the unfilled remainder
    e.mark_final(D(3), 0.0)  # 3 filled in all; 1 canceled
    assert e.is_open and e.pending_notional == D(20)
    e.record_stream_fill(2, D(2), D(10), 0.0)
    e.take_delta()
    assert not e.is_open and e.pending_notional == 0


def test_abandoned_entry_stays_open_and_counts_its_remainder():
    e = entry(reserved=4, px=10)
    e.record_stream_fill(1, D(1), D(10), 0.0)
    e.take_delta()
    e.abandoned, e.abandoned_seq = True, 7
    assert e.is_open and e.pending_notional == D(30)  # 3 unfilled x limit 10
    assert not e.absorbable(6)  # a snapshot fenced before the abandonment may predate its fills
    assert e.absorbable(7) and e.absorbable(8)


def test_absorbed_entry_is_closed_and_applies_nothing_more():
    e = entry(reserved=4, px=10)
    e.record_stream_fill(1, D(1), D(10), 0.0)
    assert e.take_delta() == Delta(size=D(1), px=D(10))
    e.absorbed = True
    assert not e.is_open and e.pending_notional == 0
    assert e.record_stream_fill(2, D(3), D(10), 1.0)  # the tid is still recorded...
    assert not e.record_stream_fill(2, D(3), D(10), 1.0)
    e.record_post_fill(D(4), D(10), 1.0)
    assert e.take_delta() is None  # ...but nothing moves the position
    assert e.applied_sz == D(1)
    assert not e.absorbable(100)  # once is enough


def test_only_finished_or_abandoned_entries_are_absorbable():
    live = entry(reserved=4, px=10)
    assert not live.absorbable(100)
    live.mark_final(D(2), 0.0)  # final, fills not applied yet: not finished
    assert not live.absorbable(100)
    live.record_post_fill(D(2), D(10), 0.0)
    live.take_delta()
    assert live.absorbable(100)
    foreign = TrackedOrder(cloid=Cloid.random(), market=TSLA, side=Side.SELL, created_at=0.0)
    assert not foreign.absorbable(100)  # another client's order may still be resting


def test_final_total_is_never_lowered():
    e = entry()
    e.mark_final(D(3), 0.0)
    e.mark_final(D(0), 0.0)
    assert e.final_total == D(3)


def test_unreserved_entry_is_never_open():
    e = TrackedOrder(cloid=Cloid.random(), market=TSLA, side=Side.SELL, created_at=0.0)
    assert not e.is_open and e.pending_notional == 0


@given(
    st.lists(
        st.tuples(st.integers(1, 50), st.integers(1, 1000)),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_any_delivery_order_applies_total_at_vwap(levels, data):
    """k maker fills + the post total, in any order with repeats: applied == total, notional == Σ sz×px."""
    sizes = [D(s) / 10 for s, _ in levels]
    prices = [D(p) / 4 for _, p in levels]
    total = sum(sizes, D(0))
    notional = sum((s * p for s, p in zip(sizes, prices, strict=True)), D(0))
    avg = notional / total
    steps = list(range(len(levels) + 1))
    order = data.draw(st.permutations(steps + data.draw(st.lists(st.sampled_from(steps), max_size=4))))
    e = entry(reserved=1000)
    applied_sz, applied_ntl = D(0), D(0)
    for step in order:
        if step == len(levels):
            e.record_post_fill(total, avg, 0.0)
        else:
            e.record_stream_fill(step, sizes[step], prices[step], 0.0)
        delta = e.take_delta()
        if delta is not None:
            assert delta.size > 0 and delta.px > 0
            applied_sz += delta.size
            applied_ntl += delta.size * delta.px
    assert applied_sz == total
    assert abs(applied_ntl - notional) < D("1e-20")


def test_ledger_evicts_only_finished_and_old():
    ledger = Orders()
    done, live, recent = entry(), entry(), entry()
    done.mark_final(D(0), 10.0)
    recent.mark_final(D(0), 500.0)
    for e in (done, live, recent):
        ledger.add(e)
    assert ledger.evict(before=100.0) == 1
    assert ledger.get(done.cloid) is None
    assert ledger.get(live.cloid) is live and ledger.get(recent.cloid) is recent


def test_tid_memory_evicts_oldest_first_and_keeps_the_rest():
    mem = TradeMemory()
    ids = [TradeId("xyz:TSLA", tid) for tid in range(10)]
    for trade_id, at in zip(ids, itertools.count(0.0, 10.0), strict=False):
        mem.add(trade_id, 1000 + trade_id.tid, at)
    mem.add(ids[3], 5000, 999.0)  # a repeat keeps the first time
    assert not mem.beyond_horizon(1000)  # nothing forgotten yet
    assert mem.evict(before=45.0) == 5  # 0, 10, 20, 30, 40
    assert ids[4] not in mem and ids[5] in mem and len(mem) == 5
    assert TradeId("xyz:GOLD", 5) not in mem  # a trade id is unique only with its coin
    # what was forgotten leaves a horizon at the newest forgotten exchange time
    assert mem.beyond_horizon(1004) and not mem.beyond_horizon(1005)
