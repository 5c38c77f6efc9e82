"""The numeric answer parser used by every generation task.

Rules, applied to the model's output after it was cut at the task's stop sequence:

1. Unicode minus signs become ``-``; thousands separators (``1,234.5``) are removed.
2. If the text has an explicit answer marker (``answer is``, ``answer:``, ``=``, ``EPS:``,
   ``growth:``), only the text after the last marker is searched.
3. The first number found is the answer. ``(1.23)`` (accounting style) means ``-1.23``;
   a leading ``$`` and a trailing ``%`` are allowed and ignored.
4. No number: the answer is unparseable (``None``), counted in ``unparseable_rate``.

    >>> parse_number("EPS is $2.67 per share")
    2.67
    >>> parse_number("(0.45)")
    -0.45
    >>> parse_number("The answer is 1,234.5%")
    1234.5
    >>> parse_number("no idea") is None
    True
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"(?:answer\s+is|answer\s*:|=|eps\s*:|growth\s*(?:\(%\))?\s*:)", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_NUMBER = re.compile(r"(\()?\s*(-)?\s*\$?\s*(\d+(?:\.\d+)?|\.\d+)\s*%?\s*(\))?")


def parse_number(text: str) -> float | None:
    """The numeric answer in ``text``, or None when there is none (see the module rules)."""
    cleaned = text.replace("\u2212", "-").replace("\u2013", "-")
    cleaned = _THOUSANDS.sub("", cleaned)
    markers = list(_MARKER.finditer(cleaned))
    if markers:
        cleaned = cleaned[markers[-1].end() :]
    match = _NUMBER.search(cleaned)
    if match is None:
        return None
    value = float(match.group(3))
    negative = bool(match.group(2)) or bool(match.group(1) and match.group(4))
    return -value if negative else value


def normalize_text(text: str) -> str:
    """Lower-case, single spaces, no surrounding punctuation: for exact-match text answers."""
    return " ".join(text.lower().split()).strip(" .,:;!?\"'")
