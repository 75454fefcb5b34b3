"""The one model reference every command takes (``nas-arch SPEC``, ``nas-scale --base``,
``nas-train --arch``): what a user typed, as a :class:`ModelRef`.

Accepted, recognised in this order:

1. a trained model file: a ``model.pt`` as ``nas-train`` writes it, or a folder holding one
   (its architecture, eval size and, for exports, weights);
2. a search: its run folder or a leaderboard ``.parquet`` file; ``rank`` picks the K-th best
   ``ok`` row by reward (default the best);
3. a ``nas-scale`` output: ``target`` picks its model (a name, or ``base``), needed when it
   holds several;
4. what ``search_space.resolve`` reads from the spec alone: a preset name, a canonical
   string, or a JSON file holding a spec (a spec, a search's ``best.json``, a result row),
   optionally with ``train_size`` / ``eval_size``; a ``best.json`` without ``eval_size`` is
   meant for the size its search ran at (``provenance.timing_resolution``, the data's).

Whatever its origin, a spec that is a preset's gets that preset's train and eval sizes,
``num_classes`` replaces the class count (a model file's must match), and a spec beyond the
sizes any command takes is refused (``search_space.limits``). Errors are
``SpecError``, one line each. Torch (model files), pandas (leaderboards) and the scaling
report reader are imported only when such a reference is given.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from search_space.checks import is_int
from search_space.codec import decode
from search_space.errors import SpecError
from search_space.limits import check_size
from search_space.messages import shown
from search_space.resolve import find_preset, preset_of, resolve_arch
from search_space.spec import ArchSpec

if TYPE_CHECKING:
    from proxy_train.model_file import TrainedModel
    from proxy_train.progressive import ProgressiveRecipe

MODEL_FILE = "model.pt"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference: the architecture and what its origin says about it."""

    spec: ArchSpec
    name: str
    """Short name for tables and records: a preset's, a file's stem, ``rank 2``, ``L``, ..."""
    source: str
    """Where it came from, as the records say it (``preset efficientnetv2-s``, ...)."""
    preset: str | None = None
    """The preset whose spec this is, if any (also found for a file or a string)."""
    train_size: int | None = None
    eval_size: int | None = None
    progressive: ProgressiveRecipe | None = None
    """The progressive-learning recipe a ``nas-scale`` output gives the model."""
    trained: TrainedModel | None = None
    """A model file's contents (weights included)."""


def resolve_model(ref: str, *, rank: int = 1, target: str | None = None,
                  num_classes: int | None = None, target_option: str | None = "--target"
                  ) -> ModelRef:
    """The model ``ref`` names (see the module docstring); ``rank`` applies to a search only,
    ``target`` to a ``nas-scale`` output only. ``target_option``: the command's option that
    picks a model of a ``nas-scale`` output, if it has one (the errors name it)."""
    if not is_int(rank) or rank < 1:
        raise SpecError(f"--rank {rank!r} must be a whole number >= 1")
    path = Path(ref)
    if is_model_file(path):
        kind = "model file"
    elif ref.endswith(".parquet") or _is_dir(path):
        kind = "leaderboard"
    elif _is_scale_report(path):
        kind = "nas-scale output"
    else:
        kind = "spec"
    if rank != 1 and kind != "leaderboard":
        raise SpecError(f"--rank {rank} picks a row of a search's leaderboard; {shown(ref)} is "
                        "not one")
    if target is not None and kind != "nas-scale output":
        raise SpecError(f"--target {shown(target)} picks a model of a nas-scale output; "
                        f"{shown(ref)} is not one")
    if kind == "model file":
        model = _from_model_file(path)
    elif kind == "leaderboard":
        model = _from_leaderboard(path, rank)
    elif kind == "nas-scale output":
        model = _from_scale_report(path, target, target_option)
    else:
        model = _from_spec(ref)
    model = _with_classes(model, num_classes)
    check_size(model.spec)  # whatever its origin: absurd sizes stop here, before any work
    return model


def is_model_file(path: Path) -> bool:
    """Whether ``path`` is a trained model file (``.pt``, ``.pth`` or a zip archive, as
    ``torch.save`` writes) or a folder holding ``model.pt``."""
    try:
        if path.is_dir():
            return (path / MODEL_FILE).is_file()
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            return path.suffix in (".pt", ".pth") or handle.read(4) == _ZIP_MAGIC
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte
        return False


def _with_classes(model: ModelRef, num_classes: int | None) -> ModelRef:
    if num_classes is None:
        return model
    if model.trained is not None:
        if num_classes != model.trained.num_classes:
            raise SpecError(f"--num-classes {num_classes} does not match the model file's "
                            f"{model.trained.num_classes} classes")
        return model
    if num_classes < 1:
        raise SpecError(f"--num-classes {num_classes} must be >= 1")
    return dataclasses.replace(model, spec=dataclasses.replace(model.spec,
                                                               num_classes=num_classes))


def _with_preset(model: ModelRef) -> ModelRef:
    """Recognise a preset's spec wherever it came from (sizes default to the preset's)."""
    preset = preset_of(model.spec)
    if preset is None:
        return model
    return dataclasses.replace(
        model, preset=preset.name,
        train_size=model.train_size if model.train_size is not None else preset.train_size,
        eval_size=model.eval_size if model.eval_size is not None else preset.eval_size)


def _from_spec(ref: str) -> ModelRef:
    preset = find_preset(ref)
    if preset is not None:
        return ModelRef(preset.spec, preset.name, f"preset {preset.name}", preset.name,
                        preset.train_size, preset.eval_size)
    spec = resolve_arch(ref)
    path = Path(ref)
    if _is_file(path):
        train, evaluate = _sizes_in_file(path)
        return _with_preset(ModelRef(spec, path.stem, f"file {ref}", train_size=train,
                                     eval_size=evaluate))
    return _with_preset(ModelRef(spec, "base", "arch string"))


def _sizes_in_file(path: Path) -> tuple[int | None, int | None]:
    """Optional ``train_size`` / ``eval_size`` integers at the top of a JSON object; a
    search's ``best.json`` lacking ``eval_size`` gives the size its search ran at."""
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
            raise SpecError(f"{str(path)!r}: {key} {value!r} must be an integer >= 1")
        sizes.append(value)
    return sizes[0], sizes[1] if sizes[1] is not None else _run_size(obj)


def _run_size(obj: dict[str, object]) -> int | None:
    """A ``best.json``'s ``provenance.timing_resolution`` (None if it has none)."""
    provenance = obj.get("provenance")
    size = provenance.get("timing_resolution") if isinstance(provenance, dict) else None
    return size if is_int(size) and isinstance(size, int) and size > 0 else None


def _from_model_file(path: Path) -> ModelRef:
    from proxy_train.model_file import load_model  # torch: only for a model file

    trained = load_model(path)
    name = path.name if path.is_dir() else path.stem
    return _with_preset(ModelRef(trained.spec, name, f"model file {path}",
                                 eval_size=trained.eval_size, trained=trained))


def _from_leaderboard(path: Path, rank: int) -> ModelRef:
    """The ``rank``-th best ok row of a run folder's leaderboard or of a ``.parquet`` file."""
    from results.leaderboard import LEADERBOARD_FILE, Leaderboard  # pandas: only for a search

    if _is_dir(path):
        if not (path / LEADERBOARD_FILE).exists():
            raise SpecError(f"{str(path)!r} is a folder without a {LEADERBOARD_FILE} (a "
                            f"search's) or a {MODEL_FILE} (a training's)")
        board = Leaderboard(path)
    elif not _is_file(path):
        raise SpecError(f"leaderboard {str(path)!r} not found")
    else:
        board = Leaderboard(path.parent)
        board.path = path  # a leaderboard file under any name, not only <run>/leaderboard.parquet
    ok = board.best(len(board))
    if ok.empty:
        raise SpecError(f"leaderboard {str(path)!r} has no 'ok' rows with a reward")
    if rank > len(ok):
        raise SpecError(f"rank {rank} is out of range: leaderboard {str(path)!r} has {len(ok)} "
                        "'ok' rows")
    row = ok.iloc[rank - 1]
    source = f"leaderboard {path} rank {rank} (reward {float(row['reward']):.6g})"
    return _with_preset(ModelRef(decode(str(row["arch"])), f"rank {rank}", source))


def _is_scale_report(path: Path) -> bool:
    if path.suffix.lower() != ".json" or not _is_file(path):
        return False
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(obj, dict) and "targets" in obj and "base" in obj


def _from_scale_report(path: Path, target: str | None, option: str | None) -> ModelRef:
    from scaling.output import load_scaled

    report = load_scaled(path)
    models = {"base": report.base, **{t.name: t for t in report.targets}}
    if target is None:
        if len(report.targets) != 1:
            names = [t.name for t in report.targets]
            how = (f"choose one with {option} (or {option} base)" if option else
                   "give one of them (its 'arch' string)")
            raise SpecError(f"{path} holds several models {names}: {how}")
        chosen = report.targets[0]
    else:
        by_name = {name.lower(): record for name, record in models.items()}
        if target.lower() not in by_name:
            raise SpecError(f"--target {target!r} is not in {path}; its models: "
                            f"{list(models)}")
        chosen = by_name[target.lower()]
    return ModelRef(chosen.spec, chosen.name, f"{path} ({chosen.name})",
                    train_size=chosen.train_size, eval_size=chosen.eval_size,
                    progressive=chosen.recipe)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


__all__ = ["MODEL_FILE", "ModelRef", "is_model_file", "resolve_model"]
