"""Suite-wide settings.

* **A home of its own.** The suite never reads or writes the user's home: before anything
  else is imported, ``HOME`` (and the XDG and Matplotlib folders under it) point at an empty
  temporary folder of this process, and the Ray variables that would let state outside the
  suite decide a test (a token, an address, an authentication mode) are removed. Child
  processes inherit all of it; tests that start Ray nodes give each node a fresh home of its
  own (``tests/nas/ray_nodes.py``), as separate machines have.
* **One thread per process**: the suite runs as several processes on a small machine, and
  more torch threads than cores slows torch down many times.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

SUITE_HOME = tempfile.mkdtemp(prefix="effnas-test-home-")
os.environ["HOME"] = SUITE_HOME
atexit.register(shutil.rmtree, SUITE_HOME, True)
for _name, _sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"),
                    ("XDG_DATA_HOME", ".local/share"), ("MPLCONFIGDIR", ".config/matplotlib")):
    os.environ[_name] = os.path.join(SUITE_HOME, _sub)
for _name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
    os.environ.pop(_name, None)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

torch.set_num_threads(1)
