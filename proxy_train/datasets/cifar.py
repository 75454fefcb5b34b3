"""CIFAR-10 / CIFAR-100 in the original "python version" pickle format.

CIFAR-10: ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``
(``label_names``). CIFAR-100: ``train``, ``test`` and ``meta`` (``fine_label_names``), with
``fine_labels``. The path is the extracted folder itself or its parent (holding
``cifar-10-batches-py`` / ``cifar-100-python``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from proxy_train.datasets.base import RawSource, array_pool
from proxy_train.errors import DataError

_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "batches.meta", "labels", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", "fine_labels",
                 "fine_label_names"),
}


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open("rb") as handle:
            obj = pickle.load(handle, encoding="bytes")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{path}: not a CIFAR pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # Keys are bytes in the original files; accept str keys too.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path, label_key: str) -> tuple[torch.Tensor, np.ndarray]:
    batch = _unpickle(path)
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise DataError(f"{path}: missing keys {missing}; expected 'data' and '{label_key}' "
                        f"(found {sorted(map(str, batch))})")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != data.shape[0]:
        raise DataError(f"{path}: expected 'data' of shape [N, 3072] and N labels, "
                        f"got {data.shape} and {len(labels)} labels")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), labels


def load_cifar(kind: str, path: str, *, resolution: int | None) -> RawSource:
    folder_name, train_files, test_file, meta_file, label_key, names_key = _LAYOUT[kind]
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if (root / folder_name).is_dir():
        root = root / folder_name
    if not (root / train_files[0]).is_file():
        raise DataError(f"{root}: no {train_files[0]!r}; expected the {kind} python pickles "
                        f"({', '.join(train_files + [test_file, meta_file])}) or their parent")
    parts = [_read_batch(root / name, label_key) for name in train_files]
    images = torch.cat([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    meta = _unpickle(root / meta_file)
    if names_key not in meta:
        raise DataError(f"{root / meta_file}: missing key '{names_key}' "
                        f"(found {sorted(map(str, meta))})")
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"{root}: labels must lie in 0..{len(names) - 1}, "
                        f"got {labels.min()}..{labels.max()}")
    size = resolution or 32
    test = None
    if (root / test_file).is_file():
        test_images, test_labels = _read_batch(root / test_file, label_key)
        test = array_pool(test_images, test_labels, size)
    return RawSource(name=f"{kind}:{root}", class_names=names,
                     train=array_pool(images, labels, size), test=test)
