"""deploy/docker/python-service.Dockerfile, read as text (no engine runs here).

What a build would only find out late: a COPY of a path that moved, a test
kit or dev tool slipping into an image, a root user.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "python-service.Dockerfile"
DOCKERIGNORE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip()
            found[current] = []
        elif current is not None:
            found[current].append((keyword, rest))
    return found


def test_stages_and_base_images() -> None:
    assert list(stages()) == ["web", "build", "runtime"]
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest
    )
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert args["NODE_IMAGE"].startswith("node:")


@pytest.mark.parametrize("service", ["auth", "message", "gateway"])
def test_every_copied_path_exists(service: str) -> None:
    for stage in stages().values():
        for keyword, rest in stage:
            if keyword != "COPY" or rest.startswith("--from"):
                continue
            *sources, _ = [part for part in rest.split() if not part.startswith("--")]
            for source in sources:
                path = REPO / source.replace("${SERVICE}", service)
                assert path.exists(), f"COPY {source}: {path} does not exist"


def test_only_runtime_packages_are_installed() -> None:
    build = " ".join(rest for keyword, rest in stages()["build"] if keyword in {"RUN", "COPY"})
    assert "libs/testkit" not in build
    assert "-r requirements.lock" not in build, "the lock holds the dev tools too"
    assert "PIP_CONSTRAINT=/src/requirements.lock" in DOCKERFILE.read_text()
    assert "./libs/contracts ./libs/platform" in build


def test_runtime_runs_unprivileged_as_the_service() -> None:
    runtime = stages()["runtime"]
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    uid, _, gid = user.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it; the manifests use 10001 too.
    assert uid == "10001"
    assert gid == "10001"
    (entrypoint,) = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    # Exec form: the service is PID 1 and gets SIGTERM itself.
    assert entrypoint.startswith("[")
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_gateway_gets_its_browser_library_from_the_build_script() -> None:
    web = " ".join(rest for _, rest in stages()["web"])
    assert "deploy/scripts/build-web.sh" in web
    assert (REPO / "deploy/scripts/build-web.sh").exists()


def test_build_context_leaves_out_secrets_and_local_state() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allow-list: everything is excluded, then only what the Dockerfile copies.
    assert rules[0] == "**"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert not any(a.startswith((".dev", ".env", ".venv", ".git")) for a in allowed)
    assert "**/node_modules" in rules
