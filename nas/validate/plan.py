"""What a validation runs: the candidates it picks from a search and the jobs it trains.

**Candidates.** The ``ok`` rows of the leaderboard, ranked by reward (ties: earlier trial
first). The top 3 are always validated (the search's choice is what matters most); the other
``K - 3`` are spread over the rest of the range: the remaining rows are cut, in rank order,
into ``K - 3`` strata of (nearly) equal size and one row is drawn from each with a generator
seeded by ``--seed``, so the same command picks the same candidates.

**Jobs.** Per candidate: the proxy, ``--seeds`` more times with seeds ``seed, seed + 1, ...``
(the search's own run counts as one more when the proxy is the search's recipe: it is
copied, not run again), and the long training, ``--long-seeds`` times. The long training
is planned by ``nas-train``'s code (``nas.train.plan.make_plan``) for ``--epochs`` (default
4 x the search's proxy epochs) and evaluated at its eval size on the test split, or on the
largest held-out split the data has. Its recipe: ``proxy`` (default, :func:`proxy_made_long`:
the search's proxy recipe on whole epochs at the data's full resolution), or ``nas-train``'s
``progressive`` or ``fixed`` recipe, or a recipe file. ``nas-train``'s progressive recipe is
made for hundreds of epochs: on the built-in data set, 12 epochs of it left a candidate that
the proxy trains to 39% at 22% (chance: 10%), its loss hardly below ln(10). A job's key hashes
what defines its result: kind, architecture, seed, recipe and data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from nas.run.settings import ConfigError
from nas.train.config import TrainConfig
from nas.train.plan import RecipeFile, make_plan, spec_model
from nas.validate.config import LONG_EPOCHS_FACTOR, ValidateConfig
from proxy_train.recipe import Recipe
from results.signals import SIGNAL_NAMES
from search_space.codec import decode
from search_space.messages import counted
from search_space.spec import ArchSpec

TOP_ALWAYS = 3
PROXY, LONG = "proxy", "long"
PROXY_MADE_LONG = "proxy"
"""``--recipe proxy``: the default long training (:func:`proxy_made_long`)."""
PROXY_TRAINING: tuple[str, ...] = ("optimizer", "lr", "weight_decay", "label_smoothing",
                                   "randaug_layers", "crop_area", "drop_path", "zero_init")
"""The proxy's fields the ``proxy`` long recipe keeps."""
_NOT_IDENTITY = ("cpu_threads",)
"""Recipe fields that do not change a job's result (left out of its key)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A leaderboard row picked for validation, with what the jobs need of it."""

    arch: str
    arch_hash: str
    search_rank: int
    number: int
    seed: int
    accuracy: float
    reward: float
    step_time_ms: float
    params: int
    macs: int | None
    curve: tuple[float, ...] = ()
    """The search's proxy accuracy after each epoch."""
    signals: tuple[tuple[str, float | None], ...] = ()
    """The search's proxy run's ranking signals (``results.signals``), as pairs."""
    history: str = ""
    """Every epoch of the search's proxy run as the leaderboard keeps it (JSON; empty for
    rows from before it was kept)."""
    started_at: Any = None
    finished_at: Any = None
    wall_time_s: float | None = None

    @property
    def spec(self) -> ArchSpec:
        return decode(self.arch)


@dataclass(frozen=True, slots=True)
class ValidationJob:
    """One training of one candidate: its kind, the how-manieth of its kind, seed and recipe."""

    key: str
    kind: str
    replica: int
    seed: int
    candidate: Candidate
    recipe: Recipe


@dataclass(frozen=True, slots=True)
class JobPlan:
    """Every job of a validation, the search's own proxy runs it copies, and what was decided."""

    candidates: tuple[Candidate, ...]
    jobs: tuple[ValidationJob, ...]
    copied: tuple[ValidationJob, ...]
    """The search's own proxy runs (``source='search'``): counted, never run."""
    proxy: Recipe
    long_epochs: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def ranked_rows(board: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows with a reward, best first (ties: earlier trial first)."""
    ok = board[(board["status"] == "ok") & board["reward"].notna()]
    return ok.sort_values(["reward", "trial_id"], ascending=[False, True],
                          kind="stable").reset_index(drop=True)


def select_candidates(board: pd.DataFrame, k: int, seed: int, where: str) -> list[Candidate]:
    """The ``k`` candidates of the module docstring, best first. Raises ``ConfigError`` when
    the leaderboard has fewer than ``k`` ``ok`` rows."""
    ranked = ranked_rows(board)
    if len(ranked) < k:
        raise ConfigError(f"{where} has {counted(len(ranked), 'ok candidate')}; --k {k} needs at least "
                          f"{k}: lower --k or let the search run longer")
    top = min(TOP_ALWAYS, k)
    picked = list(range(top))
    rest, strata = len(ranked) - top, k - top
    rng = np.random.default_rng(seed)
    for i in range(strata):  # rest >= strata: every stratum holds at least one row
        low, high = top + round(i * rest / strata), top + round((i + 1) * rest / strata)
        picked.append(int(rng.integers(low, high)))
    return [_candidate(ranked.iloc[i].to_dict(), i + 1) for i in sorted(picked)]


def _candidate(row: dict[str, Any], rank: int) -> Candidate:
    training = json.loads(row.get("provenance_json") or "{}").get("training", {})
    curve = tuple(float(a) for a in training.get("accuracy_curve", ()))
    macs: Any = row.get("macs")
    signals = tuple((name, _number(row.get(name))) for name in SIGNAL_NAMES)
    return Candidate(
        arch=str(row["arch"]), arch_hash=str(row["arch_hash"]), search_rank=rank,
        number=int(row["number"]), seed=int(row["seed"]), accuracy=float(row["accuracy"]),
        reward=float(row["reward"]), step_time_ms=float(row["step_time_ms"]),
        params=int(row["params"]), macs=None if pd.isna(macs) else int(macs), curve=curve,
        signals=signals,
        history=json.dumps(training["history"]) if training.get("history") else "",
        started_at=row.get("started_at"), finished_at=row.get("finished_at"),
        wall_time_s=row.get("wall_time_s"))


def _number(value: Any) -> float | None:
    """A leaderboard value as a float (None for a missing one: None or NaN)."""
    return None if value is None or pd.isna(value) else float(value)


def job_key(kind: str, arch: str, seed: int, recipe: Recipe, data: str, data_seed: int) -> str:
    """The identity of a job's result, as 16 hex digits."""
    recipe_dict = {k: v for k, v in recipe.to_dict().items()
                   if k not in _NOT_IDENTITY and k != "seed"}
    text = json.dumps({"kind": kind, "arch": arch, "seed": seed, "recipe": recipe_dict,
                       "data": data, "data_seed": data_seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def same_recipe(a: Recipe, b: Recipe) -> bool:
    """Whether two recipes train alike (threads and seed aside)."""
    return job_key(PROXY, "", 0, a, "", 0) == job_key(PROXY, "", 0, b, "", 0)


def proxy_made_long(proxy: Recipe, resolution: int) -> RecipeFile:
    """The ``proxy`` long recipe: ``nas-train``'s one-stage training at the data's full
    ``resolution``, on whole epochs, with the proxy's own optimizer, learning rate and
    regularization (so the long training differs from the proxy only in what the proxy cuts:
    epochs, batches per epoch and image size), and ``nas-train``'s warm-up, cosine schedule,
    batch size, weight EMA and evaluation size."""
    training = {name: getattr(proxy, name) for name in PROXY_TRAINING}
    progressive = {"image_size": [resolution, resolution],
                   "randaug": [proxy.randaug_magnitude] * 2,
                   "mixup": [proxy.mixup_alpha] * 2, "dropout": [proxy.dropout] * 2}
    return RecipeFile(progressive, training)


def long_epochs(config: ValidateConfig, search_recipe: Recipe) -> int:
    """Epochs of the long training: ``--epochs``, or 4 x the search's proxy's."""
    return config.epochs or LONG_EPOCHS_FACTOR * search_recipe.epochs


def make_jobs(config: ValidateConfig, candidates: list[Candidate], search_recipe: Recipe,
              proxy: Recipe, data_source: str, data_seed: int, data_resolution: int,
              *, cuda: bool, threads: int | None, long_file: RecipeFile | None) -> JobPlan:
    """Every job of the validation (see the module docstring); ``proxy`` is the recipe
    validated (the search's own, or another). The long training derives from the search's
    recipe, never from ``proxy``: every proxy validated on one search meets the same ruler."""
    recipe = replace(proxy, cpu_threads=threads)
    copy_search = same_recipe(recipe, search_recipe)
    epochs = long_epochs(config, search_recipe)
    jobs: list[ValidationJob] = []
    copied: list[ValidationJob] = []
    notes: list[str] = []
    for c in candidates:
        first = 0
        if copy_search:
            copied.append(ValidationJob(
                job_key(PROXY, c.arch, c.seed, recipe, data_source, data_seed),
                PROXY, 0, c.seed, c, replace(recipe, seed=c.seed)))
            first = 1
        # Seeds seed, seed + 1, ..., passing over the search's own (that run is copied).
        seeds = [s for s in range(config.seed, config.seed + config.seeds + 1)
                 if not (copy_search and s == c.seed)][:config.seeds]
        for i, seed in enumerate(seeds):
            jobs.append(ValidationJob(
                job_key(PROXY, c.arch, seed, recipe, data_source, data_seed),
                PROXY, first + i, seed, c, replace(recipe, seed=seed)))
        for i in range(config.long_seeds):
            seed = config.seed + i
            as_proxy = config.recipe == PROXY_MADE_LONG
            train = TrainConfig(arch=c.arch, out=str(config.out_dir), data=data_source,
                                recipe="fixed" if as_proxy else config.recipe, epochs=epochs,
                                seed=seed, hardware=config.hardware or "auto", progress=False)
            plan = make_plan(train, spec_model(decode(c.arch)), data_resolution, cuda=cuda,
                             recipe_file=proxy_made_long(search_recipe, data_resolution) if as_proxy
                             else long_file)
            long = replace(plan.recipe, cpu_threads=threads)
            if not notes:
                notes = [line for line in plan.notes if not line.startswith("learning rate")]
            jobs.append(ValidationJob(
                job_key(LONG, c.arch, seed, long, data_source, data_seed), LONG, i, seed, c, long))
    # The long trainings first: with several workers the longest jobs start first and the
    # short proxy runs fill the gaps at the end.
    jobs.sort(key=lambda job: job.kind != LONG)
    return JobPlan(tuple(candidates), tuple(jobs), tuple(copied), recipe, epochs, tuple(notes))


__all__ = ["Candidate", "ValidationJob", "JobPlan", "LONG", "PROXY", "TOP_ALWAYS",
           "job_key", "long_epochs", "make_jobs", "ranked_rows", "same_recipe", "select_candidates"]
