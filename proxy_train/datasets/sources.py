"""Reading a source string: its kind, its path and its options.

``synthetic[:OPTIONS]``, ``KIND:PATH[:OPTIONS]`` for the kinds below, or a bare existing path
(``PATH[:OPTIONS]``) whose kind is detected (CIFAR pickles, Parquet files, else an image
folder). How options follow a path: :mod:`proxy_train.datasets.options`.
"""

from __future__ import annotations

from pathlib import Path

from proxy_train.datasets.options import COMMON_OPTIONS, PARQUET_OPTIONS, split_path
from proxy_train.errors import DataError

SOURCE_KINDS: tuple[str, ...] = ("synthetic", "folder", "cifar10", "cifar100", "parquet")
CACHED_KINDS: tuple[str, ...] = ("folder", "parquet")
"""Kinds decoded into a cache on disk (the others are held in memory)."""
BUILT_IN_DATA = "synthetic:variant=objects"
"""The data ``nas-search`` and ``nas-train`` use unless told: the built-in set's ``objects``
variant, whose class cues survive a half-size proxy and whose long trainings rank candidates
alike (``bench/results/proxy_fidelity_cpu.md``). ``synthetic`` alone still renders the
``stripes`` variant, so runs recorded with it continue on the same images."""


def parse_source(source: str) -> tuple[str, str, dict[str, str]]:
    """``(kind, path, raw options)``; for ``synthetic`` the path is its option text."""
    kind, sep, rest = source.partition(":")
    if kind == "synthetic":
        return kind, rest, {}
    if not sep or kind not in SOURCE_KINDS or len(kind) == 1:
        path, options = split_path(source, source, PARQUET_OPTIONS)
        if not sep or len(kind) == 1 or Path(path).expanduser().exists():
            kind = _detect(path)  # a bare path (len 1: a Windows drive letter)
            return kind, path, _only(options, kind, source)
        raise DataError(f"unknown data source kind {kind!r} in {source!r}; expected one of "
                        f"{list(SOURCE_KINDS)} as KIND:PATH, 'synthetic', or an existing path")
    allowed = PARQUET_OPTIONS if kind == "parquet" else COMMON_OPTIONS
    path, options = split_path(rest, source, allowed)
    return kind, path, _only(options, kind, source)


def _only(options: dict[str, str], kind: str, where: str) -> dict[str, str]:
    allowed = PARQUET_OPTIONS if kind == "parquet" else COMMON_OPTIONS
    if kind not in CACHED_KINDS:
        allowed = tuple(k for k in allowed if k != "cache")
    extra = [k for k in options if k not in allowed]
    if extra:
        raise DataError(f"{where}: option {extra[0]!r} does not apply to a {kind} source; "
                        f"expected one of {list(allowed)}")
    return options


def _detect(path_text: str) -> str:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"data source {path_text!r} is neither an existing path nor one of "
                        f"{list(SOURCE_KINDS)} (write KIND:PATH, e.g. folder:{path_text})")
    if path.is_file():
        if path.suffix == ".parquet":
            return "parquet"
        raise DataError(f"{path}: cannot tell the data format of this file; expected a .parquet "
                        "file or a folder")
    if (path / "cifar-10-batches-py").is_dir() or (path / "data_batch_1").is_file():
        return "cifar10"
    if (path / "cifar-100-python").is_dir() or ((path / "train").is_file()
                                               and (path / "meta").is_file()):
        return "cifar100"
    if any(path.glob("*.parquet")) or any(path.glob("*/*.parquet")):
        return "parquet"
    return "folder"


__all__ = ["CACHED_KINDS", "SOURCE_KINDS", "parse_source"]
