"""Suite-wide settings: the suite runs as several processes on a small machine, so each
process uses one intra-op thread (more threads than cores slows torch down many times)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

torch.set_num_threads(1)
