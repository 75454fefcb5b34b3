"""The command layer as a user meets it, the same for every command: ``--version``, ``--help``,
closed pipes, progress in log files, long values in errors."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from nas.cli import arch, scale, search, train, validate
from nas.cli.command import CLOSED_PIPE_STATUS
from nas.cli.parser import DefaultsFormatter
from nas.run.interrupt import Interrupted

REPO = Path(__file__).resolve().parents[2]
TRAIN_ARCH = "stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10"
TRAIN_DATA = "synthetic:classes=3,per_class=20,test_per_class=4,resolution=24"

MAINS: dict[str, Callable[[list[str] | None], int]] = {
    "nas-arch": arch.main, "nas-search": search.main, "nas-scale": scale.main,
    "nas-train": train.main, "nas-validate": validate.main}


@pytest.mark.parametrize("prog", list(MAINS))
def test_version_prints_the_package_version(prog: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[prog](["--version"]) == 0
    assert capsys.readouterr().out == f"{prog} {metadata.version('effnas')}\n"


def _first_line_then_close(argv: list[str]) -> tuple[str, int, str]:
    """Run a command with stdout to a pipe, read one line and close the pipe, as
    ``COMMAND | head -1`` does; the line, the exit status and stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        proc.stdout.close()
        status = proc.wait(timeout=300)
        return line, status, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BIG = "stem8-" + "-".join(["fused_r1_k3_s1_e1_c8"] * 900) + "-head16-cls2"  # 150 kB of JSON


@pytest.mark.parametrize("argv", [
    ["nas.cli.arch", "sample", "--space", "paper", "--n", "2000"],
    ["nas.cli.arch", "export", BIG, "--format", "json"],
])
def test_a_closed_pipe_ends_the_command_quietly(argv: list[str]) -> None:
    line, status, err = _first_line_then_close(argv)
    assert line.strip()
    assert (status, err) == (CLOSED_PIPE_STATUS, "")


def test_progress_in_a_log_file_is_lines_not_bar_frames(
        tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """stderr here is no terminal (captured), as a log file is."""
    args = [a for a in tiny_args if a != "--no-progress"]
    assert search.main(["--budget", "1", "--executor", "inline", "--objective", "surrogate",
                        "--out", str(tmp_path / "search"), *args]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err
    assert re.search(r"^candidates: 1/1, [0-9:]+ elapsed, about [0-9:]+ left "
                     r"\(ok=1 failed=0 best=[0-9.]+\)$", err, re.M), err
    # one of a kind is singular
    assert "\n1 candidate: 1 ok, 0 failed, 0 stopped\n" in out
    assert "\n1 candidate (1 ok, 0 failed) in " in out
    assert train.main(["--arch", TRAIN_ARCH, "--data", TRAIN_DATA, "--hardware", "cpu",
                       "--batch-size", "16", "--epochs", "2", "--stages", "1",
                       "--out", str(tmp_path / "train")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    epochs = re.findall(r"^epoch (\d)/2 stage 1/1 24px: \d+/\d+ steps, [0-9:]+ elapsed, about "
                        r"[0-9:]+ left \(loss=[0-9.]+ top1=[0-9.]+ ema=[0-9.]+\)$", err, re.M)
    assert epochs == ["1", "2"], err


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = {"nas-search": search.build_parser(), "nas-scale": scale.build_parser(),
               "nas-train": train.build_parser(), "nas-validate": validate.build_parser()}
    top = arch._parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    parsers.update({f"nas-arch {name}": sub for name, sub in commands.choices.items()})
    return parsers


@pytest.mark.parametrize(("prog", "parser"), list(_parsers().items()))
def test_help_gives_every_option_a_text_and_its_default(prog: str,
                                                        parser: argparse.ArgumentParser) -> None:
    formatter = DefaultsFormatter(prog)
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{prog} {name} has no help"
        flag = isinstance(action, argparse._StoreTrueAction) or action.nargs == 0
        if action.option_strings and not action.required and not flag:
            assert "default" in formatter._get_help_string(action), f"{prog} {name}"
    text = parser.format_help()
    assert text.count("--version") == 2  # in the usage line and in the help


def test_help_lists_what_a_user_sets_first_on_top(capsys: pytest.CaptureFixture[str]) -> None:
    assert search.main(["--help"]) == 0
    text = capsys.readouterr().out
    titles = re.findall(r"^(\S[^:\n]*):$", text, re.M)
    assert titles == ["what to search", "proxy training and step timing", "reward and limits",
                      "where it runs", "after the search, and output", "general"]
    for option in ("--cpus-per-trial", "--gpus-per-trial", "--seed"):
        help_text = text.split(f"  {option} ", 1)[1].split("\n  --", 1)[0]
        assert "default: " in " ".join(help_text.split()), option


def test_one_of_a_kind_is_singular(capsys: pytest.CaptureFixture[str]) -> None:
    from nas.train.config import TrainConfig
    from nas.train.plan import make_plan, spec_model
    from search_space.codec import decode

    config = TrainConfig(arch=TRAIN_ARCH, out="unused", epochs=10, stages=1)
    plan = make_plan(config, spec_model(decode(TRAIN_ARCH)), 24, cuda=False)
    assert ", warm-up 1 epoch, then cosine to 0" in plan.notes[-1]
    assert arch.main(["show", TRAIN_ARCH, "--num-classes", "1"]) == 0
    assert "resolution   224  (1 class)" in capsys.readouterr().out


def test_the_readme_installs_extras_from_the_clone() -> None:
    """The project is on no package index: ``pip install "effnas[dashboard]"`` finds nothing."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    readme = (REPO / "README.md").read_text()
    assert not re.search(r"pip install ['\"]?effnas", readme)
    named = re.findall(r"pip install -e ['\"]\.\[([a-z,]+)\]['\"]", readme)
    assert {"dashboard", "onnx"} <= {e for group in named for e in group.split(",")}
    assert all(e in extras for group in named for e in group.split(","))


def test_an_interrupt_without_a_count_says_what_the_run_folder_holds(
        run_copy: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C cuts the first one's clean stop short: the interrupt that ends the
    command carries no count of the rows saved, and the line reads it from the run folder."""
    def second_ctrl_c(*args: object, **kwargs: object) -> None:
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr("nas.search.run.run_search", second_ctrl_c)
    args = ["--budget", "3", "--executor", "inline", "--out", str(run_copy), *tiny_args]
    assert search.main(args) == 130
    assert capsys.readouterr().err == (
        f"interrupted by SIGINT: 1 of 3 candidates is saved in "
        f"{run_copy / 'leaderboard.parquet'}; run the same command with --out {run_copy} to "
        "continue\n")
    empty = run_copy.parent / "empty"
    assert search.main([*args[:4], "--out", str(empty), *tiny_args]) == 130
    assert capsys.readouterr().err == ("interrupted by SIGINT during set-up: nothing was "
                                       "written; run the command again\n")


ABSURD = "stem8-fused_r1_k3_s1_e1_c99999999999999999999-head32-cls10"


@pytest.mark.parametrize(("prog", "argv"), [
    ("nas-arch", ["show", ABSURD]),
    ("nas-arch", ["export", ABSURD, "--format", "onnx", "--out", "{out}"]),
    ("nas-scale", ["--base", ABSURD, "--target", "M", "--out", "{out}"]),
    ("nas-train", ["--arch", ABSURD, "--hardware", "cpu", "--out", "{out}"]),
    ("nas-search", ["--budget", "1", "--hardware", "cpu", "--reference", ABSURD,
                    "--out", "{out}"]),
])
def test_absurd_sizes_are_refused_up_front(prog: str, argv: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert MAINS[prog]([a.replace("{out}", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err == ("error: stage 1: out_channels 99,999,999,999,999,999,999 is above the "
                   "largest width any command takes, 65,536\n")
    assert not out.exists()


LONG = "a" * 10_000


@pytest.mark.parametrize(("prog", "argv"), [
    ("nas-arch", ["show", LONG]),
    ("nas-arch", ["show", "-" + LONG]),
    ("nas-search", ["--budget", LONG, "--hardware", "cpu"]),
    ("nas-search", ["--budget", "1", "--hardware", "cpu", "--out", "{tmp}/" + LONG]),
    ("nas-scale", ["--base", LONG, "--target", "M"]),
    ("nas-train", ["--arch", "stem" + LONG]),
    ("nas-train", ["--arch", "v2-b0", "--recipe", LONG]),
    ("nas-validate", [LONG]),
])
def test_a_long_argument_is_cut_in_the_error(prog: str, argv: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[prog]([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err[:300]
    assert len(err) < 600 and " characters)" in err, err[:300]
