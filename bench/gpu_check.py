"""The GPU check: the toolkit's CUDA paths and its owed GPU figures, in one time-boxed run.

    python bench/gpu_check.py OUT_DIR             # on a CUDA machine: at most --budget-s
    python bench/gpu_check.py OUT_DIR --dry-run   # the same steps on the CPU at toy sizes

Six steps, in this order, each a child process with a time limit of its own, so that a
failure or a hang in one still leaves the others' results:

1. environment (``bench/gpu_environment.py``): Python, torch, CUDA, cuDNN, the device, the
   driver, the packages the toolkit needs (versions, and whether the carried ones import),
   whether ``ray`` is importable (the check never needs it), the bf16 matrix-product rate;
2. tests: every ``gpu``-marked test (the test files under ``tests/`` that use the marker):
   proxy training in bf16 and in fp16 with the grad scaler, CUDA-event step timing, a real
   out-of-memory and a NaN recorded as failed candidates, data and augmentation on the device;
3. search: ``nas-search --hardware auto --budget 6 --executor inline`` on the built-in data
   with the hardware's recipe, its printed output, wall time and leaderboard;
4. ours vs timm: ``bench/train_throughput_vs_timm.py`` at 300 px, batch 128, bf16,
   channels-last, eager, alternating rounds in one process;
5. candidates per GPU-hour: ``bench/candidates_per_hour.py``, EfficientNetV2-S under the
   default GPU proxy, one candidate at a time;
6. timing fidelity: ``bench/timing_fidelity.py`` on 10 random ``v2s`` candidates at 300 px,
   batch 128, against a 200-step timing. It comes last because it is the one step whose length
   grows with what it is given: it gets whatever the budget has left and measures the
   candidates that fit (on one H100, 30-60 s each: the space's random candidates are up to
   seven times V2-S's MACs).

Written under OUT_DIR, and rewritten after every step (so a run killed later still leaves the
finished steps' results): ``report.md`` (machine, date, command, every step's status, wall
time and figures, the bench reports), ``figures.json`` (the same as data) and
``gpu_check.log`` (every step's command and output). Scratch files (the search's run folder,
the steps' own files) go to a temporary folder, removed at the end.

This script needs only the standard library: it writes its report even when the toolkit
cannot be imported (that step then fails, with its output in the log). The dry run is the
rehearsal that keeps it runnable: the test suite runs it. Exit status: 0 when every step
passed, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BUDGET_S = 470.0
"""Default wall-time budget of the whole check on a GPU: 8 minutes with room to spare."""
DRY_BUDGET_S = 900.0
"""Default budget of the dry run: generous, because a loaded CPU is slow, not broken. Every
step's limit scales with the budget."""
MIN_STEP_S = 5.0
"""A step given less time than this is not started."""
KILL_GRACE_S = 5.0
"""Seconds between SIGTERM and SIGKILL for a step past its time."""
OUTPUT_LINES = 60
"""Lines of a step's printed output quoted in the report."""

TOY_ARCH = "stem8-fused_r1_k3_s1_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls10"
TOY_SPACE = f"""\
name = "toy"
description = "the GPU check's dry run: candidates of 40k parameters"
reference = "{TOY_ARCH}"
stem_channels = 8
head_channels = 32

[defaults]
blocks = ["fused", "mbconv"]
kernels = [3, 5]
expansions = [1, 2]
se_fused = [0.0]
se_mbconv = [0.25]

[[stages]]
out_channels = 8
stride = 1
layers = [1, 2]

[[stages]]
out_channels = 16
stride = 2
layers = [1, 2]
"""
"""The dry run's search space (written to its scratch folder)."""
TOY_PROXY = ["--data", "synthetic:classes=4,per_class=24,resolution=32,seed=1", "--epochs",
             "1", "--proxy-resolution", "16", "--timing-resolution", "32", "--timing-batch",
             "2", "--timing-steps", "5", "--timing-budget", "0.5"]
"""The dry run's proxy: a toy candidate takes well under a second of one core."""
REHEARSAL_ENV = "EFFNAS_GPU_REHEARSAL"
"""Set to 1, the gpu-marked tests run on the CPU where they can (see tests/conftest.py)."""


@dataclass(frozen=True)
class Step:
    """One step: how to run it and how to read what it left."""

    name: str
    title: str
    command: Callable[[Path, float], list[str]]
    """``(scratch folder, seconds allowed) -> argv``."""
    timeout_s: float
    read: Callable[[Path, str], tuple[dict[str, Any], list[str]]]
    """``(scratch folder, printed output) -> (figures, report lines)``."""
    headline: Callable[[dict[str, Any]], str]
    """The step's key figures in a few words, for the summary table."""
    env: dict[str, str] = field(default_factory=dict)
    elastic: bool = False
    """Takes all the time the budget has left after the later steps' limits."""


@dataclass
class StepResult:
    name: str
    title: str
    status: str
    """``ok``, ``failed`` (non-zero exit), ``timed out``, ``not run`` or ``interrupted``."""
    command: str = ""
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU time of the step's processes (user and system)."""
    limit_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    lines: list[str] = field(default_factory=list)
    output_tail: str = ""


# --- running steps -----------------------------------------------------------------------

class _Stopped(BaseException):
    """SIGTERM or SIGINT reached the check: stop the step in flight, keep what was done."""


@dataclass
class Check:
    """Runs steps one after another within a budget, writing the report after each."""

    steps: Sequence[Step]
    out: Path
    budget_s: float
    title: str
    header: list[str]
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpu-check-")))
    results: list[StepResult] = field(default_factory=list)

    def run(self) -> list[StepResult]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.log").write_text("", encoding="utf-8")
        started = time.monotonic()
        deadline = started + self.budget_s
        self.results = [StepResult(s.name, s.title, "not run") for s in self.steps]
        try:
            with _stop_signals():
                for i, step in enumerate(self.steps):
                    reserve = sum(s.timeout_s for s in self.steps[i + 1:])
                    left = deadline - time.monotonic() - reserve
                    allowed = left if step.elastic else min(step.timeout_s, left)
                    if allowed < MIN_STEP_S:
                        self.results[i].lines = [f"not run: {allowed:.0f} s of the budget left"]
                        continue
                    try:
                        self.results[i] = self._run_step(step, allowed)
                    except Exception as exc:  # noqa: BLE001 - the next steps still run
                        self.results[i] = StepResult(
                            step.name, step.title, "failed", limit_s=allowed,
                            lines=[f"could not run: {type(exc).__name__}: {exc}"])
                    self._write(time.monotonic() - started)
        finally:
            self._write(time.monotonic() - started)
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.results

    def _run_step(self, step: Step, allowed_s: float) -> StepResult:
        argv = step.command(self.scratch, allowed_s)
        result = StepResult(step.name, step.title, "failed", command=_shell(argv),
                            limit_s=allowed_s)
        output = self.scratch / f"{step.name}.out"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env}
        print(f"[gpu-check] {step.title}: {result.command} (limit {allowed_s:.0f} s)",
              file=sys.stderr, flush=True)
        started, cpu = time.monotonic(), _children_cpu_s()
        with open(output, "wb") as sink:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                result.returncode = proc.wait(timeout=allowed_s)
                result.status = "ok" if result.returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                result.returncode = _stop(proc)
                result.status = "timed out"
            except _Stopped:
                result.returncode = _stop(proc)
                result.status = "interrupted"
                raise
            finally:
                result.wall_s = time.monotonic() - started
                result.cpu_s = _children_cpu_s() - cpu
                self._finish(step, result, output)
        print(f"[gpu-check] {step.title}: {result.status} in {result.wall_s:.0f} s; "
              f"{result.headline}", file=sys.stderr, flush=True)
        return result

    def _finish(self, step: Step, result: StepResult, output: Path) -> None:
        text = output.read_text(encoding="utf-8", errors="replace")
        with open(self.out / "gpu_check.log", "a", encoding="utf-8") as log:
            log.write(f"=== {step.title}: {result.command}\n"
                      f"=== {result.status}, exit {result.returncode}, "
                      f"{result.wall_s:.1f} s of {result.limit_s:.0f} s\n{text}\n")
        result.output_tail = "\n".join(text.splitlines()[-OUTPUT_LINES:])
        try:
            result.figures, result.lines = step.read(self.scratch, text)
            result.headline = step.headline(result.figures) if result.figures else ""
        except Exception as exc:  # noqa: BLE001 - a step's missing files are its result
            result.lines = [f"figures unreadable: {type(exc).__name__}: {exc}"]
        for i, done in enumerate(self.results):
            if done.name == result.name:
                self.results[i] = result

    def _write(self, wall_s: float) -> None:
        record = {"title": self.title, "header": self.header, "budget_s": self.budget_s,
                  "wall_s": wall_s, "steps": [asdict(r) for r in self.results]}
        _atomic_write(self.out / "figures.json", json.dumps(record, indent=1, default=str) + "\n")
        _atomic_write(self.out / "report.md", render(self.title, self.header, self.budget_s,
                                                     wall_s, self.results))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    """Stop a step's whole process group (it has a session of its own): SIGTERM, then
    SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


class _stop_signals:
    """While active, SIGTERM and SIGINT raise :class:`_Stopped` in the main thread."""

    def __enter__(self) -> None:
        def handler(signum: int, frame: object) -> None:
            raise _Stopped(signal.Signals(signum).name)

        self.previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def __exit__(self, *exc: object) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _shell(argv: Sequence[str]) -> str:
    return " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a) for a in argv)


# --- the report ------------------------------------------------------------------------------

def render(title: str, header: list[str], budget_s: float, wall_s: float,
           results: Sequence[StepResult]) -> str:
    passed = sum(r.status == "ok" for r in results)
    cpu = sum(r.cpu_s for r in results)
    lines = [f"# {title}", "", *header,
             f"- wall time {wall_s:.0f} s of a {budget_s:.0f} s budget, CPU time of the steps "
             f"{cpu:.0f} s; {passed} of {len(results)} steps passed", "", "## Summary", "",
             "| # | step | status | wall s | CPU s | limit s | figures |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        ran = r.status != "not run"
        lines.append(f"| {i} | {r.title} | {r.status} | {f'{r.wall_s:.1f}' if ran else '—'} | "
                     f"{f'{r.cpu_s:.1f}' if ran else '—'} | "
                     f"{f'{r.limit_s:.0f}' if ran else '—'} | {r.headline.replace('|', '/')} |")
    for i, r in enumerate(results, 1):
        lines += ["", f"## {i}. {r.title}: {r.status}", ""]
        if r.command:
            lines += [f"- command: `{r.command}`",
                      f"- exit status {r.returncode}, {r.wall_s:.1f} s of {r.limit_s:.0f} s "
                      f"(CPU {r.cpu_s:.1f} s)", ""]
        lines += r.lines
        if r.status not in ("ok", "not run") and r.output_tail \
                and r.output_tail not in "\n".join(r.lines):
            lines += ["", "Last lines of its output:", "", "```", r.output_tail, "```"]
    return "\n".join(lines) + "\n"


def _demote(markdown: str) -> list[str]:
    """A step's own Markdown report, its headings two levels down."""
    return [("##" + line) if line.startswith("#") else line for line in markdown.splitlines()]


def _quote(text: str, lines: int = OUTPUT_LINES) -> list[str]:
    return ["```", *text.splitlines()[-lines:], "```"]


# --- reading each step's results -------------------------------------------------------------

def read_environment(scratch: Path, output: str) -> tuple[dict[str, Any], list[str]]:
    info = json.loads((scratch / "environment.json").read_text(encoding="utf-8"))
    lines = ["| item | value |", "|---|---|"]
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"| {key} | {value} |")
    return info, lines


def headline_environment(f: dict[str, Any]) -> str:
    device = f.get("device", {})
    failing = [name for name, result in f.get("imports", {}).items() if result != "ok"]
    return (f"{device.get('device_name')}, torch {device.get('torch_version')}, "
            f"CUDA {device.get('cuda_version')}, ray importable: {f.get('ray_importable')}; "
            f"not importable: {', '.join(failing) or 'none'}")


def read_tests(scratch: Path, output: str) -> tuple[dict[str, Any], list[str]]:
    root = ET.parse(scratch / "tests.xml").getroot()
    tests = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = (node.get("message") or node.text or "").strip().splitlines()[:1]
                message = message[0][:300] if message else ""
                break
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        tests.append({"test": name, "outcome": outcome, "time_s": float(case.get("time", 0)),
                      "message": message})
    counts = {k: sum(t["outcome"] == k for t in tests)
              for k in ("passed", "failed", "error", "skipped")}
    lines = ["| test | outcome | s | message |", "|---|---|---|---|"]
    lines += [f"| `{t['test']}` | {t['outcome']} | {t['time_s']:.1f} | "
              f"{t['message'].replace('|', '/')} |" for t in tests]
    return {**counts, "tests": tests}, lines


def headline_tests(f: dict[str, Any]) -> str:
    return ", ".join(f"{f[k]} {k}" for k in ("passed", "failed", "error", "skipped") if f[k])


def read_search(scratch: Path, output: str) -> tuple[dict[str, Any], list[str]]:
    figures: dict[str, Any] = {}
    summary = re.search(r"(\d+) candidates \((\d+) ok, (\d+) failed\) in (\d+) s", output)
    if summary:
        figures.update(finished=int(summary[1]), ok=int(summary[2]), failed=int(summary[3]),
                       search_s=int(summary[4]))
    board = scratch / "search" / "leaderboard.parquet"
    if board.exists():
        import pyarrow.parquet as pq  # only to read the search's result

        rows = pq.read_table(board).to_pylist()
        keys = ("number", "status", "failure_reason", "accuracy", "step_time_ms", "params",
                "wall_time_s", "arch_hash")
        figures["candidates"] = [{k: r.get(k) for k in keys} for r in rows]
        walls = sorted(r["wall_time_s"] for r in rows)
        if walls:
            figures["median_candidate_s"] = walls[len(walls) // 2]
    return figures, ["Printed output:", "", *_quote(output)]


def headline_search(f: dict[str, Any]) -> str:
    if "finished" not in f:
        return "no summary printed"
    return (f"{f['finished']} candidates ({f['ok']} ok, {f['failed']} failed) in "
            f"{f['search_s']} s; median {f.get('median_candidate_s', float('nan')):.1f} s "
            "per candidate")


def read_bench(name: str) -> Callable[[Path, str], tuple[dict[str, Any], list[str]]]:
    """A bench script's step: its ``--json`` record and its ``--out`` report."""
    def read(scratch: Path, output: str) -> tuple[dict[str, Any], list[str]]:
        record = json.loads((scratch / f"{name}.json").read_text(encoding="utf-8"))
        report = (scratch / f"{name}.md").read_text(encoding="utf-8")
        return record, _demote(report)
    return read


def headline_timm(f: dict[str, Any]) -> str:
    g = f["figures"]
    return (f"ours {g['ours_images_per_s']:.0f} images/s, timm {g['timm_images_per_s']:.0f}: "
            f"{g['ratio']:.3f}x" + (" (rehearsal)" if f.get("rehearsal") else ""))


def headline_per_hour(f: dict[str, Any]) -> str:
    g = f["figures"]
    return (f"{g['candidates_per_hour']:.0f} candidates per hour ({g['wall_s']:.1f} s each, "
            f"{g['status']})")


def headline_fidelity(f: dict[str, Any]) -> str:
    g = f["figures"]
    if "tool_repeat" not in g:
        return f"{f['measured']} of {f['requested']} candidates measured: too few for figures"
    return (f"repeat {g['tool_repeat']:.1%}, Spearman {g['tool_spearman']:.3f}, "
            f"{g['tool_cost_median']:.1f} s per timing, {g['bench_s_per_candidate']:.0f} s "
            f"per candidate, {f['measured']} of {f['requested']} candidates")


# --- the plan -----------------------------------------------------------------------------------

def gpu_test_files(root: Path = ROOT) -> list[str]:
    """The test files that hold gpu-marked tests (they alone are collected: the others may
    import what the GPU machine lacks)."""
    return sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py")
                  if "pytest.mark.gpu" in p.read_text(encoding="utf-8"))


def plan(dry_run: bool, budget_s: float = BUDGET_S) -> list[Step]:
    """The steps of the check, or of its dry run (the same steps on the CPU, toy sizes).
    Every step's limit is scaled by ``budget_s`` over the GPU's default budget."""
    def bench(script: str, name: str, *args: str) -> Callable[[Path, float], list[str]]:
        def command(scratch: Path, allowed_s: float) -> list[str]:
            return [PY, f"bench/{script}", *args, "--out", str(scratch / f"{name}.md"),
                    "--json", str(scratch / f"{name}.json")]
        return command

    def toy_space(scratch: Path) -> str:
        path = scratch / "toy_space.toml"
        path.write_text(TOY_SPACE, encoding="utf-8")
        return str(path)

    def fidelity(scratch: Path, allowed_s: float) -> list[str]:
        # Time to start Python, build the last report and write it stays outside the limit.
        limit = f"{max(1.0, allowed_s - 20):.0f}"
        sizes = (["--hardware", "cpu", "--space", toy_space(scratch), "--n", "3",
                  "--resolution", "32", "--batch", "2", "--num-classes", "10",
                  "--long-steps", "10", "--budget", "0.5", "--threads", "1"]
                 if dry_run else
                 ["--hardware", "auto", "--space", "v2s", "--n", "10", "--resolution", "300",
                  "--batch", "128", "--long-steps", "200"])
        return bench("timing_fidelity.py", "fidelity", *sizes, "--no-naive",
                     "--time-limit", limit)(scratch, allowed_s)

    def tests(scratch: Path, allowed_s: float) -> list[str]:
        timeout = ["--timeout", f"{max(10, allowed_s / 2):.0f}"] \
            if importlib.util.find_spec("pytest_timeout") else []
        return [PY, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q",
                "--junitxml", str(scratch / "tests.xml"), *timeout, *gpu_test_files()]

    def search(scratch: Path, allowed_s: float) -> list[str]:
        sizes = (["--hardware", "cpu", "--budget", "2", "--space", toy_space(scratch),
                  *TOY_PROXY, "--cpus-per-trial", "1"]
                 if dry_run else ["--hardware", "auto", "--budget", "6"])
        return [PY, "-m", "nas.cli.search", *sizes, "--executor", "inline",
                "--out", str(scratch / "search")]

    def environment(scratch: Path, allowed_s: float) -> list[str]:
        return [PY, "bench/gpu_environment.py", str(scratch / "environment.json")]

    timm = (["--rehearsal", "--hardware", "cpu", "--ours", "efficientnetv2-b0",
             "--timm-model", "tf_efficientnetv2_b0", "--resolution", "32", "--batch", "2",
             "--precision", "fp32", "--rounds", "2", "--steps", "3", "--warmup-steps", "5"]
            if dry_run else
            ["--hardware", "auto", "--resolution", "300", "--batch", "128", "--precision",
             "bf16", "--rounds", "3", "--steps", "30"])
    per_hour = (["--hardware", "cpu", "--arch", TOY_ARCH, "--warmup-arch", "none",
                 *TOY_PROXY, "--cpus-per-trial", "1"] if dry_run else
                ["--hardware", "auto", "--arch", "efficientnetv2-s"])
    # Limits on one H100 (expected): environment 20 (5), tests 90 (30-40), search 140
    # (60-100), timm 90 (40-50), per hour 60 (20-30): 400 s, so the fidelity step gets at
    # least 70 s of a 470 s budget and about 250 s when the others take what they should.
    scale = budget_s / BUDGET_S
    # A rehearsal is one-threaded: it must cost little on a small, shared machine.
    env = {"OMP_NUM_THREADS": "1"} if dry_run else {}
    return [
        Step("environment", "environment", environment, 20 * scale, read_environment,
             headline_environment, env),
        Step("tests", "gpu-marked tests", tests, 90 * scale, read_tests, headline_tests,
             {**env, REHEARSAL_ENV: "1"} if dry_run else env),
        Step("search", "nas-search --executor inline", search, 140 * scale, read_search,
             headline_search, env),
        Step("timm", "ours vs timm, training throughput", bench(
            "train_throughput_vs_timm.py", "timm", *timm), 90 * scale, read_bench("timm"),
            headline_timm, env),
        Step("per_hour", "candidates per GPU-hour", bench(
            "candidates_per_hour.py", "per_hour", *per_hour), 60 * scale,
            read_bench("per_hour"), headline_per_hour, env),
        Step("fidelity", "timing fidelity", fidelity, 60 * scale, read_bench("fidelity"),
             headline_fidelity, env, elastic=True),
    ]


# --- the command line --------------------------------------------------------------------

def machine() -> str:
    try:
        mem = f", {int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f} GiB"
    except (OSError, IndexError, ValueError):
        mem = ""
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return (f"{platform.node()}, {os.cpu_count()} cores{mem}, {platform.platform()}, Python "
            f"{platform.python_version()}; load average at start {load}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder for report.md, figures.json, gpu_check.log")
    p.add_argument("--dry-run", action="store_true",
                   help="the same steps on the CPU at toy sizes (a rehearsal)")
    p.add_argument("--budget-s", type=float, default=None,
                   help=f"wall-time budget of all steps (default {BUDGET_S:g} s, dry run "
                        f"{DRY_BUDGET_S:g} s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = args.budget_s or (DRY_BUDGET_S if args.dry_run else BUDGET_S)
    command = "python bench/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv)
    kind = "dry run on the CPU, toy sizes: checks that every step runs, measures nothing" \
        if args.dry_run else "on the CUDA device the toolkit resolves with --hardware auto"
    header = [f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
              f"- command: `{command}`", f"- machine: {machine()}", f"- {kind}"]
    title = "GPU check" + (" (dry run)" if args.dry_run else "")
    try:
        results = Check(plan(args.dry_run, budget), Path(args.out), budget, title, header).run()
    except _Stopped as stop:
        print(f"[gpu-check] stopped by {stop}: the report holds the steps done", file=sys.stderr)
        return 1
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
