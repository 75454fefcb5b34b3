"""Write ``timm_keys.json``: timm's own state_dict keys and shapes for one spec per block type.

Run once, in an environment where timm is importable, from the repository root::

    PYTHONPATH=. /path/to/timm-venv/bin/python tests/search_space/golden/make_timm_keys.py

The keys come from timm's ``EfficientNet`` built from our ``arch_def`` export, not from our
key mapping, so the test that reads this file checks the mapping against timm itself.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path

warnings.simplefilter("ignore")  # torchvision's missing C extension

import timm  # noqa: E402
from timm.models._efficientnet_builder import decode_arch_def  # noqa: E402
from timm.models.efficientnet import EfficientNet  # noqa: E402
from torch import nn  # noqa: E402

from search_space.codec import decode  # noqa: E402
from search_space.export import timm_kwargs, to_timm  # noqa: E402

SPECS = {
    "cn": "stem16-fused_r2_k3_s2_e1_c16-head32-cls10",
    "er": "stem16-fused_r2_k3_s2_e4_c24-head32-cls10",
    "er_se": "stem16-fused_r2_k3_s2_e4_c24_se0.25-head32-cls10",
    "ir": "stem16-mbconv_r2_k3_s2_e4_c24-head32-cls10",
    "ir_se": "stem16-mbconv_r2_k3_s2_e4_c24_se0.25-head32-cls10",
    "ds": "stem16-mbconv_r2_k5_s1_e1_c16-head32-cls10",
    "ds_se": "stem16-mbconv_r2_k3_s2_e1_c24_se0.25-head32-cls10",
    "mixed": "stem16-fused_r2_k3_s1_e1_c16-fused_r2_k3_s2_e4_c24_se0.25-"
             "mbconv_r2_k3_s2_e4_c32_se0.25-mbconv_r2_k5_s1_e1_c32-head64-cls10",
}


def timm_keys(arch: str) -> list[str]:
    spec = decode(arch)
    model = EfficientNet(block_args=decode_arch_def(to_timm(spec)), **timm_kwargs(spec),
                         act_layer=nn.SiLU, norm_layer=partial(nn.BatchNorm2d, eps=1e-3))
    return [f"{key} {list(value.shape)}" for key, value in model.state_dict().items()]


def main() -> None:
    out = {"timm_version": timm.__version__,
           "specs": {name: {"arch": arch, "keys": timm_keys(arch)} for name, arch in SPECS.items()}}
    path = Path(__file__).with_name("timm_keys.json")
    path.write_text(json.dumps(out, indent=1) + "\n")  # one key per line: readable diffs
    print(f"wrote {path} (timm {timm.__version__})")


if __name__ == "__main__":
    main()
