"""hip3 — HIP-3 oracle-dislocation taker for Hyperliquid."""
