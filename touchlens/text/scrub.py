"""Remove personal data from a feedback comment before it is stored: e-mail addresses, payment cards, phone numbers."""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL_TOKEN, CARD_TOKEN, PHONE_TOKEN = "[email]", "[card]", "[phone]"

# RFC 5321's limits (64 characters before "@", 63 a label) keep the search linear on long tokens; the last
# label is letters, so a full stop ending the sentence stays out of the match.
_LOCAL = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-"
EMAIL = re.compile(
    rf"[{_LOCAL}]{{1,64}}@(?:[A-Za-z0-9\-]{{1,63}}\.)+(?:(?i:xn--)[A-Za-z0-9\-]{{1,59}}|[A-Za-z]{{2,63}})"
)

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
    if len(text) < min(CARD_DIGITS):
        return text
    groups = [(m.start(), m.end()) for m in DIGITS.finditer(text)]
    luhn = _luhn_spans(NON_DIGITS.sub("", text))
    counts = [0]
    for start, end in groups:
        counts.append(counts[-1] + end - start)
    out: list[str] = []
    done = i = 0
    while i < len(groups):
        # Each group has at least one digit, so a card spans at most 19 groups: the search stays linear.
        for j in range(min(len(groups), i + max(CARD_DIGITS)) - 1, i - 1, -1):
            if counts[j + 1] - counts[i] in CARD_DIGITS and luhn(counts[i], counts[j + 1]):
                out += [text[done : groups[i][0]], CARD_TOKEN]
                done, i = groups[j][1], j
                break
        i += 1
    return "".join([*out, text[done:]])


def _luhn_spans(digits: str) -> Callable[[int, int], bool]:
    """A Luhn check of any slice `digits[a:b]` in constant time, from prefix sums of each digit's plain and doubled
    value by the parity of its position (the rightmost digit of a slice is the plain one)."""
    plain = [[0], [0]]
    doubled = [[0], [0]]
    for k, ch in enumerate(digits):
        d = int(ch)
        for parity in (0, 1):
            plain[parity].append(plain[parity][-1] + (d if k % 2 == parity else 0))
            doubled[parity].append(doubled[parity][-1] + ((2 * d - 9 if d > 4 else 2 * d) if k % 2 == parity else 0))

    def valid(a: int, b: int) -> bool:
        p = (b - 1) % 2
        return (plain[p][b] - plain[p][a] + doubled[1 - p][b] - doubled[1 - p][a]) % 10 == 0

    return valid


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
