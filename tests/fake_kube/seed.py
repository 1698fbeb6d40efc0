"""The seed's API objects as a cluster would serve them: pods scheduled on NODE, the VM as its VMI."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from segcheck.agent.lab.seed import packaged_seed

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
