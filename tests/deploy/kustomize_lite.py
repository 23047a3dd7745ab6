"""A small kustomize, enough to render this repository's k8s/ tree in tests.

Neither kustomize nor a kubectl that embeds it is a Debian package, so the
tests cannot count on either and build the overlays with this instead; where
kubectl is installed, test_kustomize_lite.py checks that both render each
overlay the same. It supports what k8s/ uses, and refuses what it does not
know rather than render it wrongly:

- `resources`: YAML files and directories holding a kustomization;
- `components` (kind: Component): their resources, then their patches;
- `patches`: from `path` or inline `patch`, with or without a `target`
  (kind, name as a regular expression, namespace, group, version);
  strategic-merge patches (maps merge, null deletes a key, lists of named
  items merge by `name` or `$patch: delete` them, other lists are
  replaced) and JSON 6902 patches (add, remove, replace);
- `namespace`, on every namespaced object;
- `images` (newName, newTag, digest), on the containers of pod templates.

The order of transformations is kustomize's: a base is built completely
before the overlay that uses it; components apply after the resources of
the kustomization that lists them; then patches, namespace and images.
The output is in kustomize's default ("legacy") order, so that it can be
compared with `kubectl kustomize` document by document.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "components", "patches", "namespace", "images"}
)
# Kinds that live outside namespaces, among those this tree could contain.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# kustomize's legacy output order: these kinds first, in this order (what others
# depend on before what depends on them), webhooks last, every other kind between
# them by group, version and kind.
ORDER_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
POD_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod", "CronJob"}
)


class KustomizeError(Exception):
    """The tree uses something this renderer does not support, or is malformed."""


def build(directory: Path) -> list[Manifest]:
    """Render the kustomization in `directory`, like `kustomize build DIR`."""
    return sorted(_build(directory.resolve(), expect_kind="Kustomization"), key=output_order)


def output_order(manifest: Manifest) -> tuple[int, str, str, str]:
    """Sort key of kustomize's legacy order: kind rank, then group_version_kind, namespace, name."""
    kind = manifest["kind"]
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind) - len(ORDER_FIRST)
    elif kind in ORDER_LAST:
        rank = ORDER_LAST.index(kind) + 1
    else:
        rank = 0
    group, _, version = manifest["apiVersion"].rpartition("/")
    meta = manifest["metadata"]
    gvk = f"{group or '~G'}_{version}_{kind}"
    return rank, gvk, meta.get("namespace", ""), meta["name"]


def _load_kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = set(data) - SUPPORTED_FIELDS
            if unknown:
                raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
            return data
    raise KustomizeError(f"{directory}: no kustomization file")


def _build(directory: Path, expect_kind: str) -> list[Manifest]:
    kustomization = _load_kustomization(directory)
    kind = kustomization.get("kind", "Kustomization")
    if kind != expect_kind:
        raise KustomizeError(f"{directory}: is a {kind}, expected a {expect_kind}")

    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            manifests.extend(_build(path, expect_kind="Kustomization"))
        elif path.is_file():
            manifests.extend(_read_manifests(path))
        else:
            raise KustomizeError(f"{directory}: resource {entry} not found")
        _check_unique(manifests, directory)

    for entry in kustomization.get("components", []):
        manifests = _apply_component((directory / entry).resolve(), manifests)
        _check_unique(manifests, directory)

    manifests = _apply_patches(directory, kustomization.get("patches", []), manifests)
    if "namespace" in kustomization:
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        _set_image(manifests, image)
    return manifests


def _apply_component(directory: Path, manifests: list[Manifest]) -> list[Manifest]:
    component = _load_kustomization(directory)
    if component.get("kind") != "Component":
        raise KustomizeError(f"{directory}: listed as a component but is not kind: Component")
    if "namespace" in component:
        raise KustomizeError(f"{directory}: a namespace in a component is not supported here")
    manifests = list(manifests)
    for entry in component.get("resources", []):
        path = (directory / entry).resolve()
        if not path.is_file():
            raise KustomizeError(f"{directory}: component resource {entry} is not a file")
        manifests.extend(_read_manifests(path))
    for entry in component.get("components", []):
        manifests = _apply_component((directory / entry).resolve(), manifests)
    manifests = _apply_patches(directory, component.get("patches", []), manifests)
    for image in component.get("images", []):
        _set_image(manifests, image)
    return manifests


def _read_manifests(path: Path) -> list[Manifest]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: a document without apiVersion/kind")
        if not doc.get("metadata", {}).get("name"):
            raise KustomizeError(f"{path}: a {doc['kind']} without metadata.name")
    return docs


def _key(manifest: Manifest) -> tuple[str, str, str, str]:
    group = manifest["apiVersion"].rpartition("/")[0]
    meta = manifest["metadata"]
    return group, manifest["kind"], meta.get("namespace", ""), meta["name"]


def _check_unique(manifests: list[Manifest], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for manifest in manifests:
        key = _key(manifest)
        if key in seen:
            raise KustomizeError(f"{where}: {key} is defined twice")
        seen.add(key)


# --- patches ---


def _apply_patches(
    directory: Path, patches: list[dict[str, Any]], manifests: list[Manifest]
) -> list[Manifest]:
    for entry in patches:
        unknown = set(entry) - {"path", "patch", "target"}
        if unknown:
            raise KustomizeError(f"{directory}: unsupported patch fields {sorted(unknown)}")
        text = (directory / entry["path"]).read_text() if "path" in entry else entry["patch"]
        body = yaml.safe_load(text)
        target = entry.get("target")
        if isinstance(body, list):
            if target is None:
                raise KustomizeError(f"{directory}: a JSON 6902 patch needs a target")
            matched = [m for m in manifests if _matches(m, target)]
            for manifest in matched:
                _json6902(manifest, body)
        elif isinstance(body, dict):
            if target is None:
                target = {"kind": body["kind"], "name": re.escape(body["metadata"]["name"])}
            matched = [m for m in manifests if _matches(m, target)]
            if body.get("$patch") == "delete":
                manifests = [m for m in manifests if not any(m is d for d in matched)]
            else:
                for manifest in matched:
                    patch = copy.deepcopy(body)
                    # With a target, the patch's own name does not select anything.
                    patch.pop("apiVersion", None)
                    patch.pop("kind", None)
                    patch.get("metadata", {}).pop("name", None)
                    merged = strategic_merge(manifest, patch)
                    manifest.clear()
                    manifest.update(merged)
        else:
            raise KustomizeError(f"{directory}: a patch must be a mapping or a list")
        if not matched:
            raise KustomizeError(f"{directory}: patch target {target} matches nothing")
    return manifests


def _matches(manifest: Manifest, target: dict[str, str]) -> bool:
    unknown = set(target) - {"kind", "name", "namespace", "group", "version"}
    if unknown:
        raise KustomizeError(f"unsupported target fields {sorted(unknown)}")
    group, _, version = manifest["apiVersion"].rpartition("/")
    meta = manifest["metadata"]
    actual = {
        "kind": manifest["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
        "group": group,
        "version": version,
    }
    # kustomize reads every selector field as an anchored regular expression.
    return all(re.fullmatch(pattern, actual[field]) for field, pattern in target.items())


def strategic_merge(original: Any, patch: Any) -> Any:
    """A strategic merge patch, as far as these manifests need one."""
    if isinstance(original, dict) and isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        merged = dict(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = _strip_directives(value)
        return merged
    if isinstance(original, list) and isinstance(patch, list) and _named_items(original, patch):
        merged_list = [copy.deepcopy(item) for item in original]
        for item in patch:
            index = next(
                (i for i, old in enumerate(merged_list) if old["name"] == item["name"]), None
            )
            if item.get("$patch") == "delete":
                if index is not None:
                    del merged_list[index]
            elif index is None:
                merged_list.append(_strip_directives(item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return _strip_directives(copy.deepcopy(patch))


def _named_items(*lists: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for items in lists for item in items)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        if any(key.startswith("$") for key in value):
            raise KustomizeError(f"unsupported patch directive in {value}")
        return {k: _strip_directives(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _json6902(manifest: Manifest, operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        op, path = operation["op"], operation["path"]
        if op not in {"add", "remove", "replace"}:
            raise KustomizeError(f"unsupported JSON patch operation {op}")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
        parent: Any = manifest
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, copy.deepcopy(operation["value"]))
            elif op == "remove":
                del parent[index]
            else:
                parent[index] = copy.deepcopy(operation["value"])
        else:
            if op in {"remove", "replace"} and last not in parent:
                raise KustomizeError(f"JSON patch: {path} does not exist")
            if op == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(operation["value"])


# --- images ---


def split_image(image: str) -> tuple[str, str, str]:
    """ "registry:5000/a/b:tag@sha256:..." -> (name, tag, digest)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def _pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    kind = manifest["kind"]
    if kind not in POD_TEMPLATE_KINDS:
        return None
    if kind == "Pod":
        return manifest.get("spec")
    if kind == "CronJob":
        return manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return manifest["spec"]["template"]["spec"]


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    """Every container and init container of a workload's pod template."""
    spec = _pod_spec(manifest)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def _set_image(manifests: list[Manifest], rule: dict[str, str]) -> None:
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"unsupported images fields {sorted(unknown)}")
    for manifest in manifests:
        for container in containers(manifest):
            name, tag, digest = split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                container["image"] = f"{name}@{rule['digest']}"
                continue
            tag = str(rule.get("newTag", tag))
            image = f"{name}:{tag}" if tag else name
            container["image"] = f"{image}@{digest}" if digest and "newTag" not in rule else image


def main(argv: list[str] | None = None) -> None:
    """`python tests/deploy/kustomize_lite.py k8s/overlays/dev`: print the rendered YAML."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a directory holding a kustomization")
    args = parser.parse_args(argv)
    # Sorted keys and unwrapped lines, as kubectl prints them.
    yaml.safe_dump_all(build(args.directory), sys.stdout, sort_keys=True, width=1 << 16)


if __name__ == "__main__":
    main()
