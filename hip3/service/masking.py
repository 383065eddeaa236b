"""Masking anything that looks like a private key in text meant for a terminal or a log.

A key pasted where a path or a value belongs reaches error messages and `check-config` output in
whatever form the config gave it: 64 hex digits (with or without 0x, any case), or — unquoted in
TOML, which reads `0x…` as a hexadecimal integer — a decimal integer of about 77 digits. No
number the bot handles has 40 digits, and addresses have 40 hex digits, not 64.
"""

from __future__ import annotations

import re

MASK = "[hidden: looks like a private key]"
_KEY_LIKE = re.compile(r"(?<![0-9a-fA-F])(?:0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])|(?<!\d)\d{40,}(?!\d)")


def looks_like_a_key(text: str) -> bool:
    return _KEY_LIKE.search(text) is not None


def mask_secrets(text: str) -> str:
    """`text` with every key-like run replaced by `MASK`."""
    return _KEY_LIKE.sub(MASK, text)
