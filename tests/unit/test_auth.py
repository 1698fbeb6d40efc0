"""Who may POST /v1/probe: TokenReview + SubjectAccessReview through the real kubernetes client against a small
API server speaking the real authentication/authorization JSON, and the lab's token file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from segcheck.agent.adapters.auth import TokenFileAuth, TokenReviewAuth
from segcheck.agent.adapters.http_api import AuthError

USERS = {"good-token": "alice", "no-rights-token": "bob"}
ALLOWED = {("alice", "create", "segcheck.io", "probes")}


class ReviewApi(BaseHTTPRequestHandler):
    reviews: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).reviews.append(body)
        if self.path == "/apis/authentication.k8s.io/v1/tokenreviews":
            user = USERS.get(body["spec"]["token"])
            status = {"authenticated": True, "user": {"username": user, "groups": ["system:authenticated"]}} \
                if user else {"authenticated": False}
        elif self.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            attrs = body["spec"]["resourceAttributes"]
            status = {"allowed": (body["spec"]["user"], attrs["verb"], attrs["group"], attrs["resource"]) in ALLOWED}
        else:
            self.send_error(404)
            return
        data = json.dumps({**body, "status": status}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    ReviewApi.reviews = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ReviewApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
    server.shutdown()
    server.server_close()


def status_of(auth, token):
    try:
        return auth(token)
    except AuthError as exc:
        return exc.status


def test_token_review_then_access_review(api):
    auth = TokenReviewAuth(api)
    assert status_of(auth, "good-token") == "alice"
    assert status_of(auth, "no-rights-token") == HTTPStatus.FORBIDDEN
    assert status_of(auth, "forged") == HTTPStatus.FORBIDDEN
    assert status_of(auth, None) == HTTPStatus.UNAUTHORIZED
    sar = [r for r in ReviewApi.reviews if r.get("kind") == "SubjectAccessReview" or "resourceAttributes" in r["spec"]]
    assert sar[0]["spec"]["resourceAttributes"] == {"group": "segcheck.io", "resource": "probes", "verb": "create"}


def test_reviews_are_cached_without_keeping_the_token(api):
    auth = TokenReviewAuth(api)
    for _ in range(3):
        assert auth("good-token") == "alice"
    assert len(ReviewApi.reviews) == 2  # one TokenReview, one SubjectAccessReview
    assert "good-token" not in repr(auth._cache)


def test_unreachable_api_server_fails_closed():
    auth = TokenReviewAuth(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    assert status_of(auth, "good-token") == HTTPStatus.SERVICE_UNAVAILABLE


def test_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    auth = TokenFileAuth(path)
    assert auth("s3cret") == "token-file"
    assert status_of(auth, "nope") == HTTPStatus.FORBIDDEN
    path.write_text("rotated\n")
    assert auth("rotated") == "token-file"
    path.unlink()
    assert status_of(auth, "rotated") == HTTPStatus.SERVICE_UNAVAILABLE
