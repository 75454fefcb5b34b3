"""How messages say what they count, one way everywhere (torch-free, no imports from the other
packages, so anything may use it).

* :func:`counted`: ``counted(1, "epoch") == "1 epoch"``, ``counted(4, "epoch") == "4 epochs"``,
  ``counted(0.5, "epoch") == "0.5 epochs"``.
"""

from __future__ import annotations


def counted(n: float, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, singular for exactly one (``plural`` where adding ``s`` is wrong:
    ``counted(3, "class", "classes")``); a float is written as ``:g`` writes it."""
    word = noun if n == 1 else plural or f"{noun}s"
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"


def are(n: int) -> str:
    """The verb for ``n`` things: ``1 of 3 candidates is saved``, ``2 of 3 ... are saved``."""
    return "is" if n == 1 else "are"


__all__ = ["are", "counted"]
