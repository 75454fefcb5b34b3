"""timm's key names for our weights, checked against timm's own keys.

``golden/timm_keys.json`` was generated once from real timm 1.0.31 (in a separate virtual
environment with torch 2.13.0, where timm is importable) by ``golden/make_timm_keys.py``: the
``state_dict`` keys and shapes of timm's ``EfficientNet`` built from our ``arch_def`` export,
for one spec per timm block type (``cn``, ``er``, ``ir``, ``ds``), with and without SE, and
one spec with all of them. The mapping is never used to make that file, so these tests check
it against timm itself without needing timm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search_space.codec import decode
from search_space.errors import SpecError
from search_space.model import build_model
from search_space.timm_keys import block_types, timm_snippet, timm_state_dict

GOLDEN = json.loads((Path(__file__).parent / "golden" / "timm_keys.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN["specs"]))
def test_mapped_keys_and_shapes_are_timms(name: str) -> None:
    entry = GOLDEN["specs"][name]
    spec = decode(entry["arch"])
    with torch.device("meta"):
        state = build_model(spec).state_dict()
    mapped = timm_state_dict(spec, state)
    assert [f"{key} {list(value.shape)}" for key, value in mapped.items()] == entry["keys"]


def test_golden_covers_every_block_type_with_and_without_se() -> None:
    seen = set()
    for entry in GOLDEN["specs"].values():
        spec = decode(entry["arch"])
        seen |= {(kind, stage.se_ratio > 0)
                 for kind, stage in zip(block_types(spec), spec.stages)}
    # timm's single-conv cn block has no SE, so there is no (cn, with SE) to cover
    assert seen == {("cn", False), ("er", False), ("er", True), ("ir", False), ("ir", True),
                    ("ds", False), ("ds", True)}
    assert GOLDEN["timm_version"] == "1.0.31"


def test_a_key_outside_the_network_is_refused() -> None:
    spec = decode(GOLDEN["specs"]["ir"]["arch"])
    with pytest.raises(SpecError, match=r"'blocks.0.1.conv.conv.weight' has no timm name"):
        timm_state_dict(spec, {"blocks.0.1.conv.conv.weight": 0})  # a fused key in an ir stage
    with pytest.raises(SpecError, match=r"'blocks.3.0.dw.conv.weight' has no timm name"):
        timm_state_dict(spec, {"blocks.3.0.dw.conv.weight": 0})  # no fourth stage


def test_a_spec_timm_cannot_express_is_refused() -> None:
    with pytest.raises(SpecError, match="cn"):
        timm_state_dict(decode("stem16-fused_r1_k3_s1_e1_c16_se0.25-head32-cls10"), {})


def test_snippet_builds_the_arch_def_and_loads_strictly() -> None:
    spec = decode(GOLDEN["specs"]["mixed"]["arch"])
    text = timm_snippet(spec, "out/model.safetensors", resolution=64)
    compile(text, "snippet", "exec")  # valid Python
    assert "model.load_state_dict(load_file('out/model.safetensors'), strict=True)" in text
    assert "['er_r2_k3_s2_e4_c24_se0.25']," in text and "['ds_r2_k5_s1_e1_c32']," in text
    assert "stem_size=16," in text and "num_classes=10," in text
    assert "64 x 64" in text
