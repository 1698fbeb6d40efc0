"""examples/ci/segcheck-diff.sh on a real git repository: two revisions of a policies repository, the comment
posted to a local endpoint (127.0.0.1) exactly once, the exit status segcheck's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import xmlschema

from segcheck.agent.lab.seed import packaged_seed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "ci" / "segcheck-diff.sh"
JUNIT = xmlschema.XMLSchema(str(ROOT / "tests" / "schemas" / "junit-10.xsd"))
GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **GIT},
                   timeout=30)


def policies_repo(tmp_path: Path, change: tuple[str, str] | None) -> Path:
    """A repository whose first commit is the seed under policies/, the second one `change` applied to it."""
    repo = tmp_path / "repo"
    shutil.copytree(packaged_seed(), repo / "policies")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    target = repo / "policies" / "50-policies.yaml"
    if change is not None:
        target.write_text(target.read_text().replace(*change))
    else:
        target.write_text(target.read_text() + "\n# a comment only\n")
    git(repo, "commit", "-qam", "head")
    return repo


def run_script(repo: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path, "REPO_DIR": str(repo), "BASE_REF": "HEAD~1",
                               "HEAD_REF": "HEAD", "POLICY_PATHS": "policies", "OUT_DIR": str(out), **env})


OPEN_SSH = ("      port: 5432\n", "      port: 5432\n    - protocol: TCP\n      port: 22\n")


def test_an_opening_change_is_posted_and_fails_the_job(tmp_path):
    received: list[tuple[str, str, dict]] = []

    class Forge(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers["Authorization"], body))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Forge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        repo = policies_repo(tmp_path, OPEN_SSH)
        git(repo, "branch", "fix&ssh#1")  # a ref name with characters markdown and sed give meaning to
        url = f"http://127.0.0.1:{server.server_port}/projects/1/merge_requests/7/notes"
        done = run_script(repo, tmp_path, COMMENT_URL=url, COMMENT_TOKEN="s3cret", HEAD_REF="fix&ssh#1")
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert done.returncode == 1, done.stderr
    ((path, auth, body),) = received
    assert path == "/projects/1/merge_requests/7/notes" and auth == "Bearer s3cret"
    comment = body["body"]
    assert comment.startswith("## segcheck diff: 2 opened, 0 closed, 0 unknown")
    rows = [line for line in comment.splitlines() if "22/TCP" in line]
    assert len(rows) == 2 and all("head/policies/50-policies.yaml:27" in r for r in rows)
    assert "/tmp" not in comment  # files are named inside the checkouts, not by temporary paths
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert comment.rstrip().endswith(f"head `{head}`")
    JUNIT.validate(str(tmp_path / "diff.junit.xml"))


def test_a_change_that_opens_nothing_passes_and_prints_the_comment_without_a_url(tmp_path):
    done = run_script(policies_repo(tmp_path, None), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## segcheck diff: 0 opened, 0 closed, 0 unknown")


def test_bad_manifests_in_the_head_fail_without_a_comment(tmp_path):
    done = run_script(policies_repo(tmp_path, ("kind: MultiNetworkPolicy", "kind: [broken")), tmp_path,
                      COMMENT_URL="http://127.0.0.1:9/never")
    assert done.returncode == 2
    assert "could not compare" in done.stderr and "posted" not in done.stdout
