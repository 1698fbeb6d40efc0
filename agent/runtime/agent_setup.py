"""Building the agent from the sources the CLI chose (node or lab) and a declared source."""

from __future__ import annotations

from typing import Any

from ..core.enforcement import OvnkProfile
from ..core.sources import Sources
from .agent import Agent
from .declared import DeclaredSource


def make_agent(sources: Sources, declared: DeclaredSource, node: str, profile: OvnkProfile, **options: Any) -> Agent:
    """The agent of one node. Where the sources see every workload (the one-node lab) it checks them all;
    on a cluster node only the cells with a workload on that node."""
    return Agent(declared, sources.northbound(), sources.open_vswitch(), sources.prober(), sources.locator(), node,
                 profile=profile, only_local=not sources.sees_every_workload, **options)
