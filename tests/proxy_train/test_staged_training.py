"""Staged (progressive) training, the weight EMA, evaluation size, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import proxy_train.loop as loop
from proxy_train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from proxy_train.data import DataSplits, load_data
from proxy_train.ema import ModelEma
from proxy_train.errors import DataError, RecipeError
from proxy_train.loop import EpochStats, TrainResult, train
from proxy_train.recipe import Recipe, Stage
from search_space.codec import decode

TINY = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10")
STAGED = Recipe(epochs=3, batch_size=16, max_train_batches_per_epoch=2, eval_batch_size=64,
                randaug_layers=1, cpu_threads=1, drop_path=0.2, ema_decay=0.99,
                stages=(Stage(1, 12, 0.0, 0.0, 0.1), Stage(2, 20, 5.0, 0.2, 0.3)))


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return load_data("synthetic:classes=3,per_class=20,test_per_class=4,resolution=24")


def _numbers(result: TrainResult) -> list[tuple[object, ...]]:
    """Everything about a run's epochs but the times."""
    return [(e.epoch, e.stage, e.resolution, e.lr, e.train_loss, e.minival_top1,
             e.minival_top1_ema) for e in result.history]


# --- the EMA -------------------------------------------------------------------------------

def test_ema_follows_tf_warmup_and_copies_integer_buffers() -> None:
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    ema = ModelEma(model, 0.9999)
    assert ema.current_decay() == pytest.approx(1 / 10)  # (1 + 0) / (10 + 0)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    model[1].num_batches_tracked += 5
    ema.update(model)
    # 0.1 * old + 0.9 * new
    assert torch.allclose(ema.module[0].weight, torch.full((1, 2), 0.1 * 1.0 + 0.9 * 3.0))
    assert int(ema.module[1].num_batches_tracked) == 5
    assert ema.current_decay() == pytest.approx(2 / 11)
    ema.updates = 10**6
    assert ema.current_decay() == 0.9999  # the warm-up ends at the given decay
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(RecipeError, match="ema decay 1.0 must be in"):
        ModelEma(model, 1.0)


def test_ema_state_round_trip() -> None:
    model = nn.Linear(3, 2)
    ema = ModelEma(model, 0.9)
    ema.update(model)
    copy = ModelEma(nn.Linear(3, 2), 0.5)
    copy.load_state_dict(ema.state_dict())
    assert (copy.decay, copy.updates) == (0.9, 1)
    assert torch.equal(copy.module.weight, ema.module.weight)


# --- stages, evaluation size and the EMA in the loop ------------------------------------------

def test_stages_change_size_and_regularization_at_the_boundary(
        data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    dropouts: list[float] = []
    original = loop.set_dropout

    def spy(model: nn.Module, p: float) -> None:
        dropouts.append(p)
        original(model, p)

    monkeypatch.setattr(loop, "set_dropout", spy)
    result = train(TINY, STAGED, data, seed=3)
    assert result.status == "ok" and result.epochs_run == 3
    assert [(e.stage, e.resolution, e.randaug_magnitude, e.mixup_alpha, e.dropout)
            for e in result.history] == [(1, 12, 0.0, 0.0, 0.1), (2, 20, 5.0, 0.2, 0.3),
                                         (2, 20, 5.0, 0.2, 0.3)]
    assert dropouts == [0.1, 0.3]  # changed in place, once per stage
    assert (result.stage, result.resolution, result.eval_resolution) == (2, 20, 20)


def test_ema_weights_are_evaluated_and_reported(data: DataSplits) -> None:
    result = train(TINY, STAGED, data, seed=3, test=data.test)
    assert all(e.minival_top1_ema is not None for e in result.history)
    assert result.accuracy == result.history[-1].minival_top1_ema
    assert result.accuracy_curve == tuple(e.minival_top1_ema for e in result.history)
    assert result.test_top1 is not None and result.test_top1_ema is not None
    plain = train(TINY, STAGED.replace(ema_decay=None), data, seed=3)
    assert all(e.minival_top1_ema is None for e in plain.history)
    assert plain.accuracy == plain.history[-1].minival_top1
    assert plain.test_top1 is None  # no test split given


def test_evaluation_runs_at_the_eval_size(data: DataSplits,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: set[int] = set()
    original = loop.eval_transform

    def spy(images: torch.Tensor, size: int) -> torch.Tensor:
        sizes.add(size)
        return original(images, size)

    monkeypatch.setattr(loop, "eval_transform", spy)
    result = train(TINY, STAGED.replace(eval_resolution=28), data, test=data.test)
    assert sizes == {28} and result.eval_resolution == 28
    assert STAGED.eval_size(24) == 20  # default: the last stage's size


def test_epoch_stats_are_complete(data: DataSplits) -> None:
    result = train(TINY, STAGED, data, seed=0)
    first, last = result.history[0], result.history[-1]
    assert isinstance(first, EpochStats) and first.epoch == 1 and last.epoch == 3
    assert first.images_per_s > 0 and first.epoch_time_s > 0
    assert first.lr > 0 and last.lr < first.lr  # cosine decay after the warm-up
    assert result.loss_curve == tuple(e.train_loss for e in result.history)
    assert TrainResult.from_dict(result.to_dict()) == result


# --- checkpoints and resume ----------------------------------------------------------------

def test_resume_from_any_epoch_ends_exactly_like_an_uninterrupted_run(data: DataSplits) -> None:
    states: list[TrainState] = []
    whole = train(TINY, STAGED, data, seed=5, checkpoint=states.append, test=data.test)
    assert [s.epochs_run for s in states] == [1, 2, 3]
    assert [s.stage for s in states] == [0, 1, 1]
    for state in states[:2]:  # at a stage boundary, and inside a stage
        resumed = train(TINY, STAGED, data, seed=5, resume=state, test=data.test)
        assert _numbers(resumed) == _numbers(whole)
        assert (resumed.accuracy, resumed.test_top1, resumed.test_top1_ema) == \
            (whole.accuracy, whole.test_top1, whole.test_top1_ema)
        assert resumed.wall_time_s >= state.progress["wall_time_s"]


def test_checkpoint_file_round_trip(data: DataSplits, tmp_path: Path) -> None:
    states: list[TrainState] = []
    whole = train(TINY, STAGED, data, seed=2, checkpoint=states.append)
    path = save_checkpoint(tmp_path / "checkpoint.pt", states[0], meta={"arch": "x"})
    state, meta = load_checkpoint(path)
    assert meta == {"arch": "x"} and state.epochs_run == 1
    resumed = train(TINY, STAGED, data, seed=2, resume=state)
    assert _numbers(resumed) == _numbers(whole)


def test_corrupt_checkpoints_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match="is not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="is not an effnas checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failure_names_its_stage_and_size(data: DataSplits,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = loop.TrainStep.__call__

    def step(self: loop.TrainStep, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 20:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        calls["n"] += 1
        return original(self, x, y)

    monkeypatch.setattr(loop.TrainStep, "__call__", step)
    result = train(TINY, STAGED, data)
    assert result.status == "failed" and result.reason.startswith("out of memory")
    assert (result.stage, result.resolution, result.epochs_run) == (2, 20, 1)
    assert calls["n"] == 2


def test_compile_wraps_the_training_step_once_with_static_shapes(
        data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real torch.compile takes minutes on 2 cores (one compilation per stage size): this
    # checks the wiring, the compiled module is used for the steps, the EMA and evaluation
    # use the plain module.
    calls: list[dict[str, object]] = []

    class Compiled(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module
            self.steps = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.steps += 1
            return self.module(x)

    def fake_compile(module: nn.Module, **kwargs: object) -> nn.Module:
        calls.append(kwargs)
        wrapped = Compiled(module)
        calls.append({"wrapped": wrapped})
        return wrapped

    monkeypatch.setattr(loop.torch, "compile", fake_compile)
    result = train(TINY, STAGED, data, seed=3, compile=True)
    assert result.status == "ok"
    assert calls[0] == {"dynamic": False}
    wrapped = calls[1]["wrapped"]
    assert isinstance(wrapped, Compiled) and wrapped.steps == 6  # 3 epochs x 2 batches
    plain = train(TINY, STAGED, data, seed=3)
    assert _numbers(plain) == _numbers(result)
