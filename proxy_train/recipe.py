"""The proxy-training recipe: one frozen dataclass, recorded with every result.

Defaults follow the paper's training settings where they make sense for a ~10-epoch proxy run
(RMSProp with decay 0.9 / momentum 0.9 / eps 1e-3, weight decay 1e-5, label smoothing 0.1,
RandAugment with 2 layers, linear warmup) and differ where they do not (see ``Recipe``).
``Recipe.cpu_quick()`` is the preset for a 2-core CPU demo.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from proxy_train.errors import RecipeError
from search_space.checks import is_int, is_number

OPTIMIZERS: tuple[str, ...] = ("rmsprop", "sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "exponential", "constant")
DEFAULT_LR: dict[str, float] = {"rmsprop": 0.016, "sgd": 0.4, "adamw": 0.004}
"""Peak learning rate per 256 images when ``Recipe.lr`` is None (scaled by batch / 256)."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a training run: its length, image size and regularization.

    A proxy run is one stage; progressive learning (the paper's section 4) is several, with
    the image size and the regularization growing from stage to stage. ``resolution`` None
    means the recipe's default for the data (see ``Recipe.train_resolution``).
    """

    epochs: int
    resolution: int | None
    randaug_magnitude: float
    mixup_alpha: float
    dropout: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a candidate is proxy-trained. Derive variants with ``dataclasses.replace``.

    ``lr`` is the peak learning rate per 256 images; the optimizer uses
    ``lr * batch_size / 256`` (None: the optimizer's default in ``DEFAULT_LR``; RMSProp's
    0.016 is the paper's ``lr_base``). ``resolution`` None trains at
    ``max(32, data.resolution // 2)``: proxies train at reduced resolution, as in the paper.
    ``schedule``: ``cosine`` to 0 after the warmup, ``exponential`` (x ``decay_rate`` every
    ``decay_epochs``, the paper's 0.97 / 2.4) or ``constant``. ``crop_area``: the smallest crop
    area fraction of the random resized crop (the official 0.05-0.08 is very aggressive for
    short runs on small images). ``dropout``/``drop_path`` are lower than the final-training 0.2
    because a 10-epoch proxy underfits rather than overfits (a judgement, not yet swept).
    ``max_train_batches_per_epoch`` caps an epoch (smoke runs).
    ``stages``: empty for a one-stage run built from ``epochs``, ``resolution``,
    ``randaug_magnitude``, ``mixup_alpha`` and ``dropout``; otherwise the stages of a
    progressive run, which replace those five fields (``epochs`` must be their sum; see
    ``plan``).
    ``ema_decay``: keep an exponential moving average of the weights with this decay (TF's
    warm-up, see ``proxy_train.ema``) and evaluate with it; None: evaluate the trained weights.
    ``eval_resolution``: the image size minival (and test) are evaluated at; None: the last
    stage's training size. Final training evaluates larger than it trains (the paper's
    FixRes-style setting: random crops make objects look bigger than whole resized images).
    ``zero_init``: start the classifier and the last BN scale of every residual branch at
    zero, so a deep candidate starts as a shallow one with loss ln(K); without it the
    official init (a +-1/sqrt(K) readout of 1280 features) starts near loss 5 and
    EfficientNetV2-B0 learned nothing in 3-4 proxy epochs. ``cpu_threads``: torch threads
    while training on the CPU (None: leave torch's setting).
    """

    epochs: int = 10
    resolution: int | None = None
    batch_size: int = 128
    optimizer: str = "rmsprop"
    lr: float | None = None
    weight_decay: float = 1e-5
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    label_smoothing: float = 0.1
    randaug_magnitude: float = 5.0
    randaug_layers: int = 2
    mixup_alpha: float = 0.0
    crop_area: float = 0.25
    dropout: float = 0.1
    drop_path: float = 0.1
    eval_batch_size: int = 256
    max_train_batches_per_epoch: int | None = None
    ema_decay: float | None = None
    eval_resolution: int | None = None
    zero_init: bool = True
    cpu_threads: int | None = None
    seed: int = 0
    stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise RecipeError(problem)

    @classmethod
    def cpu_quick(cls) -> Recipe:
        """The CPU proxy, chosen by the proxy-fidelity study (``bench/proxy_fidelity.py``,
        ``bench/results/proxy_fidelity_cpu.md``): 4 whole epochs at 32 px, batch 32, crops of
        the whole image (``crop_area`` 1.0: random crops down to a quarter of the image cut
        the object out of many images of a short run and halved what it learned), an EMA of
        the weights (0.99) evaluated, AdamW (it learned fastest; TF-RMSProp's
        unit-initialised second moment makes its first ~20 steps tiny), no
        RandAugment/dropout/drop-path (a short run underfits) and one torch thread (see the
        README for the measurements). Against a long training whose seeds agree (τ 0.79) it
        ranked 12 candidates at τ 0.58, where the 72 capped steps used before ranked at
        0.05; it costs about 4.7x those steps on that study's 2,700 images (2.3x on the
        built-in set's default 1,350)."""
        return cls(epochs=4, resolution=32, batch_size=32, optimizer="adamw", lr=0.016,
                   warmup_epochs=0.5, randaug_magnitude=0.0, dropout=0.0, drop_path=0.0,
                   crop_area=1.0, ema_decay=0.99, eval_batch_size=256, cpu_threads=1)

    def peak_lr(self) -> float:
        """The optimizer's peak learning rate: per-256 ``lr`` scaled by ``batch_size / 256``."""
        base = DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        return base * self.batch_size / 256

    def train_resolution(self, data_resolution: int) -> int:
        return self.resolution if self.resolution is not None else max(32, data_resolution // 2)

    def eval_size(self, data_resolution: int) -> int:
        """The image size evaluation runs at (``eval_resolution`` or the last stage's)."""
        if self.eval_resolution is not None:
            return self.eval_resolution
        last = self.plan(data_resolution)[-1].resolution
        assert last is not None, "plan resolves every stage's resolution"
        return last

    def plan(self, data_resolution: int) -> tuple[Stage, ...]:
        """The stages this recipe trains, each with its resolution resolved for the data."""
        stages = self.stages or (Stage(self.epochs, self.resolution, self.randaug_magnitude,
                                       self.mixup_alpha, self.dropout),)
        return tuple(Stage(s.epochs, s.resolution if s.resolution is not None
                           else self.train_resolution(data_resolution),
                           s.randaug_magnitude, s.mixup_alpha, s.dropout) for s in stages)

    def to_dict(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, object]) -> Recipe:
        """Inverse of ``to_dict``; unknown keys raise ``RecipeError`` naming them."""
        if not isinstance(obj, Mapping):
            raise RecipeError(f"recipe must be a mapping, got {type(obj).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise RecipeError(f"unknown recipe {'field' if len(unknown) == 1 else 'fields'} "
                              f"{unknown}; expected some of "
                              f"{sorted(known)}")
        values = dict(obj)
        values["stages"] = _stages(values.get("stages", ()))
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Recipe:
        """``dataclasses.replace`` with ``RecipeError`` for unknown fields."""
        return Recipe.from_dict({**self.to_dict(), **changes})


def _stages(value: object) -> tuple[Stage, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise RecipeError(f"stages {value!r} must be a list of stage objects")
    out = []
    known = {f.name for f in fields(Stage)}
    for i, item in enumerate(value, start=1):
        if isinstance(item, Stage):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or set(item) != known:
            raise RecipeError(f"stage {i}: {item!r} must be an object with exactly the keys "
                              f"{sorted(known)}")
        out.append(Stage(**item))
    return tuple(out)


def _problem(r: Recipe) -> str | None:
    """Why a recipe is invalid, or None."""
    ints = {"epochs": 1, "batch_size": 1, "randaug_layers": 1, "eval_batch_size": 1}
    for name, low in ints.items():
        value = getattr(r, name)
        if not is_int(value) or value < low:
            return f"{name} {value!r} must be an integer >= {low}"
    for name, low in (("resolution", 8), ("eval_resolution", 8),
                      ("max_train_batches_per_epoch", 1)):
        value = getattr(r, name)
        if value is not None and (not is_int(value) or value < low):
            return f"{name} {value!r} must be None or an integer >= {low}"
    if r.cpu_threads is not None and (not is_int(r.cpu_threads) or r.cpu_threads < 1):
        return f"cpu_threads {r.cpu_threads!r} must be None or an integer >= 1"
    if not isinstance(r.zero_init, bool):
        return f"zero_init {r.zero_init!r} must be true or false"
    if not is_int(r.seed):
        return f"seed {r.seed!r} must be an integer"
    if r.optimizer not in OPTIMIZERS:
        return f"optimizer {r.optimizer!r} not in {OPTIMIZERS}"
    if r.schedule not in SCHEDULES:
        return f"schedule {r.schedule!r} not in {SCHEDULES}"
    if r.ema_decay is not None and (not is_number(r.ema_decay) or not 0 < r.ema_decay < 1):
        return f"ema_decay {r.ema_decay!r} must be None or a number in (0, 1)"
    if r.lr is not None and (not is_number(r.lr) or r.lr <= 0):
        return f"lr {r.lr!r} must be None or a number > 0"
    ranges: dict[str, tuple[float, float]] = {
        "weight_decay": (0.0, math.inf), "warmup_epochs": (0.0, math.inf),
        "decay_rate": (0.0, 1.0), "decay_epochs": (1e-9, math.inf),
        "label_smoothing": (0.0, 0.999), "randaug_magnitude": (0.0, 30.0),
        "mixup_alpha": (0.0, math.inf), "crop_area": (1e-3, 1.0),
        "dropout": (0.0, 0.999), "drop_path": (0.0, 0.999),
    }
    for name, (lowest, highest) in ranges.items():
        value = getattr(r, name)
        if not is_number(value) or not lowest <= value <= highest:
            return f"{name} {value!r} must be a number in [{lowest}, {highest}]"
    if not isinstance(r.stages, tuple) or not all(isinstance(s, Stage) for s in r.stages):
        return f"stages {r.stages!r} must be a tuple of Stage"
    for i, stage in enumerate(r.stages, start=1):
        problem = _stage_problem(stage, ranges)
        if problem:
            return f"stage {i}: {problem}"
    if r.stages and sum(s.epochs for s in r.stages) != r.epochs:
        return (f"epochs {r.epochs!r} must equal the sum of the stages' epochs "
                f"({sum(s.epochs for s in r.stages)})")
    return None


def _stage_problem(s: Stage, ranges: dict[str, tuple[float, float]]) -> str | None:
    if not is_int(s.epochs) or s.epochs < 1:
        return f"epochs {s.epochs!r} must be an integer >= 1"
    if s.resolution is not None and (not is_int(s.resolution) or s.resolution < 8):
        return f"resolution {s.resolution!r} must be None or an integer >= 8"
    for name in ("randaug_magnitude", "mixup_alpha", "dropout"):
        low, high = ranges[name]
        value = getattr(s, name)
        if not is_number(value) or not low <= value <= high:
            return f"{name} {value!r} must be a number in [{low}, {high}]"
    return None


__all__ = ["Recipe", "Stage", "OPTIMIZERS", "SCHEDULES", "DEFAULT_LR"]
