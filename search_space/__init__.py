"""Architecture specs, their codec and cost model, presets and search spaces (torch-free,
except ``search_space.model`` and ``search_space.blocks``).

A search space is three ideas, one module each:

* ``search_space.space``: the space as frozen data (``SearchSpace``, ``StageChoices``);
* ``search_space.sampling``: what it allows (decisions, ``sample``, membership, ``mutate``,
  size, cost constraints);
* ``search_space.space_files``: reading and writing space files, and the shipped spaces
  (``load_space``; the data is in ``search_space/shipped_spaces/``).

There is no separate ``search_space.spaces`` facade: this package re-exports the public names
of all three, so ``from search_space import load_space, sample`` is the short form.
"""

from search_space.codec import decode, encode, from_dict, from_json, spec_hash, to_dict, to_json
from search_space.errors import ConstraintError, NasError, SpaceError, SpecError
from search_space.export import timm_kwargs, to_timm
from search_space.resolve import resolve_arch
from search_space.sampling import (
    Decision,
    Suggester,
    active_decisions,
    check_constraints,
    check_in_space,
    decisions,
    from_choices,
    mutate,
    sample,
    sample_within,
    space_size,
    to_choices,
)
from search_space.space import SearchSpace, StageChoices
from search_space.space_files import SHIPPED_SPACES, load_space, space_from_dict, space_to_dict
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
    "SearchSpace",
    "StageChoices",
    "SHIPPED_SPACES",
    "load_space",
    "space_from_dict",
    "space_to_dict",
    "Decision",
    "Suggester",
    "active_decisions",
    "check_constraints",
    "check_in_space",
    "decisions",
    "from_choices",
    "mutate",
    "sample",
    "sample_within",
    "space_size",
    "to_choices",
]
