"""Run candidates one after another in this process, without Ray (debugging, profiling).

Below the trial boundary it runs exactly the code the Ray executor runs: :func:`evaluate`.
A signal stops the candidate being evaluated at once (it is evaluated again when the run
continues); one that arrives while a finished candidate is recorded waits for the row.
"""

from __future__ import annotations

from nas.search.driver import SearchRun
from nas.search.trial import TrialContext, evaluate, time_reference
from proxy_train.timing import StepTiming
from search_space.spec import ArchSpec


class InlineExecutor:
    """Executes jobs sequentially in the calling process."""

    def time_reference(self, spec: ArchSpec, context: TrialContext) -> StepTiming:
        return time_reference(spec, context)

    def run(self, run: SearchRun) -> None:
        while (job := run.next_job()) is not None:
            run.complete(job, evaluate(job, run.context, run.setup.data))

    def shutdown(self) -> None:
        return None
