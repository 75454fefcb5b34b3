"""The inline executor needs no Ray: a machine without it (the GPU check's) runs searches.

Ray is imported by ``nas.search.ray_executor`` alone, and only when the Ray executor is chosen. Here
a search runs in a child process whose ``PYTHONPATH`` puts a ``ray`` package first that
leaves a mark and raises on import, as if Ray were missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from results.leaderboard import Leaderboard

CHILD = """
import sys
from nas.cli.search import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("ray modules:", loaded)
sys.exit(code or (3 if loaded else 0))
"""


def without_ray(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``ray`` leaves ``mark`` and raises ImportError; and the mark."""
    site, mark = tmp_path / "no-ray", tmp_path / "ray-was-imported"
    (site / "ray").mkdir(parents=True)
    (site / "ray" / "__init__.py").write_text(
        f"open({str(mark)!r}, 'w').close()\n"
        "raise ImportError('ray is not installed on this machine')\n", encoding="utf-8")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}, mark


def test_the_inline_search_imports_no_ray(tmp_path: Path, tiny_args: list[str]) -> None:
    env, mark = without_ray(tmp_path)
    control = subprocess.run([sys.executable, "-c", "import ray"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert control.returncode != 0 and "not installed on this machine" in control.stderr
    assert mark.exists()  # the stand-in is what `import ray` finds
    mark.unlink()

    out = tmp_path / "run"
    search = subprocess.run(
        [sys.executable, "-c", CHILD, "--budget", "1", "--executor", "inline", "--out",
         str(out), *tiny_args], env=env, capture_output=True, text=True, timeout=600)
    assert search.returncode == 0, search.stdout + search.stderr
    assert "ray modules: []" in search.stdout
    assert not mark.exists(), "something tried to import ray"
    rows = Leaderboard(out).read()
    assert len(rows) == 1 and rows["status"].tolist() == ["ok"]
