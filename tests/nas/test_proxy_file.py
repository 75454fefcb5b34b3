"""``--proxy FILE``: recipe fields that replace the default proxy's, in nas-search and
nas-validate alike; a bad file is one line and nothing created; a run continues only with the
same proxy."""

from __future__ import annotations

import json

import pytest

from nas.cli.search import main
from nas.run.proxy_file import apply_proxy_fields, read_proxy_fields
from proxy_train.errors import RecipeError
from proxy_train.recipe import Recipe


def _file(tmp_path, obj, name="proxy.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_a_search_trains_its_proxy_with_the_files_fields_over_the_cpu_default(tmp_path, tiny_args):
    proxy = _file(tmp_path, {"crop_area": 1.0, "ema_decay": 0.9, "lr": 0.05, "epochs": 7})
    out = tmp_path / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--proxy", proxy]) == 0
    recipe = json.loads((out / "run.json").read_text())["recipe"]
    assert (recipe["crop_area"], recipe["ema_decay"], recipe["lr"]) == (1.0, 0.9, 0.05)
    assert recipe["epochs"] == 1  # --epochs (tiny_args) still applies over the file
    assert recipe["resolution"] == 16  # and --proxy-resolution
    assert recipe["optimizer"] == Recipe.cpu_quick().optimizer  # the rest: the CPU default
    assert recipe["cpu_threads"] == 1  # the trial's threads


def test_a_run_continues_only_with_the_same_proxy(tmp_path, tiny_args, capsys):
    out = tmp_path / "run"
    first = _file(tmp_path, {"ema_decay": 0.9}, "a.json")
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--proxy", first]) == 0
    before = (out / "leaderboard.parquet").read_bytes()
    other = _file(tmp_path, {"ema_decay": 0.99}, "b.json")
    assert main(["--budget", "2", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--proxy", other]) == 2
    err = capsys.readouterr().err
    assert "proxy ema_decay was 0.9, now 0.99" in err
    assert main(["--budget", "2", "--executor", "inline", "--out", str(out), *tiny_args]) == 2
    assert "proxy" in capsys.readouterr().err  # nor without one
    assert (out / "leaderboard.parquet").read_bytes() == before


@pytest.mark.parametrize(("content", "message"), [
    (None, "is not a readable recipe JSON file"),
    ("{not json", "is not a readable recipe JSON file"),
    ([4], "must hold a JSON object of recipe fields"),
    ({}, "must hold a JSON object of recipe fields"),
    ({"epoch": 4}, "unknown recipe field ['epoch']"),
    ({"crop_area": 0}, "crop_area"),
])
def test_a_bad_proxy_file_is_one_line_and_nothing_is_created(tmp_path, tiny_args, capsys,
                                                               content, message):
    path = str(tmp_path / "missing.json") if content is None else _file(tmp_path, content)
    out = tmp_path / "run"
    assert main(["--budget", "1", "--executor", "inline", "--out", str(out), *tiny_args,
                 "--proxy", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --proxy ") and message in err and path in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_fields_replace_only_what_they_name_and_a_whole_recipe_replaces_all(tmp_path):
    base = Recipe.cpu_quick()
    some = apply_proxy_fields(base, read_proxy_fields(_file(tmp_path, {"epochs": 4})))
    assert some.epochs == 4 and some.replace(epochs=base.epochs) == base
    whole = Recipe(epochs=2, lr=0.3, crop_area=0.5)
    assert apply_proxy_fields(base, read_proxy_fields(_file(tmp_path, whole.to_dict()))) == whole
    assert apply_proxy_fields(base, None) is base
    with pytest.raises(RecipeError, match="--proxy"):
        read_proxy_fields(_file(tmp_path, {"batch_size": 0}))
