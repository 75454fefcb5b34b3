"""Architecture specs, their codec and cost model, presets and search spaces (torch-free,
except ``search_space.model``)."""

from search_space.errors import ConstraintError, NasError, SpaceError, SpecError
from search_space.spec import BLOCK_TYPES, FUSED, MBCONV, ArchSpec, BlockSpec, StageSpec
from search_space.codec import decode, encode, from_dict, from_json, spec_hash, to_dict, to_json
from search_space.export import timm_kwargs, to_timm
from search_space.resolve import resolve_arch

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
    "encode",
    "decode",
    "spec_hash",
    "to_dict",
    "from_dict",
    "to_json",
    "from_json",
    "to_timm",
    "timm_kwargs",
    "resolve_arch",
]
