"""Every search as Optuna studies in ``<run>/optuna.journal``, for ``optuna-dashboard``.

Whatever the strategy (random, RL, evolution, TPE, NSGA-II), every finished candidate is added
to two studies of one Optuna ``JournalStorage`` file in the run folder:

* ``reward``: one objective, the reward (maximize). History, parameter importances and
  parallel coordinates of what the search ranks by.
* ``objectives``: accuracy (maximize), step time in ms (minimize), params (minimize). The
  Pareto front of the three, as the ``pareto`` column of the leaderboard has it.

A trial's parameters are the candidate's decisions (``spaces.to_choices``: only those its spec
uses, with the distributions the Optuna strategies sample from); its state is ``COMPLETE``
for an ``ok`` row, ``PRUNED`` for a ``stopped`` one (in ``reward`` with its partial reward as
the intermediate value at its last epoch) and ``FAIL`` for a ``failed`` one; its start and end
are the row's; its user attributes are the row's identity and figures (arch, hash, number,
seed, MACs, timing spread, failure reason, ...). Optuna trial ``n`` of each study is the
candidate with ``trial_id`` ``n``.

The leaderboard stays the source of truth: on every start the journal is brought up to date
from it (rebuilt when missing; a row already there, by candidate number, is not added again),
a journal Optuna cannot read is moved aside to ``optuna.journal.unreadable`` and rebuilt, and
the journal of another run (one that started over in the folder) is moved aside to
``optuna.journal.<its run id>``.
Writes append to the file under Optuna's own lock, so the dashboard can read it live:
``optuna-dashboard runs/x/optuna.journal``.

:func:`record_validation` adds validated models (``nas-validate``) to a third study,
``validation``, in the same file, so they are seen beside the search that found them.

Next to ``nas/strategies/optuna_strategy.py`` this is the second module that imports optuna:
that one drives Optuna's samplers for two strategies, this one writes its storage for every
run; the distributions come from there, so both describe a decision the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nas.search.folder import RunFolder
from nas.strategies.optuna_strategy import distributions
from search_space.codec import decode, spec_hash
from search_space.errors import SpaceError
from search_space.sampling import to_choices
from search_space.space import SearchSpace
from search_space.space_files import space_from_dict

JOURNAL_FILE = "optuna.journal"
REWARD_STUDY = "reward"
OBJECTIVES_STUDY = "objectives"
VALIDATION_STUDY = "validation"
OBJECTIVES = (("accuracy", "maximize"), ("step_time_ms", "minimize"), ("params", "minimize"))
ATTRS = ("arch", "arch_hash", "number", "trial_id", "status", "failure_reason", "seed",
         "reward", "accuracy", "step_time_ms", "step_time_spread", "step_time_steps", "params",
         "macs", "epochs", "proxy_resolution", "wall_time_s")
"""Leaderboard columns copied into every trial's user attributes (when not null)."""


def _storage(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path)))


def _study(storage: JournalStorage, name: str, objectives: Iterable[tuple[str, str]],
           attrs: Mapping[str, Any]) -> optuna.Study:
    names, directions = zip(*objectives)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per study or trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name,
                                    directions=list(directions), load_if_exists=True)
        if study.metric_names is None:
            study.set_metric_names(list(names))
            for key, value in attrs.items():
                study.set_user_attr(key, value)
    return study


class StudyJournal:
    """The ``reward`` and ``objectives`` studies of one run (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str], space: SearchSpace,
                 attrs: Mapping[str, Any] | None = None) -> None:
        self.path = Path(run_dir) / JOURNAL_FILE
        self.space = space
        _drop_partial_line(self.path)
        storage = _storage(self.path)
        study_attrs = dict(attrs or {})
        self.reward = _study(storage, REWARD_STUDY, [("reward", "maximize")], study_attrs)
        self.objectives = _study(storage, OBJECTIVES_STUDY, OBJECTIVES, study_attrs)
        self._recorded = {name: {t.user_attrs.get("number")
                                 for t in study.get_trials(deepcopy=False)}
                          for name, study in self._studies()}

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], space: SearchSpace,
             rows: Iterable[Mapping[str, Any]], attrs: Mapping[str, Any] | None = None
             ) -> StudyJournal:
        """The run's journal brought up to date with ``rows`` (the leaderboard); a journal
        that cannot be read, or that holds another run's trials (``attrs["run_id"]``), is
        moved aside and rebuilt."""
        rows = list(rows)
        path = Path(run_dir) / JOURNAL_FILE
        try:
            journal = cls(run_dir, space, attrs)
            if journal._of_another_run(attrs):
                journal = cls(run_dir, space, attrs)
            journal.sync(rows)
        except (ValueError, KeyError, TypeError) as exc:  # a damaged or foreign file
            aside = path.with_name(JOURNAL_FILE + ".unreadable")
            os.replace(path, aside)
            print(f"warning: {path} could not be read ({type(exc).__name__}: {exc}); moved to "
                  f"{aside.name} and rebuilt from the leaderboard", file=sys.stderr)
            journal = cls(run_dir, space, attrs)
            journal.sync(rows)
        return journal

    def _of_another_run(self, attrs: Mapping[str, Any] | None) -> bool:
        """Whether the journal was started by another run than ``attrs["run_id"]`` (a run
        that starts over in its folder); if so it is moved aside (removed when it holds no
        trial) and the caller opens a new one."""
        ours, theirs = (attrs or {}).get("run_id"), self.reward.user_attrs.get("run_id")
        if ours is None or theirs is None or ours == theirs:
            return False
        if any(study.get_trials(deepcopy=False) for _, study in self._studies()):
            aside = self.path.with_name(f"{JOURNAL_FILE}.{theirs}")
            os.replace(self.path, aside)
            print(f"warning: {self.path} held the trials of run {theirs}; moved to "
                  f"{aside.name}", file=sys.stderr)
        else:
            self.path.unlink()
        return True

    def _studies(self) -> list[tuple[str, optuna.Study]]:
        return [(REWARD_STUDY, self.reward), (OBJECTIVES_STUDY, self.objectives)]

    def sync(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add every row not yet in the journal, in ``trial_id`` order; returns how many."""
        added = 0
        for row in sorted(rows, key=lambda r: int(r["trial_id"])):
            added += self.record(row)
        return added

    def record(self, row: Mapping[str, Any]) -> bool:
        """Add one leaderboard row to both studies (unless there already); returns whether
        it was added to either."""
        number = int(row["number"])
        if all(number in self._recorded[name] for name, _ in self._studies()):
            return False  # a continued run's rows: there already, nothing to decode
        params, dists = decision_params(self.space, str(row["arch"]))
        attrs = {k: _plain(row.get(k)) for k in ATTRS if _plain(row.get(k)) is not None}
        added = False
        for name, study in self._studies():
            if number in self._recorded[name]:
                continue
            state, values, steps = _outcome(row, name)
            trial = optuna.trial.create_trial(state=state, values=values, params=params,
                                              distributions=dists, user_attrs=attrs,
                                              intermediate_values=steps)
            _set_times(trial, row.get("started_at"), row.get("finished_at"))
            study.add_trial(trial)
            self._recorded[name].add(number)
            added = True
        return added


def decision_params(space: SearchSpace, arch: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decisions ``arch`` uses in ``space`` and their Optuna distributions; none for an
    architecture outside the space (e.g. a hand-given one)."""
    try:
        params = to_choices(space, decode(arch))
    except SpaceError:
        return {}, {}
    every = distributions(space)
    return params, {name: every[name] for name in params}


def _outcome(row: Mapping[str, Any], study: str
             ) -> tuple[TrialState, list[float] | None, dict[int, float] | None]:
    status = row.get("status")
    reward = _finite(row.get("reward"))
    if study == REWARD_STUDY:
        if status == "ok" and reward is not None:
            return TrialState.COMPLETE, [reward], None
        if status == "stopped":
            epochs = row.get("epochs")
            steps = {int(epochs): reward} if reward is not None and epochs is not None else None
            return TrialState.PRUNED, None, steps
        return TrialState.FAIL, None, None
    values = [_finite(row.get(name)) for name, _ in OBJECTIVES]
    if status == "ok" and all(v is not None for v in values):
        return TrialState.COMPLETE, [float(v) for v in values if v is not None], None
    return (TrialState.PRUNED if status == "stopped" else TrialState.FAIL), None, None


def record_validation(run_dir: str | os.PathLike[str], *, arch: str, accuracy: float,
                      key: str, attrs: Mapping[str, Any] | None = None,
                      started_at: dt.datetime | None = None,
                      finished_at: dt.datetime | None = None,
                      study: str = VALIDATION_STUDY) -> bool:
    """Add one validated model to the ``validation`` study (or ``study``, e.g. one per kind
    of validation) of the run's journal.

    The value is ``accuracy`` (maximize); the parameters are the architecture's decisions in
    the run's space (read from ``run.json``), so the dashboard's parallel coordinates put it
    beside the search's candidates; ``attrs`` (e.g. top-5, eval size, epochs, the model
    file) become user attributes with ``arch``, ``arch_hash`` and ``key``. ``key`` names the
    result (e.g. ``"<hash>@<eval size>"``): a key already recorded is not added again.
    Returns whether it was added. Call it holding the run folder's ``RunLock``."""
    folder = Path(run_dir)
    run = RunFolder(folder).read()
    if run is None or run.space is None:
        raise SpaceError(f"{folder} holds no search run (no run.json with a space)")
    path = folder / JOURNAL_FILE
    _drop_partial_line(path)
    target = _study(_storage(path), study, [("accuracy", "maximize")], {})
    if any(t.user_attrs.get("key") == key for t in target.get_trials(deepcopy=False)):
        return False
    params, dists = decision_params(space_from_dict(run.space), arch)
    spec = decode(arch)
    trial = optuna.trial.create_trial(
        value=float(accuracy), params=params, distributions=dists,
        user_attrs={**{k: _plain(v) for k, v in (attrs or {}).items()},
                    "arch": arch, "arch_hash": spec_hash(spec), "key": key})
    _set_times(trial, started_at, finished_at)
    target.add_trial(trial)
    return True


def _set_times(trial: optuna.trial.FrozenTrial, start: Any, end: Any) -> None:
    if start is not None:
        trial.datetime_start = _datetime(start)
    if end is not None:
        trial.datetime_complete = _datetime(end)


def _datetime(value: Any) -> dt.datetime:
    out: dt.datetime = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return out


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _plain(value: Any) -> Any:
    """A JSON scalar for a user attribute: numpy and pandas values unwrapped, NaN as None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _drop_partial_line(path: Path) -> None:
    """Cut a last line left unfinished by a killed writer: Optuna would read past it now,
    but fail once something is appended after it. Only the run's (locked) driver calls this."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


__all__ = ["JOURNAL_FILE", "OBJECTIVES", "OBJECTIVES_STUDY", "REWARD_STUDY",
           "VALIDATION_STUDY", "StudyJournal", "decision_params", "record_validation"]
