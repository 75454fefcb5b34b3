"""The argument parser every command uses: errors are one line, exit 2; ``--version``; a help
that gives every option's default and lists the command's own option groups first (what a
user sets first on top), ``-h`` and ``--version`` last."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from search_space.messages import one_line, shown

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
        kwargs.setdefault("formatter_class", DefaultsFormatter)
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

    def format_help(self) -> str:
        groups = self._action_groups
        own = [g for g in groups if g not in (self._positionals, self._optionals)]
        if own:  # the command's groups first, then -h and --version
            self._optionals.title = "general"
            self._action_groups = [self._positionals, *own, self._optionals]
        try:
            return super().format_help()
        finally:
            self._action_groups = groups

    def error(self, message: str) -> NoReturn:
        dashed = [a for a in self._args if a.startswith("-") and a != "--"
                  and a.split("=")[0] not in self._option_string_actions]
        if dashed and "required" in message:
            message += f"; {shown(dashed[0])} was read as an option: put -- before it"
        self.exit(2, f"error: {one_line(message)} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help that does not say its default already; an
    option whose default is nothing (``None``) says in words what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.required
                or action.default is None or action.default is False  # not 0: a default
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


__all__ = ["DefaultsFormatter", "OneLineParser", "package_version"]
