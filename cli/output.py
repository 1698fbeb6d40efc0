"""Rendering for the terminal: JSON, YAML, or tables (colour only on a TTY)."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

import click
import yaml

from segcheck.agent.runtime.status import Status
from rich import box
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "wide", "json", "yaml")  # wide: the table with the reasons behind each verdict
TABLE_FORMATS = ("table", "wide")
VERDICT_STYLE = {"allowed": "green", "denied": "red", "unknown": "yellow", "drift": "bold red"}

# Exit codes shared by every command (kubectl habits, shared/design.md "Conventions").
EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2
EXIT_CANNOT_CHECK = 3
EXIT_CODES = {Status.MATCH: EXIT_OK, Status.DRIFT: EXIT_DRIFT, Status.COULD_NOT_CHECK: EXIT_CANNOT_CHECK}


def exit_code(status: Status) -> int:
    return EXIT_CODES[status]


def console() -> Console:
    tty = sys.stdout.isatty()
    return Console(force_terminal=tty, no_color=not tty, highlight=False, soft_wrap=not tty, width=None if tty else 200)


def emit_data(data: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


def emit_records(records: list[Any], fmt: str) -> None:
    """One object per record: JSON Lines (one compact object a line), or one YAML document each."""
    if fmt == "json":
        for record in records:
            click.echo(json.dumps(record, separators=(",", ":")))
    else:
        click.echo(yaml.safe_dump_all(records, sort_keys=False).rstrip())


def table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]], verdict_columns: Sequence[int] = ()) -> Table:
    """Boxed on a terminal; plain aligned columns (as kubectl prints them) into a pipe or a file."""
    tty = sys.stdout.isatty()
    t = Table(title=title, show_lines=False, title_justify="left", box=box.SQUARE if tty else None,
              pad_edge=tty, show_edge=tty)
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            style = VERDICT_STYLE.get(value) if i in verdict_columns else None
            cells.append(f"[{style}]{value}[/]" if style else value)
        t.add_row(*cells)
    return t


def is_table(fmt: str) -> bool:
    return fmt in TABLE_FORMATS


def fail(message: str, code: int = EXIT_USAGE) -> "click.exceptions.Exit":
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)
