"""The seed's API objects as a cluster would serve them: pods scheduled on NODE, the VM as its VMI."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path

import yaml

from segcheck.agent.lab.seed import packaged_seed

from .server import FakeKubeServer

NODE = "worker-a"


def seed_objects() -> dict[str, dict]:
    """The seed's API objects as a cluster would serve them: pods scheduled on NODE, the VM as its VMI."""
    objects = {}
    for path in sorted(Path(packaged_seed()).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("NetworkAttachmentDefinition", "MultiNetworkPolicy", "Pod", "VirtualMachine"):
                objects[doc["metadata"]["name"]] = doc
    pod = objects["podclient"]
    pod["spec"]["nodeName"] = NODE
    vm = objects.pop("vm-server")
    template = copy.deepcopy(vm["spec"]["template"])
    objects["vm-server"] = {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": "vm-server", "namespace": "default", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
        "status": {"nodeName": NODE, "interfaces": [
            {"name": "underlay", "mac": "02:00:00:00:00:20", "ipAddress": "192.168.200.20",
             "ipAddresses": ["192.168.200.20"]}]},
    }
    return objects


@contextlib.contextmanager
def seeded_server() -> Iterator[FakeKubeServer]:
    """A fake API server serving the seed's objects, stopped afterwards."""
    fake = FakeKubeServer().start()
    for obj in seed_objects().values():
        fake.create(obj)
    try:
        yield fake
    finally:
        fake.stop()
