"""The largest architecture any command takes: beyond these limits a spec is a slip of the
keyboard (``c99999999999999999999``), not a model, and :func:`check_size` refuses it in one
line naming the limit, before anything is loaded, built or written.

The limits sit far above any real network (EfficientNetV2-XL: 640 channels in its widest
stage, 1,280 in its head, 104 blocks, 208M parameters), so that they never stand in the way
of a model one could train:

* widths (stem, every stage, head): at most :data:`MAX_CHANNELS`;
* classes: at most :data:`MAX_CLASSES`;
* blocks, all stages together: at most :data:`MAX_BLOCKS`;
* parameters (``search_space.cost``): at most :data:`MAX_PARAMS`, 40 GB of float32 weights.
"""

from __future__ import annotations

from search_space.cost import count_params
from search_space.errors import SpecError
from search_space.spec import ArchSpec

MAX_CHANNELS = 65_536
MAX_CLASSES = 1_000_000
MAX_BLOCKS = 1_000
MAX_PARAMS = 10_000_000_000

def check_size(spec: ArchSpec) -> ArchSpec:
    """``spec`` if it is within the limits above, else a ``SpecError`` naming the first limit
    it exceeds."""
    widths = [("stem", "stem_channels", spec.stem_channels)]
    widths += [(f"stage {i}", "out_channels", stage.out_channels)
               for i, stage in enumerate(spec.stages, start=1)]
    widths.append(("head", "head_channels", spec.head_channels))
    for where, name, value in widths:
        if value > MAX_CHANNELS:
            raise SpecError(f"{where}: {name} {value:,} is above the largest width any "
                            f"command takes, {MAX_CHANNELS:,}")
    if spec.num_classes > MAX_CLASSES:
        raise SpecError(f"num_classes {spec.num_classes:,} is above the most classes any "
                        f"command takes, {MAX_CLASSES:,}")
    if spec.num_blocks > MAX_BLOCKS:
        raise SpecError(f"{spec.num_blocks:,} blocks are above the most any command takes, "
                        f"{MAX_BLOCKS:,}")
    params = count_params(spec)
    if params > MAX_PARAMS:
        raise SpecError(f"{params:,} parameters are above the most any command takes, "
                        f"{MAX_PARAMS:,}")
    return spec


__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "MAX_CLASSES", "MAX_PARAMS", "check_size"]
