"""Trackers never fail or slow a job: each runs on a thread of its own, a failure is one
warning, a tracker that stops answering is left behind when the job ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nas.track import guard
from nas.track.base import FAILED, RunInfo, check_trackers, finite_metrics
from nas.track.guard import open_trackers
from nas.track.jobs import tau_metrics

INFO = RunInfo(kind="search", name="search x", key="k", folder=Path("."))


class Recording:
    """A tracker that records its calls; fails at the call named ``fail_at``."""

    def __init__(self, fail_at: str | None = None, block: threading.Event | None = None):
        self.calls: list[tuple[str, Any]] = []
        self.fail_at = fail_at
        self.block = block

    def _call(self, name: str, value: Any = None) -> None:
        if self.block is not None:
            self.block.wait()
        if name == self.fail_at:
            raise OSError("store not writable\nsecond line")
        self.calls.append((name, value))

    def start_run(self, info: RunInfo) -> None:
        self._call("start_run", info.key)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._call("log_params", dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._call("log_metrics", (dict(metrics), step))

    def log_artifact(self, path: Path) -> None:
        self._call("log_artifact", path)

    def child_run(self, info: RunInfo) -> Recording:
        self._call("child_run", info.key)
        return self

    def close(self, status: str = "FINISHED") -> None:
        self._call("close", status)


def test_calls_run_in_order_on_the_trackers_thread() -> None:
    made: dict[str, Recording] = {}

    def make(name: str) -> Recording:
        made[name] = Recording()
        return made[name]

    trackers = open_trackers(["mlflow", "tensorboard", "mlflow"], INFO, make=make)
    assert trackers.names == ["mlflow", "tensorboard"]  # each once
    trackers.submit(lambda t: t.log_metrics({"a": 1.0}, step=3))
    trackers.close(FAILED)
    for tracker in made.values():
        assert tracker.calls == [("start_run", "k"), ("log_metrics", ({"a": 1.0}, 3)),
                                 ("close", FAILED)]


def test_a_failing_tracker_warns_once_and_is_switched_off() -> None:
    said: list[str] = []
    failing = Recording(fail_at="log_metrics")
    trackers = open_trackers(["mlflow"], INFO, warn=said.append, make=lambda _: failing)
    for step in range(5):
        trackers.submit(lambda t, step=step: t.log_metrics({"a": 1.0}, step=step))
    trackers.close()
    assert said == ["warning: tracker mlflow stopped (OSError: store not writable); the job "
                    "goes on without it, its own files are the record"]
    assert failing.calls == [("start_run", "k")]  # nothing after the failure, not even close


def test_a_tracker_that_stops_answering_never_slows_the_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "STALL_S", 0.5)
    monkeypatch.setattr(guard, "START_S", 0.5)
    monkeypatch.setattr(guard, "SAY_AFTER_S", 10.0)
    said: list[str] = []
    gone = threading.Event()  # never set: a server that never answers
    trackers = open_trackers(["mlflow"], INFO, warn=said.append,
                             make=lambda _: Recording(block=gone))
    start = time.perf_counter()
    for step in range(1000):
        trackers.submit(lambda t, step=step: t.log_metrics({"a": 1.0}, step=step))
    assert time.perf_counter() - start < 0.5  # queued, not waited for
    trackers.close()
    assert time.perf_counter() - start < 5
    assert len(said) == 1
    assert said[0].startswith("warning: tracker mlflow did not answer for 0.5 s; ")
    gone.set()


def test_no_trackers_cost_nothing() -> None:
    trackers = open_trackers([], INFO)
    assert not trackers
    trackers.submit(lambda t: t.close())
    trackers.close()


def test_unknown_and_missing_trackers_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    assert check_trackers(("neptune",)) == [
        "unknown tracker 'neptune'; expected one of ['mlflow', 'wandb', 'tensorboard']"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert check_trackers(("wandb",)) == [
        "--tracker wandb needs the optional extra 'wandb' (module 'wandb' is not installed): "
        "pip install -e '.[wandb]' in the effnas clone"]


def test_a_missing_tracker_package_is_one_line_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    from nas.cli.search import main as search
    from nas.cli.train import main as train
    from nas.cli.validate import main as validate

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    out = tmp_path / "never"
    line = ("error: --tracker mlflow needs the optional extra 'mlflow' (module 'mlflow' is "
            "not installed): pip install -e '.[mlflow]' in the effnas clone\n")
    for main, args in ((search, ["--budget", "1", "--hardware", "cpu"]),
                       (train, ["--arch", "efficientnetv2-b0"]), (validate, [str(out)])):
        assert main([*args, "--out", str(out), "--tracker", "mlflow"]) == 2
        assert capsys.readouterr().err == line
    assert not out.exists()


def test_metrics_keep_finite_numbers_only() -> None:
    assert finite_metrics({"a": 1, "b": None, "c": float("nan"), "d": "x", "e": True,
                           "f": 2.5, "g": float("inf")}) == {"a": 1.0, "f": 2.5}


def test_tau_lines_as_metrics() -> None:
    stats = {"proxy_vs_long": {"n": 4, "tau": 0.5, "tau_ci": [0.1, 0.9], "rho": 0.6,
                               "rho_ci": [0.2, 0.9]},
             "params_vs_long": None,
             "best": {"n": 4, "proxy_best": {"long_rank": 2.0}, "search_best": None}}
    assert tau_metrics(stats) == {
        "proxy_vs_long.tau": 0.5, "proxy_vs_long.tau_low": 0.1, "proxy_vs_long.tau_high": 0.9,
        "proxy_vs_long.rho": 0.6, "proxy_vs_long.n": 4, "proxy_best.long_rank": 2.0}
