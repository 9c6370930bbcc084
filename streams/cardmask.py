"""Card numbers (PANs): detection and masking.

A card number is a run of 13-19 digits that passes the Luhn check. Runs may be written with single
spaces or dashes between digit groups ("4111 1111 1111 1111"); those are masked too. Masking keeps
the first 6 and last 4 digits, the PCI DSS display rule.
"""

from __future__ import annotations

import re
from typing import Final, Literal

_MIN_DIGITS: Final = 13
SHORTEST_CARD_NUMBER: Final = _MIN_DIGITS
"""Digits in the shortest card number: an id shorter than this cannot carry one."""
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


# -- card numbers in identifiers --------------------------------------------------------------

IdCheck = Literal["networks", "luhn", "off"]
ID_CHECKS: Final[tuple[IdCheck, ...]] = ("networks", "luhn", "off")

# A digit run standing on its own inside an id: not glued to a letter or another digit on either
# side (``TX2304730006206`` is an id, ``ORD-4111111111111111`` carries a card number). Digits may
# be grouped by single spaces or dashes, as card numbers are written.
_LOOSE_RUN: Final = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])")

# Issuer identification number ranges of the card networks and the lengths their cards have
# (ISO/IEC 7812 as the schemes publish them): (first digits low, high, prefix length, lengths).
_NETWORKS: Final[tuple[tuple[int, int, int, frozenset[int]], ...]] = (
    (4, 4, 1, frozenset({13, 16, 19})),  # Visa
    (51, 55, 2, frozenset({16})),  # Mastercard
    (2221, 2720, 4, frozenset({16})),  # Mastercard 2-series
    (34, 34, 2, frozenset({15})),  # American Express
    (37, 37, 2, frozenset({15})),
    (300, 305, 3, frozenset({14, 16, 17, 18, 19})),  # Diners Club
    (36, 36, 2, frozenset({14, 16, 17, 18, 19})),
    (38, 39, 2, frozenset({16, 17, 18, 19})),
    (6011, 6011, 4, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, 3, frozenset({16, 17, 18, 19})),
    (65, 65, 2, frozenset({16, 17, 18, 19})),  # Discover, RuPay
    (3528, 3589, 4, frozenset({16, 17, 18, 19})),  # JCB
    (62, 62, 2, frozenset({16, 17, 18, 19})),  # UnionPay
    (2200, 2204, 4, frozenset({16, 17, 18, 19})),  # Mir
    (50, 50, 2, frozenset({13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (56, 58, 2, frozenset({13, 14, 15, 16, 17, 18, 19})),
    (60, 60, 2, frozenset({16})),  # RuPay
    (639, 639, 3, frozenset({13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (6759, 6759, 4, frozenset({13, 14, 15, 16, 17, 18, 19})),  # Maestro UK
    (6761, 6763, 4, frozenset({13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (81, 82, 2, frozenset({16})),  # RuPay
    (9792, 9792, 4, frozenset({16})),  # Troy
)


_DIGITS_TO_ONES: Final = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))
"""Digits become ``1``, all else ``0``: an id with fewer than 13 ``1`` has no card number. (With
a table and nothing to delete, ``bytes.translate`` is one table read per byte; deleting builds a
table on every call, 2,000 instructions.)"""


def issued_by_a_network(digits: str) -> bool:
    """True when ``digits`` starts with a card network's IIN and has one of its card lengths."""
    n = len(digits)
    for low, high, width, lengths in _NETWORKS:
        if n in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def id_has_card_number(text: str, check: IdCheck) -> bool:
    """Whether an identifier carries a card number, as ``check`` judges it: ``networks`` (the
    default) a free-standing 13-19 digit run that passes Luhn and fits a network's IIN range and
    lengths; ``luhn`` any free-standing Luhn-valid run of 13-19 digits; ``off`` never."""
    if check == "off" or len(text) < _MIN_DIGITS:
        return False
    if text.isalnum() and text.isascii():  # most ids: any digit run is glued to a letter
        if not text.isdigit():
            return False
        return (
            len(text) <= _MAX_DIGITS
            and luhn_valid(text)
            and (check == "luhn" or issued_by_a_network(text))
        )
    if text.encode().translate(_DIGITS_TO_ONES).count(b"1") < _MIN_DIGITS:  # quick rejection
        return False
    for m in _LOOSE_RUN.finditer(text):
        digits = m.group(0).replace(" ", "").replace("-", "")
        if len(digits) < _MIN_DIGITS or not luhn_valid(digits):
            continue
        if check == "luhn" or issued_by_a_network(digits):
            return True
    return False
