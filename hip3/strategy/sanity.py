"""The oracle sanity bound: a deployer's oracle can be wrong, and a wrong oracle is not edge.

A HIP-3 oracle is whatever its deployer publishes (hyperliquid.md §4.6). With the book and the
mark at 100, an oracle of 150 looks like a 3,300 bps buy; taking it at the full per-market cap
would be the bot's worst trade. Two checks, both on by default and per market:

* the oracle against the mark: the exchange moves the mark at most 1 % per update and the
  deployer's own mark inputs follow the real price, so an oracle far from the mark is suspect;
* an edge ceiling: no real lag of a maker's quote is worth hundreds of bps on these markets. It
  bounds the edge against the oracle and, once the market's structural gap is known, the edge
  against where its book settles (the oracle shifted by that gap): that is the edge an entry bets
  on, and it can exceed the raw one (an ask below the oracle on a book that lives above it).

Either blocks entries in that market (the gates log it on the transition); exits are unaffected.
"""

from __future__ import annotations

from decimal import Decimal

BPS = Decimal(10_000)


def oracle_sanity_problem(
    oracle: Decimal,
    mark: Decimal,
    bid: Decimal | None,
    ask: Decimal | None,
    *,
    max_oracle_mark_bps: Decimal,
    max_edge_bps: Decimal,
    baseline_bps: Decimal | None = None,
) -> str | None:
    """Why this oracle must not be traded against (None: it looks sane). A limit of 0 is off.

    `baseline_bps` is the market's structural book–oracle gap once measured (None: unknown)."""
    if oracle <= 0:
        return f"oracle {oracle} is not a price"
    if max_oracle_mark_bps > 0 and mark > 0:
        divergence = abs(oracle - mark) / mark * BPS
        if divergence > max_oracle_mark_bps:
            return (
                f"oracle {oracle} is {divergence:.0f} bps from mark {mark} "
                f"(> {max_oracle_mark_bps} bps: oracle not trusted)"
            )
    if max_edge_bps > 0:
        edges = []
        if ask is not None:
            edges.append((oracle - ask) / oracle * BPS)
        if bid is not None:
            edges.append((bid - oracle) / oracle * BPS)
        if edges and max(edges) > max_edge_bps:
            return (
                f"edge {max(edges):.0f} bps against oracle {oracle} exceeds the ceiling "
                f"{max_edge_bps} bps (oracle not trusted)"
            )
        if baseline_bps is not None:
            fair = oracle * (1 + baseline_bps / BPS)
            settled = []
            if ask is not None and fair > 0:
                settled.append((fair - ask) / fair * BPS)
            if bid is not None and fair > 0:
                settled.append((bid - fair) / fair * BPS)
            if settled and max(settled) > max_edge_bps:
                return (
                    f"edge {max(settled):.0f} bps against where the book settles (oracle {oracle} "
                    f"shifted by its structural gap {baseline_bps:.1f} bps) exceeds the ceiling "
                    f"{max_edge_bps} bps (oracle not trusted)"
                )
    return None
