"""Resolve ``nas-scale --base``: where a base architecture comes from.

A base is a preset, a spec/result JSON file, a canonical string, or the K-th best row of a
search leaderboard (a run folder or a ``.parquet`` file). Leaderboards are read and ranked by
``results.leaderboard`` (``Leaderboard.best``), imported only when a leaderboard is given,
because it pulls in pandas and pyarrow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from scaling.errors import ScalingError
from search_space.checks import is_int
from search_space.codec import decode
from search_space.presets import PRESETS
from search_space.resolve import find_preset, resolve_arch
from search_space.spec import ArchSpec

# Preset name -> the name its recipe row has in Table 6 / efficientnetv2_params.
RECIPE_NAMES: dict[str, str] = {
    "efficientnetv2-s": "S", "efficientnetv2-m": "M", "efficientnetv2-l": "L",
    "efficientnetv2-xl": "XL",
}


@dataclass(frozen=True, slots=True)
class Base:
    """A base architecture and what is known about its image sizes."""

    spec: ArchSpec
    source: str
    """Human-readable origin, recorded in the output (``preset efficientnetv2-s``, ...)."""
    train_size: int | None = None
    eval_size: int | None = None
    preset: str | None = None
    """The preset whose spec this is, if any (also found for a file or string)."""
    label: str = "base"
    """Short name for tables and the report's ``base.name``."""


def load_base(ref: str, rank: int = 1) -> Base:
    """Resolve ``--base``: a leaderboard (run folder or ``.parquet``), preset, file or string."""
    if not is_int(rank) or rank < 1:
        raise ScalingError(f"rank {rank!r} must be an integer >= 1")
    path = Path(ref)
    if ref.endswith(".parquet") or path.is_dir():
        return _from_leaderboard(ref, rank)
    preset = find_preset(ref)
    if preset is not None:
        return Base(preset.spec, f"preset {preset.name}", preset.train_size, preset.eval_size,
                    preset.name, preset.name)
    spec = resolve_arch(ref)
    train = evaluate = None
    if path.is_file():
        train, evaluate = _sizes_in_file(path)
        source, label = f"file {ref}", path.stem
    else:
        source, label = "arch string", "base"
    return _with_preset(Base(spec, source, train, evaluate, label=label))


def _with_preset(base: Base) -> Base:
    """Recognise a preset's spec wherever it came from (sizes default to the preset's)."""
    for name, preset in PRESETS.items():
        if preset.spec == base.spec:
            return Base(base.spec, base.source,
                        base.train_size if base.train_size is not None else preset.train_size,
                        base.eval_size if base.eval_size is not None else preset.eval_size,
                        name, base.label)
    return base


def _sizes_in_file(path: Path) -> tuple[int | None, int | None]:
    """Optional ``train_size`` / ``eval_size`` integers at the top of a JSON object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, None  # resolve_arch has already read it successfully or raised
    if not isinstance(obj, dict):
        return None, None
    sizes = []
    for key in ("train_size", "eval_size"):
        value = obj.get(key)
        if value is not None and (not is_int(value) or value < 1):
            raise ScalingError(f"{str(path)!r}: {key} {value!r} must be an integer >= 1")
        sizes.append(value)
    return sizes[0], sizes[1]


def _from_leaderboard(ref: str, rank: int) -> Base:
    """The ``rank``-th best ok row of a run folder's leaderboard or of a ``.parquet`` file."""
    from results.leaderboard import LEADERBOARD_FILE, Leaderboard

    path = Path(ref)
    if path.is_dir():
        if not (path / LEADERBOARD_FILE).exists():
            raise ScalingError(f"base {ref!r} is a folder without a {LEADERBOARD_FILE}")
        board = Leaderboard(path)
    elif not path.is_file():
        raise ScalingError(f"leaderboard {str(path)!r} not found")
    else:
        board = Leaderboard(path.parent)
        board.path = path  # a leaderboard file under any name, not only <run>/leaderboard.parquet
    ok = board.best(len(board))
    if ok.empty:
        raise ScalingError(f"leaderboard {str(path)!r} has no 'ok' rows with a reward")
    if rank > len(ok):
        raise ScalingError(
            f"rank {rank} is out of range: leaderboard {str(path)!r} has {len(ok)} 'ok' rows"
        )
    row = ok.iloc[rank - 1]
    spec = decode(str(row["arch"]))
    source = f"leaderboard {path} rank {rank} (reward {float(row['reward']):.6g})"
    return _with_preset(Base(spec, source, label=f"rank {rank}"))
