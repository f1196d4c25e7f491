"""schemathesis over a service's whole OpenAPI: any generated request must get an answer below 500."""

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from tests.support.live import live_server

ACCEPTED_TYPES = ("application/json", "application/problem+json", "application/pdf",
                  "application/vnd.openxmlformats", "text/plain", "image/")


def assert_no_server_errors(app: FastAPI, headers: dict[str, str], *, skip: tuple[str, ...] = (),
                            max_examples: int = 20) -> int:
    """Fuzz every operation (except paths in `skip`) with these headers; returns how many ran."""
    failures: list[str] = []
    calls = 0  # an upper bound of generated requests, for the caller's sanity check
    with live_server(app) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path in skip:
                continue

            check = _checker(operation, base_url, headers, failures)
            run = settings(max_examples=max_examples, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))(given(case=operation.as_strategy())(check))
            run()
            calls += max_examples
    assert not failures, "\n".join(failures[:20])
    return calls


def _checker(operation, base_url: str, headers: dict[str, str], failures: list[str]):
    """The per-case check of one operation (a closure: hypothesis' @given refuses default args)."""
    label = f"{operation.method.upper()} {operation.path}"

    def check(case) -> None:
        response = case.call(base_url=base_url, headers=headers)
        content_type = response.headers.get("content-type", "")
        if isinstance(content_type, list):  # schemathesis keeps every value of a header
            content_type = content_type[0] if content_type else ""
        if response.status_code >= 500:
            failures.append(f"{label} -> {response.status_code}: {response.text[:300]}")
        elif response.content and not content_type.startswith(ACCEPTED_TYPES):
            failures.append(f"{label} -> unexpected content type {content_type}")

    return check
