"""The cheapest spec of a space, against a listing of every spec."""

from __future__ import annotations

import itertools

from search_space.bounds import smallest_cost
from search_space.cost import count_macs, count_params
from search_space.sampling import decisions, from_choices
from search_space.space_files import space_from_dict


def test_smallest_cost_is_the_minimum_over_every_spec_of_the_space() -> None:
    space = space_from_dict({
        "name": "tiny", "stem_channels": 8, "head_channels": 32,
        "defaults": {"kernels": [3, 5], "expansions": [1, 4], "se_mbconv": [0.0, 0.25]},
        "stages": [
            {"out_channels": 8, "stride": 1, "layers": [1, 2], "blocks": ["fused", "mbconv"]},
            {"out_channels": 16, "stride": 2, "layers": [1, 2], "blocks": ["fused", "mbconv"]},
            {"out_channels": 64, "stride": 2, "layers": 1, "blocks": ["mbconv"],
             "optional": True},
        ],
    })
    specs = set()
    names = [d.name for d in decisions(space)]
    for values in itertools.product(*(d.choices for d in decisions(space))):
        specs.add(from_choices(space, dict(zip(names, values)), num_classes=7))
    assert len(specs) > 100
    assert smallest_cost(space, 7, 32) == (min(count_params(s) for s in specs),
                                           min(count_macs(s, 32) for s in specs))
