"""kustomize_lite against the real kustomize that `kubectl kustomize` embeds.

`make k8s-render` prints an overlay with kubectl where it is installed and
with kustomize_lite elsewhere, and the other deployment tests read what
kustomize_lite renders; both rely on the two agreeing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kustomize_lite
import pytest
import yaml
from kustomize_lite import Manifest

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(path.name for path in (REPO / "k8s" / "overlays").iterdir() if path.is_dir())
LITE_SCRIPT = Path(kustomize_lite.__file__)


def describe(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    return f"{manifest['apiVersion']} {manifest['kind']} {meta.get('namespace', '')}/{meta['name']}"


ABSENT = "<absent>"


def first_difference(left: Any, right: Any, path: str = "") -> str:
    """Where two parsed YAML values first differ, as a dotted path with both values."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            if key not in left or key not in right or left[key] != right[key]:
                return first_difference(
                    left.get(key, ABSENT), right.get(key, ABSENT), f"{path}.{key}"
                )
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]")
    return f"{path or '.'}: {left!r} != {right!r}"


def compare(expected: list[Manifest], actual: list[Manifest]) -> list[str]:
    """Every way in which two renderings differ, document by document."""
    problems = []
    if [describe(m) for m in expected] != [describe(m) for m in actual]:
        problems.append(
            "documents differ in number, identity or order:\n  "
            + "\n  ".join(f"{describe(m)}" for m in expected)
            + "\nversus\n  "
            + "\n  ".join(f"{describe(m)}" for m in actual)
        )
    for left, right in zip(expected, actual, strict=False):
        if left != right:
            problems.append(f"{describe(left)}: {first_difference(left, right)}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_lite_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    """Each overlay renders the same with kustomize_lite as with `kubectl kustomize`.

    "The same" means: the same number of YAML documents, in the same order, and
    each document parsed by PyYAML equal to its counterpart: mappings compare
    regardless of key order, lists item by item in order, scalars by parsed type
    and value (so "8001" and 8001 differ, while '' and "" or a line break inside
    a long string do not). Document order is compared because kustomize_lite
    sorts its output the way kustomize does by default (its "legacy" order).

    What `make k8s-render` prints without kubectl, kustomize_lite.py run as a
    script, is checked against `kustomize_lite.build` in every case. kubectl is
    not a Debian package, so on machines without it that is the whole test: the
    script's output must parse back to the built documents, in kustomize's
    order. Where kubectl exists it is the reference, and the built documents
    must equal what it renders.
    """
    directory = REPO / "k8s" / "overlays" / overlay
    built = kustomize_lite.build(directory)
    assert built == sorted(built, key=kustomize_lite.output_order)

    script = subprocess.run(
        [sys.executable, str(LITE_SCRIPT), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    problems = compare(built, list(yaml.safe_load_all(script.stdout)))
    assert not problems, "kustomize_lite.py printed other documents than it built:\n" + "\n".join(
        problems
    )

    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        # `kubectl kustomize` reads only local files; no cluster or kubeconfig is involved.
        rendered = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "KUBECONFIG": os.devnull},
        )
        assert rendered.returncode == 0, rendered.stderr
        problems = compare(list(yaml.safe_load_all(rendered.stdout)), built)
        assert not problems, (
            f"kubectl kustomize (left) and kustomize_lite (right) differ on {overlay}:\n"
            + "\n".join(problems)
        )
