"""Schemathesis against ``/openapi.json``: generated requests to every endpoint, checked for
server errors and for responses that do not match the documented schema.

The operations are driven with Hypothesis directly (schemathesis' pytest plugin does not load on
this pytest), one property test per operation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api_app import TOKEN, ApiWorld
from tests.servers import HTTPTestServer


@pytest.mark.parametrize("token", [None, TOKEN])
def test_every_operation_matches_its_schema(
    token: str | None, tmp_path: Path, sqlite_url: str, http_server: HTTPTestServer
) -> None:
    world = ApiWorld(tmp_path, sqlite_url.replace("data.db", "state.db"), http_server.url)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", world.app(token=token))
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 10
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for operation in operations:

            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers)

            check()
    finally:
        world.service.close()
