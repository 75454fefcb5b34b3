"""1000 candidates without growing overhead: the driver, the executors and the run folder at
full budget, on a surrogate objective (``nas-search --objective surrogate``: nothing trains,
so what is measured is the machinery).

Each mode runs ``nas-search --objective surrogate --budget N`` in a process of its own (the
driver), with hooks around ``SearchRun.next_job`` and ``SearchRun.complete`` that stamp when
each candidate is handed out and when its row is recorded. Per candidate:

* **overhead** = (recorded - handed out) - the candidate's own evaluation time (its row's
  ``wall_time_s``): scheduling, result transport and recording, everything but the work;
* **leaderboard bytes**: what recording it wrote to the leaderboard (log line and file
  rewrites, ``Leaderboard.bytes_written``).

Per run: wall time, driver peak RSS (``ru_maxrss``), bytes under ``<out>/ray`` (Ray Tune's
experiment state and trial folders) and all bytes the driver wrote (``/proc/self/io``).
Modes: ``inline``, ``ray1`` and ``ray2`` (the Ray executor, ``--workers 1`` / ``2``), and
``ray1-before``: the Ray executor as it was before this benchmark's fixes (the leaderboard
rewritten on every append; Tune's experiment state saved every 10 s or more, holding the whole
run, data set and rows, through its searcher and stopper).

**Resume**: a ``ray1`` run of N + 50 candidates is killed with SIGKILL once N rows are
recorded; the same command is run again and timed from its start to the moment it hands out
its first new candidate (then it finishes: exactly N + 50 rows, none twice).

Targets: Ray overhead <= 0.25 s median, last 100 within 1.2x of the first 100; driver peak RSS
<= 1 GB; leaderboard bytes per candidate not growing with the row count; resume <= 10 s.

    flock /tmp/effnas-bench.lock python bench/scale_1000.py --n 1000 \\
        --out bench/results/scale_1000.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODES = ("inline", "ray1", "ray2", "ray1-before")
EXTRA = 50


def search_argv(mode: str, n: int, out: Path) -> list[str]:
    argv = ["--budget", str(n), "--hardware", "cpu", "--objective", "surrogate",
            "--out", str(out), "--no-progress", "--seed", "0"]
    if mode == "inline":
        return [*argv, "--executor", "inline"]
    return [*argv, "--workers", "2" if mode == "ray2" else "1"]


# ---------------------------------------------------------------------------- the driver side


def child(mode: str, n: int, out: Path, stamps_file: Path) -> int:
    """Run the search with hooks; write the stamps as JSON."""
    import nas.search.driver as driver
    from nas.cli.search import main

    if mode.endswith("-before"):
        _as_before()
    handed: dict[int, float] = {}
    recorded: list[tuple[int, float, int]] = []
    first: list[float] = []
    real_next, real_complete = driver.SearchRun.next_job, driver.SearchRun.complete

    def next_job(self: Any) -> Any:
        job = real_next(self)
        if job is not None:
            if not first:
                first.append(time.time())
                print(f"FIRST_PROPOSAL {first[0]!r}", flush=True)
            handed[job.number] = time.perf_counter()
        return job

    def complete(self: Any, job: Any, outcome: Any) -> None:
        real_complete(self, job, outcome)
        recorded.append((job.number, time.perf_counter(), self.leaderboard.bytes_written))
        if len(recorded) % 50 == 0:
            print(f"ROWS {self.finished}", flush=True)

    driver.SearchRun.next_job = next_job  # type: ignore[method-assign]
    driver.SearchRun.complete = complete  # type: ignore[method-assign]
    started = time.perf_counter()
    rc = main(search_argv(mode, n, out))
    wall = time.perf_counter() - started
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    stamps_file.write_text(json.dumps({
        "rc": rc, "wall_s": wall, "handed": handed, "recorded": recorded,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "write_bytes": int(io["write_bytes"]), "wchar": int(io["wchar"])}))
    return rc


def _as_before() -> None:
    """The executor and leaderboard as they were before the fixes this benchmark measures."""
    import nas.search.ray_executor as rex
    import nas.search.run as search
    from nas.search.folder import RunFolder

    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "auto"
    rex._RunLink.__reduce__ = lambda self: (rex._RunLink, (self._run,))  # type: ignore[method-assign, assignment]
    search.RunFolder = lambda path, paced=False: RunFolder(path)  # type: ignore[misc, assignment]


# ---------------------------------------------------------------------------- the parent side


def spawn(mode: str, n: int, out: Path, stamps: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--n", str(n), "--run", str(out),
         "--stamps", str(stamps)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)


def stop_session(proc: subprocess.Popen[str]) -> None:
    """SIGKILL what is left of the session the child led (Ray processes it started)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[3]) == proc.pid and fields[0] not in ("Z", "X"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def measure(mode: str, n: int, tmp: Path) -> dict[str, Any]:
    out, stamps = tmp / mode, tmp / f"{mode}.json"
    proc = spawn(mode, n, out, stamps)
    _, err = proc.communicate()
    stop_session(proc)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}):\n{err[-3000:]}")
    data = json.loads(stamps.read_text())
    import pandas as pd

    rows = pd.read_parquet(out / "leaderboard.parquet", dtype_backend="numpy_nullable")
    assert len(rows) == n and rows["arch_hash"].is_unique, (len(rows), mode)
    evaluation = dict(zip(rows["number"], rows["wall_time_s"]))
    handed = {int(k): v for k, v in data["handed"].items()}
    overhead, lb_bytes, previous = [], [], 0
    for number, at, written in data["recorded"]:
        overhead.append(at - handed[number] - evaluation[number])
        lb_bytes.append(written - previous)
        previous = written
    ray_bytes = sum(p.stat().st_size for p in (out / "ray").rglob("*") if p.is_file()) \
        if (out / "ray").exists() else 0
    ray_entries = sum(1 for _ in (out / "ray").rglob("*")) if (out / "ray").exists() else 0
    return {
        "mode": mode, "wall_s": data["wall_s"], "overhead": overhead, "lb_bytes": lb_bytes,
        "evaluation_median_s": statistics.median(evaluation.values()),
        "peak_rss_mb": data["peak_rss_kb"] / 1024, "ray_bytes": ray_bytes,
        "ray_entries": ray_entries, "write_bytes": data["write_bytes"], "wchar": data["wchar"],
        "leaderboard_file": (out / "leaderboard.parquet").stat().st_size,
    }


def measure_resume(n: int, tmp: Path) -> dict[str, Any]:
    out = tmp / "resume"
    proc = spawn("ray1", n + EXTRA, out, tmp / "resume-1.json")
    assert proc.stdout is not None
    killed_at = None
    for line in proc.stdout:
        if line.startswith("ROWS ") and int(line.split()[1]) >= n:
            os.kill(proc.pid, signal.SIGKILL)  # kill -9 nas-search
            killed_at = int(line.split()[1])
            break
    proc.wait()
    stop_session(proc)
    import pandas as pd

    from results.leaderboard import Leaderboard

    kept = Leaderboard(out).rows()
    started = time.time()
    again = spawn("ray1", n + EXTRA, out, tmp / "resume-2.json")
    assert again.stdout is not None
    first = None
    for line in again.stdout:
        if line.startswith("FIRST_PROPOSAL "):
            first = float(line.split()[1]) - started
            break
    _, err = again.communicate()
    stop_session(again)
    if again.returncode != 0:
        raise SystemExit(f"resume failed ({again.returncode}):\n{err[-3000:]}")
    rows = pd.read_parquet(out / "leaderboard.parquet", dtype_backend="numpy_nullable")
    assert first is not None
    return {"killed_at": killed_at, "kept": len(kept), "resume_s": first, "final": len(rows),
            "unique": bool(rows["arch_hash"].is_unique and rows["number"].is_unique),
            "kept_unchanged": _without_pareto(Leaderboard(out).rows()[:len(kept)])
            == _without_pareto(kept)}


def _without_pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as kept, but for ``pareto``, which the end of every run recomputes."""
    return [{k: v for k, v in row.items() if k != "pareto"} for row in rows]


# ---------------------------------------------------------------------------- the report


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[dict[str, Any]], resume: dict[str, Any] | None, n: int,
           command: str, started: str, loads: tuple[str, str]) -> str:
    from machine import describe

    lines = [
        f"# {n} candidates: per-candidate overhead, memory, bytes written, resume",
        "",
        f"- Date: {started}",
        f"- Machine: {describe()}",
        f"- Command: `{command}`",
        f"- Load average (1/5/15 min): {loads[0]} before, {loads[1]} after",
        "- Search: `nas-search --objective surrogate --budget N --hardware cpu --seed 0` "
        "(space v2b0, synthetic data, random strategy), each mode in a fresh driver process",
        "",
        "Overhead = time from handing a candidate out to its row being recorded, minus the "
        "candidate's own evaluation. 'first / last 100' are medians over the first and the "
        "last 100 candidates recorded. Leaderboard bytes: written per candidate (log line plus "
        "the paced rewrites of the Parquet file), mean over the first and the last 100.",
        "",
        "| mode | wall (s) | cand/s | overhead median (s) | p95 (s) | first 100 | last 100 | "
        "last/first | driver peak RSS (MB) | leaderboard B/cand first 100 | last 100 | "
        "leaderboard file (kB) | `ray/` (MB, entries) | driver wrote (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o, b = r["overhead"], r["lb_bytes"]
        first, last = statistics.median(o[:100]), statistics.median(o[-100:])
        written = r["write_bytes"] or r["wchar"]
        lines.append(
            f"| {r['mode']} | {r['wall_s']:.1f} | {n / r['wall_s']:.1f} | "
            f"{statistics.median(o):.4f} | {_q(o, 0.95):.4f} | {first:.4f} | {last:.4f} | "
            f"{last / first:.2f} | {r['peak_rss_mb']:.0f} | {statistics.mean(b[:100]):,.0f} | "
            f"{statistics.mean(b[-100:]):,.0f} | {r['leaderboard_file'] / 1e3:.0f} | "
            f"{r['ray_bytes'] / 1e6:.1f}, {r['ray_entries']} | {written / 1e6:.1f} |")
    lines.append("")
    lines.append("Median evaluation time of one candidate (the surrogate): " + ", ".join(
        f"{r['mode']} {r['evaluation_median_s'] * 1e3:.2f} ms" for r in results) + ".")
    if resume is not None:
        lines += ["", f"**Resume** (`ray1`, budget {n + EXTRA}): killed with SIGKILL at "
                      f"{resume['killed_at']} rows ({resume['kept']} on disk); the same command "
                      f"handed out its first new candidate {resume['resume_s']:.1f} s after it "
                      f"started (target <= 10 s) and ended with {resume['final']} rows, "
                      f"none twice: {resume['unique']}, the {resume['kept']} kept rows "
                      f"unchanged: {resume['kept_unchanged']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stamps", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.n, args.run, args.stamps)
    from machine import load, now

    started, before = now(), load()
    tmp = Path(tempfile.mkdtemp(prefix="effnas-scale-"))
    try:
        results = []
        for mode in args.modes.split(","):
            results.append(measure(mode, args.n, tmp))
            r = results[-1]
            print(f"{mode}: {r['wall_s']:.1f} s, overhead median "
                  f"{statistics.median(r['overhead']):.4f} s", file=sys.stderr)
        resume = None if args.no_resume else measure_resume(args.n, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    command = "python bench/scale_1000.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, resume, args.n, command.strip(), started, (before, load()))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
