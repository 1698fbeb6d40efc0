"""The `segcheck` command: a thin layer that parses, calls the core and adapters, and renders."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

# Each command's module is imported when that command runs: `segcheck matrix -f DIR` does not pay for the
# agent's, the lab's or the probers' libraries (start-up time is part of every command's time).
COMMANDS = {
    "matrix": "declared_commands", "explain": "declared_commands", "lab": "lab_commands", "probe": "check_commands",
    "verify": "check_commands", "agent": "agent_commands", "drift": "check_commands",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: click.Context, name: str) -> Any:
        if name in COMMANDS:
            module = importlib.import_module(f"{__package__}.{COMMANDS[name]}")
            return getattr(module, name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="segcheck")
def cli() -> None:
    """Prove that MultiNetworkPolicy segmentation on OVN-Kubernetes localnet networks holds:
    what policies declare, what OVN programs, and what packets observe."""
    # Libraries report unreachable databases themselves; segcheck says it once, in its own words.
    for noisy in ("ovsdbapp", "ovs", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)



@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `source <(segcheck completion bash)`."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "segcheck", "_SEGCHECK_COMPLETE").source())


def main() -> None:
    cli(prog_name="segcheck")
