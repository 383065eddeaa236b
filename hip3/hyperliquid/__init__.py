"""The Hyperliquid protocol: wire formats, signing, info client, WebSocket session, parsing.

Knows nothing of strategy."""
