"""The command layer as a user meets it, the same for every command: ``--version``, ``--help``,
closed pipes, progress in log files, long values in errors."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import pytest

from nas.cli import arch, scale, search, train, validate

MAINS: dict[str, Callable[[list[str] | None], int]] = {
    "nas-arch": arch.main, "nas-search": search.main, "nas-scale": scale.main,
    "nas-train": train.main, "nas-validate": validate.main}


@pytest.mark.parametrize("prog", list(MAINS))
def test_version_prints_the_package_version(prog: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[prog](["--version"]) == 0
    assert capsys.readouterr().out == f"{prog} {metadata.version('effnas')}\n"
