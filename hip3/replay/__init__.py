"""Replay a market-data recording through the bot's rules (issue 9.2)."""
