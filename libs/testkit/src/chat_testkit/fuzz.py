"""Schemathesis over a running service's OpenAPI: whatever it generates, no 5xx."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err


def server_errors_of_generated_requests(
    base_url: str,
    headers: Mapping[str, str],
    *,
    aim: Mapping[str, str],
    examples_per_operation: int = 8,
) -> tuple[int, list[str]]:
    """Send generated requests to every operation; (operations tried, the 5xx answers found).

    `aim` maps path parameters to values that exist (a conversation the caller is in, a
    user): half the cases use them, to get past the 404 and into the handler.
    """
    schema = schemathesis.openapi.from_url(f"{base_url.rstrip('/')}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=examples_per_operation,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), aimed=st.booleans())
        def check(case: Any, aimed: bool) -> None:
            if aimed and case.path_parameters:
                for name, value in aim.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = value
            response = case.call(base_url=base_url, headers=dict(headers), timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()
    return operations, failures
