"""Property-based run of the whole OpenAPI document: no generated request gets a server error.

Schemathesis generates requests for every operation (valid and invalid bodies, parameters and
paths) and sends them to the application in process, signed in as an admin (so requests reach
the handlers instead of stopping at the permission check). Any 5xx fails the test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from vigil.api.app import create_app
from vigil.api.server import build_runtime
from vigil.app import Vigil
from vigil.core.auth import SYSTEM
from vigil.core.config import load_settings
from vigil.core.metrics import Registry
from vigil.people import service as people
from vigil.people import tokens


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "vigil-data"
    vigil = Vigil(load_settings(data_dir))
    registry = Registry()
    runtime = build_runtime(vigil, registry)
    people.add_user(vigil.db, SYSTEM, "fuzz-admin", "a long enough password", role="admin",
                    team="security", email="fuzz@example.org")
    token = tokens.issue(vigil.db, SYSTEM, "fuzz", user="fuzz-admin").token
    app = create_app(vigil, runtime, registry)
    yield app, token
    runtime.stop()
    vigil.close()


# Logging out, changing the password or revoking tokens would end the admin credentials the
# rest of the run uses (those routes have tests of their own).
_SKIP = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password"),
         ("DELETE", "/api/v1/tokens/{token_id}")}


def _fuzz(operation: Any, token: str, failures: list[str], statuses: Counter[int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}

    @given(operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        kept = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = {**kept, **headers}
        response = case.call()
        if not case.path.startswith("/api/v1/auth/"):
            statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:300]}")

    run()


def test_no_server_error(instance: tuple[Any, str]) -> None:
    app, token = instance
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in _SKIP:
            continue
        operations += 1
        _fuzz(operation, token, failures, statuses)
    assert operations > 60
    assert sum(statuses.values()) > operations * 3, statuses
    assert statuses[401] == 0, "the run must be signed in (sign-in attempts aside)"
    assert any(200 <= code < 300 for code in statuses), statuses
    assert not failures, "\n".join(failures[:20])
