"""Does every declared Python set up and pass? ``make test PYTHON=...`` per interpreter.

For each interpreter given, one after another: ``make test PYTHON=<it>`` from the repository
root with an empty home (as ``.ci/run`` runs it), so nothing cached in a home (pip's wheels, a
Ray token) helps. It records the set-up time (venv, torch, ``pip install -e ".[test]"``), the
mypy and suite result and time, the size of the venv, the versions that set-up chose, and
anything the run left in the home apart from pip's cache. The venv must not exist yet: the
set-up is what is timed. Only the standard library is used, so any Python runs this script.

    nice -n 5 python3 bench/python_versions.py /usr/bin/python3.10 python3.11 \\
        --rerun-failed --out bench/results/python_versions.md

With ``--rerun-failed``, tests that failed are run once more, alone, and both results are
recorded: on a shared machine the tests with time limits (Ray's start-up, timing budgets) can
fail under load. Each interpreter's section is appended to ``--out`` (made with a title if
new) as soon as its run ends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TITLE = "# Every declared Python: `make test` per interpreter, in an empty home"
MYPY_LINE = r"^(?:Success|Found \d+ error).*$"
PYTEST_LINE = r"^=+ (.* in [\d.]+s.*?) =+$"
VERSIONS = ("torch", "numpy", "pandas", "onnx", "onnxruntime", "onnxscript", "ray", "mypy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pythons", nargs="+", metavar="PYTHON", help="interpreter name or path")
    parser.add_argument("--make-args", default="", help="more make variables, e.g. TORCH_INDEX=...")
    parser.add_argument("--out", type=Path, help="append each section to this markdown file")
    parser.add_argument("--rerun-failed", action="store_true",
                        help="run the suite's failed tests once more, alone, and record both")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()),
                        help="folder for the full output of each run (default: the temp folder)")
    args = parser.parse_args(argv)
    for python in args.pythons:
        section = _run(python, args.make_args.split(), args.logs, args.rerun_failed)
        print(section, flush=True)
        if args.out:
            if not args.out.exists():
                args.out.write_text(f"{TITLE}\n\n", encoding="utf-8")
            with args.out.open("a", encoding="utf-8") as f:
                f.write(section + "\n")
    return 0


def _run(python: str, make_args: list[str], logs: Path, rerun_failed: bool) -> str:
    venv = ROOT / _make_var(python, "VENV")
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if venv.exists():
        raise SystemExit(f"error: {venv} exists; delete it to time a fresh set-up")
    home = Path(tempfile.mkdtemp(prefix="home-"))
    log = logs / f"python_versions-{version}.log"
    command = ["make", "test", f"PYTHON={python}", *make_args]
    load_before = _load()
    start = time.monotonic()
    started = time.time()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(command, cwd=ROOT, env=os.environ | {"HOME": str(home)},
                              stdout=out, stderr=subprocess.STDOUT).returncode
    total = time.monotonic() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    stamp = venv / ".installed"
    set_up = stamp.stat().st_mtime if stamp.exists() else None

    lines = [f"## Python {version}", "",
             f"- Date: {_now()}",
             f"- Machine: {_machine()}",
             f"- Command: `HOME=$(mktemp -d) {' '.join(command)}` (venv `{venv.name}`)",
             f"- Load average (1/5/15 min): {load_before} before, {_load()} after",
             f"- Exit code: {code}; wall time {total / 60:.1f} min"]
    if set_up is not None:
        lines.append(f"- Set-up (venv, torch, `pip install -e \".[test]\"`): "
                     f"{(set_up - started) / 60:.1f} min; mypy and the suite: "
                     f"{(total - (set_up - started)) / 60:.1f} min")
    else:
        lines.append("- Set-up did not finish")
    if venv.exists():
        lines.append(f"- Venv size: {_size(venv) / 2**30:.2f} GiB")
        lines.append(f"- Versions: {_versions(venv)}")
    lines.append(f"- mypy: {_last(text, MYPY_LINE) or 'no result'}")
    lines.append(f"- Suite: {_last(text, PYTEST_LINE) or 'no result'}")
    lines.append(f"- Left in the home (pip's cache aside): {_left(home, set_up)}")
    failed = re.findall(r"^FAILED (\S+)", text, re.MULTILINE)
    if code != 0:
        shown = [ln for ln in text.splitlines() if ln.startswith("FAILED ")] or \
            text.splitlines()[-40:]
        lines += ["", "What failed:", "", "```", *shown, "```"]
    if failed and rerun_failed and venv.exists():
        lines += ["", _rerun(venv, failed, home)]
    return "\n".join(lines) + "\n"


def _rerun(venv: Path, failed: list[str], home: Path) -> str:
    """The failed tests once more, alone (same venv, same empty home)."""
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
               *failed]
    load_before = _load()
    out = subprocess.run(command, cwd=ROOT, env=os.environ | {"HOME": str(home)},
                         capture_output=True, text=True)
    result = _last(out.stdout, PYTEST_LINE) or "no result"
    shown = " ".join(["python -m pytest -p no:cacheprovider -n 2", *failed])
    return (f"The {len(failed)} failed tests run again alone, at once after the suite "
            f"(load {load_before} before, {_load()} after): {result}; exit code "
            f"{out.returncode}. Command: `HOME=... {venv.name}/bin/{shown}`")


def _left(home: Path, set_up: float | None) -> str:
    """What is in the home apart from pip's cache, each marked with the step that wrote it."""
    names = []
    for entry in sorted(home.iterdir()):
        if entry.name == ".cache":
            continue
        step = "suite" if set_up is None or entry.stat().st_mtime > set_up else "set-up"
        names.append(f"`{entry.name}` (written during the {step})")
    return ", ".join(names) or "nothing"


def _make_var(python: str, name: str) -> str:
    """A variable's value as the Makefile sets it for this interpreter."""
    out = subprocess.run(["make", "--no-print-directory", f"--eval=_show: ; @echo $({name})",
                          "_show", f"PYTHON={python}"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"error: no {name} from the Makefile for PYTHON={python}: {out.stderr}")
    return out.stdout.strip()


def _versions(venv: Path) -> str:
    code = ("import importlib.metadata as m\n"
            f"for name in {VERSIONS!r}:\n"
            "    try: print(f'{name} {m.version(name)}')\n"
            "    except m.PackageNotFoundError: print(f'{name} -')\n")
    out = subprocess.run([venv / "bin" / "python", "-c", code], capture_output=True, text=True)
    found = ", ".join(out.stdout.split("\n")[:-1])
    cuda = subprocess.run([venv / "bin" / "python", "-c", "import torch; print(torch.version.cuda)"],
                          capture_output=True, text=True).stdout.strip()
    return found + (f" (torch built for CUDA {cuda})" if cuda not in ("", "None") else
                    " (torch CPU-only build)")


def _size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())


def _last(text: str, pattern: str) -> str | None:
    """The last line of ``text`` that matches ``pattern`` (its group 1 if it has one)."""
    found = list(re.finditer(pattern, text, re.MULTILINE))
    if not found:
        return None
    return found[-1].group(1) if found[-1].groups() else found[-1].group(0)


def _machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = f", {int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = ""
    return f"{platform.node()}, {os.cpu_count()} cores, {model}{mem}, {platform.platform()}"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
