"""A fake Kubernetes API server for contract tests of the Kubernetes adapter, driven through the real client."""

from .server import FakeKubeServer
from .state import RESOURCES, Request

__all__ = ["FakeKubeServer", "RESOURCES", "Request"]
