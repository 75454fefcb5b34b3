"""``bench/gpu_check.py``: its dry run stays runnable, and one step's failure or hang leaves
the other steps' figures in the report."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def python_step(gpu_check: ModuleType, name: str, code: str, timeout_s: float = 60.0):
    """A step that runs ``code`` (``SCRATCH`` is its scratch folder) and whose figures are
    the JSON it leaves in ``SCRATCH/<name>.json``."""
    def command(scratch: Path, allowed_s: float) -> list[str]:
        return [sys.executable, "-c", f"SCRATCH = {str(scratch)!r}\n{code}"]

    def read(scratch: Path, output: str) -> tuple[dict, list[str]]:
        figures = json.loads((scratch / f"{name}.json").read_text())
        return figures, [f"value {figures['value']}"]

    return gpu_check.Step(name, f"step {name}", command, timeout_s, read,
                          lambda f: f"value {f['value']}")


def writes(name: str, value: int) -> str:
    return (f"import json, pathlib\nprint('step {name} says hello')\n"
            f"pathlib.Path(SCRATCH, {name + '.json'!r}).write_text(json.dumps("
            f"{{'value': {value}}}))\n")


def ended(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` is gone or a zombie (killed, not yet reaped by its new
    parent), waiting up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_a_failing_or_hanging_step_leaves_the_others_figures(gpu_check: ModuleType,
                                                             tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"

    def unrunnable(scratch: Path, allowed_s: float) -> list[str]:
        raise ValueError("no such tool")

    steps = [
        python_step(gpu_check, "first", writes("first", 11)),
        gpu_check.Step("unrunnable", "step unrunnable", unrunnable, 10.0,
                       lambda s, o: ({}, []), str),
        python_step(gpu_check, "broken", "print('about to fail')\nraise SystemExit(3)"),
        python_step(gpu_check, "hung", (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(600)\n"), timeout_s=20.0),
        python_step(gpu_check, "silent", "print('no figures from me')"),
        python_step(gpu_check, "last", writes("last", 42)),
    ]
    out = tmp_path / "out"
    results = gpu_check.Check(steps, out, 600.0, "check", ["- header line"]).run()

    status = {r.name: r.status for r in results}
    assert status == {"first": "ok", "unrunnable": "failed", "broken": "failed",
                      "hung": "timed out", "silent": "ok", "last": "ok"}
    hung = next(r for r in results if r.name == "hung")
    assert hung.wall_s < hung.limit_s + 2 * gpu_check.KILL_GRACE_S + 1
    assert ended(int(pid_file.read_text())), "the hung step's child still runs"

    report = (out / "report.md").read_text()
    assert "value 11" in report and "value 42" in report
    assert "about to fail" in report  # a failed step's output is quoted
    assert "figures unreadable: FileNotFoundError" in report
    assert "could not run: ValueError: no such tool" in report
    record = json.loads((out / "figures.json").read_text())
    figures = {s["name"]: s["figures"] for s in record["steps"]}
    assert figures["first"] == {"value": 11} and figures["last"] == {"value": 42}
    assert figures["broken"] == {} and figures["hung"] == {}
    log = (out / "gpu_check.log").read_text()
    assert "step first says hello" in log and "=== step hung: " in log


def test_steps_past_the_budget_are_not_run_and_the_last_takes_what_is_left(
        gpu_check: ModuleType, tmp_path: Path) -> None:
    seen: list[float] = []

    def elastic(scratch: Path, allowed_s: float) -> list[str]:
        seen.append(allowed_s)
        return [sys.executable, "-c", "pass"]

    steps = [python_step(gpu_check, "a", writes("a", 1), timeout_s=10.0),
             python_step(gpu_check, "b", writes("b", 2), timeout_s=20.0),
             gpu_check.Step("c", "step c", elastic, 10.0, lambda s, o: ({}, []), str,
                            elastic=True)]
    results = gpu_check.Check(steps, tmp_path / "out", 60.0, "check", []).run()
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert [r.limit_s for r in results[:2]] == [10.0, 20.0]
    # The last, elastic step takes all the budget the others left unused.
    assert 40.0 < seen[0] <= 60.0

    tight = gpu_check.Check(steps[1:], tmp_path / "tight", 12.0, "check", []).run()
    assert [r.status for r in tight] == ["not run", "ok"]


def test_the_dry_run_runs_every_step(tmp_path: Path) -> None:
    """The rehearsal of the GPU check on the CPU, on a machine without Ray (as the GPU
    machine is): every step passes and leaves its figures."""
    site, mark = tmp_path / "no-ray", tmp_path / "ray-was-imported"
    (site / "ray").mkdir(parents=True)
    (site / "ray" / "__init__.py").write_text(
        f"open({str(mark)!r}, 'w').close()\nraise ImportError('no ray here')\n")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH"))
                                         if p)}
    out = tmp_path / "out"
    # A budget far above what the dry run needs (about a minute of one core): its steps'
    # limits scale with it, and a loaded machine is slow, not broken.
    proc = subprocess.run([sys.executable, "bench/gpu_check.py", str(out), "--dry-run",
                           "--budget-s", "3000"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=3600)
    report = (out / "report.md").read_text()
    assert proc.returncode == 0, report
    assert not mark.exists(), "a step imported ray"
    steps = {s["name"]: s for s in json.loads((out / "figures.json").read_text())["steps"]}
    assert list(steps) == ["environment", "tests", "search", "timm", "per_hour", "fidelity"]
    assert all(s["status"] == "ok" for s in steps.values())
    assert steps["environment"]["figures"]["packages"]["optuna"] != "missing"
    tests = steps["tests"]["figures"]
    assert tests["passed"] >= 7 and tests["failed"] == tests["error"] == 0
    assert steps["search"]["figures"]["finished"] == 2
    assert steps["timm"]["figures"]["figures"]["ratio"] > 0
    assert steps["per_hour"]["figures"]["figures"]["candidates_per_hour"] > 0
    fidelity = steps["fidelity"]["figures"]
    assert fidelity["measured"] == 3 and "tool_spearman" in fidelity["figures"]
    assert "## 6. timing fidelity: ok" in report
