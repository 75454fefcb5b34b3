"""Contracts of the canonical string and the JSON form: exact text, round-trips, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space.codec import (
    decode,
    encode,
    from_dict,
    from_json,
    spec_hash,
    to_dict,
    to_json,
)
from search_space.errors import SpecError
from search_space.spec import BLOCK_TYPES, ArchSpec, StageSpec

V2_S = (
    "stem24-fused_r2_k3_s1_e1_c24-fused_r4_k3_s2_e4_c48-fused_r4_k3_s2_e4_c64"
    "-mbconv_r6_k3_s2_e4_c128_se0.25-mbconv_r9_k3_s1_e6_c160_se0.25"
    "-mbconv_r15_k3_s2_e6_c256_se0.25-head1280-cls1000"
)


def _v2_s() -> ArchSpec:
    def st_(block: str, r: int, s: int, e: int, c: int, se: float = 0.0) -> StageSpec:
        return StageSpec(block, r, 3, e, c, s, se)

    return ArchSpec(
        stem_channels=24,
        stages=(
            st_("fused", 2, 1, 1, 24),
            st_("fused", 4, 2, 4, 48),
            st_("fused", 4, 2, 4, 64),
            st_("mbconv", 6, 2, 4, 128, 0.25),
            st_("mbconv", 9, 1, 6, 160, 0.25),
            st_("mbconv", 15, 2, 6, 256, 0.25),
        ),
        head_channels=1280,
        num_classes=1000,
    )


TINY = "stem8-mbconv_r1_k3_s2_e1_c8-head16-cls10"


# --------------------------------------------------------------------------- strings


def test_encode_v2_s_exact() -> None:
    assert encode(_v2_s()) == V2_S


def test_decode_v2_s_exact() -> None:
    assert decode(V2_S) == _v2_s()


def test_decode_accepts_surrounding_whitespace_and_any_token_order() -> None:
    shuffled = "stem8-mbconv_c8_e1_s2_k3_r1-head16-cls10"
    assert decode(f"  \n{shuffled}\t ") == decode(TINY)
    assert encode(decode(shuffled)) == TINY


def test_se_written_with_repr_and_omitted_when_zero() -> None:
    base = decode(TINY)
    third = dataclasses.replace(base, stages=(dataclasses.replace(base.stages[0], se_ratio=1 / 3),))
    assert encode(third) == "stem8-mbconv_r1_k3_s2_e1_c8_se0.3333333333333333-head16-cls10"
    assert decode(encode(third)).stages[0].se_ratio == 1 / 3
    tiny = dataclasses.replace(base, stages=(dataclasses.replace(base.stages[0], se_ratio=6.25e-05),))
    assert encode(tiny) == "stem8-mbconv_r1_k3_s2_e1_c8_se6.25e-05-head16-cls10"
    assert decode(encode(tiny)) == tiny
    assert decode("stem8-mbconv_r1_k3_s2_e1_c8_se0-head16-cls10").stages[0].se_ratio == 0.0


def test_spec_hash_is_12_hex_of_sha256_of_string() -> None:
    import hashlib

    spec = _v2_s()
    assert spec_hash(spec) == hashlib.sha256(V2_S.encode()).hexdigest()[:12]
    assert len(spec_hash(spec)) == 12
    assert spec_hash(decode(TINY)) != spec_hash(spec)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty architecture string"),
        ("   ", "empty architecture string"),
        ("fused_r1_k3_s1_e1_c8-head16-cls10", "missing 'stem<N>' at the start"),
        ("stem8-fused_r1_k3_s1_e1_c8-head16", "missing 'cls<N>' at the end"),
        ("stem8-fused_r1_k3_s1_e1_c8-cls10", "missing 'head<N>' before 'cls<N>'"),
        ("stem8-head16-cls10", "no stages"),
        ("stem8-xr_r1_k3_s1_e1_c8-head16-cls10",
         "stage 1: unknown block type 'xr' in 'xr_r1_k3_s1_e1_c8'; expected one of ['fused', 'mbconv']"),
        ("stem8-fused_r1_k3_s1_e1_c8-mbconv_r1_k3_s1_e1_c8_q5-head16-cls10",
         "stage 2: unknown token 'q5'; expected keys r, k, s, e, c, se"),
        ("stem8-fused_r1_k3_s1_e1_c8-fused_r1_k3_s1_e1_c8-fused_r1_k4_s1_e1_c8-head16-cls10",
         "stage 3: kernel 4 must be an odd integer >= 1"),
        ("stem8-fused_r1_k3_s3_e1_c8-head16-cls10", "stage 1: stride 3 not in (1, 2)"),
        ("stem8-fused_r0_k3_s1_e1_c8-head16-cls10", "stage 1: layers 0 must be >= 1"),
        ("stem8-fused_r1_k3_s1_e1_c8_se1.5-head16-cls10", "stage 1: se_ratio 1.5 must be a number in [0, 1]"),
        ("stem8-fused_r1_k3_s1_r2_e1_c8-head16-cls10", "stage 1: token 'r' given twice"),
        ("stem8-fused_r1_k3_s1_e1-head16-cls10", "stage 1: missing c"),
        ("stem8-fused_rx_k3_s1_e1_c8-head16-cls10", "stage 1: unknown token 'rx'"),
        ("stem8-fused_r1_k3x_s1_e1_c8-head16-cls10", "stage 1: 'k3x': k needs a plain integer"),
        ("stem8-fused_r1_k3_s1_e1_c" + "9" * 5000 + "-head16-cls10", "number too long"),
        ("stem8-fused_r-1_k3_s1_e1_c8-head16-cls10", "stage 1: 'r': r needs a plain integer"),
        ("stem8-fused_r1.5_k3_s1_e1_c8-head16-cls10", "stage 1: 'r1.5': r needs a plain integer"),
        ("stem8-fused_r1_k3_s1_e1_c8_seX-head16-cls10", "stage 1: 'seX': se needs a decimal number"),
        ("stem8-fused_r1__k3_s1_e1_c8-head16-cls10", "stage 1: empty token"),
        ("stem8-fused-head16-cls10", "stage 1: no tokens after 'fused'"),
        ("stem8--fused_r1_k3_s1_e1_c8-head16-cls10", "empty part at position 2"),
        ("stem08-fused_r1_k3_s1_e1_c8-head16-cls10", "'stem08': leading zeros are not allowed"),
        ("stem0-fused_r1_k3_s1_e1_c8-head16-cls10", "'stem0': stem must be >= 1"),
        ("stemx-fused_r1_k3_s1_e1_c8-head16-cls10", "missing 'stem<N>' at the start; got 'stemx'"),
        ("stem8-fused_r1_k3_s1_e1_c8-head16-cls10 x", "missing 'cls<N>' at the end"),
        ("STEM8-fused_r1_k3_s1_e1_c8-head16-cls10", "missing 'stem<N>' at the start"),
    ],
)
def test_decode_errors_name_the_part_and_rule(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        decode(text)
    assert message in str(info.value)


def test_decode_rejects_non_string() -> None:
    with pytest.raises(SpecError, match="must be a str"):
        decode(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- JSON


def test_to_dict_exact() -> None:
    assert to_dict(decode(TINY)) == {
        "schema_version": 1,
        "stem_channels": 8,
        "stages": [
            {"block": "mbconv", "layers": 1, "kernel": 3, "expansion": 1, "out_channels": 8,
             "stride": 2, "se_ratio": 0.0}
        ],
        "head_channels": 16,
        "num_classes": 10,
    }


def test_to_json_is_json_of_to_dict() -> None:
    spec = _v2_s()
    assert json.loads(to_json(spec)) == to_dict(spec)
    assert from_json(to_json(spec)) == spec


def test_from_dict_se_ratio_optional_and_int_accepted() -> None:
    obj = to_dict(decode(TINY))
    del obj["stages"][0]["se_ratio"]
    assert from_dict(obj) == decode(TINY)
    obj["stages"][0]["se_ratio"] = 1
    assert from_dict(obj).stages[0].se_ratio == 1.0


def _broken(path: str, value: object, delete: bool = False) -> dict:
    obj = to_dict(_v2_s())
    *parents, last = path.split(".")
    target: object = obj
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]  # type: ignore[index]
    if isinstance(target, list):
        target[int(last)] = value
    elif delete:
        del target[last]  # type: ignore[attr-defined]
    else:
        target[last] = value  # type: ignore[index]
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (_broken("stages.2.kernel", 4), "stages[2].kernel: 4 must be an odd integer >= 1"),
        (_broken("stages", None, delete=True), "missing field 'stages'"),
        (_broken("foo", 1), "unknown field 'foo'"),
        (_broken("schema_version", 7), "schema_version 7 not supported; expected 1"),
        (_broken("schema_version", "1"), "schema_version '1' not supported; expected 1"),
        (_broken("stem_channels", "24"), "stem_channels: '24' must be an integer >= 1"),
        (_broken("head_channels", 0), "head_channels: 0 must be an integer >= 1"),
        (_broken("num_classes", True), "num_classes: True must be an integer >= 1"),
        (_broken("stages", {}), "stages: expected a list of stage objects, got dict"),
        (_broken("stages", []), "stages: a spec needs at least one stage"),
        (_broken("stages.0", "fused"), "stages[0]: expected an object, got str"),
        (_broken("stages.1.layers", 2.0), "stages[1].layers: 2.0 must be an integer"),
        (_broken("stages.1.stride", 3), "stages[1].stride: 3 not in (1, 2)"),
        (_broken("stages.3.se_ratio", "0.25"), "stages[3].se_ratio: '0.25' must be a number in [0, 1]"),
        (_broken("stages.3.se_ratio", -0.5), "stages[3].se_ratio: -0.5 must be a number in [0, 1]"),
        (_broken("stages.0.block", "xr"), "stages[0].block: unknown block type 'xr'"),
        (_broken("stages.0.block", 3), "stages[0].block: 3 must be a string"),
        (_broken("stages.4.out_channels", None, delete=True), "stages[4]: missing field 'out_channels'"),
        (_broken("stages.4.bar", 1), "stages[4]: unknown field 'bar'"),
    ],
)
def test_from_dict_errors_name_the_field(obj: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        from_dict(obj)
    assert message in str(info.value)


def test_from_dict_rejects_non_object() -> None:
    with pytest.raises(SpecError, match="must be a JSON object, got list"):
        from_dict([])  # type: ignore[arg-type]


def test_from_json_invalid_json_gives_position() -> None:
    with pytest.raises(SpecError, match=r"invalid JSON: .* at line 2 column \d+"):
        from_json('{"schema_version": 1,\n "stages": [,]}')


# --------------------------------------------------------------------------- properties

_RATIOS = st.one_of(
    st.sampled_from([0.0, 0.25, 1 / 3, 0.0625, 0.5, 1.0]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)


@st.composite
def specs(draw: st.DrawFn) -> ArchSpec:
    n = draw(st.integers(1, 8))
    stages = tuple(
        StageSpec(
            block=draw(st.sampled_from(BLOCK_TYPES)),
            layers=draw(st.integers(1, 40)),
            kernel=draw(st.integers(0, 5)) * 2 + 1,
            expansion=draw(st.integers(1, 8)),
            out_channels=draw(st.integers(1, 2048)),
            stride=draw(st.sampled_from((1, 2))),
            se_ratio=draw(_RATIOS),
        )
        for _ in range(n)
    )
    return ArchSpec(
        stem_channels=draw(st.integers(1, 128)),
        stages=stages,
        head_channels=draw(st.integers(1, 4096)),
        num_classes=draw(st.integers(1, 30000)),
    )


@settings(max_examples=300, deadline=None)
@given(specs())
def test_string_round_trip(spec: ArchSpec) -> None:
    text = encode(spec)
    assert decode(text) == spec
    assert encode(decode(text)) == text


@settings(max_examples=200, deadline=None)
@given(specs())
def test_json_round_trip(spec: ArchSpec) -> None:
    assert from_json(to_json(spec)) == spec
    assert from_dict(to_dict(spec)) == spec


def test_round_trip_fixture_specs(random_specs) -> None:  # type: ignore[no-untyped-def]
    for spec in random_specs(50, 3):
        assert decode(encode(spec)) == spec
        assert from_json(to_json(spec)) == spec


_ALPHABET = st.sampled_from(list("stemfusdmbconvrkcehalx_-.0123456789 e+") + ["\n", "\x00", "é"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=_ALPHABET, max_size=80)))
def test_decode_fuzz_raises_only_spec_error(text: str) -> None:
    try:
        decode(text)
    except SpecError:
        pass


@settings(max_examples=200, deadline=None)
@given(specs(), st.integers(0, 10_000), st.sampled_from(["", "_", "-", "0", "x", "e-", "se", "9"]))
def test_decode_fuzz_mutated_valid_strings(spec: ArchSpec, pos: int, insert: str) -> None:
    text = encode(spec)
    pos %= len(text) + 1
    try:
        decode(text[:pos] + insert + text[pos:])
    except SpecError:
        pass
