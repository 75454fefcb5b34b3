from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from search_space.checks import check_keys, is_int, is_number
from search_space.errors import NasError, SpaceError, SpecError


@pytest.mark.parametrize("value", [0, 1, -3, 10**30])
def test_is_int_accepts_ints(value: object) -> None:
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, np.int64(1)])
def test_is_int_rejects_the_rest(value: object) -> None:
    assert not is_int(value)


@pytest.mark.parametrize("value", [0, -2, 0.25, 1e300, np.float64(0.5), np.int32(3),
                                   Fraction(1, 4)])
def test_is_number_accepts_finite_reals(value: object) -> None:
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "0.5", None,
                                   1j, np.bool_(True)])
def test_is_number_rejects_the_rest(value: object) -> None:
    assert not is_number(value)


def test_check_keys_passes_a_good_mapping() -> None:
    check_keys({"a": 1, "b": 2}, ("a", "b", "c"), ("a",))


def test_check_keys_names_the_unknown_key_and_the_allowed_ones() -> None:
    with pytest.raises(SpecError, match=r"^stages\[2\]: unknown field 'x'; allowed: a, b$"):
        check_keys({"a": 1, "x": 2}, ("a", "b"), where="stages[2]", error=SpecError)


def test_check_keys_names_the_missing_key_and_the_required_ones() -> None:
    with pytest.raises(SpaceError, match=r"^missing field 'b'; required: a, b$"):
        check_keys({"a": 1}, ("a", "b"), ("a", "b"), error=SpaceError)


def test_check_keys_reports_unknown_before_missing_and_defaults_to_nas_error() -> None:
    with pytest.raises(NasError, match="unknown field 'z'"):
        check_keys({"z": 1}, ("a",), ("a",))
