"""nas-search on a real multi-node Ray cluster: nodes lost, no node coming back, the driver
lost. Every node is a ``ray start`` process on this machine, started with the README's
commands (``tests/nas/ray_nodes.py``); each search is a ``nas-search`` process without
``RAY_AUTH_MODE`` (it finds the token itself), on real (tiny) CPU training.

Scenarios, each on the same head:

1. **trials on the worker node**: the README's search; every row names the worker node.
2. **node lost, retried** (``--retries 1``): the worker node is killed (SIGKILL to its process
   group) while the second candidate trains and a fresh worker node is started; the candidate
   is trained again there and the run ends with ``--budget`` ok rows, none twice.
3. **node lost, not retried** (``--retries 0``): the candidate is a ``failed`` row with the
   reason ``node lost``; the search goes on on a fresh node.
4. **no node comes back** (``--node-timeout 20``): the search stops with one line and exit
   status 2 about 20 s after the node is gone, finished rows kept; after a node is added the
   same command completes the run.
5. **driver lost**: ``kill -9`` of ``nas-search`` while a candidate trains; the run folder's
   lock is free at once; the same command continues the run, training only what was not
   finished, and the kept rows are unchanged.

    flock /tmp/effnas-bench.lock python bench/cluster.py --out bench/results/cluster.md
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "nas"))

import pandas as pd  # noqa: E402
from ray_nodes import RayNodes  # noqa: E402

from nas.run.lock import holder  # noqa: E402
from results.leaderboard import Leaderboard  # noqa: E402

NAS_SEARCH = str(Path(sys.executable).with_name("nas-search"))
TINY = ["--hardware", "cpu", "--space", "v2b0",
        "--data", "synthetic:classes=4,per_class=24,resolution=32,seed=1", "--epochs", "6",
        "--proxy-resolution", "16", "--timing-resolution", "32", "--timing-batch", "2",
        "--timing-steps", "5", "--timing-budget", "0.5", "--cpus-per-trial", "1",
        "--no-progress"]


def readme_commands() -> list[str]:
    sys.path.insert(0, str(REPO / "tests" / "nas"))
    from test_cluster import readme_cluster_commands  # the suite's own parser of the README

    return readme_cluster_commands()


def env() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    return {**kept, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}


class Search:
    """One ``nas-search`` process of a scenario (its own session; killed if left running)."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([NAS_SEARCH, *argv], cwd=cwd, env=env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.output = ""

    def wait_rows(self, out: Path, n: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while _rows(out) < n:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no row {n} in {out}:\n{self.finish()[-3000:]}")
            time.sleep(0.2)

    def finish(self, timeout: float = 400) -> str:
        try:
            self.output, _ = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.output

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def _rows(out: Path) -> int:
    try:
        return len(Leaderboard(out))
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "leaderboard.parquet", dtype_backend="numpy_nullable").sort_values("trial_id")


def _short(node_id: Any) -> str:
    return str(node_id)[:8] if isinstance(node_id, str) else "-"


def _rows_md(rows: pd.DataFrame, names: dict[str, str]) -> list[str]:
    lines = ["| trial | number | status | failure_reason | node | wall (s) |",
             "|---|---|---|---|---|---|"]
    for _, r in rows.iterrows():
        node = names.get(r["node_id"], _short(r["node_id"]))
        reason = r["failure_reason"] if isinstance(r["failure_reason"], str) else ""  # NaN: none
        lines.append(f"| {r['trial_id']} | {r['number']} | {r['status']} | {reason} | {node} | "
                     f"{r['wall_time_s']:.1f} |")
    return lines


def _lines(output: str, *needles: str) -> list[str]:
    return [f"    {line}" for line in output.splitlines() if any(n in line for n in needles)]


def scenarios(tmp: Path) -> list[str]:
    head_line, worker_line, search_line = readme_commands()
    md: list[str] = []
    names: dict[str, str] = {}
    with RayNodes() as nodes:
        t = time.monotonic()
        head = nodes.start(head_line)
        worker = nodes.start(worker_line)
        names.update({head.node_id or "": "head", worker.node_id or "": "worker 1"})
        md += [f"Head and worker node up in {time.monotonic() - t:.1f} s; head "
               f"`{nodes.address}`.", ""]

        # 1. the README's search
        out = tmp / "readme"
        from test_cluster import search_argv

        argv = search_argv(search_line, nodes.address or "", out)
        s = Search(argv[1:], tmp)
        s.finish()
        rows = _table(out)
        ok = s.proc.returncode == 0 and set(rows["node_id"]) == {worker.node_id}
        md += ["## 1. Trials on the worker node", "",
               f"`{' '.join(['nas-search', *argv[1:]]).replace(str(tmp), 'TMP')}`: exit "
               f"{s.proc.returncode} in {s.seconds:.0f} s, {len(rows)} rows, every one on "
               f"worker 1 ({_short(worker.node_id)}): {ok}.", ""]

        def lose(label: str, retries: int, budget: int, timeout: str | None,
                 restart: bool) -> tuple[Search, Path, Any, float]:
            nonlocal worker
            out = tmp / label
            extra = ["--node-timeout", timeout] if timeout else []
            s = Search(["--budget", str(budget), "--retries", str(retries), "--address",
                        nodes.address or "", "--out", str(out), *TINY, *extra], tmp)
            s.wait_rows(out, 1)
            time.sleep(2.0)  # the second candidate trains now
            lost = worker
            nodes.kill(lost)
            killed = time.monotonic()
            if restart:
                worker = nodes.start(worker_line)
                names[worker.node_id or ""] = _next_worker(names)
            s.finish()
            return s, out, lost, killed

        # 2. node lost, retried
        s, out, lost, _ = lose("retried", 1, 3, None, True)
        rows = _table(out)
        md += ["## 2. Node lost mid-trial, retried (`--retries 1`)", "",
               f"Worker node {names[lost.node_id]} killed while candidate 1 trained; "
               f"{names[worker.node_id]} started. Exit {s.proc.returncode} in {s.seconds:.0f} "
               f"s; {len(rows)} rows (budget 3), numbers unique: {rows['number'].is_unique}, "
               f"architectures unique: {rows['arch_hash'].is_unique}.", "",
               *_rows_md(rows, names), "", "What it printed about it:", "",
               *_lines(s.output, "trying it again", "error"), ""]

        # 3. node lost, not retried
        s, out, lost, _ = lose("not-retried", 0, 3, None, True)
        rows = _table(out)
        md += ["## 3. Node lost mid-trial, not retried (`--retries 0`)", "",
               f"Exit {s.proc.returncode} in {s.seconds:.0f} s; {len(rows)} rows (budget 3), "
               f"none twice: {rows['arch_hash'].is_unique}.", "", *_rows_md(rows, names), ""]

        # 4. no node comes back
        s, out, lost, killed = lose("no-node", 0, 3, "20", False)
        waited = time.monotonic() - killed
        kept = _rows(out)
        md += ["## 4. No node comes back (`--node-timeout 20`)", "",
               f"Worker killed, none started: exit {s.proc.returncode} {waited:.0f} s after "
               f"the kill, {kept} rows kept; lock free: {holder(out) is None}. It printed:",
               "", *_lines(s.output, "error:"), ""]
        worker = nodes.start(worker_line)
        names[worker.node_id or ""] = _next_worker(names)
        again = Search(["--budget", "3", "--retries", "0", "--address", nodes.address or "",
                        "--out", str(out), *TINY], tmp)
        again.finish()
        rows = _table(out)
        md += [f"A node added, the same command again: exit {again.proc.returncode}, "
               f"{len(rows)} rows, none twice: {rows['arch_hash'].is_unique}.", "",
               *_rows_md(rows, names), ""]

        # 5. driver lost
        out = tmp / "driver"
        argv = ["--budget", "4", "--address", nodes.address or "", "--out", str(out), *TINY]
        s = Search(argv, tmp)
        s.wait_rows(out, 2)
        time.sleep(2.0)
        os.kill(s.proc.pid, signal.SIGKILL)  # kill -9 nas-search
        s.proc.wait()
        free = holder(out) is None
        kept = Leaderboard(out).rows()
        again = Search(argv, tmp)
        again.finish()
        rows = _table(out)
        after = Leaderboard(out).rows()
        unchanged = [_no_pareto(r) for r in after[:len(kept)]] == [_no_pareto(r) for r in kept]
        trained_again = len(rows) - len(kept)
        md += ["## 5. Driver lost (`kill -9 nas-search` mid-trial)", "",
               f"Killed with {len(kept)} rows recorded; lock free at once: {free}. The same "
               f"command again: exit {again.proc.returncode} in {again.seconds:.0f} s, "
               f"{len(rows)} rows (budget 4), none twice: {rows['arch_hash'].is_unique}, the "
               f"{len(kept)} kept rows unchanged: {unchanged}, candidates trained by the second "
               f"run: {trained_again} (those not finished before the kill).", "",
               *_rows_md(rows, names), ""]
    return md


def _next_worker(names: dict[str, str]) -> str:
    return f"worker {sum(1 for v in names.values() if v.startswith('worker')) + 1}"


def _no_pareto(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "pareto"}


def wrong_address(tmp: Path) -> list[str]:
    md = ["## 6. A wrong address", ""]
    for address in ("127.0.0.1:1",):
        t = time.monotonic()
        done = subprocess.run([NAS_SEARCH, "--budget", "2", "--address", address, "--out",
                               str(tmp / "wrong"), *TINY], env=env(), capture_output=True,
                              text=True, timeout=120)
        md += [f"`--address {address}`: exit {done.returncode} in {time.monotonic() - t:.1f} s, "
               f"folder created: {(tmp / 'wrong').exists()}:", "",
               f"    {done.stderr.strip()}", ""]
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from machine import describe, load, now

    started, before, t = now(), load(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="effnas-cluster-") as tmp:
        body = scenarios(Path(tmp)) + wrong_address(Path(tmp))
    command = "python bench/cluster.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# nas-search on a real multi-node Ray cluster", "",
        f"- Date: {started}", f"- Machine: {describe()}", f"- Command: `{command.strip()}`",
        f"- Load average (1/5/15 min): {before} before, {load()} after; total "
        f"{time.monotonic() - t:.0f} s",
        "- Nodes: `ray start` processes on this machine (head with 0 CPUs, worker nodes with 2), "
        "started with the README's commands; searches on tiny real CPU training "
        f"(`{' '.join(TINY)}`).", "", *body])
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
