"""The JSON files the toolkit writes, as frozen records: one writer, one reader each.

A record is a ``@dataclass(frozen=True, slots=True)`` whose fields are the document's keys,
in the order the file lists them; nested records are fields of their own record type. Its
document is :func:`document` (the one way a record becomes JSON: nested records become
objects, tuples lists; a field made with :func:`written_when_set` is left out while it holds
its default, so files written before the field existed read and write back the same),
written with :func:`write_json_record` (atomically: a reader sees the old file or the new
one). Reading goes the other way, field by field, with
:func:`from_document`: a key the record needs that the document lacks is a
:class:`RecordError` naming it, which the reader turns into a message naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from proxy_train.files import atomic_write
from search_space.errors import NasError

T = TypeVar("T")


class RecordError(NasError, ValueError):
    """A stored document is not the record it should be (the message says what it lacks)."""


WHEN_SET = "written_when_set"


def written_when_set(default: Any = None) -> Any:
    """A record field with ``default`` that :func:`document` writes only when it differs."""
    return dataclasses.field(default=default, metadata={WHEN_SET: True})


def document(record: Any) -> dict[str, Any]:
    """``record`` as its JSON document (see the module docstring)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.metadata.get(WHEN_SET) and value == field.default:
            continue
        out[field.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return document(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def write_json_record(path: str | os.PathLike[str], doc: Mapping[str, Any], *,
                      sort_keys: bool = False) -> Path:
    """Write ``doc`` as indented JSON, atomically; values JSON cannot hold (a datetime)
    are written as their ``str``."""
    text = json.dumps(dict(doc), indent=2, sort_keys=sort_keys, default=str) + "\n"
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def from_document(cls: type[T], doc: object, **parsed: Any) -> T:
    """A ``cls`` from the keys of ``doc`` that are its fields; ``parsed`` gives fields
    already converted (nested records). A field without a default that ``doc`` lacks raises
    :class:`RecordError` (``has no 'name'``); keys that are not fields are ignored."""
    if not isinstance(doc, Mapping):
        raise RecordError("is not a JSON object")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in parsed:
            values[field.name] = parsed[field.name]
        elif field.name in doc:
            values[field.name] = doc[field.name]
        elif field.default is dataclasses.MISSING \
                and field.default_factory is dataclasses.MISSING:
            raise RecordError(f"has no {field.name!r}")
    return cls(**values)


def section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The nested object ``doc[name]``; :class:`RecordError` if it is missing or no object."""
    value = doc.get(name)
    if not isinstance(value, Mapping):
        raise RecordError(f"has no {name}")
    return value


__all__ = ["RecordError", "document", "from_document", "section", "write_json_record"]
