"""Settings of one search run, validated once, before any work, and stored with the run.

A run folder holds these settings (see ``nas.search.folder``) next to its leaderboard.
Re-running with the same ``--out`` continues the run only if the settings that define it
(:data:`IDENTITY_FIELDS`, the run's identity) are the same; the budget may grow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nas.run.identity import Identity
from nas.run.proxy_file import check_proxy_fields
from nas.run.settings import EXECUTORS, MAX_SEED, MIN_RESOLUTION, ConfigError
from nas.search.reward import DEFAULT_V, DEFAULT_W, ESTIMATES
from nas.track import check_trackers
from proxy_train.datasets.sources import BUILT_IN_DATA
from proxy_train.errors import RecipeError
from search_space.checks import is_int, is_number

STRATEGIES: tuple[str, ...] = ("random", "rl", "evolution", "tpe", "nsga2")
EARLY_STOP: tuple[str, ...] = ("none", "asha")


def asha_grace_epoch(epochs: int) -> int:
    """The epoch at which ``--early-stop asha`` first compares candidates: a quarter of the
    proxy's epochs, at least one."""
    return max(1, epochs // 4)
OBJECTIVES: tuple[str, ...] = ("train", "surrogate")

# Settings that define a run: a resumed run must agree on all of them.
IDENTITY_FIELDS: tuple[str, ...] = (
    "hardware",
    "space",
    "data",
    "strategy",
    "epochs",
    "proxy_resolution",
    "proxy",
    "seed",
    "reward_w",
    "reward_v",
    "reward_accuracy",
    "reference",
    "timing_batch",
    "timing_resolution",
    "max_params",
    "max_macs",
    "objective",
)
IDENTITY_DEFAULTS: dict[str, Any] = {"objective": "train", "proxy": None,
                                     "reward_accuracy": "top1"}
"""Defining settings added after runs were first stored, with the value such a run had."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """Everything ``nas-search`` was asked to do. Recorded in ``run.json``."""

    budget: int
    hardware: str
    out: str
    space: str = "v2b0"
    data: str = BUILT_IN_DATA
    strategy: str = "random"
    epochs: int | None = None
    proxy_resolution: int | None = None
    proxy: dict[str, Any] | None = None
    """The recipe fields of a proxy file (``--proxy FILE``, ``nas.run.proxy_file``) that
    replace the hardware's default proxy's; ``epochs``, ``proxy_resolution`` and ``seed``
    still apply over them."""
    workers: int = 1
    address: str | None = None
    executor: str = "ray"
    seed: int = 0
    reward_w: float = DEFAULT_W
    reward_v: float = DEFAULT_V
    reward_accuracy: str = ESTIMATES[0]
    """The reward's ``A`` (``nas.search.reward.ESTIMATES``): ``likelihood`` or ``top1``."""
    reference: str | None = None
    timing_batch: int | None = None
    timing_resolution: int | None = None
    timing_steps: int | None = None
    timing_budget: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    retries: int = 1
    early_stop: str = "none"
    objective: str = "train"
    node_timeout: float = 300.0
    """Seconds a trial may wait for a Ray node with the resources it needs, while none is
    alive, before the run stops with an error."""
    progress: bool = True
    trackers: tuple[str, ...] = ()
    """Experiment trackers to log the run to (``nas.track``); not part of its identity."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError(problems[0])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> Identity:
        """What a run stored in ``out`` must share with this command to be continued."""
        return identity_of({name: getattr(self, name) for name in IDENTITY_FIELDS})


def identity_of(settings: dict[str, Any]) -> Identity:
    """A search's identity from its defining settings (:data:`IDENTITY_FIELDS`)."""
    return Identity(settings, wording={"objective": "a {old} run, not a {new} one"})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _problems(c: SearchConfig) -> list[str]:
    """Every rule ``c`` breaks, in the order of the command line (the first is reported)."""
    out: list[str] = []
    if not is_int(c.budget) or c.budget < 1:
        out.append(f"--budget {c.budget!r} must be a whole number >= 1")
    if c.strategy not in STRATEGIES:
        out.append(f"unknown strategy {c.strategy!r}; expected one of {list(STRATEGIES)}")
    if c.executor not in EXECUTORS:
        out.append(f"unknown executor {c.executor!r}; expected one of {list(EXECUTORS)}")
    if c.objective not in OBJECTIVES:
        out.append(f"unknown objective {c.objective!r}; expected one of {list(OBJECTIVES)}")
    if c.reward_accuracy not in ESTIMATES:
        out.append(f"unknown --reward-accuracy {c.reward_accuracy!r}; expected one of "
                   f"{list(ESTIMATES)}")
    if c.early_stop not in EARLY_STOP:
        out.append(f"unknown early stop {c.early_stop!r}; expected one of {list(EARLY_STOP)}")
    if c.early_stop == "asha" and c.executor != "ray":
        out.append("--early-stop asha needs --executor ray")
    if c.early_stop == "asha" and c.objective == "surrogate":
        out.append("--early-stop asha needs --objective train: a surrogate has no epochs")
    if not is_int(c.workers) or c.workers < 1:
        out.append(f"--workers {c.workers!r} must be a whole number >= 1")
    if c.executor == "inline" and c.workers != 1:
        out.append("--executor inline runs one candidate at a time; use --workers 1")
    if not is_int(c.retries) or c.retries < 0:
        out.append(f"--retries {c.retries!r} must be a whole number >= 0")
    if not is_int(c.seed) or not 0 <= c.seed <= MAX_SEED:
        out.append(f"--seed {c.seed!r} must be a whole number from 0 to {MAX_SEED}")
    for name, low in (("epochs", 1), ("proxy_resolution", MIN_RESOLUTION),
                      ("timing_resolution", MIN_RESOLUTION), ("timing_batch", 1),
                      ("max_params", 1), ("max_macs", 1)):
        value = getattr(c, name)
        if value is not None and (not is_int(value) or value < low):
            out.append(f"{_flag(name)} {value!r} must be a whole number >= {low}")
    if c.proxy is not None:
        try:
            check_proxy_fields(c.proxy, "--proxy")
        except RecipeError as err:
            out.append(str(err))
    for name in ("reward_w", "reward_v"):
        if not is_number(getattr(c, name)):
            out.append(f"{_flag(name)} {getattr(c, name)!r} must be a finite number")
    if c.gpus_per_trial is not None and (not is_number(c.gpus_per_trial)
                                         or c.gpus_per_trial < 1 or c.gpus_per_trial % 1):
        out.append(f"--gpus-per-trial {c.gpus_per_trial} must be a whole number >= 1: "
                   "step timing never shares a device with another trial")
    if c.timing_steps is not None and (not is_int(c.timing_steps) or c.timing_steps < 3):
        out.append(f"--timing-steps {c.timing_steps!r} must be a whole number >= 3")
    for name in ("timing_budget", "cpus_per_trial", "node_timeout"):
        value = getattr(c, name)
        if value is not None and (not is_number(value) or value <= 0):
            out.append(f"{_flag(name)} {value!r} must be a number > 0")
    return out + check_trackers(c.trackers)
