"""Pseudonymization at the door: raw PII never reaches the store.

User ids, emails and phone numbers become keyed HMAC-SHA256 digests (the same input and
key always give the same pseudonym, so joins still work; without the key they cannot be
reversed or re-computed by guessing). Emails and phone numbers inside free text are masked.

Example:
    >>> p = Pseudonymizer(b"k")
    >>> p.user("U1") == p.user("U1"), p.user("U1").startswith("u_")
    (True, True)
    >>> mask_pii("write to ann@example.com or call +86 138 0013 8000")
    'write to [email] or call [phone]'
"""

from __future__ import annotations

import hmac
import re

import pandas as pd

EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Phone numbers of the shapes shops see: international (+CC ...), Chinese mobiles
# (1[3-9] and 9 more digits, optionally grouped 3-4-4) and North American (555) 123-4567.
# Dates, prices and order or ticket numbers do not match these shapes. The guards are
# ASCII-only because Chinese characters count as word characters.
_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"
PHONE_RE = re.compile(
    _NOT_ALNUM_BEFORE
    + r"(?:"
    + r"\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d(?:[\s.\-]?\d){5,13}"  # +86 138 0013 8000
    + r"|1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}"  # 13800138000, 138-0013-8000
    + r"|\(?\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}"  # (555) 123-4567, 555.123.4567
    + r")"
    + _NOT_ALNUM_AFTER
)


def mask_pii(text: str) -> str:
    """Replace emails with ``[email]`` and phone numbers with ``[phone]``."""
    if not text:
        return text
    return PHONE_RE.sub("[phone]", EMAIL_RE.sub("[email]", text))


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    """Digits only, with a leading + kept, so formatting does not change the pseudonym."""
    stripped = value.strip()
    digits = re.sub(r"\D", "", stripped)
    return ("+" if stripped.startswith("+") else "") + digits


class Pseudonymizer:
    """Keyed hashing of identifiers. One instance per key; cheap to call.

    A key of several lines is a key chain, oldest first (what ``shoplm rekey`` leaves): each
    key hashes the digest of the one before, so a raw id maps to the pseudonym the store was
    re-keyed to (see :mod:`shoplm.app.rekey`). A single-line key hashes once, as always.
    """

    def __init__(self, key: bytes) -> None:
        self._keys = [line for line in key.split(b"\n") if line]
        if not self._keys:
            raise ValueError("the pseudonymization key is empty")

    def digest(self, namespace: str, value: str, length: int = 24) -> str:
        # hmac.digest is the one-shot C path: several times faster than hmac.new per value.
        for key in self._keys:
            value = hmac.digest(key, f"{namespace}\x1f{value}".encode(), "sha256").hex()[:length]
        return value

    def user(self, raw_id: str) -> str:
        """The pseudonymous user id stored for the shop's user id ``raw_id``."""
        return "u_" + self.digest("user", str(raw_id).strip())

    def email(self, raw: str) -> str:
        return self.digest("email", normalize_email(raw), 32)

    def phone(self, raw: str) -> str:
        return self.digest("phone", normalize_phone(raw), 32)

    # Vectorized forms for ingest chunks; empty values stay empty.
    def users(self, values: pd.Series) -> pd.Series:
        return _map_non_empty(values, self.user)

    def emails(self, values: pd.Series) -> pd.Series:
        return _map_non_empty(values, self.email)

    def phones(self, values: pd.Series) -> pd.Series:
        return _map_non_empty(values, self.phone)


def mask_series(values: pd.Series) -> pd.Series:
    """:func:`mask_pii` over a column of text."""
    return values.map(mask_pii)


def _map_non_empty(values: pd.Series, function: object) -> pd.Series:
    # Many rows repeat the same id: hash each distinct value once.
    unique = pd.unique(values[values != ""])
    mapping = {value: function(value) for value in unique}  # type: ignore[operator]
    mapping[""] = ""
    return values.map(mapping)
