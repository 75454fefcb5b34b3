"""What every command's settings share: the error for a bad setting, the limits every job
checks alike, and the check of an output folder that runs before anything heavy is imported."""

from __future__ import annotations

import os
from pathlib import Path

from nas.run.lock import check_free
from search_space.errors import NasError

EXECUTORS: tuple[str, ...] = ("ray", "inline")
MAX_SEED = 2**32 - 1  # numpy's and Optuna's samplers take seeds up to this
MIN_RESOLUTION = 8


class ConfigError(NasError, ValueError):
    """A setting is out of range, or contradicts the run stored in the folder it names."""


def check_out(out: str | os.PathLike[str]) -> None:
    """``--out`` is a folder (or can be made one), this user may write there, and no other
    process holds it. Reads only; cheap enough to run before anything else."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file; give a folder for the run")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--out {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: {existing} is not writable by this user; "
                          "choose another --out")
    if path.is_dir():
        check_free(path)


__all__ = ["EXECUTORS", "MAX_SEED", "MIN_RESOLUTION", "ConfigError", "check_out"]
