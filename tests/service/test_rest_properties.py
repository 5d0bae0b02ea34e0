"""Property-based tests from the API's own OpenAPI schema (schemathesis): requests generated
for every operation, the REST and the OpenAI-compatible ones, with a valid key, never get a
server error and always get a response the schema describes. The key belongs to a throwaway
user (reading the engineering side, uploading only to a collection of their own), so the
generated uploads, deletions and questions leave the shared office as it was."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
)

from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.core.settings import Settings
from knowledge.desk.root import Desk
from knowledge.service.app import create_app
from knowledge.service.payloads import AnswerBody, Links, Passage, answer_json, passage_json
from tests.leaks import ENGINEERING, PASSWORD
from tests.service.conftest import Served

USER = "tess"
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def tess_key(served: Served) -> str:
    role = Role(
        "api-fuzz",
        pages=("chat", "knowledge", "analytics"),
        collections=(ENGINEERING.library + "*", "Api Fuzz"),
        upload_collections=("Api Fuzz",),
        rate_limit=RateLimit(),
    )
    served.desk.roles.save(role, "test")
    served.desk.accounts.add(USER, [role.name], "test", password=PASSWORD)
    return served.key(USER, ("read", "upload"))


def openapi_of_the_app() -> dict[str, Any]:
    """The app's schema, read when this module is collected: the served desk does not exist
    yet then (and schemathesis' fixture-loaded schemas need a pytest before 9)."""
    with tempfile.TemporaryDirectory() as data_dir:
        desk = Desk(Settings(data_dir=Path(data_dir)))
        try:
            return create_app(desk).openapi()
        finally:
            desk.close()
            desk.engine.dispose()


OPENAPI = openapi_of_the_app()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_served_schema_is_the_one_tested(served: Served):
    with served.client(None) as client:
        assert client.get("/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_error_and_responses_match_the_schema(case, served: Served, tess_key: str):
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {tess_key}"},
        checks=CHECKS,
        timeout=60,
    )


invalid = schemathesis.openapi.from_dict(OPENAPI).exclude(path="/health")  # nothing to break
invalid.config.generation.update(modes=[GenerationMode.NEGATIVE], allow_extra_parameters=False)


@invalid.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_requests_that_break_the_schema_are_refused_without_a_server_error(
    case, served: Served, tess_key: str
):
    checks = [not_a_server_error, negative_data_rejection]
    if case.path == "/api/usage/summary":  # ?role=false is the role "false": no string breaks it
        checks = [not_a_server_error]
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {tess_key}"},
        checks=checks,
        timeout=60,
    )


def test_the_payloads_fit_the_documented_models(served: Served):
    """payloads.py builds the JSON; rest_models.py documents it: the two agree."""
    me = served.desk.for_user(ENGINEERING.user)
    found = me.search("Zephyr turbine inspection", k=2)
    stream = me.ask("How often is the Zephyr-9 turbine inspected?")
    for _ in stream:
        pass
    links = Links.of(served.desk.settings)
    for passage in found:
        assert Passage.model_validate(passage_json(passage, links)).model_dump() == (
            passage_json(passage, links)
        )
    body = answer_json(stream.answer, links)
    assert stream.answer.citations
    assert AnswerBody.model_validate(body).model_dump() == body
