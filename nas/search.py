"""One call that runs (or continues) a whole search: the library behind ``nas-search``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from nas.config import SearchConfig
from nas.driver import RunSummary, SearchRun
from nas.trial import TrialContext
from proxy_train.timing import StepTiming
from results.report import plot_run
from search_space.spec import ArchSpec


class Executor(Protocol):
    def time_reference(self, spec: ArchSpec, context: TrialContext) -> StepTiming: ...

    def run(self, run: SearchRun) -> None: ...

    def shutdown(self) -> None: ...


def make_executor(config: SearchConfig) -> Executor:
    if config.executor == "inline":
        from nas.inline_executor import InlineExecutor

        return InlineExecutor()
    from nas.ray_executor import RayExecutor  # imported lazily: Ray is slow to import

    return RayExecutor(config)


def run_search(config: SearchConfig) -> tuple[RunSummary, list[Path]]:
    """Run the search described by ``config`` up to its budget; return its summary and plots."""
    executor = make_executor(config)
    try:
        run = SearchRun(config, executor.time_reference)
        executor.run(run)
    finally:
        executor.shutdown()
    summary = run.close()
    plots = plot_run(run.leaderboard.read(), run.run_dir)
    return summary, plots
