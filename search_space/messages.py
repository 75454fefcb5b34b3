"""How messages say what they count and show what they echo, one way everywhere (torch-free,
no imports from the other packages, so anything may use it).

* :func:`counted`: ``counted(1, "epoch") == "1 epoch"``, ``counted(4, "epoch") == "4 epochs"``,
  ``counted(0.5, "epoch") == "0.5 epochs"``.
* :func:`shown`: a value as a message shows it, its repr, cut when long:
  ``'aaaa…' (10,000 characters)``; a command echoes what it was given, and a 10,000-character
  argument must not come back whole.
* :func:`one_line`: a finished message as one line, each long value in it cut as
  :func:`shown` cuts it (the last step before a command prints an error).
"""

from __future__ import annotations

import ast
import re

SHOWN_LIMIT = 400
"""Longest value a message shows whole (canonical strings of seven-stage networks, 240-270
characters, fit)."""
SHOWN_START = 60
"""How much of a longer value it shows."""


def shown(value: object, *, quoted: bool = True) -> str:
    """``repr(value)`` (``str(value)`` if not ``quoted``), or, past :data:`SHOWN_LIMIT`
    characters, its start and its length::

        'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…' (10,000 characters)
    """
    text = repr(value) if quoted else str(value)
    if len(text) <= SHOWN_LIMIT:
        return text
    whole = value if isinstance(value, str) else text
    head = whole[:SHOWN_START]
    if quoted and isinstance(value, str):
        start = repr(head)[:-1] + "…" + repr(head)[-1]
    else:
        start = head + "…"
    return f"{start} ({len(whole):,} characters)"


# A quoted value (a repr, not the apostrophe of "model's"), or any run without spaces.
_VALUE = re.compile(r"""(?<!\w)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?!\w)|\S+""")


def one_line(message: str) -> str:
    """``message`` as one line: line breaks become spaces, and each long value in it (a quoted
    value, or a run without spaces) is cut as :func:`shown` cuts it."""
    return _VALUE.sub(_cut, " ".join(message.splitlines()))


def _cut(match: re.Match[str]) -> str:
    text = match.group(0)
    if len(text) <= SHOWN_LIMIT:
        return text
    if text[0] in "'\"" and text[-1] == text[0]:
        try:
            return shown(ast.literal_eval(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    core = text.rstrip(":;,.)]}")  # the punctuation after a value stays
    return shown(core, quoted=False) + text[len(core):]


def counted(n: float, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, singular for exactly one (``plural`` where adding ``s`` is wrong:
    ``counted(3, "class", "classes")``); a float is written as ``:g`` writes it."""
    word = noun if n == 1 else plural or f"{noun}s"
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"


def are(n: int) -> str:
    """The verb for ``n`` things: ``1 of 3 candidates is saved``, ``2 of 3 ... are saved``."""
    return "is" if n == 1 else "are"


__all__ = ["SHOWN_LIMIT", "are", "counted", "one_line", "shown"]
