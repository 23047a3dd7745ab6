"""The system programs the deployment tests run: found, or the test fails saying how to
get them (`make test` installs them first, so this is for a bare `pytest`)."""

from __future__ import annotations

import shutil

import pytest


def system_command(name: str, package: str, purpose: str) -> str:
    """The path of program `name`, from Debian package `package`, which the tests use for
    `purpose`; sbin directories count even when PATH lacks them, as a user's often does."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(
            f"{name} is not installed; {purpose}. `make system-packages` installs it "
            f"(Debian package {package}).",
            pytrace=False,
        )
    return path
