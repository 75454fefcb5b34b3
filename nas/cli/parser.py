"""The argument parser every command uses: errors are one line, exit 2; ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

PACKAGE = "effnas"


def package_version() -> str:
    """The installed package's version (``unknown`` when run from a tree never installed)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``error: ...`` line (no usage dump), exit 2,
    and ``--version`` (``nas-search 0.1.0``); its subcommand parsers are of the same kind. A
    value that starts with ``-`` (argparse reads it as an unknown
    option) is named, with the ``--`` that passes it as a value."""

    _args: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        command = self.prog.split()[0]  # a subcommand's prog is "nas-arch show"
        self.add_argument("--version", action="version",
                          version=f"{command} {package_version()}",
                          help="print the version and exit")

    # typeshed declares overloads for both call forms; this one signature serves both.
    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        self._args = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        dashed = [a for a in self._args if a.startswith("-") and a != "--"
                  and a.split("=")[0] not in self._option_string_actions]
        if dashed and "required" in message:
            message += f"; {dashed[0]!r} was read as an option: put -- before it"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


__all__ = ["OneLineParser", "package_version"]
