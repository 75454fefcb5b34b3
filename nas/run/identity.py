"""What defines a job's run, and how two runs differ: the identity every resumable folder checks.

Each job (a search, a training, a validation) says which of its settings define its run, as an
:class:`Identity`: names and JSON-able values, in the order the job wants them told. A folder
continues a stored run only if the stored identity and the command's are the same; otherwise
:func:`differences` names every setting that differs, with both values, so the refusal can say
exactly what changed (``k was 10, now 12; epochs was 8, now 6``). A value that is a mapping is
compared key by key (``recipe epochs was 2, now 3``). Values are compared as JSON would store
them, so a tuple equals the list a stored file gives back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

_LONGEST = 120
"""Longer values are cut short in messages (a list of candidates, a recipe's stages)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The settings that define one run (see the module docstring)."""

    settings: Mapping[str, Any]
    """Name -> JSON-able value, in the order messages name them."""
    wording: Mapping[str, str] = field(default_factory=dict)
    """A setting's difference in the job's own words, a template with ``{old}`` and ``{new}``
    (``{"objective": "a {old} run, not a {new} one"}``); the others read ``name was old, now
    new``."""
    derived: tuple[str, ...] = ()
    """Settings that follow from the others (a validation's candidates follow from ``k`` and
    its seed): named only when no other setting differs."""


class Identified(Protocol):
    """A stored record that knows the identity of the run it records."""

    def identity(self) -> Identity: ...


@dataclass(frozen=True, slots=True)
class Difference:
    """One setting two identities disagree on."""

    name: str
    old: Any
    new: Any
    wording: str | None = None

    def changed(self) -> str:
        """As a change from a stored run to this command: ``epochs was 8, now 6``."""
        if self.wording is not None:
            return self.wording.format(old=self.old, new=self.new)
        return f"{self.name} was {show(self.old)}, now {show(self.new)}"

    def versus(self) -> str:
        """As two copies that disagree: ``epochs: 2 vs 1``."""
        return f"{self.name}: {show(self.old)} vs {show(self.new)}"


def differences(old: Identity, new: Identity) -> list[Difference]:
    """Every setting ``old`` and ``new`` disagree on: ``new``'s order first, then the settings
    only ``old`` has; derived settings only when nothing else differs. A setting one of them
    lacks counts as None."""
    a, b = _flat(old), _flat(new)
    names = list(b) + [name for name in a if name not in b]
    wording = {**old.wording, **new.wording}
    found = [Difference(name, a.get(name), b.get(name), wording.get(name))
             for name in names if a.get(name) != b.get(name)]
    derived = set(old.derived) | set(new.derived)
    primary = [d for d in found if d.name.split(" ")[0] not in derived]
    return primary or found


def changes(found: list[Difference]) -> str:
    """``found`` as one clause: ``k was 10, now 12; epochs was 8, now 6``."""
    return "; ".join(d.changed() for d in found)


def show(value: Any) -> str:
    """A setting's value in a message: ``repr`` for one value, JSON for a list or a mapping,
    cut short past 120 characters."""
    text = json.dumps(value, default=str) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= _LONGEST else text[:_LONGEST - 3] + "..."


def _flat(identity: Identity) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in _plain(dict(identity.settings)).items():
        if isinstance(value, dict):
            out.update({f"{name} {key}": value[key] for key in sorted(value)})
        else:
            out[name] = value
    return out


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, other objects their ``str``)."""
    return json.loads(json.dumps(value, default=str))


__all__ = ["Difference", "Identified", "Identity", "changes", "differences", "show"]
