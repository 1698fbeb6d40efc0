"""The thin, typed edge to the Kubernetes API: list pages and watch streams as plain dicts, errors typed.

Everything above this module sees `ResourceType`, `ListPage`, event dicts and `KubeError` subclasses, never the
client's models or urllib3. Requests go through the official client's `ApiClient`, so its configuration (TLS,
client certificates, token refresh of in-cluster service accounts, proxies) applies unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

RawObject = dict[str, Any]

# A Status message can echo request details; we keep errors short and never include headers (they carry tokens).
_MAX_MESSAGE_CHARS: Final = 300
_CONNECT_TIMEOUT_SECONDS: Final = 5.0
_LIST_READ_TIMEOUT_SECONDS: Final = 60.0
# Extra read time beyond the server-side watch timeout before the client gives up on a silent stream.
_WATCH_READ_MARGIN_SECONDS: Final = 5.0


@dataclass(frozen=True)
class ResourceType:
    """One API resource watched cluster-wide: where it lives and what its items are called."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"

    @property
    def name(self) -> str:
        """The name used in health reports and logs, e.g. `multi-networkpolicies.k8s.cni.cncf.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS: Final = ResourceType("", "v1", "pods", "Pod")
NAMESPACES: Final = ResourceType("", "v1", "namespaces", "Namespace")
NETWORK_ATTACHMENT_DEFINITIONS: Final = ResourceType(
    "k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition"
)
MULTI_NETWORK_POLICIES: Final = ResourceType(
    "k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies", "MultiNetworkPolicy"
)
VIRTUAL_MACHINE_INSTANCES: Final = ResourceType(
    "kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance"
)
# segcheck's own: hosts on the physical side (deploy/daemonset/base/crd-externalendpoints.yaml). Where the CRD
# is not installed the resource is reported unavailable and the rest works (the file form still can be used).
EXTERNAL_ENDPOINTS: Final = ResourceType("segcheck.io", "v1alpha1", "externalendpoints", "ExternalEndpoint")

DEFAULT_RESOURCES: Final[tuple[ResourceType, ...]] = (
    PODS,
    NAMESPACES,
    NETWORK_ATTACHMENT_DEFINITIONS,
    MULTI_NETWORK_POLICIES,
    VIRTUAL_MACHINE_INSTANCES,
    EXTERNAL_ENDPOINTS,
)


class KubeError(Exception):
    """An API call failed. `temporary` says whether retrying the same call can help."""

    temporary: bool = True


class TemporaryKubeError(KubeError):
    """Outage, timeout, 5xx, 429, truncated stream: retry with backoff."""


class PermanentKubeError(KubeError):
    """Rejected request (401, 403, 400...): retrying unchanged will not help until someone fixes config or RBAC."""

    temporary = False


class ResourceGoneError(KubeError):
    """410 Gone: the resourceVersion we hold was compacted away; only a fresh list helps."""


class ResourceUnavailableError(KubeError):
    """404 on the collection: the API (usually its CRD, e.g. KubeVirt not installed) is not served."""

    temporary = False


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"


def error_for_status(status: int, message: str) -> KubeError:
    """Map an HTTP status (or a watch ERROR event's `code`) to the error type that says what to do next."""
    text = _short(f"HTTP {status}: {message}")
    if status == 410:
        return ResourceGoneError(text)
    if status == 404:
        return ResourceUnavailableError(text)
    if status == 429 or status >= 500:
        return TemporaryKubeError(text)
    if 400 <= status < 500:
        return PermanentKubeError(text)
    return TemporaryKubeError(text)


def _status_message(body: bytes) -> str:
    try:
        status = json.loads(body)
    except ValueError:
        return body[:_MAX_MESSAGE_CHARS].decode("utf-8", "replace")
    if isinstance(status, dict):
        return str(status.get("message") or status.get("reason") or "")
    return ""


@dataclass(frozen=True)
class ListPage:
    items: list[RawObject]
    resource_version: str
    continue_token: str | None


class KubeApi:
    """GET requests on collections through an `ApiClient`; the only place that touches the client and urllib3."""

    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self._api_client = api_client

    def _get(self, path: str, query: list[tuple[str, str]], read_timeout: float) -> urllib3.BaseHTTPResponse:
        try:
            method, url, headers, body, post_params = self._api_client.param_serialize(
                method="GET",
                resource_path=path,
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response: urllib3.BaseHTTPResponse = self._api_client.call_api(
                method, url, headers, body, post_params, _request_timeout=(_CONNECT_TIMEOUT_SECONDS, read_timeout)
            ).response
        except ApiException as exc:  # the client wraps TLS failures this way (status 0)
            raise TemporaryKubeError(_short(f"GET {path}: {exc.reason}")) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            raise TemporaryKubeError(_short(f"GET {path}: {type(cause).__name__}: {cause}")) from None
        if not 200 <= response.status <= 299:
            try:
                message = _status_message(response.read())
            except (urllib3.exceptions.HTTPError, OSError):
                message = response.reason or ""
            finally:
                response.release_conn()
            raise error_for_status(response.status, f"GET {path}: {message}")
        return response

    def list_page(self, resource: ResourceType, limit: int, continue_token: str | None) -> ListPage:
        query = [("limit", str(limit))]
        if continue_token:
            query.append(("continue", continue_token))
        response = self._get(resource.path, query, _LIST_READ_TIMEOUT_SECONDS)
        try:
            document = json.loads(response.read())
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise TemporaryKubeError(_short(f"GET {resource.path}: unreadable list: {exc}")) from None
        finally:
            response.release_conn()
        metadata = document.get("metadata") or {}
        items = document.get("items") or []
        # List items carry neither apiVersion nor kind; the parsers downstream need both.
        for item in items:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return ListPage(items, str(metadata.get("resourceVersion", "")), metadata.get("continue") or None)

    def open_watch(self, resource: ResourceType, resource_version: str, timeout_seconds: int) -> WatchStream:
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        response = self._get(resource.path, query, timeout_seconds + _WATCH_READ_MARGIN_SECONDS)
        return WatchStream(resource, response)


class WatchStream:
    """Newline-delimited JSON watch events from one response. `close()` may be called from another thread."""

    def __init__(self, resource: ResourceType, response: urllib3.BaseHTTPResponse) -> None:
        self._resource = resource
        self._response = response

    def events(self) -> Iterator[RawObject]:
        """Yield event dicts (`type`, `object`) until the server ends the stream. Raises `TemporaryKubeError`."""
        buffer = b""
        try:
            for chunk in self._response.stream(decode_content=True):
                buffer += chunk
                # An event may span chunks, and a chunk may hold several events.
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._decode(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise TemporaryKubeError(_short(f"watch {self._resource.path}: {type(exc).__name__}: {exc}")) from None
        if buffer.strip():
            yield self._decode(buffer)

    def _decode(self, line: bytes) -> RawObject:
        try:
            event = json.loads(line)
        except ValueError:
            raise TemporaryKubeError(_short(f"watch {self._resource.path}: undecodable event")) from None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise TemporaryKubeError(f"watch {self._resource.path}: malformed event")
        return event

    def close(self) -> None:
        """Release the response; called by the thread that reads it."""
        self._response.close()

    def interrupt(self) -> None:
        """Unblock a read in progress in another thread (shutdown(), urllib3 >= 2.3; close() alone would not)."""
        shutdown = getattr(self._response, "shutdown", None)
        try:
            if shutdown is not None:
                shutdown()
        except (RuntimeError, ValueError, OSError):  # the stream already ended: nothing left to interrupt
            pass
        self._response.close()


def build_api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s_client.ApiClient:
    """In-cluster service account config when running in a pod (and no kubeconfig is named), else kubeconfig."""
    configuration = k8s_client.Configuration()
    if kubeconfig is None and context is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return k8s_client.ApiClient(configuration)
        except k8s_config.ConfigException:
            pass
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    return k8s_client.ApiClient(configuration)
