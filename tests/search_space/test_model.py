"""The built PyTorch model matches the analytic cost model and runs forward/backward."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search_space.blocks import ConvBnAct, DropPath, FusedMBConv, MBConv, SqueezeExcite
from search_space.cost import count_macs, count_params, stage_costs
from search_space.errors import SpecError
from search_space.model import EfficientNet, build_model, count_model_params
from search_space.presets import PRESETS, get_preset
from search_space.spec import ArchSpec, StageSpec

TINY = ArchSpec(
    stem_channels=8,
    stages=(
        StageSpec("fused", 1, 3, 1, 8, 1),
        StageSpec("fused", 2, 3, 4, 16, 2, 0.25),
        StageSpec("mbconv", 2, 5, 6, 24, 2, 0.25),
        StageSpec("mbconv", 1, 3, 1, 24, 1, 0.25),
    ),
    head_channels=32,
    num_classes=10,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_built_params_equal_analytic(name: str) -> None:
    spec = get_preset(name).spec
    with torch.device("meta"):
        model = build_model(spec)
    assert count_model_params(model) == count_params(spec)


def test_built_stage_params_equal_stage_costs() -> None:
    spec = get_preset("efficientnetv2-s").spec
    with torch.device("meta"):
        model = build_model(spec)
    rows = stage_costs(spec, 224)
    assert count_model_params(model.stem) == rows[0].params
    assert [count_model_params(s) for s in model.blocks] == [r.params for r in rows[1:7]]
    assert count_model_params(model.head) == rows[7].params == 330_240
    assert count_model_params(model.classifier) == rows[8].params == 1_281_000


def test_random_specs_params_equal_analytic(random_specs) -> None:
    specs = random_specs(60, seed=7)
    assert any(s.stem_channels % 8 for s in specs)  # odd widths are exercised
    for spec in specs:
        with torch.device("meta"):
            model = build_model(spec)
        assert count_model_params(model) == count_params(spec), spec


def _hooked_macs(model: nn.Module, resolution: int) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out[0].numel() * (m.in_channels // m.groups) * k

    def linear_hook(m: nn.Linear, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    return total


@pytest.mark.parametrize("resolution", [32, 33, 47])
def test_hooked_macs_equal_count_macs(random_specs, resolution: int) -> None:
    for spec in [TINY] + random_specs(4, seed=resolution):
        assert _hooked_macs(build_model(spec), resolution) == count_macs(spec, resolution)


def test_hooked_macs_v2_b0_at_64() -> None:
    spec = get_preset("efficientnetv2-b0").spec
    assert _hooked_macs(build_model(spec), 64) == count_macs(spec, 64)


def _case(name: str, cls: type, cin: int, cout: int, k: int, s: int, e: int, se: int = 0) -> tuple:
    kwargs = dict(in_channels=cin, out_channels=cout, kernel=k, stride=s, expansion=e)
    return name, cls, {**kwargs, "se_channels": se}


BLOCK_CASES = [
    _case("fused_e1_res", FusedMBConv, 8, 8, 3, 1, 1),
    _case("fused_e1_s2", FusedMBConv, 8, 16, 3, 2, 1),
    _case("fused_e1_se", FusedMBConv, 8, 8, 3, 1, 1, se=2),
    _case("fused_e4_res", FusedMBConv, 8, 8, 3, 1, 4),
    _case("fused_e4_se_s2", FusedMBConv, 8, 16, 5, 2, 4, se=2),
    _case("mbconv_e1_se", MBConv, 8, 8, 3, 1, 1, se=2),
    _case("mbconv_e1_s2", MBConv, 8, 12, 3, 2, 1),
    _case("mbconv_e6_se_res", MBConv, 8, 8, 5, 1, 6, se=2),
    _case("mbconv_e6_se_s2", MBConv, 8, 16, 7, 2, 6, se=2),
]


FORMATS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize("fmt", FORMATS, ids=["nchw", "nhwc"])
@pytest.mark.parametrize("name, cls, kwargs", BLOCK_CASES, ids=[c[0] for c in BLOCK_CASES])
def test_block_forward_backward(
    name: str, cls: type, kwargs: dict, fmt: torch.memory_format
) -> None:
    torch.manual_seed(0)
    block = cls(**kwargs, drop_path=0.1).to(memory_format=fmt).train()
    x = torch.randn(2, kwargs["in_channels"], 9, 9).to(memory_format=fmt).requires_grad_()
    out = block(x)
    side = math.ceil(9 / kwargs["stride"])
    assert out.shape == (2, kwargs["out_channels"], side, side)
    residual = kwargs["stride"] == 1 and kwargs["in_channels"] == kwargs["out_channels"]
    assert block.has_residual == residual
    assert isinstance(block.drop_path, DropPath) == block.has_residual
    if fmt is torch.channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in block.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_fused_e1_is_a_single_conv() -> None:
    block = FusedMBConv(in_channels=8, out_channels=16, kernel=3, stride=2, expansion=1)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (3, 3) and convs[0].stride == (2, 2)
    assert isinstance(block.project, nn.Identity) and isinstance(block.conv.act, nn.SiLU)


def test_mbconv_structure() -> None:
    block = MBConv(in_channels=16, out_channels=24, kernel=5, stride=2, expansion=6, se_channels=4)
    assert block.expand.conv.kernel_size == (1, 1) and block.expand.conv.out_channels == 96
    assert block.dw.conv.groups == 96 and block.dw.conv.stride == (2, 2)
    assert isinstance(block.se, SqueezeExcite) and block.se.reduce.out_channels == 4
    assert block.se.reduce.bias is not None and block.se.expand.bias is not None
    assert isinstance(block.project.act, nn.Identity)
    assert isinstance(MBConv(8, 8, 3, 1, 1).expand, nn.Identity)


def test_batchnorm_settings() -> None:
    conv = ConvBnAct(3, 8, 3, stride=2)
    assert conv.bn.eps == 1e-3 and conv.bn.momentum == 0.1
    assert conv.conv.bias is None and conv.conv.padding == (1, 1)


def test_tiny_model_forward_backward_both_formats() -> None:
    torch.manual_seed(0)
    for fmt in (torch.contiguous_format, torch.channels_last):
        model = build_model(TINY).to(memory_format=fmt).train()
        assert isinstance(model, EfficientNet)
        x = torch.randn(4, 3, 32, 32).to(memory_format=fmt)
        logits = model(x)
        assert logits.shape == (4, 10)
        assert model.forward_features(x).shape == (4, 32, 4, 4)  # total stride 8
        nn.functional.cross_entropy(logits, torch.arange(4)).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_num_classes_override_and_dropout() -> None:
    model = build_model(TINY, num_classes=3, dropout=0.5)
    assert model.classifier.out_features == 3 and model.dropout.p == 0.5
    assert count_model_params(model) == count_params(ArchSpec(8, TINY.stages, 32, 3))
    with pytest.raises(SpecError, match="num_classes 0"):
        build_model(TINY, num_classes=0)
    with pytest.raises(SpecError, match="drop_path 1.0"):
        build_model(TINY, drop_path=1.0)


def test_drop_path_schedule() -> None:
    spec = get_preset("efficientnetv2-b0").spec
    with torch.device("meta"):
        model = build_model(spec, drop_path=0.2)
    blocks = [b for stage in model.blocks for b in stage]
    n = len(blocks)
    assert n == 21
    for i, (b, bs) in enumerate(zip(blocks, spec.blocks())):
        assert b.has_residual == bs.has_residual
        if bs.has_residual:
            assert isinstance(b.drop_path, DropPath)
            assert b.drop_path.p == pytest.approx(0.2 * i / n)
        else:
            assert isinstance(b.drop_path, nn.Identity)
    # B0: the first residual block is global index 2 (stage 2, second block); the last is 20.
    assert blocks[2].drop_path.p == pytest.approx(0.2 * 2 / 21)
    assert blocks[20].drop_path.p == pytest.approx(0.2 * 20 / 21)
    assert sum(b.has_residual for b in blocks) == 15


def test_drop_path_per_sample() -> None:
    torch.manual_seed(0)
    dp = DropPath(0.5)
    x = torch.ones(64, 2, 3, 3)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # whole samples are dropped or kept
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


def test_initialisation() -> None:
    torch.manual_seed(0)
    model = build_model(get_preset("efficientnetv2-b0").spec, num_classes=100)
    bound = 1 / math.sqrt(100)
    assert model.classifier.weight.abs().max() <= bound
    assert torch.count_nonzero(model.classifier.bias) == 0
    head = model.head.conv.weight  # 1x1, 1280 outputs: std sqrt(2 / 1280)
    assert head.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.05)
    se = model.blocks[3][0].se
    assert torch.count_nonzero(se.reduce.bias) == 0
