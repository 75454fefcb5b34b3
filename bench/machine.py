"""What a benchmark record says about the machine it ran on (shared by the bench scripts)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from proxy_train.hardware import cpu_model


def describe() -> str:
    """One line: host, cores, CPU model, memory, OS, Python."""
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
        memory = f", {mem:.0f} GiB"
    except (OSError, IndexError, ValueError):
        memory = ""
    return (f"{platform.node()}, {os.cpu_count()} cores, {cpu_model()}{memory}, "
            f"{platform.platform()}, Python {platform.python_version()}")


def load() -> str:
    """The load average (1/5/15 min), to tell a quiet machine from a shared one."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["cpu_model", "describe", "load", "now"]
