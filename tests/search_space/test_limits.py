"""The largest architecture any command takes (``search_space.limits``)."""

from __future__ import annotations

import pytest

from search_space.codec import decode
from search_space.errors import SpecError
from search_space.limits import MAX_PARAMS, check_size
from search_space.presets import PRESETS
from search_space.resolve import resolve_arch


def test_every_preset_is_far_within_the_limits() -> None:
    for preset in PRESETS.values():
        assert check_size(preset.spec) is preset.spec


@pytest.mark.parametrize(("arch", "message"), [
    ("stem8-fused_r1_k3_s1_e1_c99999999999999999999-head32-cls10",
     "stage 1: out_channels 99,999,999,999,999,999,999 is above the largest width any command "
     "takes, 65,536"),
    ("stem70000-fused_r1_k3_s1_e1_c8-head32-cls10", "stem: stem_channels 70,000 is above"),
    ("stem8-fused_r1_k3_s1_e1_c8-head32-cls99999999",
     "num_classes 99,999,999 is above the most classes any command takes, 1,000,000"),
    ("stem8-fused_r600_k3_s1_e1_c8-fused_r600_k3_s1_e1_c8-head32-cls10",
     "1,200 blocks are above the most any command takes, 1,000"),
    ("stem8-fused_r1_k99999_s1_e1_c64-head32-cls10",
     f"parameters are above the most any command takes, {MAX_PARAMS:,}"),
])
def test_absurd_sizes_are_refused_naming_the_limit(arch: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        check_size(decode(arch))
    assert message in str(info.value)
    with pytest.raises(SpecError, match="above"):
        resolve_arch(arch)  # what every command reads a spec with
