"""Every command reads a live cluster when no manifests are given: the real Kubernetes client against the fake API
server (list + first sync, then the watches stop), the same inventory the agent builds."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from segcheck.agent.lab.seed import packaged_seed
from segcheck.cli.main import cli
from tests.fake_kube.seed import seeded_server

ENDPOINTS = str(Path(packaged_seed()) / "40-endpoints.yaml")


def kubeconfig(path: Path, server: str, context: str = "lab") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "me", "user": {"token": "not-checked-by-the-fake"}}],
        "contexts": [{"name": context, "context": {"cluster": "fake", "user": "me"}}],
    }))
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    with seeded_server() as fake:
        yield kubeconfig(tmp_path / "kubeconfig", fake.url)


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def cells(output: str) -> list[dict]:
    return sorted(json.loads(output)["cells"], key=lambda c: (c["from"], c["to"], str(c["port"])))


def test_matrix_of_the_live_cluster_equals_the_matrix_of_its_manifests(cluster: Path):
    live = run("matrix", "--kubeconfig", str(cluster), "--endpoints", ENDPOINTS, "-o", "json", "--pairs")
    assert live.exit_code == 0, live.output
    files = run("matrix", "-f", str(packaged_seed()), "-o", "json", "--pairs")
    assert cells(live.output) == cells(files.output)


def test_explain_and_a_named_context_read_the_cluster(cluster: Path):
    result = run("explain", "vm-server", "db:5432", "--kubeconfig", str(cluster), "--context", "lab",
                 "--endpoints", ENDPOINTS, "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["expected"] == "allowed"
    wrong = run("matrix", "--kubeconfig", str(cluster), "--context", "nosuch")
    assert wrong.exit_code == 2 and "no cluster credentials" in wrong.output


def test_an_api_server_that_does_not_answer_could_not_check(tmp_path: Path):
    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    result = run("matrix", "--kubeconfig", str(config), "--request-timeout", "1")
    assert result.exit_code == 3 and "did not list everything" in result.output


def test_all_namespaces_and_a_namespace_exclude_each_other(cluster: Path):
    assert run("matrix", "--kubeconfig", str(cluster), "-A", "-n", "default").exit_code == 2


def test_manifests_from_stdin():
    stream = "\n---\n".join(p.read_text() for p in sorted(Path(packaged_seed()).glob("*.yaml")))
    piped = run("matrix", "-f", "-", "-o", "json", "--pairs", stdin=stream)
    assert piped.exit_code == 0, piped.output
    assert cells(piped.output) == cells(run("matrix", "-f", str(packaged_seed()), "-o", "json", "--pairs").output)
    bad = run("matrix", "-f", "-", stdin="kind: [\n")
    assert bad.exit_code == 2 and "error: -:" in bad.output
