"""Typed failures of the lab, so callers (CLI, tests) can tell "cannot run here" from "broke"."""

from __future__ import annotations


class LabError(Exception):
    """The lab could not be brought up, queried or torn down."""


class LabUnavailable(LabError):
    """Something the lab needs is missing on this machine: a package, a privilege, a download.

    The message names what to install or how to run, so the CLI can print it as is.
    """


class LabCommandError(LabError):
    """A command run by the lab failed or timed out."""

    def __init__(self, argv: list[str], message: str, stdout: str = "", stderr: str = "") -> None:
        self.argv = argv
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{' '.join(argv)}: {message}" + (f": {stderr.strip()}" if stderr.strip() else ""))
