"""The `segcheck` command: a thin layer that parses, calls the core and adapters, and renders."""

from __future__ import annotations

import logging

import click

from .agent_commands import agent
from .check_commands import drift, probe, verify
from .declared_commands import explain, matrix
from .lab_commands import lab


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="segcheck")
def cli() -> None:
    """Prove that MultiNetworkPolicy segmentation on OVN-Kubernetes localnet networks holds:
    what policies declare, what OVN programs, and what packets observe."""
    # Libraries report unreachable databases themselves; segcheck says it once, in its own words.
    for noisy in ("ovsdbapp", "ovs", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


cli.add_command(matrix)
cli.add_command(explain)
cli.add_command(lab)
cli.add_command(probe)
cli.add_command(verify)
cli.add_command(agent)
cli.add_command(drift)


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
