"""Market data: the feed, latest-value cells, market conditions and readiness."""
