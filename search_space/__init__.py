"""Architecture specs, their codec and cost model, presets and search spaces (torch-free,
except ``search_space.model``)."""

from search_space.errors import ConstraintError, NasError, SpaceError, SpecError
from search_space.spec import BLOCK_TYPES, FUSED, MBCONV, ArchSpec, BlockSpec, StageSpec

__all__ = [
    "ArchSpec",
    "BlockSpec",
    "StageSpec",
    "BLOCK_TYPES",
    "FUSED",
    "MBCONV",
    "NasError",
    "SpecError",
    "SpaceError",
    "ConstraintError",
]
