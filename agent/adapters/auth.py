"""Who may read the agent's per-cell state, send probes or scrape its metrics.

A bearer token is checked by the API server, as OpenShift's own components do it (TokenReview, then a
SubjectAccessReview for the access asked: `get matrix.segcheck.io`, `create probes.segcheck.io`, or the
non-resource URL `get /metrics`), or, in the lab, against a token file.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

GROUP = "segcheck.io"
REVIEW_TIMEOUT_SECONDS = 5.0  # a slow API server must not hold a worker for long
ALLOW_CACHE_SECONDS = 60.0
DENY_CACHE_SECONDS = 10.0  # a freshly granted role takes effect soon
CACHE_ENTRIES = 4096  # random tokens must not grow the cache without bound


class AuthError(Exception):
    """The request may not proceed; `status` says whether to authenticate (401), give up (403) or retry (503)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Access:
    """What a request asks to do: a verb on a `segcheck.io` resource, or on a non-resource URL."""

    verb: str
    resource: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}.{GROUP}" if self.resource else f"{self.verb} {self.path}"


READ_CELLS = Access("get", resource="matrix")  # /v1/matrix and /v1/drift: the segmentation map
SEND_PROBES = Access("create", resource="probes")  # POST /v1/probe sends packets
SCRAPE_METRICS = Access("get", path="/metrics")  # what Prometheus' service account may do on OpenShift

Authorizer = Callable[[str | None, Access], str]  # (bearer token, access) -> user name; raises AuthError


def _require(token: str | None, access: Access) -> str:
    if not token:
        raise AuthError(HTTPStatus.UNAUTHORIZED, f"a bearer token is required ({access})")
    return token


class TokenFileAuth:
    """The token is the first line of a file (read at every check, so it can be rotated); it grants every access."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, token: str | None, access: Access) -> str:
        given = _require(token, access)
        try:
            wanted = self.path.read_text().strip()
        except OSError as exc:
            raise AuthError(HTTPStatus.SERVICE_UNAVAILABLE, f"token file unreadable: {exc.strerror}") from None
        if not wanted or not hmac.compare_digest(given.encode(), wanted.encode()):
            raise AuthError(HTTPStatus.FORBIDDEN, "token not accepted")
        return "token-file"


class TokenReviewAuth:
    """Asks the API server who the token belongs to and whether that user may do what the request asks."""

    def __init__(self, api_client: Any, clock: Callable[[], float] = time.monotonic):
        from kubernetes import client

        self.authn = client.AuthenticationV1Api(api_client)
        self.authz = client.AuthorizationV1Api(api_client)
        self.clock = clock
        self._cache: OrderedDict[tuple[str, Access], tuple[float, str | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _review(self, token: str, access: Access) -> tuple[str | None, str]:
        from kubernetes import client

        review = self.authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)),
                                                _request_timeout=REVIEW_TIMEOUT_SECONDS)
        status = review.status
        if not status or not status.authenticated or not status.user:
            return None, "token not authenticated"
        user = status.user
        if access.resource is not None:
            attributes: dict[str, Any] = {"resource_attributes": client.V1ResourceAttributes(
                verb=access.verb, group=GROUP, resource=access.resource)}
        else:
            attributes = {"non_resource_attributes": client.V1NonResourceAttributes(verb=access.verb, path=access.path)}
        sar = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=user.username, groups=user.groups, uid=user.uid, extra=user.extra, **attributes))
        decision = self.authz.create_subject_access_review(sar, _request_timeout=REVIEW_TIMEOUT_SECONDS).status
        if not decision or not decision.allowed:
            return None, f"{user.username} may not {access}"
        return user.username, ""

    def _cached(self, key: tuple[str, Access], now: float) -> tuple[float, str | None, str] | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or now - hit[0] > (ALLOW_CACHE_SECONDS if hit[1] is not None else DENY_CACHE_SECONDS):
            return None
        return hit

    def __call__(self, token: str | None, access: Access) -> str:
        given = _require(token, access)
        key = (hashlib.sha256(given.encode()).hexdigest(), access)  # never keep the token itself
        now = self.clock()
        hit = self._cached(key, now)
        if hit is None:
            try:
                user, why = self._review(given, access)
            except Exception as exc:  # noqa: BLE001 - API server unreachable: fail closed, retryable
                raise AuthError(HTTPStatus.SERVICE_UNAVAILABLE,
                                f"cannot review the token now: {type(exc).__name__}") from None
            hit = (now, user, why)
            with self._lock:
                self._cache[key] = hit
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        if hit[1] is None:
            raise AuthError(HTTPStatus.FORBIDDEN, hit[2])
        return hit[1]
