"""Who may read the cells, POST /v1/probe or scrape /metrics: TokenReview + SubjectAccessReview through the real kubernetes client against a small
API server speaking the real authentication/authorization JSON, and the lab's token file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from segcheck.agent.adapters import auth as auth_module
from segcheck.agent.adapters.auth import (READ_CELLS, SCRAPE_METRICS, SEND_PROBES, AuthError, TokenFileAuth,
                                         TokenReviewAuth)

USERS = {"good-token": "alice", "no-rights-token": "bob", "reader-token": "carol", "prometheus-token": "prom"}
ALLOWED = {("alice", "create", "segcheck.io", "probes"), ("alice", "get", "segcheck.io", "matrix"),
           ("carol", "get", "segcheck.io", "matrix"), ("prom", "get", "/metrics")}


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
            spec = body["spec"]
            if "resourceAttributes" in spec:
                attrs = spec["resourceAttributes"]
                asked = (spec["user"], attrs["verb"], attrs["group"], attrs["resource"])
            else:
                asked = (spec["user"], spec["nonResourceAttributes"]["verb"], spec["nonResourceAttributes"]["path"])
            status = {"allowed": asked in ALLOWED}
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


def status_of(auth, token, access=SEND_PROBES):
    try:
        return auth(token, access)
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
        assert auth("good-token", SEND_PROBES) == "alice"
    assert len(ReviewApi.reviews) == 2  # one TokenReview, one SubjectAccessReview
    assert "good-token" not in repr(auth._cache)


def test_unreachable_api_server_fails_closed():
    auth = TokenReviewAuth(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    assert status_of(auth, "good-token") == HTTPStatus.SERVICE_UNAVAILABLE


def test_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    auth = TokenFileAuth(path)
    assert auth("s3cret", SEND_PROBES) == auth("s3cret", READ_CELLS) == "token-file"
    assert status_of(auth, "nope") == HTTPStatus.FORBIDDEN
    path.write_text("rotated\n")
    assert auth("rotated", SEND_PROBES) == "token-file"
    path.unlink()
    assert status_of(auth, "rotated") == HTTPStatus.SERVICE_UNAVAILABLE


def test_each_access_is_reviewed_on_its_own(api):
    auth = TokenReviewAuth(api)
    assert status_of(auth, "reader-token", READ_CELLS) == "carol"
    assert status_of(auth, "reader-token", SEND_PROBES) == HTTPStatus.FORBIDDEN  # reading is not probing
    assert status_of(auth, "prometheus-token", SCRAPE_METRICS) == "prom"
    assert status_of(auth, "prometheus-token", READ_CELLS) == HTTPStatus.FORBIDDEN  # scraping is not the map
    reads = [r["spec"]["resourceAttributes"] for r in ReviewApi.reviews if "resourceAttributes" in r["spec"]]
    assert {"group": "segcheck.io", "resource": "matrix", "verb": "get"} in reads
    scrape = [r["spec"]["nonResourceAttributes"] for r in ReviewApi.reviews if "nonResourceAttributes" in r["spec"]]
    assert scrape == [{"path": "/metrics", "verb": "get"}]


def test_denials_expire_sooner_than_grants(api):
    now = [0.0]
    auth = TokenReviewAuth(api, clock=lambda: now[0])
    assert status_of(auth, "no-rights-token") == HTTPStatus.FORBIDDEN
    ALLOWED.add(("bob", "create", "segcheck.io", "probes"))  # the role is granted after the first refusal
    try:
        now[0] = auth_module.DENY_CACHE_SECONDS / 2
        assert status_of(auth, "no-rights-token") == HTTPStatus.FORBIDDEN  # still cached
        now[0] = auth_module.DENY_CACHE_SECONDS + 1
        assert status_of(auth, "no-rights-token") == "bob"
    finally:
        ALLOWED.discard(("bob", "create", "segcheck.io", "probes"))


def test_random_tokens_do_not_grow_the_cache_without_bound(api, monkeypatch):
    monkeypatch.setattr(auth_module, "CACHE_ENTRIES", 5)
    auth = TokenReviewAuth(api)
    for i in range(20):
        assert status_of(auth, f"forged-{i}") == HTTPStatus.FORBIDDEN
    assert len(auth._cache) == 5
