"""Loading the signing key (an API/agent wallet, or the master) without ever showing it.

The key comes from the environment variable HIP3_PRIVATE_KEY or from the file named by
`account.key_file` (a regular file, not a symlink, owned by the running user, not readable by
group/other). It is held in `SecretKey`, whose
repr/str are masked; error messages describe what is wrong with a key but never include it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from eth_account import Account

from hip3.service.config import Config
from hip3.service.logs import register_secret
from hip3.service.masking import looks_like_a_key, mask_secrets

ENV_VAR = "HIP3_PRIVATE_KEY"
_KEY_RE = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")


class KeyLoadError(Exception):
    """The signing key is missing or unusable; the message never contains the key."""


class SecretKey:
    """A secp256k1 private key. `hex` is for the signer only; printing shows just the address."""

    __slots__ = ("_address", "_hex", "source")

    def __init__(self, text: str, *, source: str = "key") -> None:
        match = _KEY_RE.fullmatch(text.strip())
        if match is None:
            _refuse(
                f"{source}: not a private key (expected 0x followed by 64 hex digits, got {_shape(text)})"
            )
        key_hex = "0x" + match.group(1).lower()
        try:
            address = Account.from_key(key_hex).address.lower()
        except Exception:
            _refuse(f"{source}: not a valid secp256k1 private key (out of range)")
        register_secret(key_hex)
        self._hex = key_hex
        self._address = address
        self.source = source

    @property
    def hex(self) -> str:
        """The raw key as 0x + 64 lowercase hex. Pass it to the signer; never log it."""
        return self._hex

    @property
    def address(self) -> str:
        """The signer's address (lowercase 0x + 40 hex)."""
        return str(self._address)

    def __repr__(self) -> str:
        return f"SecretKey(address={self._address}, key=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._hex == self._hex

    def __hash__(self) -> int:
        return hash(self._address)

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled")


def _refuse(message: str) -> NoReturn:
    # `from None` keeps the offending text (held by the caller's frame) out of chained tracebacks
    raise KeyLoadError(message) from None


def _shape(text: str) -> str:
    """Describe a malformed key without revealing it."""
    stripped = text.strip()
    digits = stripped[2:] if stripped[:2].lower() == "0x" else stripped
    non_hex = sum(1 for ch in digits if ch not in "0123456789abcdefABCDEF")
    parts = [
        f"{len(digits)} digits after the prefix"
        if stripped[:2].lower() == "0x"
        else f"{len(digits)} characters"
    ]
    if non_hex:
        parts.append(f"{non_hex} not hex")
    return ", ".join(parts)


#: A key file is a few dozen bytes; anything much larger is not one.
MAX_KEY_FILE_BYTES = 4096
CREDENTIALS_ENV_VAR = "CREDENTIALS_DIRECTORY"


def read_key_file(path: str | Path, environ: Mapping[str, str] = os.environ) -> str:
    """The key file's text. Opened once, without following a symlink; the checks (regular file,
    owned by the running user or root, no group/other access) are made on the opened descriptor,
    so what is checked is what is read.

    A systemd credential (a file in $CREDENTIALS_DIRECTORY) is exempt from the owner and mode
    checks: systemd owns it and grants the unit's user alone access to it.
    """
    shown = mask_secrets(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        _refuse(f"account.key_file {shown}: no such file")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _refuse(f"account.key_file {shown}: is a symbolic link; name the key file itself")
        _refuse(f"account.key_file {shown}: cannot open ({exc.strerror})")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _refuse(f"account.key_file {shown}: not a regular file")
        credentials = environ.get(CREDENTIALS_ENV_VAR)
        is_credential = bool(credentials) and Path(path).parent == Path(str(credentials))
        if not is_credential:
            me = os.geteuid()
            if info.st_uid not in (me, 0):
                _refuse(
                    f"account.key_file {shown}: owned by uid {info.st_uid}, not by the user running hip3 "
                    f"(uid {me}); another user could replace the key: fix with: chown {me} {shown}"
                )
            if info.st_mode & 0o077:
                _refuse(
                    f"account.key_file {shown}: readable by group/other (mode {stat.S_IMODE(info.st_mode):03o}); "
                    f"fix with: chmod 600 {shown}"
                )
        if info.st_size > MAX_KEY_FILE_BYTES:
            _refuse(f"account.key_file {shown}: {info.st_size} bytes is not a key file")
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        _refuse(f"account.key_file {shown}: cannot read ({exc.strerror})")
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _refuse(f"account.key_file {shown}: not text")


def load_signing_key(cfg: Config, environ: Mapping[str, str] = os.environ) -> SecretKey:
    """The signing key from HIP3_PRIVATE_KEY or account.key_file (exactly one of them must be set).

    Checks it against `account.signer_address` when that is configured.
    """
    from_env = environ.get(ENV_VAR, "")
    key_file = cfg.account.key_file
    if from_env.strip() and key_file is not None:
        _refuse(f"both {ENV_VAR} and account.key_file are set; use only one")
    if from_env.strip():
        key = SecretKey(from_env, source=ENV_VAR)
    elif key_file is not None:
        if looks_like_a_key(str(key_file)):
            _refuse(
                "account.key_file holds what looks like a private key, not a path: put the key in a file "
                "(chmod 600) and name that file, or use HIP3_PRIVATE_KEY; treat this key as exposed"
            )
        key = SecretKey(read_key_file(key_file, environ), source=f"account.key_file {key_file}")
    else:
        _refuse(f"no signing key: set the environment variable {ENV_VAR} or account.key_file in the config")
    expected = cfg.account.signer_address
    if expected is not None and key.address != expected:
        _refuse(f"{key.source}: the key's address {key.address} is not account.signer_address {expected}")
    return key
