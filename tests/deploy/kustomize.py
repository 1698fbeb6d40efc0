"""A minimal kustomize: just the features deploy/daemonset uses, so manifests can be rendered without kubectl.

Supported kustomization keys: `resources` (files and directories), `namespace`, `patches` (a strategic-merge
patch file naming its object, or an RFC 6902 JSON patch file with a `target`; ops add/replace/remove).
Strategic merge here merges maps and replaces lists, which is exact for patches without lists. Any other key
is refused, so a new kustomize feature in deploy/ fails here loudly instead of rendering differently; where
kubectl is installed, the manifest tests also compare this rendering with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "SecurityContextConstraints",
                  "CustomResourceDefinition"}


class KustomizeError(ValueError):
    pass


def render(directory: Path) -> list[Obj]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: kustomization keys not supported by the test renderer: {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    for patch in kustomization.get("patches", []):
        _apply_patch(objects, directory / patch["path"], patch.get("target"))
    return objects


def _apply_patch(objects: list[Obj], path: Path, target: dict[str, str] | None) -> None:
    body = yaml.safe_load(path.read_text())
    if isinstance(body, list):
        if not target:
            raise KustomizeError(f"{path}: a JSON patch needs a target")
        matched = [o for o in objects if _matches(o, target)]
        if not matched:
            raise KustomizeError(f"{path}: target {target} matches nothing")
        for obj in matched:
            for op in body:
                _json_patch_op(obj, op)
        return
    matched = [o for o in objects if o["kind"] == body["kind"] and o["metadata"]["name"] == body["metadata"]["name"]]
    if len(matched) != 1:
        raise KustomizeError(f"{path}: strategic merge patch matches {len(matched)} objects")
    _merge(matched[0], body)


def _matches(obj: Obj, target: dict[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": obj["kind"], "name": obj["metadata"]["name"],
              "namespace": obj["metadata"].get("namespace", "")}
    return all(actual[key] == value for key, value in target.items())


def _merge(base: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _json_patch_op(obj: Obj, op: dict[str, Any]) -> None:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].lstrip("/").split("/")]
    parent: Any = obj
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    kind = op["op"]
    if kind not in ("add", "replace", "remove"):
        raise KustomizeError(f"JSON patch op {kind!r} not supported by the test renderer")
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        else:
            del parent[index]
    elif kind == "remove":
        del parent[last]
    else:
        if kind == "replace" and last not in parent:
            raise KustomizeError(f"replace of missing {op['path']}")
        parent[last] = copy.deepcopy(op["value"])
