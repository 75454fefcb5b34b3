"""The ``suggest_int`` / ``suggest_categorical`` protocol and its adapters.

A search space asks every question through ``Suggester``, so one code path serves a seed or
``random.Random`` (``RandomSuggester``), a mapping of decision values (``MappingSuggester``,
behind ``from_choices`` and ``mutate``), and any external object with the two methods, such as
``optuna.Trial``, which is used unchanged (no optuna import here).
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from search_space.checks import is_int
from search_space.errors import SpaceError


@runtime_checkable
class Suggester(Protocol):
    """What ``sample`` asks of a source of choices; ``optuna.Trial`` satisfies it unchanged."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


class RandomSuggester:
    """Adapts a ``random.Random`` to the ``Suggester`` protocol."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.rng.choice(tuple(choices))


class MappingSuggester:
    """Answers from a mapping of decision values, validating each; ``fallback`` fills gaps."""

    def __init__(self, choices: Mapping[str, object], fallback: Suggester | None = None) -> None:
        self.choices = choices
        self.fallback = fallback

    def _get(self, name: str, allowed: Sequence[Any], ask: Callable[[Suggester], Any]) -> Any:
        if name not in self.choices:
            if self.fallback is None:
                raise SpaceError(f"missing decision {name!r}")
            return ask(self.fallback)
        value = self.choices[name]
        for choice in allowed:
            if _same(value, choice):
                return choice  # the canonical value: 0 -> 0.0, numpy ints -> int
        raise SpaceError(f"decision {name!r}: {value!r} not in {_show(allowed)}")

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self._get(name, range(low, high + 1),
                         lambda fallback: fallback.suggest_int(name, low, high))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name, choices,
                         lambda fallback: fallback.suggest_categorical(name, choices))


def _same(value: object, choice: object) -> bool:
    # bool is an int subclass: 1 must not pass for True, nor True for 1.
    if isinstance(choice, bool) or isinstance(value, bool):
        return value is choice
    if isinstance(choice, (int, float)):
        return isinstance(value, numbers.Real) and value == choice
    return value == choice


class Recorder:
    """Wraps a suggester and records every answer, in order."""

    def __init__(self, inner: Suggester) -> None:
        self.inner = inner
        self.values: dict[str, object] = {}

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.values[name] = value = self.inner.suggest_int(name, low, high)
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.values[name] = value = self.inner.suggest_categorical(name, choices)
        return value


def _show(allowed: Sequence[Any]) -> str:
    if isinstance(allowed, range):
        return f"[{allowed.start}, {allowed.stop - 1}]"
    return str(tuple(allowed))


def as_suggester(source: object) -> Suggester:
    if isinstance(source, random.Random):
        return RandomSuggester(source)
    if is_int(source):
        return RandomSuggester(random.Random(source))
    if hasattr(source, "suggest_int") and hasattr(source, "suggest_categorical"):
        return source
    raise SpaceError(
        f"source {source!r} must be an int seed, a random.Random, or an object with "
        "suggest_int(name, low, high) and suggest_categorical(name, choices)"
    )
