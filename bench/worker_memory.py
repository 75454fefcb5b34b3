"""What a Ray trial worker's memory is made of, and whether it grows with the candidates.

With ``reuse_actors`` one worker process (``ray::ImplicitFunc``) trains every candidate of a
slot. This runs ``nas-search`` on real CPU training (the ``make search`` settings: built-in
data, CPU recipe, ``--workers 1``; ``--epochs`` kept small so 50 candidates fit in minutes)
and, each time a row is recorded, reads the worker's memory from ``/proc``:

* ``VmRSS`` as ``ps``/``top`` show it, split (``/proc/PID/status``) into ``RssAnon`` (the
  process's own heap: tensors, allocator caches, Python objects), ``RssFile`` (mapped files:
  torch's and Ray's shared libraries) and ``RssShmem`` (shared memory: Ray's object store,
  which holds the data set every trial reads);
* ``Pss`` (``/proc/PID/smaps_rollup``): shared pages divided among the processes mapping them;
* the worker's peak ``VmHWM``.

Target: the worker's own memory (``RssAnon``) does not grow with the candidate count: the
median of the last 10 candidates within 1.2x of the first 10. The driver's row count is read
from hooks in the driver (as ``bench/scale_1000.py`` does).

    flock /tmp/effnas-bench.lock python bench/worker_memory.py --n 50 --cpus-per-trial 1 \\
        --out bench/results/worker_memory.md
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


def child(argv: list[str]) -> int:
    """The search, printing ``ROW n`` as each row is recorded."""
    import nas.search.driver as driver
    from nas.cli.search import main

    real = driver.SearchRun.complete

    def complete(self: Any, job: Any, outcome: Any) -> None:
        real(self, job, outcome)
        print(f"ROW {self.finished}", flush=True)

    driver.SearchRun.complete = complete  # type: ignore[method-assign]
    return main(argv)


def _session(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                .decode(errors="replace"))
    except OSError:
        return ""


def memory(pid: int) -> dict[str, int]:
    """The worker's memory figures in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            out[key] = int(value.split()[0])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Pss", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
            out[key] = int(value.split()[0])
    return out


def workers(sid: int) -> list[int]:
    return [pid for pid in _session(sid) if _cmdline(pid).startswith("ray::ImplicitFunc")]


def run(argv: list[str]) -> tuple[list[dict[str, Any]], float, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    samples: list[dict[str, Any]] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if not line.startswith("ROW "):
                continue
            for pid in workers(proc.pid):
                try:
                    samples.append({"row": int(line.split()[1]), "pid": pid, **memory(pid)})
                except OSError:
                    pass  # it ended meanwhile
        proc.wait()
    finally:
        for pid in _session(proc.pid):  # what is left of the processes this run started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.returncode != 0:
        raise SystemExit(f"the search failed ({proc.returncode}):\n"
                         f"{proc.stderr.read()[-3000:] if proc.stderr else ''}")
    return samples, time.perf_counter() - started, proc.returncode


def report(samples: list[dict[str, Any]], wall: float, argv: list[str], command: str,
           started: str, loads: tuple[str, str]) -> str:
    from machine import describe

    pids = sorted({s["pid"] for s in samples})
    main_pid = max(pids, key=lambda p: sum(1 for s in samples if s["pid"] == p))
    rows = [s for s in samples if s["pid"] == main_pid]
    mb = lambda kb: f"{kb / 1024:,.0f}"  # noqa: E731
    first, last = rows[:10], rows[-10:]

    def med(group: list[dict[str, Any]], key: str) -> float:
        return statistics.median(s.get(key, 0) for s in group)

    lines = [
        f"# Trial worker memory over {len(rows)} candidates (Ray, reused actor)",
        "",
        f"- Date: {started}",
        f"- Machine: {describe()}",
        f"- Command: `{command}`",
        f"- Search: `nas-search {' '.join(argv)}`; wall {wall:.0f} s",
        f"- Load average (1/5/15 min): {loads[0]} before, {loads[1]} after",
        f"- Trial worker processes seen: {len(pids)} (the one below ran {len(rows)} of the "
        "candidates)",
        "",
        "Memory of the worker right after each candidate's row was recorded, in MB "
        "(`/proc/PID/status`, `/proc/PID/smaps_rollup`).",
        "",
        "| after candidate | VmRSS | RssAnon (own) | RssFile (libraries) | RssShmem (object "
        "store) | Pss | VmHWM (peak) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        if s["row"] <= 10 or s["row"] % 10 == 0 or s is rows[-1]:
            lines.append(f"| {s['row']} | {mb(s['VmRSS'])} | {mb(s['RssAnon'])} | "
                         f"{mb(s['RssFile'])} | {mb(s['RssShmem'])} | {mb(s['Pss'])} | "
                         f"{mb(s['VmHWM'])} |")
    ratio = med(last, "RssAnon") / med(first, "RssAnon")
    lines += [
        "",
        f"Worker's own memory (RssAnon), median of the first 10 candidates "
        f"{mb(med(first, 'RssAnon'))} MB, of the last 10 {mb(med(last, 'RssAnon'))} MB: "
        f"{ratio:.2f}x (target <= 1.2x). VmRSS: {mb(med(first, 'VmRSS'))} -> "
        f"{mb(med(last, 'VmRSS'))} MB; peak VmHWM {mb(max(s['VmHWM'] for s in rows))} MB.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--child"]:
        return child(args_in[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--cpus-per-trial", type=int,
                        help="torch threads of the trial (default: the search's, all cores)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(args_in)
    from machine import load, now

    started, before = now(), load()
    with tempfile.TemporaryDirectory(prefix="effnas-memory-") as tmp:
        search = ["--budget", str(args.n), "--hardware", "cpu", "--epochs", str(args.epochs),
                  "--no-progress", "--out", str(Path(tmp) / "run")]
        if args.cpus_per_trial:
            search += ["--cpus-per-trial", str(args.cpus_per_trial)]
        samples, wall, _ = run(search)
    shown = [a if not a.startswith(tempfile.gettempdir()) else "TMP/run" for a in search]
    command = "python bench/worker_memory.py " + " ".join(args_in)
    text = report(samples, wall, shown, command.strip(), started, (before, load()))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
