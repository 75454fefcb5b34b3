"""Parameters, multiply-adds and activation memory of an ``ArchSpec``, without building it.

Pure Python and fast (tens of microseconds per spec): a stage costs its first block plus
``layers - 1`` times its repeated block, which has the same shape every time.

Conventions (they match PyTorch's ``model.parameters()`` and the reference counts in
``google/automl`` ``effnetv2_model_test.py`` minus BN moving statistics):

* **Params**: conv weights (no conv bias, except the two SE 1x1 convs), BatchNorm gamma and
  beta (``2 * C``; running statistics are buffers, not parameters), the classifier weight and
  bias.
* **MACs**: multiply-adds of every convolution and the classifier, nothing else (no BN,
  activations, pooling or residual adds). Output size is TF SAME: ``ceil(H / stride)``.
  A dense conv costs ``k*k*Cin*Cout*Hout*Wout``, a depthwise conv ``k*k*C*Hout*Wout``, the
  SE convs ``2*mid*reduced`` (they run on the pooled 1x1 map), the classifier
  ``head * classes``. This is the "[derived] conv+FC" column of the reference notes.
* **Activations**: an estimate of the tensors autograd keeps for the backward pass, in
  elements per image: the input image; for every conv the conv output, the BN output and,
  when it has one, the SiLU output; for SE the pooled vector, the reduce output and its SiLU,
  the expand output, the sigmoid gate and the gated feature map; the output of every
  residual add; the pooled features, the dropout output and the logits. Layers are counted
  at their own output resolution (an MBConv expand conv at the block's input resolution).
  It ignores framework overhead and in-place reuse, so treat it as a relative figure that
  grows monotonically with resolution and batch size.

Block semantics are those documented in ``search_space.spec``; a fused block with
expansion 1 and SE applies SE to its input before its single conv, as the official
``FusedMBConvBlock`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_space.checks import is_int
from search_space.errors import SpecError
from search_space.spec import FUSED, ArchSpec

_IMAGE_CHANNELS = 3
_STEM_KERNEL = 3


@dataclass(frozen=True, slots=True)
class StageCost:
    """Cost of one part of the network at one input resolution.

    ``stage_costs`` returns, in order: ``stem`` (index 0), ``stage1`` .. ``stageN``
    (index 1..N, as in error messages), ``head`` (1x1 conv + BN, index N+1) and
    ``classifier`` (pooling, dropout, linear; index N+2). Summing a field over all entries
    gives the network total.
    """

    name: str
    index: int
    params: int
    macs: int
    resolution: int
    """Spatial size (height == width) of this part's output."""
    activations: int
    """Activation elements kept for backward, per image (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Cost:
    """Whole-network cost at one resolution."""

    params: int
    macs: int
    activation_bytes: int


def count_params(spec: ArchSpec) -> int:
    """Trainable parameters of the network ``build_model(spec)`` builds (PyTorch convention)."""
    return sum(row[1] for row in _rows(spec, 1))


def count_macs(spec: ArchSpec, resolution: int) -> int:
    """Multiply-adds of all convolutions and the classifier for one square image."""
    _check_resolution(resolution)
    return sum(row[2] for row in _rows(spec, resolution))


def activation_memory(
    spec: ArchSpec, resolution: int, batch_size: int = 1, bytes_per_element: int = 2
) -> int:
    """Estimated bytes of activations saved for backward (see the module docstring)."""
    _check_resolution(resolution)
    _check_positive("batch_size", batch_size)
    _check_positive("bytes_per_element", bytes_per_element)
    return sum(row[3] for row in _rows(spec, resolution)) * batch_size * bytes_per_element


def stage_costs(spec: ArchSpec, resolution: int) -> list[StageCost]:
    """Per-part costs: stem, each stage, head, classifier (see ``StageCost``)."""
    _check_resolution(resolution)
    return [
        StageCost(name=name, index=i, params=p, macs=m, resolution=r, activations=a)
        for i, (name, p, m, a, r) in enumerate(_rows(spec, resolution))
    ]


def cost(
    spec: ArchSpec, resolution: int, *, batch_size: int = 1, bytes_per_element: int = 2
) -> Cost:
    """Params, MACs and activation bytes in one pass."""
    _check_resolution(resolution)
    _check_positive("batch_size", batch_size)
    _check_positive("bytes_per_element", bytes_per_element)
    params = macs = acts = 0
    for _, p, m, a, _ in _rows(spec, resolution):
        params += p
        macs += m
        acts += a
    return Cost(params=params, macs=macs, activation_bytes=acts * batch_size * bytes_per_element)


def _check_resolution(resolution: int) -> None:
    _check_positive("resolution", resolution)


def _check_positive(name: str, value: int) -> None:
    if not is_int(value) or value < 1:
        raise SpecError(f"{name} {value!r} must be an integer >= 1")


def _rows(spec: ArchSpec, resolution: int) -> list[tuple[str, int, int, int, int]]:
    """``(name, params, macs, activations, out_resolution)`` for stem, stages, head, classifier."""
    stem = spec.stem_channels
    h = -(-resolution // 2)
    hw = h * h
    k2 = _STEM_KERNEL * _STEM_KERNEL * _IMAGE_CHANNELS
    rows = [
        (
            "stem",
            k2 * stem + 2 * stem,
            k2 * stem * hw,
            _IMAGE_CHANNELS * resolution * resolution + 3 * stem * hw,
            h,
        )
    ]
    cin = stem
    for i, stage in enumerate(spec.stages, start=1):
        cout = stage.out_channels
        fused = stage.block == FUSED
        p, m, a, h_out = _block(fused, cin, cout, stage.kernel, stage.stride, stage.expansion,
                                stage.se_ratio, h)
        if stage.layers > 1:
            rp, rm, ra, _ = _block(fused, cout, cout, stage.kernel, 1, stage.expansion,
                                   stage.se_ratio, h_out)
            n = stage.layers - 1
            p += rp * n
            m += rm * n
            a += ra * n
        rows.append((f"stage{i}", p, m, a, h_out))
        cin = cout
        h = h_out
    head = spec.head_channels
    hw = h * h
    rows.append(("head", cin * head + 2 * head, cin * head * hw, 3 * head * hw, h))
    classes = spec.num_classes
    rows.append(("classifier", head * classes + classes, head * classes, 2 * head + classes, 1))
    return rows


def _block(
    fused: bool, cin: int, cout: int, k: int, stride: int, e: int, se_ratio: float, h: int
) -> tuple[int, int, int, int]:
    """``(params, macs, activations, out_resolution)`` of one block at input size ``h``."""
    h_out = -(-h // stride)
    hw_in = h * h
    hw = h_out * h_out
    kk = k * k
    mid = cin * e
    rd = max(1, int(cin * se_ratio)) if se_ratio > 0 else 0
    if fused and e == 1:
        # One k x k conv in->out + BN + SiLU; SE (if any) acts on the input first.
        params = kk * cin * cout + 2 * cout
        macs = kk * cin * cout * hw
        acts = 3 * cout * hw
        se_hw = hw_in
    else:
        if fused:
            # k x k conv in->mid + BN + SiLU.
            params = kk * cin * mid + 2 * mid
            macs = kk * cin * mid * hw
            acts = 3 * mid * hw
        else:
            # Depthwise k x k conv + BN + SiLU, after a 1x1 expand conv when e != 1.
            params = kk * mid + 2 * mid
            macs = kk * mid * hw
            acts = 3 * mid * hw
            if e != 1:
                params += cin * mid + 2 * mid
                macs += cin * mid * hw_in
                acts += 3 * mid * hw_in
        # 1x1 projection + BN, no activation.
        params += mid * cout + 2 * cout
        macs += mid * cout * hw
        acts += 2 * cout * hw
        se_hw = hw
    if rd:
        params += 2 * mid * rd + rd + mid
        macs += 2 * mid * rd
        acts += 3 * mid + 2 * rd + mid * se_hw
    if stride == 1 and cin == cout:
        acts += cout * hw
    return params, macs, acts, h_out
