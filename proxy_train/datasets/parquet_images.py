"""Parquet image tables, as Hugging Face ``datasets`` exports them.

``parquet:PATH`` is one ``.parquet`` file or a folder of them (searched recursively). The
image column holds encoded bytes, either raw ``binary`` or a struct ``{bytes, path}``; the
label column holds integers (a test split labelled -1, i.e. unlabeled, is ignored). Column
names are detected (``image``/``img``, ``label``/``labels``/``fine_label``) or given:
``parquet:PATH:image=col,label=col`` (or ``?image=col&label=col``). In a folder, files whose
name contains ``test``/``val`` form the test split; the rest train. Class names come from the
Hugging Face ``ClassLabel`` metadata when present.

Scanning reads the label column and the files' metadata only; images are decoded into the
cache (:mod:`proxy_train.cache`), row group by row group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from proxy_train.datasets.folder import SELECTION_SEED
from proxy_train.datasets.inventory import Inventory, Item, fingerprint
from proxy_train.datasets.select import cap_per_class, keep_classes, select_classes
from proxy_train.errors import DataError
from search_space.messages import counted

IMAGE_COLUMNS: tuple[str, ...] = ("image", "img", "jpg", "png")
LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "fine_label", "cls")
_TEST_WORDS: tuple[str, ...] = ("test", "val")


def _open(file: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise DataError(f"{file}: cannot read Parquet ({type(exc).__name__}: {exc})") from None


def _columns(file: Path, schema: pa.Schema, image_col: str | None,
             label_col: str | None) -> tuple[str, str]:
    columns = schema.names
    image_col = image_col or next((c for c in IMAGE_COLUMNS if c in columns), None)
    label_col = label_col or next((c for c in LABEL_COLUMNS if c in columns), None)
    for role, col, options in (("image", image_col, IMAGE_COLUMNS),
                               ("label", label_col, LABEL_COLUMNS)):
        if col is None or col not in columns:
            wanted = repr(col) if col else f"one of {list(options)}"
            raise DataError(f"{file}: no {role} column {wanted}; columns found: {columns} "
                            f"(name them with parquet:PATH:image=COL,label=COL)")
    assert image_col is not None and label_col is not None  # checked just above
    kind = schema.field(image_col).type
    if pa.types.is_struct(kind):
        if "bytes" not in [kind.field(i).name for i in range(kind.num_fields)]:
            raise DataError(f"{file}: image column {image_col!r} is a struct without 'bytes'")
    elif not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        raise DataError(f"{file}: image column {image_col!r} has type {kind}; "
                        "expected encoded image bytes (binary or struct {bytes, path})")
    return image_col, label_col


def _rows(files: list[Path], image_col: str | None, label_col: str | None
          ) -> tuple[list[Item], np.ndarray, list[str], str, str, pa.Schema]:
    """Items, labels and stamps of every row of ``files``."""
    items: list[Item] = []
    labels: list[np.ndarray] = []
    stamps: list[str] = []
    schema = None
    for file in files:
        handle = _open(file)
        schema = schema or handle.schema_arrow
        image_col, label_col = _columns(file, handle.schema_arrow, image_col, label_col)
        raw = handle.read(columns=[label_col]).column(label_col)
        values = raw.to_numpy(zero_copy_only=False)
        if values.dtype.kind not in "iu":
            raise DataError(f"{file}: label column {label_col!r} has type {raw.type}; "
                            "expected integers")
        labels.append(values.astype(np.int64))
        for group in range(handle.metadata.num_row_groups):
            count = handle.metadata.row_group(group).num_rows
            items += [(str(file), group, row) for row in range(count)]
        stat = os.stat(file)
        stamps.append(f"{file} {stat.st_size} {stat.st_mtime_ns}")
    assert schema is not None and image_col is not None and label_col is not None
    return items, np.concatenate(labels), stamps, image_col, label_col, schema


def _hf_class_names(schema: pa.Schema, label_col: str) -> list[str] | None:
    meta = (schema.metadata or {}).get(b"huggingface")
    if meta is None:
        return None
    try:
        feature = json.loads(meta)["info"]["features"][label_col]
        names = feature.get("names")
        return [str(n) for n in names] if names else None
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def scan_parquet(path: str, *, classes: object, per_class: int | None, image: str | None,
                 label: str | None) -> tuple[Inventory, str]:
    """List the rows of ``path`` (see the module docstring); also returns the image column."""
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise DataError(f"{root}: Parquet file or folder not found")
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
    if not files:
        raise DataError(f"{root}: no .parquet files in this folder")
    test_files = [f for f in files if any(w in f.name.lower() for w in _TEST_WORDS)]
    train_files = [f for f in files if f not in test_files] or files
    if train_files is files:
        test_files = []
    items, labels, stamps, image_col, label_col, schema = _rows(train_files, image, label)
    if not items:
        raise DataError(f"{train_files[0]}: no rows")
    if labels.min() < 0:
        raise DataError(f"{train_files[0]}: label column {label_col!r} has negative values")
    names = _hf_class_names(schema, label_col) or []
    names += [str(i) for i in range(len(names), int(labels.max()) + 1)]
    chosen = select_classes(tuple(names), classes, f"parquet:{root}")
    index, kept = keep_classes(labels, chosen)
    if per_class is not None:
        index, kept = cap_per_class(index, kept, per_class, np.random.default_rng(SELECTION_SEED))
    rows = [items[i] for i in index]
    test_kept = np.zeros(0, dtype=np.int64)
    if test_files:
        t_items, t_labels, t_stamps, *_ = _rows(test_files, image_col, label_col)
        if t_labels.size and t_labels.max() >= len(names):
            raise DataError(f"{test_files[0]}: test labels outside 0..{len(names) - 1}")
        if t_labels.size and t_labels.min() >= 0:  # unlabeled test sets use -1: skip them
            t_index, test_kept = keep_classes(t_labels, chosen)
            rows += [t_items[i] for i in t_index]
            stamps += t_stamps
    chosen_names = tuple(names[i] for i in chosen)
    counts = np.bincount(kept, minlength=len(chosen))
    for name, count in zip(chosen_names, counts):
        if count < 2:
            raise DataError(f"parquet:{root}: class {name!r} has {counted(int(count), 'training image')}; "
                            "every class needs at least 2 (one for minival, one for "
                            "training); leave it out with the option classes=...")
    selection = (f"classes={list(chosen_names) if classes is not None else 'all'} "
                 f"per_class={per_class} image={image_col} label={label_col}")
    rows_text = [f"{p} {g} {r}" for p, g, r in rows]
    inventory = Inventory(
        name=f"parquet:{root}", kind="parquet", root=str(root), class_names=chosen_names,
        items=rows, labels=np.concatenate([kept, test_kept]), train_rows=len(kept),
        fingerprint=fingerprint([selection, *stamps, *chosen_names, *rows_text]),
        selection=selection)
    return inventory, image_col


__all__ = ["IMAGE_COLUMNS", "LABEL_COLUMNS", "scan_parquet"]
