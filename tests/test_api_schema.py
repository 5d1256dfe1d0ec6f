"""Schemathesis against ``/openapi.json``, with all its phases: the schema's examples, coverage
(boundary values, missing and wrong fields, methods that are not allowed), fuzzing, and stateful
sequences that feed one response into the next request (silence, then read the status, then
unsilence). Every check must pass: no server error, and every answer as the schema documents it
(a request body the schema allows is accepted, one it refuses is a 422).

Run through schemathesis' own engine, as its command line runs it (its pytest plugin does not load
on this pytest); a failure names its seed, and ``SCHEMATHESIS_SEED=<seed>`` replays it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.run import TESTING_PHASES, PhaseName

from tests.api_app import TOKEN, ApiWorld
from tests.servers import HTTPTestServer

#: Examples per operation and phase, and steps per stateful scenario: enough to find what the
#: phases find, few enough that the suite stays fast (``SCHEMATHESIS_MAX_EXAMPLES`` digs deeper).
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
MAX_STEPS = 6


def _config(seed: int | None) -> SchemathesisConfig:
    generation = {"max-examples": MAX_EXAMPLES}
    return SchemathesisConfig.from_dict(
        {
            **({"seed": seed} if seed is not None else {}),
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "generation": generation,
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": MAX_STEPS},
            },
        }
    )


def _failed_checks(event: events.ScenarioFinished) -> list[str]:
    found = []
    for case_id, checks in event.recorder.checks.items():
        case = event.recorder.cases[case_id].value
        for check in checks:
            if check.status == "failure":
                failure = check.failure_info.failure if check.failure_info else None
                found.append(
                    f"{event.phase} {check.name}: {case.method} {case.path} body={case.body!r} "
                    f"query={case.query!r}: {failure}"
                )
    return found


@pytest.mark.parametrize("token", [None, TOKEN])
def test_every_operation_matches_its_schema(
    token: str | None, tmp_path: Path, sqlite_url: str, http_server: HTTPTestServer
) -> None:
    world = ApiWorld(tmp_path, sqlite_url.replace("data.db", "state.db"), http_server.url)
    seed = os.environ.get("SCHEMATHESIS_SEED")
    try:
        config = _config(int(seed) if seed else None)
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", world.app(token=token), config=config
        )
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 10
        ran: dict[PhaseName, Any] = {}
        transitions = 0
        problems: list[str] = []
        for event in from_schema(schema).execute():
            if isinstance(event, events.PhaseStarted) and event.payload is not None:
                transitions = event.payload.transitions_selected
            elif isinstance(event, events.PhaseFinished):
                ran[event.phase.name] = event.phase.skip_reason or event.status
            elif isinstance(event, events.ScenarioFinished):
                problems.extend(_failed_checks(event))
            elif isinstance(event, events.NonFatalError):
                problems.append(f"{event.phase} {event.label}: {event.value!r}")
            elif isinstance(event, events.FatalError):
                problems.append(f"fatal: {event.exception!r}")
        assert not problems, f"seed {config.seed}:\n" + "\n".join(problems)
        assert {phase: ran.get(phase) for phase in TESTING_PHASES} == dict.fromkeys(
            TESTING_PHASES, "success"
        ), f"seed {config.seed}"
        assert transitions > 0  # the stateful phase found links between the operations to follow
    finally:
        world.deployment.close()
