"""A search (trials on Ray, opening the cache by its path), nas-train and nas-validate on an
image folder on disk, all through one decoded cache; bad folders are one line and leave
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.cli.search import main as search_main
from nas.cli.train import main as train_main
from nas.cli.validate import main as validate_main
from proxy_train.datasets.example_folder import write_example_folder

from .conftest import TINY_ARGS

ARCH = "stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10"


def _args(data: str) -> list[str]:
    args = list(TINY_ARGS)
    args[args.index("--data") + 1] = data
    return args


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_folder(tmp_path_factory.mktemp("imgs") / "photos", classes=3,
                                per_class=8, test_per_class=2, seed=1)


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_search_train_and_validate_share_one_cache(folder: Path, cache_home: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EFFNAS_CACHE", str(cache_home / "inline"))
    data = f"folder:{folder}:resolution=32"
    run = tmp_path / "search"
    progress = [a for a in _args(data) if a != "--no-progress"]
    assert search_main(["--budget", "3", "--executor", "inline", "--out", str(run),
                        *progress]) == 0
    said = capsys.readouterr().err
    assert f"decoding 30 images of folder:{folder} at 32 px into {cache_home}" in said
    assert validate_main([str(run), "--k", "3", "--seeds", "1", "--long-seeds", "1",
                          "--epochs", "1", "--executor", "inline", "--cpus-per-job", "1"]) == 0
    said = capsys.readouterr().err
    assert "decoding" not in said and f"read from the cache {cache_home}" in said
    assert train_main(["--arch", ARCH, "--data", data, "--hardware", "cpu", "--batch-size",
                       "8", "--epochs", "1", "--recipe", "fixed", "--out",
                       str(tmp_path / "train")]) == 0
    assert "decoding" not in capsys.readouterr().err
    record = json.loads((tmp_path / "train" / "train.json").read_text())
    assert record["status"] == "finished" and record["data"]["test"] == 6
    assert len(list((cache_home / "inline").glob("folder-*"))) == 1


def test_ray_trials_map_the_cache_by_its_path(folder: Path, cache_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFNAS_CACHE", str(cache_home / "ray"))
    run = tmp_path / "search"
    assert search_main(["--budget", "1", "--executor", "ray", "--out", str(run),
                        *_args(f"folder:{folder}:resolution=32")]) == 0
    assert (run / "best.json").exists()  # written for an ok candidate only
    assert len(list((cache_home / "ray").glob("folder-*"))) == 1


@pytest.mark.parametrize("case", ["empty class", "unreadable"])
def test_a_bad_folder_is_one_line_and_nothing_is_created(case: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    monkeypatch.setenv("EFFNAS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "bad"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.jpg").write_bytes(b"garbage")
    if case == "empty class":
        (root / "c").mkdir()
    out = tmp_path / "run"
    code = search_main(["--budget", "1", "--executor", "inline", "--out", str(out),
                        *_args(f"folder:{root}:resolution=16")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert ("class folder has no images" if case == "empty class"
            else "mostly unreadable") in err[0]
    assert not out.exists()
    assert not [p for p in (tmp_path / "cache").glob("*px-*")]
