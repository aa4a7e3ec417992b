"""Remove personal data from a feedback comment before it is stored: e-mail addresses, payment cards, phone numbers."""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL_TOKEN, CARD_TOKEN, PHONE_TOKEN = "[email]", "[card]", "[phone]"

# Matches start only where a local part could start, so a long token without "@" is rejected in one step rather
# than once per character; the domain's last label may be followed by a full stop that ends the sentence.
_LOCAL = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-"
EMAIL = re.compile(rf"(?<![{_LOCAL}])[{_LOCAL}]++@(?:[A-Za-z0-9\-]++\.)+(?:(?i:xn--)[A-Za-z0-9\-]+|[A-Za-z]{{2,}})")

# A run of digit groups joined by single spaces or dashes; the card check looks inside it for 13–19 digits.
DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ \-]\d+)*")
DIGITS, NON_DIGITS = re.compile(r"\d+"), re.compile(r"\D")

# Where a phone number may not start: inside a word or number, or right after a separator, a bracket or a
# replacement token ("…]"), so a number is never cut out of the middle of a longer one.
_START = r"(?<![\w+.\-\])])"
# International: "+", country code, then digit groups with single separators and an optional "(0)"-style trunk.
INTERNATIONAL = re.compile(rf"{_START}\+\d++(?:[ .\-]?\(\d{{1,4}}\)[ .\-]?\d++)?(?:[ .\-]\d++)*+")
# National: "(020) 7946 0958" or groups that keep one separator, "202.555.0143", "07700 900123", so a date
# followed by a time or a count ("2026-03-01 12") never reads as one number.
NATIONAL = re.compile(
    rf"{_START}(?:\(\d{{2,5}}\) ?\d{{2,6}}(?:[ .\-]\d{{2,6}}){{0,3}}"
    rf"|\d{{1,5}}(?P<sep>[ .\-])\d{{2,6}}(?:(?P=sep)\d{{2,6}}){{0,4}})(?!\w)"
)
MIN_PHONE_DIGITS, MAX_NATIONAL_DIGITS, MAX_INTERNATIONAL_DIGITS = 9, 12, 15  # E.164 allows 15 digits at most
CARD_DIGITS = range(13, 20)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check that every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def scrub(text: str) -> str:
    """`text` with e-mail addresses, Luhn-valid card numbers and phone numbers replaced by `[email]`, `[card]`
    and `[phone]`; dates, times, prices, percentages and short numbers stay."""
    # Cards before phones, so a card number is never half taken for a phone number.
    text = EMAIL.sub(EMAIL_TOKEN, text)
    text = DIGIT_RUN.sub(_scrub_cards, text)
    text = _replace(INTERNATIONAL, text, PHONE_TOKEN, _international_length)
    return _replace(NATIONAL, text, PHONE_TOKEN, _national_length)


def _scrub_cards(run: re.Match[str]) -> str:
    """Replace, left to right, the longest span of whole digit groups in `run` that reads as a card number."""
    text = run.group()
    groups = [(m.start(), m.end()) for m in DIGITS.finditer(text)]
    counts = [0]
    for start, end in groups:
        counts.append(counts[-1] + end - start)
    out, done, i = [], 0, 0
    while i < len(groups):
        # Each group has at least one digit, so a card spans at most 19 groups: the search stays linear.
        for j in range(min(len(groups), i + max(CARD_DIGITS)) - 1, i - 1, -1):
            span = text[groups[i][0] : groups[j][1]]
            if counts[j + 1] - counts[i] in CARD_DIGITS and luhn_valid(NON_DIGITS.sub("", span)):
                out += [text[done : groups[i][0]], CARD_TOKEN]
                done, i = groups[j][1], j
                break
        i += 1
    return "".join([*out, text[done:]])


def _international_length(number: str) -> int:
    """How much of an international match is the phone number: the longest prefix of whole digit groups with
    9–15 digits (a year or an order number may follow it), or 0 for none."""
    best, count = 0, 0
    for m in DIGITS.finditer(number):
        count += m.end() - m.start()
        if count > MAX_INTERNATIONAL_DIGITS:
            break
        if count >= MIN_PHONE_DIGITS:
            best = m.end()
    return best


def _national_length(number: str) -> int:
    """All of a national match when it has 9–12 digits, else 0: a longer run is an order or reference number."""
    count = sum(len(d) for d in DIGITS.findall(number))
    return len(number) if MIN_PHONE_DIGITS <= count <= MAX_NATIONAL_DIGITS else 0


def _replace(pattern: re.Pattern[str], text: str, token: str, length: Callable[[str], int]) -> str:
    """Replace the first `length(match)` characters of each match of `pattern`. Scanning resumes right after the
    part replaced, so a number that followed it in the same match is still found, or after a whole rejected
    match, so no phone number is read out of the tail of a longer number."""
    out: list[str] = []
    done = pos = 0
    while (m := pattern.search(text, pos)) is not None:
        keep = length(m.group())
        if keep == 0:
            pos = m.end()
            continue
        out += [text[done : m.start()], token]
        done = pos = m.start() + keep
    return "".join([*out, text[done:]])
