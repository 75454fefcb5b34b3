"""Contracts of ``search_space.space``: a space definition is checked frozen data."""

from __future__ import annotations

import pytest

from search_space.errors import SpaceError
from search_space.space import StageChoices


def test_definition_validation_in_python() -> None:
    with pytest.raises(SpaceError, match=r"kernels \[3, 3\] has duplicates"):
        StageChoices(8, 1, ("fused",), (1, 2), kernels=(3, 3))
    with pytest.raises(SpaceError, match="layers 3 must be a pair"):
        StageChoices(8, 1, ("fused",), 3)  # type: ignore[arg-type]
    stage = StageChoices(8, 1, ["mbconv"], [1, 2], se_mbconv=[0, 1])  # type: ignore[arg-type]
    assert stage.blocks == ("mbconv",) and stage.se_mbconv == (0.0, 1.0)
