"""The one model reference (``nas.cli.models``): every kind of reference, its errors, and the
same reference taken by every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas.cli.models import resolve_model
from proxy_train.model_file import save_model
from search_space.codec import encode, spec_hash, to_dict
from search_space.cost import count_params
from search_space.errors import SpecError
from search_space.model import build_model
from search_space.presets import get_preset
from search_space.spec import ArchSpec, StageSpec

S = get_preset("efficientnetv2-s")
TINY = ArchSpec(8, (StageSpec("fused", 1, 3, 1, 8, 2),
                    StageSpec("mbconv", 1, 3, 2, 16, 2, 0.25)), head_channels=32, num_classes=3)
WIDE = ArchSpec(8, (StageSpec("fused", 1, 3, 1, 8, 2),
                    StageSpec("mbconv", 1, 3, 2, 24, 2, 0.25)), head_channels=32, num_classes=3)


def _search(run_dir: Path) -> Path:
    """A run folder whose leaderboard ranks WIDE first, TINY second."""
    from results.leaderboard import Leaderboard

    board = Leaderboard(run_dir)
    for i, (spec, reward) in enumerate(((TINY, 0.4), (WIDE, 0.6))):
        board.append({"run_id": "t", "trial_id": i, "number": i, "arch": encode(spec),
                      "arch_hash": spec_hash(spec), "spec_json": json.dumps(to_dict(spec)),
                      "strategy": "random", "objective": "train", "status": "ok",
                      "params": count_params(spec), "reward": reward})
    board.flush()
    return run_dir


def _model_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    weights = build_model(TINY).state_dict()
    return save_model(folder / "model.pt", TINY, num_classes=3, eval_size=40, model=weights)


def test_presets_strings_and_files() -> None:
    model = resolve_model("v2-s")
    assert (model.spec, model.name, model.source) == (S.spec, "efficientnetv2-s",
                                                      "preset efficientnetv2-s")
    assert (model.train_size, model.eval_size, model.preset) == (300, 384, "efficientnetv2-s")
    as_string = resolve_model(encode(S.spec))  # a preset's spec is recognised as the preset
    assert (as_string.source, as_string.preset, as_string.eval_size) == (
        "arch string", "efficientnetv2-s", 384)
    plain = resolve_model(encode(TINY))
    assert (plain.name, plain.preset, plain.eval_size) == ("base", None, None)


def test_a_json_file_with_sizes(tmp_path: Path) -> None:
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"arch": encode(TINY), "train_size": 32, "eval_size": 40}))
    model = resolve_model(str(best))
    assert (model.spec, model.name, model.source) == (TINY, "best", f"file {best}")
    assert (model.train_size, model.eval_size) == (32, 40)
    best.write_text(json.dumps({"arch": encode(TINY), "eval_size": 0}))
    with pytest.raises(SpecError, match="eval_size 0 must be an integer >= 1"):
        resolve_model(str(best))


def test_a_search_by_folder_or_leaderboard_and_rank(tmp_path: Path) -> None:
    run = _search(tmp_path / "run")
    assert resolve_model(str(run)).spec == WIDE
    second = resolve_model(str(run / "leaderboard.parquet"), rank=2)
    assert (second.spec, second.name) == (TINY, "rank 2")
    assert second.source.startswith(f"leaderboard {run / 'leaderboard.parquet'} rank 2")
    with pytest.raises(SpecError, match="rank 3 is out of range"):
        resolve_model(str(run), rank=3)
    with pytest.raises(SpecError, match="is a folder without a leaderboard.parquet"):
        resolve_model(str(tmp_path))


def test_a_model_file_and_its_folder(tmp_path: Path) -> None:
    path = _model_file(tmp_path / "train")
    for ref in (path, path.parent):
        model = resolve_model(str(ref))
        assert (model.spec, model.eval_size) == (TINY, 40)
        assert model.trained is not None and model.trained.num_classes == 3
    with pytest.raises(SpecError, match="--num-classes 5 does not match the model file's 3"):
        resolve_model(str(path), num_classes=5)


def test_a_scale_output_and_its_target(tmp_path: Path) -> None:
    from nas.cli.scale import main as scale

    report = tmp_path / "scaled.json"
    assert scale(["--base", "efficientnetv2-s", "--target", "M,L", "--out", str(report)]) == 0
    large = resolve_model(str(report), target="l")
    assert large.name == "L" and large.progressive is not None and large.eval_size == 480
    with pytest.raises(SpecError, match=r"holds several models \['M', 'L'\]: choose one with "
                                        r"--target \(or --target base\)"):
        resolve_model(str(report))
    with pytest.raises(SpecError, match=r"holds several models \['M', 'L'\]: give one of them"):
        resolve_model(str(report), target_option=None)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rank": 2}, "--rank 2 picks a row of a search's leaderboard; 'efficientnetv2-s' is not one"),
    ({"target": "L"}, "--target 'L' picks a model of a nas-scale output; 'efficientnetv2-s' is "
                      "not one"),
    ({"rank": 0}, "--rank 0 must be a whole number >= 1"),
    ({"num_classes": 0}, "--num-classes 0 must be >= 1"),
])
def test_options_that_do_not_apply_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        resolve_model("efficientnetv2-s", **kwargs)


def test_every_command_takes_a_search_and_a_model_file(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli.arch import main as arch
    from nas.cli.scale import main as scale
    from nas.cli.train import train_model
    from nas.train.config import TrainConfig

    run = _search(tmp_path / "run")
    trained = _model_file(tmp_path / "train")
    assert arch(["show", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == encode(WIDE)
    assert arch(["show", str(trained.parent), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 40  # the model file's eval size
    out = tmp_path / "scaled.json"
    assert scale(["--base", str(trained), "--target", "M", "--out", str(out)]) == 0
    assert f"model file {trained}" in out.read_text()
    model = train_model(TrainConfig(arch=str(run), out=str(tmp_path / "t"), rank=2))
    assert (model.spec, model.name) == (TINY, "rank 2")
