"""Contracts of ``search_space.space_files``: the shipped spaces, TOML/JSON files, dicts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search_space.errors import SpaceError
from search_space.space_files import SHIPPED_SPACES, load_space, space_from_dict, space_to_dict


def test_shipped_spaces_load_and_round_trip_through_dicts() -> None:
    assert SHIPPED_SPACES == ("paper", "v2s", "v2b0")
    for name in SHIPPED_SPACES:
        space = load_space(name)
        assert space.name == name and space.description
        as_json = json.loads(json.dumps(space_to_dict(space)))
        assert space_from_dict(as_json) == space
    paper = load_space("paper")
    assert paper.stem_channels == 48 and paper.head_channels == 1792
    assert [s.out_channels for s in paper.stages] == [24, 32, 56, 112, 160, 272, 448]
    assert [s.stride for s in paper.stages] == [1, 2, 2, 2, 1, 2, 1]
    assert [s.optional for s in paper.stages] == [False] * 6 + [True]


def test_load_from_toml_and_json_files(tmp_path: Path) -> None:
    toml = tmp_path / "mine.toml"
    toml.write_text(
        'stem_channels = 8\nhead_channels = 16\n[defaults]\nkernels = [3]\n'
        '[[stages]]\nout_channels = 8\nstride = 1\nlayers = 2\n'
        '[[stages]]\nout_channels = 16\nstride = 2\nlayers = [1, 3]\nblocks = ["mbconv"]\n'
        'optional = true\n'
    )
    space = load_space(toml)
    assert space.name == "mine" and space.stages[0].layers == (2, 2)
    assert space.stages[0].kernels == (3,) and space.stages[1].blocks == ("mbconv",)
    assert space.stages[1].expansions == (1, 4, 6) and space.stages[1].se_mbconv == (0.25,)
    js = tmp_path / "mine.json"
    js.write_text(json.dumps(space_to_dict(space)))
    assert load_space(str(js)) == space


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD_STAGE = '[[stages]]\nout_channels = 8\nstride = 1\nlayers = [1, 2]\n'
HEAD = 'stem_channels = 8\nhead_channels = 16\n'


@pytest.mark.parametrize("text, message", [
    (HEAD + GOOD_STAGE + "kernels = [3, 4]\n", r"stage 1: kernels: 4 must be an odd integer"),
    (HEAD + GOOD_STAGE + "kernel = [3]\n", "stage 1: unknown field 'kernel'; allowed: out_channels, stride, layers, blocks"),
    (HEAD + "[[stages]]\nstride = 1\nlayers = [1, 2]\n", "stage 1: missing field 'out_channels'"),
    (HEAD + GOOD_STAGE + "layers = [3, 1]\n", None),  # duplicate key: a TOML error
    ('stem_channels = 8\n' + GOOD_STAGE, "missing field 'head_channels'"),
    (HEAD + 'colour = "red"\n' + GOOD_STAGE, "unknown field 'colour'"),
    (HEAD + GOOD_STAGE.replace("[1, 2]", "[3, 1]"), r"stage 1: layers \[3, 1\] must satisfy"),
    (HEAD + GOOD_STAGE.replace("stride = 1", "stride = 3"), r"stage 1: stride 3 not in \(1, 2\)"),
    (HEAD + GOOD_STAGE + 'blocks = ["fused", "conv"]\n', "stage 1: blocks: 'conv' is not a block"),
    (HEAD + GOOD_STAGE + "se_mbconv = [1.5]\n", r"se_mbconv: 1.5 must be a number in \[0, 1\]"),
    (HEAD + GOOD_STAGE + "expansions = 4\n", "stage 1: expansions 4 must be a list"),
    (HEAD + GOOD_STAGE + "optional = true\n" + GOOD_STAGE,
     "stage 1: optional is not allowed; the first stage is always kept"),
    (HEAD + GOOD_STAGE + GOOD_STAGE + "optional = true\n" + GOOD_STAGE,
     "stage 2: optional but stage 3 is not; only trailing stages may be optional"),
    (HEAD + "stages = []\n", "stages must be a non-empty list"),
    ("stem_channels = 8\nhead_channels = 0\n" + GOOD_STAGE, "head_channels 0 must be an integer"),
])
def test_bad_space_files(tmp_path: Path, text: str, message: str | None) -> None:
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert str(info.value).startswith(path + ": ")
    if message is None:
        assert "invalid TOML" in str(info.value) and "line 7" in str(info.value)
    else:
        assert re.search(message, str(info.value)), str(info.value)


def test_file_and_name_errors(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match=r"unknown space 'v3'; shipped spaces: \['paper', "):
        load_space("v3")
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "missing.toml")
    # A missing ':' is at one place whatever the parser; json words it differently across
    # Python versions, so only our part of the message and the position are checked.
    bad = _write(tmp_path, "bad.json", '{"stem_channels": 8,\n "stages" []}')
    with pytest.raises(SpaceError) as info:
        load_space(bad)
    assert re.fullmatch(rf"{re.escape(bad)}: invalid JSON: .+ \(at line 2, column 11\)",
                        str(info.value)), str(info.value)
    with pytest.raises(SpaceError, match="must end in .toml or .json"):
        load_space(_write(tmp_path, "space.yaml", "a: 1"))
    with pytest.raises(SpaceError, match="expected a table/object at the top"):
        load_space(_write(tmp_path, "list.json", "[1, 2]"))
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(SpaceError, match="cannot read space file"):
        load_space(tmp_path / "dir.toml")
