"""Card numbers (PANs): detection and masking.

A card number is a run of 13-19 digits that passes the Luhn check. Runs may be written with single
spaces or dashes between digit groups ("4111 1111 1111 1111"); those are masked too. Masking keeps
the first 6 and last 4 digits, the PCI DSS display rule.
"""

from __future__ import annotations

import re
from typing import Final

_MIN_DIGITS: Final = 13
_MAX_DIGITS: Final = 19
# A maximal run of at least 13 digits, optionally separated by single spaces or dashes. Shorter
# runs (amounts, dates) are never card numbers, and not matching them keeps masking cheap.
_RUN_TEXT: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])")
_RUN_BYTES: Final = re.compile(rb"(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])")
# Quick rejection for bytes: with every digit mapped to "0" and the separators removed, a run the
# regex could match becomes 13 or more "0"s in a row. Two C-level passes instead of the regex
# trying a match at every digit (most messages carry no run that long).
_ZEROED: Final = bytes([48 if 48 <= b <= 57 else b for b in range(256)])
_THIRTEEN_ZEROS: Final = b"0" * _MIN_DIGITS


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """True when ``text`` (spaces and dashes aside) is one Luhn-valid 13-19 digit number."""
    if len(text) < _MIN_DIGITS or not text[-1].isdigit():
        return False
    if not text[0].isdigit() and text[0] not in " -":  # most tokens: "tok_..."
        return False
    digits = text.replace(" ", "").replace("-", "")
    return _MIN_DIGITS <= len(digits) <= _MAX_DIGITS and digits.isdigit() and luhn_valid(digits)


def _mask_digits(run: str) -> str | None:
    digits = run.replace(" ", "").replace("-", "")
    if not (_MIN_DIGITS <= len(digits) <= _MAX_DIGITS) or not luhn_valid(digits):
        return None
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _mask_text_match(m: re.Match[str]) -> str:
    masked = _mask_digits(m.group(0))
    return m.group(0) if masked is None else masked


def _mask_bytes_match(m: re.Match[bytes]) -> bytes:
    masked = _mask_digits(m.group(0).decode("ascii"))
    return m.group(0) if masked is None else masked.encode("ascii")


def mask_text(text: str) -> str:
    """Replace every card number inside ``text`` by its first 6 / last 4 digits."""
    return _RUN_TEXT.sub(_mask_text_match, text)


def mask_bytes(data: bytes) -> bytes:
    """``mask_text`` for bytes (serialized alerts and dead letters on their way out)."""
    if _THIRTEEN_ZEROS not in data.translate(_ZEROED, b" -"):
        return data
    return _RUN_BYTES.sub(_mask_bytes_match, data)
