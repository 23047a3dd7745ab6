"""Fixtures shared by the tests that run JavaScript under Node."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not installed: the JS tests need Node.js 18+ and npm", False)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 18, f"Node.js 18+ is needed, found {version.stdout.strip()}"
    return exe
