"""Property-based tests of the served API against its own OpenAPI schema (schemathesis).

Every operation in ``/api/schema/`` is called with generated requests, valid and invalid, as three
callers: a programme admin, the integration service account and a member token, and every
response goes through all of schemathesis's checks (status codes, content types, response
schemas and headers, acceptance of valid and rejection of invalid data, auth, allowed methods...).
Generation is bounded (``MAX_EXAMPLES`` per operation) and deterministic, so a run is
reproducible.

Known failures are listed in ``EXCLUDED`` by caller, operation and check, each with its reason; an
excluded check still runs, and one that no longer fails is reported as a warning (set
``CONTRACT_STRICT=1`` to make that an error) so its entry gets removed. ``CONTRACT_RECORD=path``
appends every failure seen, excluded or not, to ``path`` as JSON lines, and fails nothing: that
is how the list below is drawn up.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup

from tests.contract.conftest import LiveServer

pytestmark = pytest.mark.contract

MAX_EXAMPLES = 25
REQUEST_TIMEOUT = 30
CALLERS = ("admin", "integration", "member")

# Why a failure is accepted for now. "by design": the documented behaviour, which the schema
# cannot express; "reported": a defect handed to the owners of the schema and the server, the
# entry to go when it is fixed.
EMPTY_QUERY = (
    "by design: an empty query parameter (from=, to=, joined_from=, kind=, status=, reward_id=) "
    "is no filter, as an HTML form sends an empty field; a value that is present is validated "
    "(400)"
)
OPAQUE_CURSOR = (
    "by design: a cursor is opaque and only ever copied from a page's next or previous link; a "
    "made-up string is no position in the list (400 invalid_cursor), which a schema cannot say"
)
BATCH_ITEMS = (
    "by design (docs/api.md, Integration): an item that breaks the item schema is rejected on its "
    "own in a 202 (rejected[{index, errors}]) while the valid items are stored; more than 1,000 "
    "items answer 413 batch_too_large, which the check does not count as a rejection"
)
MEMBER_PUT_CREATE = (
    "by design (docs/api.md): name is required only when the PUT creates the member, which the "
    "schema cannot say: {} to a new customer_no -> 400 name required; joined_at after today -> "
    "400 future_date"
)
DATA_DEPENDENT = (
    "by design: valid values depend on stored data or today's date, which the schema cannot "
    "express: tier codes must name an existing tier (400 unknown_tier), as_of must lie between "
    "the first data and today (400 too_early / future_date), an override's expires_at must be in "
    "the future and within the limit (400 past / too_long); a reward's eligible_tiers must name "
    "existing tiers and its code be new, its valid_to after its valid_from (400); an event's "
    "times must come in order (invitations, RSVP deadline, start, end) (400); a segment rule's "
    "tiers must name existing tiers and a segment's name be new (400); a survey's or event's "
    "segment must exist and a survey's closes_at lie ahead (400); a KPI period starts in 2000 "
    "or later, ends after it starts and spans at most ten years (400)"
)

BALANCE_DEPENDENT = (
    "by design: a debit adjustment beyond the member's spendable balance is refused when it is "
    "requested (422 insufficient_points), as its approval would refuse it; the balance is stored "
    "data the schema cannot express"
)

# (caller, METHOD, path, check) -> why it fails and is accepted for now. Keep it short.
EXCLUDED: dict[tuple[str, str, str, str], str] = {
    ("admin", "GET", "/api/v1/members/", "negative_data_rejection"): EMPTY_QUERY,
    ("admin", "GET", "/api/v1/members/{customer_no}/points/entries/", "negative_data_rejection"): (
        EMPTY_QUERY
    ),
    ("admin", "GET", "/api/v1/tiers/overrides/", "negative_data_rejection"): EMPTY_QUERY,
    ("member", "GET", "/api/v1/me/points/entries/", "negative_data_rejection"): EMPTY_QUERY,
    ("member", "GET", "/api/v1/me/redemptions/", "negative_data_rejection"): EMPTY_QUERY,
    ("admin", "POST", "/api/v1/rewards/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/points/adjustments/", "positive_data_acceptance"): (
        BALANCE_DEPENDENT
    ),
    ("admin", "POST", "/api/v1/events/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/segments/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/segments/preview/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/surveys/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "GET", "/api/v1/kpis/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("member", "GET", "/api/v1/me/invitations/", "negative_data_rejection"): EMPTY_QUERY,
    ("admin", "GET", "/api/v1/redemptions/", "negative_data_rejection"): EMPTY_QUERY,
    ("integration", "GET", "/api/v1/redemptions/", "negative_data_rejection"): EMPTY_QUERY,
    ("member", "GET", "/api/v1/me/points/entries/", "positive_data_acceptance"): OPAQUE_CURSOR,
    ("admin", "POST", "/api/v1/ingest/transactions/", "negative_data_rejection"): BATCH_ITEMS,
    ("integration", "POST", "/api/v1/ingest/transactions/", "negative_data_rejection"): (
        BATCH_ITEMS
    ),
    ("admin", "POST", "/api/v1/ingest/asset-snapshots/", "negative_data_rejection"): BATCH_ITEMS,
    ("integration", "POST", "/api/v1/ingest/asset-snapshots/", "negative_data_rejection"): (
        BATCH_ITEMS
    ),
    ("admin", "PUT", "/api/v1/members/{customer_no}/", "positive_data_acceptance"): (
        MEMBER_PUT_CREATE
    ),
    ("integration", "PUT", "/api/v1/members/{customer_no}/", "positive_data_acceptance"): (
        MEMBER_PUT_CREATE
    ),
    ("admin", "POST", "/api/v1/tiers/evaluate/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/tiers/overrides/", "positive_data_acceptance"): DATA_DEPENDENT,
    ("admin", "POST", "/api/v1/tiers/simulate/", "positive_data_acceptance"): DATA_DEPENDENT,
}


def _all_checks() -> dict[str, Callable[..., Any]]:
    load_all_checks()
    return {check.__name__: check for check in CHECKS.get_all() if not is_check_class(check)}


class Observed:
    """Failures seen during one caller's run, by (method, path, check)."""

    def __init__(self) -> None:
        self.key: tuple[str, str, str] | None = None  # (caller, METHOD, path)
        self.excluded: set[tuple[str, str, str]] = set()
        self.records: list[dict[str, Any]] = []

    def record(
        self, caller: str, case: Any, response: Any, check: str, failure: BaseException
    ) -> None:
        key = (case.operation.method.upper(), case.operation.path, check)
        if (caller, *key) in EXCLUDED:
            self.excluded.add(key)
        self.records.append(
            {
                "caller": caller,
                "method": key[0],
                "path": key[1],
                "check": check,
                "excluded": (caller, *key) in EXCLUDED,
                "failures": [
                    f"{item.title}: {item.message}"
                    for item in getattr(failure, "exceptions", [failure])
                ],
                "status": response.status_code,
                "response": response.text[:500],
                "curl": case.as_curl_command(),
            }
        )


def _schema_document() -> dict[str, Any]:
    """The OpenAPI document as ``/api/schema/?format=json`` serves it, built in this process:
    the operations must be known when pytest collects (before the live server starts), and
    ``test_served_schema_is_the_tested_one`` holds the server to this same document."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


DOCUMENT = _schema_document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config())
schema.config.generation.update(
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    # No example database in the checkout: a run is reproducible from the code alone.
    database="none",
    # The caller's real token is sent; made-up credentials would only ever answer 401.
    with_security_parameters=False,
    # No NUL characters in strings: PostgreSQL text cannot hold them, so every text field refuses
    # them (400 null_characters_not_allowed), which an OpenAPI string cannot say.
    allow_x00=False,
)


# The failures of the test item that is running (pytest runs one at a time per process). Not a
# fixture argument: Hypothesis refuses function-scoped fixtures in a test's signature.
_current: list[Observed] = []


@pytest.fixture(autouse=True)
def _observed(request: pytest.FixtureRequest) -> Any:
    """Collects the failures of one test item (one caller, one operation); at the end, writes
    them out (``CONTRACT_RECORD``) or reports the item's ``EXCLUDED`` entries that did not fail."""
    seen = Observed()
    _current[:] = [seen]
    yield seen
    _current.clear()
    record_path = os.environ.get("CONTRACT_RECORD")
    if record_path:
        with open(record_path, "a", encoding="utf-8") as out:
            for row in seen.records:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if seen.key is None:
        return
    stale = sorted(key for key in EXCLUDED if key[:3] == seen.key and key[1:] not in seen.excluded)
    if stale:
        message = "EXCLUDED entries that no longer fail (remove them): " + "; ".join(
            " ".join(key) for key in stale
        )
        if os.environ.get("CONTRACT_STRICT") == "1":
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)


def test_served_schema_is_the_tested_one(contract_server: LiveServer) -> None:
    served = httpx.get(f"{contract_server.base_url}/api/schema/?format=json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
def test_api_conforms_to_its_schema(case: Any, caller: str, contract_server: LiveServer) -> None:
    checks = _all_checks()
    method, path = case.operation.method.upper(), case.operation.path
    observed = _current[0]
    observed.key = (caller, method, path)
    excluded = {name for (who, m, p, name) in EXCLUDED if (who, m, p) == (caller, method, path)}
    record_only = bool(os.environ.get("CONTRACT_RECORD"))
    headers = contract_server.headers(caller)
    base_url = contract_server.base_url
    response = case.call(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT)
    transport = {"base_url": base_url, "headers": headers, "timeout": REQUEST_TIMEOUT}

    def run(check_names: list[str]) -> None:
        case.validate_response(
            response,
            checks=[checks[name] for name in check_names],
            headers=headers,
            transport_kwargs=transport,
        )

    # Excluded checks (and, when recording, all checks) run one by one so each failure is named.
    for name in sorted(checks if record_only else excluded):
        try:
            run([name])
        except (Failure, FailureGroup) as failure:
            observed.record(caller, case, response, name, failure)
    if not record_only:
        run(sorted(set(checks) - excluded))
