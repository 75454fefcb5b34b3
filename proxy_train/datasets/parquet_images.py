"""Parquet image tables, as Hugging Face ``datasets`` exports them.

``parquet:PATH`` is one ``.parquet`` file or a folder of them (searched recursively). The
image column holds encoded bytes, either raw ``binary`` or a struct ``{bytes, path}``; the
label column holds integers (a test split labelled -1, i.e. unlabeled, is ignored). Column names are detected (``image``/``img``,
``label``/``labels``/``fine_label``) or given: ``parquet:PATH?image=col&label=col``. In a
folder, files whose name contains ``test``/``val`` form the test split; the rest train.
Class names come from the Hugging Face ``ClassLabel`` metadata when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from proxy_train.datasets.base import Pool, RawSource, parse_options
from proxy_train.datasets.images import decode_payloads, default_resolution
from proxy_train.errors import DataError

IMAGE_COLUMNS: tuple[str, ...] = ("image", "img", "jpg", "png")
LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "fine_label", "cls")
_TEST_WORDS: tuple[str, ...] = ("test", "val")


def _read(files: list[Path], image_col: str | None, label_col: str | None
          ) -> tuple[list, np.ndarray, list[str], str, str, pa.Schema]:
    tables = []
    for file in files:
        try:
            tables.append(pq.read_table(file))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            raise DataError(f"{file}: cannot read Parquet ({type(exc).__name__}: {exc})") from None
    columns = tables[0].column_names
    image_col = image_col or next((c for c in IMAGE_COLUMNS if c in columns), None)
    label_col = label_col or next((c for c in LABEL_COLUMNS if c in columns), None)
    for role, col, options in (("image", image_col, IMAGE_COLUMNS),
                               ("label", label_col, LABEL_COLUMNS)):
        if col is None or col not in columns:
            wanted = repr(col) if col else f"one of {list(options)}"
            raise DataError(f"{files[0]}: no {role} column {wanted}; columns found: {columns} "
                            f"(name them with parquet:PATH?image=COL&label=COL)")
    assert image_col is not None and label_col is not None  # checked just above
    payloads: list = []
    names: list[str] = []
    labels = []
    for file, table in zip(files, tables):
        column = table.column(image_col).combine_chunks()
        if pa.types.is_struct(column.type):
            if "bytes" not in [column.type.field(i).name for i in range(column.type.num_fields)]:
                raise DataError(f"{file}: image column {image_col!r} is a struct without 'bytes'")
            column = column.field("bytes")
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            raise DataError(f"{file}: image column {image_col!r} has type {column.type}; "
                            "expected encoded image bytes (binary or struct {bytes, path})")
        raw = table.column(label_col).to_numpy(zero_copy_only=False)
        if raw.dtype.kind not in "iu":
            raise DataError(f"{file}: label column {label_col!r} has type "
                            f"{table.column(label_col).type}; expected integers")
        start = len(payloads)
        payloads += column.to_pylist()
        names += [f"{file} row {i}" for i in range(len(payloads) - start)]
        labels.append(raw.astype(np.int64))
    return payloads, np.concatenate(labels), names, image_col, label_col, tables[0].schema


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


def _pool(payloads: list, names: list[str], labels: np.ndarray, resolution: int) -> Pool:
    def decode(index: np.ndarray) -> torch.Tensor:
        chosen = [payloads[i] for i in index]
        return decode_payloads(chosen, [names[i] for i in index], resolution)

    return Pool(labels=labels, decode=decode)


def load_parquet(spec: str, *, resolution: int | None) -> RawSource:
    path_text, _, query = spec.partition("?")
    options = parse_options(query, f"parquet:{spec}", ("image", "label"))
    root = Path(path_text).expanduser()
    if not root.exists():
        raise DataError(f"{root}: Parquet file or folder not found")
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
    if not files:
        raise DataError(f"{root}: no .parquet files in this folder")
    test_files = [f for f in files if any(w in f.name.lower() for w in _TEST_WORDS)]
    train_files = [f for f in files if f not in test_files] or files
    if train_files is files:
        test_files = []
    payloads, labels, names, image_col, label_col, schema = _read(
        train_files, options.get("image"), options.get("label"))
    if not payloads:
        raise DataError(f"{train_files[0]}: no rows")
    if labels.min() < 0:
        raise DataError(f"{train_files[0]}: label column {label_col!r} has negative values")
    num_classes = int(labels.max()) + 1
    class_names = _hf_class_names(schema, label_col) or [str(i) for i in range(num_classes)]
    if len(class_names) < num_classes:
        class_names += [str(i) for i in range(len(class_names), num_classes)]
    size = resolution or default_resolution(payloads[0], names[0])
    test = None
    if test_files:
        t_payloads, t_labels, t_names, *_ = _read(test_files, image_col, label_col)
        if t_labels.size and t_labels.max() >= len(class_names):
            raise DataError(f"{test_files[0]}: test labels outside 0..{len(class_names) - 1}")
        if t_labels.size and t_labels.min() >= 0:  # unlabeled test sets use -1: skip them
            test = _pool(t_payloads, t_names, t_labels, size)
    return RawSource(name=f"parquet:{root}", class_names=tuple(class_names),
                     train=_pool(payloads, names, labels, size), test=test)
