"""Who may ask the agent to send probes: a bearer token checked by the API server (TokenReview, then a
SubjectAccessReview for `create probes.segcheck.io`), or, in the lab, a token file."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

from .http_api import AuthError

PROBE_GROUP = "segcheck.io"
PROBE_RESOURCE = "probes"


def _require(token: str | None) -> str:
    if not token:
        raise AuthError(HTTPStatus.UNAUTHORIZED, "a bearer token is required to send probes")
    return token


class TokenFileAuth:
    """The token is the first line of a file (read at every check, so it can be rotated)."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, token: str | None) -> str:
        given = _require(token)
        try:
            wanted = self.path.read_text().strip()
        except OSError as exc:
            raise AuthError(HTTPStatus.SERVICE_UNAVAILABLE, f"token file unreadable: {exc.strerror}") from None
        if not wanted or not hmac.compare_digest(given.encode(), wanted.encode()):
            raise AuthError(HTTPStatus.FORBIDDEN, "token not accepted")
        return "token-file"


class TokenReviewAuth:
    """Asks the API server who the token belongs to and whether that user may create probes."""

    def __init__(self, api_client: Any, cache_seconds: float = 60.0):
        from kubernetes import client

        self.authn = client.AuthenticationV1Api(api_client)
        self.authz = client.AuthorizationV1Api(api_client)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str | None, str]] = {}
        self._lock = threading.Lock()

    def _review(self, token: str) -> tuple[str | None, str]:
        from kubernetes import client

        review = self.authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
        status = review.status
        if not status or not status.authenticated:
            return None, "token not authenticated"
        user = status.user
        sar = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=user.username, groups=user.groups, uid=user.uid, extra=user.extra,
            resource_attributes=client.V1ResourceAttributes(verb="create", group=PROBE_GROUP, resource=PROBE_RESOURCE)))
        decision = self.authz.create_subject_access_review(sar).status
        if not decision or not decision.allowed:
            return None, f"{user.username} may not create {PROBE_RESOURCE}.{PROBE_GROUP}"
        return user.username, ""

    def __call__(self, token: str | None) -> str:
        given = _require(token)
        key = hashlib.sha256(given.encode()).hexdigest()  # never keep the token itself
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or now - hit[0] > self.cache_seconds:
            try:
                user, why = self._review(given)
            except Exception as exc:  # noqa: BLE001 - API server unreachable: fail closed, retryable
                raise AuthError(HTTPStatus.SERVICE_UNAVAILABLE, f"cannot review the token now: {type(exc).__name__}") from None
            hit = (now, user, why)
            with self._lock:
                self._cache[key] = hit
        if hit[1] is None:
            raise AuthError(HTTPStatus.FORBIDDEN, hit[2])
        return hit[1]
