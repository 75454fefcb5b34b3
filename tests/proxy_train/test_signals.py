"""The ranking signals a run records beside its accuracy, each computed again by hand:
minival top-1 of the trained and EMA weights, minival loss, TSE, and MeCo at initialization."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import proxy_train.loop as loop
from proxy_train.augment import eval_transform
from proxy_train.checkpoint import TrainState
from proxy_train.data import DataSplits, load_data
from proxy_train.loop import train
from proxy_train.recipe import Recipe
from proxy_train.zero_cost import meco, min_correlation_eigenvalue
from search_space.codec import decode
from search_space.model import build_model

TINY = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls4")
RECIPE = Recipe(epochs=2, resolution=16, batch_size=16, optimizer="adamw", lr=0.01,
                warmup_epochs=0.5, randaug_magnitude=0.0, dropout=0.0, drop_path=0.0,
                ema_decay=0.9, eval_batch_size=64, cpu_threads=1)


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return load_data("synthetic:classes=4,per_class=24,resolution=32")


# --- the signals of a run, by hand ---------------------------------------------------------

def _by_hand(weights: dict[str, torch.Tensor], data: DataSplits) -> tuple[float, float]:
    """Top-1 and mean cross-entropy of ``weights`` on minival at the eval size."""
    model = build_model(TINY, num_classes=data.num_classes).to(memory_format=torch.channels_last)
    model.load_state_dict(weights)
    model.eval()
    x = eval_transform(data.minival.images, RECIPE.eval_size(data.resolution))
    with torch.no_grad():
        logits = model(x.contiguous(memory_format=torch.channels_last))
    top1 = (logits.argmax(dim=1) == data.minival.labels).float().mean().item()
    return top1, F.cross_entropy(logits, data.minival.labels).item()


def test_minival_numbers_and_tse_are_what_the_weights_and_the_steps_give(
        data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    losses: list[float] = []
    original = loop.TrainStep.__call__

    def step(self: loop.TrainStep, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = original(self, x, y)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(loop.TrainStep, "__call__", step)
    steps: list[int] = []
    states: list[TrainState] = []
    result = train(TINY, RECIPE, data, seed=3, checkpoint=states.append,
                   on_step=lambda: steps.append(len(losses)))
    assert result.status == "ok" and len(result.history) == 2
    per_epoch = len(data.train) // RECIPE.batch_size
    assert steps == list(range(1, 2 * per_epoch + 1))  # on_step follows every step
    for epoch, stats, state in zip((0, 1), result.history, states):
        mine = losses[epoch * per_epoch:(epoch + 1) * per_epoch]
        assert stats.train_loss_sum == pytest.approx(sum(mine), rel=1e-12)
        assert stats.train_loss == pytest.approx(sum(mine) / per_epoch, rel=1e-6)
        top1, loss = _by_hand(state.model, data)
        assert stats.minival_top1 == pytest.approx(top1)
        assert stats.minival_loss == pytest.approx(loss, rel=1e-5)
        assert state.ema is not None
        assert stats.minival_top1_ema == pytest.approx(_by_hand(state.ema["weights"], data)[0])
    # TSE is the last epoch's sum; the first epoch's sum is kept in the history.
    assert result.tse == pytest.approx(sum(losses[per_epoch:]), rel=1e-12)
    assert result.history[0].train_loss_sum != result.history[1].train_loss_sum
    assert result.history[-1].minival_loss != pytest.approx(np.log(4))  # it has learned


# --- MeCo ----------------------------------------------------------------------------------

def _tiny_net() -> nn.Sequential:
    """Five convolutions: two with full-rank correlations, one with a constant channel, one
    with more channels than positions, one on a 1x1 map."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.SiLU(),          # 12x12, 4 ch
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.SiLU(),  # 6x6, 6 ch
        nn.Conv2d(6, 3, 1),                                                     # a constant ch
        nn.Conv2d(3, 40, 1), nn.SiLU(),                                         # 36 pos < 40 ch
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(40, 5, 1), nn.Flatten(1))            # 1x1
    with torch.no_grad():
        net[6].weight[1].zero_()
        net[6].bias[1] = 0.5
    return net


def _numpy_meco(net: nn.Sequential, images: torch.Tensor) -> float:
    """The paper's reference computation, in numpy: each convolution's map of the first
    image, channels x positions, np.corrcoef with NaN set to 0, the smallest eigenvalue."""
    total, x = 0.0, images
    with torch.no_grad():
        for layer in net.train():
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                fea = x[0].reshape(x.shape[1], -1).double().numpy()
                with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)  # a 1x1 map: one position
                    corr = np.corrcoef(fea)
                corr[~np.isfinite(corr)] = 0.0
                total += float(np.min(np.linalg.eigvals(corr).real))
    return total


def test_meco_is_the_sum_of_the_smallest_eigenvalues_of_channel_correlations() -> None:
    net = _tiny_net()
    images = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    expected = _numpy_meco(_tiny_net(), images)
    assert expected > 0.01  # the two full-rank layers contribute
    assert meco(net, images) == pytest.approx(expected, abs=1e-9)
    # The singular cases are exactly 0 without an eigendecomposition.
    assert min_correlation_eigenvalue(torch.randn(40, 6, 6)) == 0.0
    assert min_correlation_eigenvalue(torch.randn(5, 1, 1)) == 0.0
    constant = torch.randn(3, 6, 6)
    constant[1] = 0.5
    assert min_correlation_eigenvalue(constant) == 0.0


def test_meco_leaves_the_model_and_the_random_stream_as_they_were() -> None:
    torch.manual_seed(0)
    model = build_model(TINY, num_classes=4, dropout=0.5, drop_path=0.3).eval()
    model.blocks.train()  # mixed modes are restored too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    rng = torch.get_rng_state()
    score = meco(model, images)
    assert torch.equal(torch.get_rng_state(), rng)  # no dropout or drop-path draw
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics put back
    assert meco(model, images) == score and np.isfinite(score) and score > 0


def test_the_loop_scores_the_initial_model_once_and_keeps_it_through_a_resume(
        data: DataSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    def spy(model: nn.Module, images: torch.Tensor) -> float:
        calls.append(({k: v.clone() for k, v in model.state_dict().items()}, images))
        return meco(model, images)

    monkeypatch.setattr(loop, "meco", spy)
    batches: list[torch.Tensor] = []
    original = loop.TrainStep.__call__

    def step(self: loop.TrainStep, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        batches.append(x)
        return original(self, x, y)

    monkeypatch.setattr(loop.TrainStep, "__call__", step)
    states: list[TrainState] = []
    recipe = RECIPE.replace(randaug_magnitude=5.0, mixup_alpha=0.2)
    result = train(TINY, recipe, data, seed=3, checkpoint=states.append)
    assert len(calls) == 1
    weights, images = calls[0]
    assert images.shape == (RECIPE.batch_size, 3, 16, 16)
    assert torch.equal(images, batches[0])  # the first step's batch, augmented as it was
    initial = loop._build(TINY, recipe, 4, recipe.dropout, seed=3).state_dict()
    assert all(torch.equal(initial[k], weights[k]) for k in initial)  # before any step
    assert result.meco is not None and result.meco > 0
    resumed = train(TINY, recipe, data, seed=3, resume=states[0])
    assert len(calls) == 1 and resumed.meco == result.meco  # scored when the run started


def test_scoring_meco_changes_nothing_of_the_training(data: DataSplits,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = RECIPE.replace(drop_path=0.2, dropout=0.2, randaug_magnitude=3.0)
    scored = train(TINY, recipe, data, seed=4)
    monkeypatch.setattr(loop, "meco", lambda model, images: 0.0)
    unscored = train(TINY, recipe, data, seed=4)
    assert scored.meco != 0.0 and unscored.meco == 0.0
    assert [(e.train_loss_sum, e.minival_loss, e.minival_top1_ema) for e in scored.history] == \
        [(e.train_loss_sum, e.minival_loss, e.minival_top1_ema) for e in unscored.history]
