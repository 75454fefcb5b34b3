"""``nas-arch`` called in-process, and ``resolve_arch`` (the CLI's input boundary)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from nas.cli.arch import main
from search_space.codec import decode, encode, spec_hash, to_dict, to_json
from search_space.cost import count_macs, count_params
from search_space.errors import SpecError
from search_space.presets import get_preset
from search_space.resolve import resolve_arch

TINY = "stem8-fused_r1_k3_s1_e1_c8-mbconv_r2_k5_s2_e4_c16_se0.25-head32-cls10"
V2_S = get_preset("efficientnetv2-s").spec


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- resolve_arch


def test_resolve_preset_string_and_alias() -> None:
    assert resolve_arch("efficientnetv2-s") == V2_S
    assert resolve_arch("v2-s") == V2_S
    assert resolve_arch(encode(V2_S)) == V2_S
    assert resolve_arch(f"  {TINY}\n") == decode(TINY)


def test_resolve_json_files(tmp_path: Path) -> None:
    spec = decode(TINY)
    plain = tmp_path / "spec.json"
    plain.write_text(to_json(spec))
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"arch": TINY, "accuracy": 0.5}))
    nested = tmp_path / "row.json"
    nested.write_text(json.dumps({"spec": to_dict(spec), "arch": TINY, "reward": 1.0}))
    for path in (plain, best, nested):
        assert resolve_arch(str(path)) == spec


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"accuracy": 1}', "has no architecture"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"arch": 5}', "field 'arch' must be a string"),
        ('{"arch": "stem8-x"}', "missing 'cls<N>' at the end"),
        ('{"spec": {"schema_version": 1}}', "missing field 'stem_channels'"),
        (json.dumps({"spec": to_dict(decode(TINY)), "arch": encode(V2_S)}),
         "fields 'spec' and 'arch' describe different architectures"),
    ],
)
def test_resolve_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        resolve_arch(str(path))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_resolve_invalid_json_names_the_position(tmp_path: Path) -> None:
    # The missing ':' is at one place whatever the parser; only our part of the message and
    # the position are checked, not the json module's wording, which varies across Pythons.
    path = tmp_path / "bad.json"
    path.write_text('{"arch" "x"}')
    with pytest.raises(SpecError) as info:
        resolve_arch(str(path))
    assert re.fullmatch(rf"{re.escape(repr(str(path)))}: invalid JSON: .+ at line 1 column 9",
                        str(info.value)), str(info.value)


def test_resolve_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^'foo' is not a preset, a file or an architecture string; "
                                        r"presets: \[.*'efficientnetv2-s'.*\]$"):
        resolve_arch("foo")
    with pytest.raises(SpecError, match="not found"):
        resolve_arch(str(tmp_path / "missing.json"))
    with pytest.raises(SpecError, match="is not a regular file"):
        resolve_arch(str(tmp_path))
    with pytest.raises(SpecError, match="empty architecture reference"):
        resolve_arch("  ")
    # A string longer than a file name may be is still parsed as a string.
    long = decode("stem8-" + "-".join(["fused_r1_k3_s1_e1_c8"] * 20) + "-head16-cls2")
    assert len(encode(long)) > 255 and resolve_arch(encode(long)) == long


# --------------------------------------------------------------------------- show


def test_show_preset_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "efficientnetv2-s")
    assert code == 0 and err == ""
    assert "21,458,488" in out  # total params, thousands separators
    assert "8.366G" in out  # MACs at the preset's eval size, 384
    assert "resolution   384" in out
    assert encode(V2_S) in out and spec_hash(V2_S) in out
    lines = out.splitlines()
    assert lines[0].split() == ["stage", "block", "layers", "k", "e", "se", "channels", "stride",
                                "out", "params", "MACs"]
    stage6 = next(line for line in lines if line.startswith("stage6"))
    assert stage6.split()[:9] == ["stage6", "mbconv", "15", "3", "6", "0.25", "160->256", "2", "12"]
    assert "14,561,832" in stage6
    assert any(line.startswith("stem") and "3->24" in line and "696" in line for line in lines)
    assert any(line.startswith("head") and "256->1280" in line and "330,240" in line for line in lines)


def test_show_preset_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "efficientnetv2-s", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["params"] == 21_458_488
    assert report["macs"] == pytest.approx(8.366e9, rel=0.005)
    assert report["resolution"] == 384
    assert report["num_classes"] == 1000
    assert report["arch"] == encode(V2_S)
    assert report["hash"] == spec_hash(V2_S)
    assert report["spec"] == to_dict(V2_S)
    assert report["activation_bytes"] > 0
    names = [row["stage"] for row in report["stages"]]
    assert names == ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "head",
                     "classifier"]
    assert [row["params"] for row in report["stages"][1:7]] == [
        10_464, 303_552, 589_184, 917_680, 3_463_840, 14_561_832]
    assert sum(row["params"] for row in report["stages"]) == report["params"]
    assert sum(row["macs"] for row in report["stages"]) == report["macs"]
    stage4 = report["stages"][4]
    assert {k: stage4[k] for k in ("block", "layers", "kernel", "expansion", "in_channels",
                                   "out_channels", "stride", "se_ratio", "out_size")} == {
        "block": "mbconv", "layers": 6, "kernel": 3, "expansion": 4, "in_channels": 64,
        "out_channels": 128, "stride": 2, "se_ratio": 0.25, "out_size": 24}


def test_show_string_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", TINY, "--resolution", "32", "--num-classes", "5", "--json")
    assert code == 0
    report = json.loads(out)
    spec = decode(TINY.replace("cls10", "cls5"))
    assert report["arch"] == encode(spec)
    assert report["resolution"] == 32
    assert report["num_classes"] == 5
    assert report["params"] == count_params(spec)
    assert report["macs"] == count_macs(spec, 32)


def test_show_string_default_resolution_224(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", TINY)
    assert code == 0
    assert "resolution   224  (10 classes)" in out
    assert f"{count_params(decode(TINY)):,}" in out


def test_show_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"arch": TINY, "reward": 0.1}))
    code, out, _ = run(capsys, "show", str(path), "--resolution", "64", "--json")
    assert code == 0
    assert json.loads(out)["arch"] == TINY


# --------------------------------------------------------------------------- sample


def test_sample_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run(capsys, "sample", "--space", "paper", "--n", "4", "--seed", "7")
    code, again, _ = run(capsys, "sample", "--space", "paper", "--n", "4", "--seed", "7")
    _, other, _ = run(capsys, "sample", "--space", "paper", "--n", "4", "--seed", "8")
    assert code == 0
    lines = first.splitlines()
    assert len(lines) == 4
    assert first == again
    assert first != other
    for line in lines:
        assert encode(decode(line)) == line


def test_sample_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sample", "--space", "v2s", "--n", "3", "--seed", "0",
                       "--num-classes", "10", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    for row in rows:
        spec = decode(row["arch"])
        assert spec.num_classes == 10
        assert row["hash"] == spec_hash(spec)
        assert row["params"] == count_params(spec)


# --------------------------------------------------------------------------- export


def test_export_timm(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", "efficientnetv2-s", "--format", "timm")
    assert code == 0
    assigned: dict[str, object] = {}
    for node in ast.parse(out).body:
        assert isinstance(node, ast.Assign)
    exec(out, {"__builtins__": {"int": int}}, assigned)  # plain literals, and int by name
    assert assigned["arch_def"] == [
        ["cn_r2_k3_s1_e1_c24_skip"],
        ["er_r4_k3_s2_e4_c48"],
        ["er_r4_k3_s2_e4_c64"],
        ["ir_r6_k3_s2_e4_c128_se0.25"],
        ["ir_r9_k3_s1_e6_c160_se0.25"],
        ["ir_r15_k3_s2_e6_c256_se0.25"],
    ]
    assert assigned["kwargs"] == {"stem_size": 24, "fix_stem": True, "round_chs_fn": int,
                                  "num_features": 1280, "num_classes": 1000}


def test_export_timm_refuses_what_timm_cannot_build(capsys: pytest.CaptureFixture[str]) -> None:
    arch = "stem32-mbconv_r2_k3_s1_e1_c18_se0.25-mbconv_r2_k3_s2_e6_c22_se0.25-head64-cls10"
    code, out, err = run(capsys, "export", arch, "--format", "timm")
    assert code == 2 and out == ""
    assert err == ("error: stage 2: not expressible in timm: timm rounds a block's mid width to "
                   "a multiple of 8, and in_channels 18 x expansion 6 = 108 would become 112\n")


def test_export_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", TINY, "--format", "json")
    assert code == 0
    assert out == to_json(decode(TINY)) + "\n"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "stem8-fused_r1_k3_s1_e1_c8_q5-head32-cls10"],
         "error: stage 1: unknown token 'q5'; expected keys r, k, s, e, c, se"),
        (["show", "efficientnetv2-q"], "error: 'efficientnetv2-q' is not a preset, a file or an "
                                       "architecture string; presets: ["),
        (["show", "missing/best.json"], "error: architecture file 'missing/best.json' not found"),
        (["show", TINY, "--resolution", "0"], "error: --resolution 0 must be >= 1"),
        (["show", TINY, "--resolution", "-3"], "error: --resolution -3 must be >= 1"),
        (["show", TINY, "--num-classes", "0"], "error: --num-classes 0 must be >= 1"),
        (["sample", "--space", "paper", "--n", "0"], "error: --n 0 must be >= 1"),
        (["sample", "--space", "no-such-space"], "error: "),
        (["export", "stem8-fused_r1_k3_s1_e1_c8_se0.25-head32-cls10", "--format", "timm"],
         "error: stage 1: fused e1 with se_ratio 0.25 is not expressible in timm"),
    ],
)
def test_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1 and "Traceback" not in err


# What argparse says around them ("the following arguments are required", "invalid choice")
# is its own wording and varies across Python versions: each case names only the parts that are
# ours or the user's (the argument, the value, the hint) that the line must hold.
@pytest.mark.parametrize(
    ("argv", "parts"),
    [([], ("COMMAND", "(see nas-arch --help)")),
     (["show"], ("SPEC", "(see nas-arch show --help)")),
     (["show", "-{}]r6"], ("SPEC; '-{}]r6' was read as an option: put -- before it",)),
     (["show", "--", "-{}]r6"], ("'-{}]r6' is not a preset, a file or an architecture string",)),
     (["frobnicate"], ("COMMAND", "'frobnicate'", "(see nas-arch --help)")),
     (["show", TINY, "--resolution", "abc"], ("--resolution", "'abc'")),
     (["export", TINY, "--format", "tflite"], ("--format", "'tflite'"))],
)
def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                               argv: list[str], parts: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and all(part in err for part in parts), err
    assert err.count("\n") == 1 and "usage:" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "show" in out and "sample" in out and "export" in out
