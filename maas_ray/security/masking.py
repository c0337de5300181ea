"""Masking of personal data in free text: log messages, error messages, audit records.

Four kinds of personal data are replaced in free text by typed placeholders:

    ===================================  ===============
    what                                 placeholder
    ===================================  ===============
    e-mail addresses                     ``<email>``
    phone numbers (CN mobile, E.164,     ``<phone>``
    North American)
    payment card numbers                 ``<card>``
    national IDs (CN resident identity   ``<national-id>``
    number, US SSN)
    ===================================  ===============

Every pattern is anchored on ASCII letter/digit boundaries, so it never fires inside a
longer number, a hex digest or a UUID, nor on the digits after a decimal point; numbers
that carry a check digit (cards: issuer prefix and Luhn; CN IDs: ISO 7064 MOD 11-2 and a
valid birth date) are masked only when the check passes. Ordinary text (versions,
timestamps, addresses, prices, numeric arrays) is left alone, and text with no ``@`` and
fewer than seven digits is returned at once without running any pattern.

Values of named fields and log records are masked by :mod:`maas_ray.security.log_masking`
(``mask_value``, ``mask_fields_in_text``, ``MaskingFilter``, ``install_log_masking``).

Importing this module compiles its patterns and does nothing else.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

__all__ = [
    "CARD",
    "EMAIL",
    "NATIONAL_ID",
    "PHONE",
    "mask_text",
]

EMAIL = "<email>"
PHONE = "<phone>"
CARD = "<card>"
NATIONAL_ID = "<national-id>"

# Boundaries for digit patterns: no ASCII letter or digit on either side (so nothing fires
# inside a longer number, a hex string or an identifier; CJK text around a number is fine)
# and not the fractional or integral part of a decimal number ("0.4111111111111111").
_START = r"(?<![0-9A-Za-z])(?<![0-9]\.)"
_END = r"(?![0-9A-Za-z])(?!\.[0-9])"

# The pre-check: with fewer than seven digits no digit pattern can match (E.164, the
# shortest, needs eight).
_SEVEN_DIGITS = re.compile(r"\d(?:\D*\d){6}", re.ASCII)

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9_.%+\-])"  # start at the beginning of the local part: linear time
    r"[A-Za-z0-9_.%+\-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}(?![A-Za-z0-9])",
    re.ASCII,
)

# 17 digits and a digit or X; the birth date and the check digit are checked in Python.
_CN_ID_RE = re.compile(_START + r"[1-9]\d{16}[\dXx]" + _END, re.ASCII)
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"

# 13-19 digits, run together or in groups (the first of four digits, the others of three
# to six, one separator throughout); length, issuer prefix and Luhn are checked in Python.
_CARD_RE = re.compile(
    _START + r"(?:\d{13,19}|\d{4}(?P<sep>[ \-])\d{3,6}(?:(?P=sep)\d{3,6}){1,3})" + _END,
    re.ASCII,
)

# US social security number: area not 000, 666 or 9xx; group not 00; serial not 0000.
_SSN_RE = re.compile(_START + r"(?!000|666)[0-8]\d{2}-(?!00)\d{2}-(?!0000)\d{4}" + _END, re.ASCII)

# Mainland-China mobile: 1[3-9] and nine digits, run together or 3-4-4 with one separator,
# optionally after +86, 0086 or "86 ".
_CN_MOBILE_RE = re.compile(
    _START + r"(?:(?:\+|00)86[ \-]?|86[ \-])?"
    r"1[3-9]\d(?P<sep>[ \-]?)\d{4}(?P=sep)\d{4}" + _END,
    re.ASCII,
)

# International E.164: "+", a country code, groups separated by one space, dash or dot, or
# in parentheses. Every separator is mandatory between digit groups, so the pattern cannot
# backtrack over ways of splitting a run of digits. 8-15 digits is checked in Python.
_E164_RE = re.compile(
    r"(?<![0-9A-Za-z+])\+[1-9]\d*(?:[ .\-]?\(\d+\)\d*|[ .\-]\d+)*" + _END,
    re.ASCII,
)

# North American: (415) 555-2671, 415-555-2671, 415.555.2671, optionally after "1-";
# area code and exchange start with 2-9 (NANP). Spaces alone are not separators here, so
# numeric arrays such as "[415 555 2671]" stay as they are.
_NANP_RE = re.compile(
    _START + r"(?:1[ .\-])?"
    r"(?:\([2-9]\d{2}\) ?[2-9]\d{2}[\-.]\d{4}|[2-9]\d{2}(?P<sep>[\-.])[2-9]\d{2}(?P=sep)\d{4})"
    + _END,
    re.ASCII,
)


def _cn_id_valid(number: str) -> bool:
    """Whether an 18-character CN resident identity number has a valid date and check digit.

    Args:
        number: 17 digits and a digit or ``X``/``x``.

    Returns:
        True when positions 7-14 are a real date in 1900-2099 and the last character is
        the ISO 7064 MOD 11-2 check character of the first 17 digits.
    """
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not 1900 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    pairs = zip(number[:17], _CN_ID_WEIGHTS, strict=True)
    total = sum(int(digit) * weight for digit, weight in pairs)
    return _CN_ID_CHECK[total % 11] == number[17].upper()


def _luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check.

    Args:
        digits: Only ASCII digits.

    Returns:
        True when the Luhn sum is a multiple of ten.
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_issuer_known(digits: str) -> bool:
    """Whether a card number starts with the prefix of a known issuer.

    Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/65/644-649,
    UnionPay 62, JCB 3528-3589, Diners 300-305/36/38.

    Args:
        digits: At least four ASCII digits.

    Returns:
        True for a known issuer prefix.
    """
    if digits[0] == "4":
        return True
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    return (
        51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37, 36, 38, 62, 65)
        or four == 6011
        or 644 <= three <= 649
        or 3528 <= four <= 3589
        or 300 <= three <= 305
    )


def _mask_cn_id(match: re.Match[str]) -> str:
    number = match.group()
    return NATIONAL_ID if _cn_id_valid(number) else number


def _mask_card(match: re.Match[str]) -> str:
    candidate = match.group()
    digits = candidate.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and _card_issuer_known(digits) and _luhn_valid(digits):
        return CARD
    return candidate


def _mask_e164(match: re.Match[str]) -> str:
    candidate = match.group()
    # One dot and nothing else is a signed decimal ("+12345.678"), not a phone number.
    if candidate.count(".") == 1:
        return candidate
    digits = sum(char.isdigit() for char in candidate)
    return PHONE if 8 <= digits <= 15 else candidate


_Replacement = str | Callable[[re.Match[str]], str]

# Order matters: the 18-digit IDs go first (their digits may also pass as a card), then
# cards, SSNs and phone numbers. A pass runs only on runs with at least its number of
# digits and with its marker character ("" for none).
_DIGIT_PASSES: tuple[tuple[re.Pattern[str], _Replacement, int, str], ...] = (
    (_CN_ID_RE, _mask_cn_id, 17, ""),
    (_CARD_RE, _mask_card, 13, ""),
    (_SSN_RE, NATIONAL_ID, 9, "-"),
    (_CN_MOBILE_RE, PHONE, 11, ""),
    (_E164_RE, _mask_e164, 8, "+"),
    (_NANP_RE, PHONE, 10, ""),
)

# Every digit pattern starts with a digit, "+" or "(" and matches only the characters of
# _RUN_RE, so each match lies inside one of its runs: the passes run on the runs with enough
# digits, not on the whole text.
_RUN_RE = re.compile(r"[\d+(][\d \-.()+Xx]{7,}", re.ASCII)
_NOT_DIGITS = b" -.()+Xx"
_CONTEXT = 2  # the widest lookbehind or lookahead of the digit patterns


def _sub_from(pattern: re.Pattern[str], replacement: _Replacement, text: str, pos: int) -> str:
    """Like ``pattern.sub(replacement, text)``, for matches that start at ``pos`` or later.

    Unlike slicing, this lets the pattern's lookbehind see the characters before ``pos``.

    Args:
        pattern: The pattern to replace.
        replacement: A string, or a function of the match as for :func:`re.sub`.
        text: The text.
        pos: Where matches may start.

    Returns:
        The text with the matches replaced.
    """
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text, pos):
        pieces.append(text[last : match.start()])
        pieces.append(replacement if isinstance(replacement, str) else replacement(match))
        last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _mask_numbers(text: str) -> str:
    """Mask card numbers, national IDs and phone numbers.

    Args:
        text: The text.

    Returns:
        The text with those numbers replaced by their placeholders.
    """
    pieces: list[str] = []
    last = 0
    for run in _RUN_RE.finditer(text):
        found = run.group()
        digits = len(found.encode("ascii").translate(None, _NOT_DIGITS))
        if digits < 9 and "+" not in found:  # too short for all but E.164
            continue
        start, end = run.span()
        left = text[max(0, start - _CONTEXT) : start]
        # The run with enough of the text around it for the patterns' boundaries.
        work = left + found + text[end : end + _CONTEXT]
        for pattern, replacement, least, marker in _DIGIT_PASSES:
            if digits >= least and marker in found:
                work = _sub_from(pattern, replacement, work, len(left))
        masked = work[len(left) : len(work) - len(text[end : end + _CONTEXT])]
        if masked != found:
            pieces.append(text[last:start])
            pieces.append(masked)
            last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def mask_text(text: str) -> str:
    """Replace personal data in free text with typed placeholders.

    E-mail addresses become ``<email>``, phone numbers ``<phone>``, payment card numbers
    ``<card>`` and national ID numbers ``<national-id>``. Text with no ``@`` and fewer than
    seven digits is returned unchanged without running any pattern. Masking is idempotent.

    Args:
        text: Any text: a log message, an error message, a value from a request.

    Returns:
        The text with personal data replaced; the same object when nothing was masked.
    """
    has_at = "@" in text
    has_digits = _SEVEN_DIGITS.search(text) is not None
    if not (has_at or has_digits):
        return text
    if has_at:
        # Before the numbers: the local part of an address may be a phone number.
        text = _EMAIL_RE.sub(EMAIL, text)
    if has_digits:
        text = _mask_numbers(text)
    return text
