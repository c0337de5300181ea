"""Fuzz the whole HTTP surface with schemathesis: no request may get a 5xx.

The schema is maas_ray's own OpenAPI document, built in-process with the seeded
models as the ``{name}`` of the model routes, so generated cases reach real
replicas. Each operation gets a fixed number of cases generated from the schema
(valid ones) and against it (invalid ones), derandomized, so a CI run sends the
same requests every time; each is sent for real over HTTP with the admin key.

Nothing is excluded except what would break the session: the lifecycle routes
(deploy, undeploy, promote, rollback, canary, shadow, apply) never get a seeded
model's name, the admin key is never revoked, and the train route gets only specs
that fail validation (a valid one starts a Ray job). A request unanswered after
TIMEOUT_S fails the test like a 5xx. Two small passes follow, without the
Authorization header and with a random bearer token: every route but the health
checks must answer 401 with a WWW-Authenticate challenge.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation

from maas_ray import Settings
from maas_ray.gateway.openapi import openapi_document
from maas_ray.routes import ROUTES
from tests.conftest import FIGURES

pytestmark = pytest.mark.slow

SEEDED = ("digits", "minilm", "sentiment", "tabular")
# Routes that change what serves: only random model names (404s) reach them.
LIFECYCLE = ("deploy", "undeploy", "promote", "rollback", "canary", "shadow", "finetune")
PUBLIC = {r.path for r in ROUTES if r.scopes is None}  # health, /openapi.json, /docs
MIN_CASES = 1000
DEFAULT_CASES = 12  # per operation and generation mode, unless CASES says otherwise (~1,150 in all)
# Where the bugs would be: bodies parsed by the model replicas and the admin API.
CASES = {
    "POST /v1/models/{name}/predict": 100,
    "POST /v1/models/{name}/versions/{version}/predict": 40,
    "POST /v1/admin/apply": 30,
    "POST /v1/admin/models/{name}/deploy": 30,
    "POST /v1/admin/keys": 30,
}
UNAUTHENTICATED_CASES = 5  # per operation, without the Authorization header
TIMEOUT_S = 30  # a request still unanswered after this counts as a failure
NO_ANSWER = "no answer"


@dataclass
class Fuzz:
    """Sends generated cases over HTTP and keeps the score.

    ``credential``: the Authorization value to send on every case; None sends the
    one schemathesis generates from the bearer scheme (random junk), or none at
    all with ``strip_credential``.
    """

    base_url: str
    credential: str | None
    skip: Callable[[Case], bool] = lambda case: False
    check: Callable[[Case, Any], str | None] = lambda case, response: None
    strip_credential: bool = False
    session: requests.Session = field(default_factory=requests.Session)
    statuses: Counter[int | str] = field(default_factory=Counter)
    per_operation: dict[str, Counter[int | str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def run(self, operation: APIOperation, mode: GenerationMode, max_examples: int) -> None:
        """Send ``max_examples`` cases of ``operation`` (fewer when it has fewer distinct ones)."""
        # A fixed Authorization header is not generated, so no two cases differ only there.
        fixed = {"Authorization": self.credential} if self.credential else None

        @settings(
            max_examples=max_examples,
            derandomize=True,  # the same cases on every run
            database=None,  # no .hypothesis folder
            deadline=None,
            phases=[Phase.generate],  # nothing raises in the body: nothing to shrink
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=operation.as_strategy(generation_mode=mode, headers=fixed))
        def send(case: Case) -> None:
            if self.skip(case):
                self.skipped += 1
                assume(False)
            self.send(case)

        try:
            send()
        except Unsatisfiable:
            # No invalid value of a free string path parameter goes on the wire (an
            # empty one would change the route): such operations have no negative cases.
            if mode is not GenerationMode.NEGATIVE:
                raise

    def send(self, case: Case) -> None:
        label = f"{case.operation.method.upper()} {case.operation.path}"
        seen = self.per_operation.setdefault(label, Counter())
        if self.strip_credential and case.headers is not None:
            case.headers.pop("Authorization", None)  # a case-insensitive dict
        try:
            response = case.call(base_url=self.base_url, session=self.session, timeout=TIMEOUT_S)
        except requests.RequestException as exc:  # no answer (in time) counts as a failure
            self.statuses[NO_ANSWER] += 1
            seen[NO_ANSWER] += 1
            self.failures.append(
                f"{case.operation.method.upper()} {unquote(case.formatted_path)} body "
                f"{_excerpt(case.body)} -> {type(exc).__name__}: {exc}"
            )
            return
        self.statuses[response.status_code] += 1
        seen[response.status_code] += 1
        problem = self.check(case, response)
        if problem is not None:
            request = response.request
            self.failures.append(
                f"{request.method} {unquote(request.path_url)} body {_excerpt(request.body)} "
                f"-> {response.status_code} {_excerpt(response.content)}: {problem}"
            )


def no_server_error(case: Case, response: Any) -> str | None:
    return "a server error" if response.status_code >= 500 else None


def challenged(case: Case, response: Any) -> str | None:
    """Without a valid credential: 401 with WWW-Authenticate, except on the public routes
    (health, the OpenAPI document, /docs: the route table says which)."""
    if case.operation.path in PUBLIC:
        if response.status_code in (200, 404):  # 404: a /docs file that is not there
            return None
        return "a public route needs no credential"
    if response.status_code != 401:
        return "expected 401 without a valid credential"
    if "www-authenticate" not in response.headers:
        return "401 without a WWW-Authenticate header"
    return None


def protected(case: Case, seeded: Iterable[str], key_ids: Iterable[str]) -> bool:
    """True for a case that could change the session's models or revoke its key."""
    op = case.operation
    verb = op.path.rsplit("/", 1)[-1]
    if op.method.upper() == "POST" and (verb in LIFECYCLE or op.path == "/v1/admin/apply"):
        # Any mention of a seeded model: the name, or a spec in an apply file.
        text = unquote(str(case.path_parameters or {})) + json.dumps(_jsonable(case.body))
        return any(name in text for name in seeded)
    if op.method.upper() == "POST" and op.path in ("/v1/admin/train", "/v1/admin/tune"):
        # A valid spec starts a Ray job (a Python process): only invalid ones are sent.
        from pydantic import ValidationError

        from maas_ray.training_spec import TrainingSpec, TuningSpec

        model = TuningSpec if op.path.endswith("/tune") else TrainingSpec
        try:
            model.model_validate(_jsonable(case.body))
        except ValidationError:
            return False
        return True
    if op.method.upper() == "DELETE":
        key = unquote(str((case.path_parameters or {}).get("key_id", "")))
        return any(kid in key for kid in key_ids)
    return False


def admin_key_ids(base_url: str, admin_key: str) -> set[str]:
    """Ids no DELETE /v1/admin/keys/{key_id} case may name: the admin key's, and every
    key listed now (in case the store names the admin key otherwise)."""
    ids = {admin_key.removeprefix("maas_").partition("_")[0]}  # maas_<id>_<secret>
    listed = requests.get(
        f"{base_url}/v1/admin/keys",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=TIMEOUT_S,
    )
    if listed.status_code == 200 and isinstance(listed.json(), list):
        ids |= {str(k.get("id")) for k in listed.json() if isinstance(k, dict)}
    ids.discard("")
    return ids


def fuzz_platform(base_url: str, admin_key: str, models: Iterable[str], key_ids: set[str]) -> Fuzz:
    """The pass with the admin key over every operation (the test's; a driver's too)."""
    models = list(models)
    schema = schemathesis.openapi.from_dict(openapi_document(model_names=models))
    credential = f"Bearer {admin_key}"
    fuzz = Fuzz(
        base_url,
        credential,
        skip=lambda case: protected(case, models, key_ids),
        check=no_server_error,
    )
    for operation in _operations(schema):
        n = CASES.get(f"{operation.method.upper()} {operation.path}", DEFAULT_CASES)
        fuzz.run(operation, GenerationMode.POSITIVE, n)
        if _has_inputs(operation):
            fuzz.run(operation, GenerationMode.NEGATIVE, n)
    return fuzz


def unauthenticated_pass(
    base_url: str, models: Iterable[str], key_ids: set[str], *, strip: bool = True
) -> Fuzz:
    """A few cases per operation without the Authorization header (``strip``), or with
    the random one schemathesis generates for the bearer scheme. The same cases stay
    out as with the key: if the guard let them in, they must do no harm."""
    models = list(models)
    schema = schemathesis.openapi.from_dict(openapi_document(model_names=models))
    fuzz = Fuzz(
        base_url,
        None,
        skip=lambda case: protected(case, models, key_ids),
        check=challenged,
        strip_credential=strip,
    )
    for operation in _operations(schema):
        fuzz.run(operation, GenerationMode.POSITIVE, UNAUTHENTICATED_CASES)
    return fuzz


def test_fuzz_no_server_errors(
    live: Settings, seeded: dict[str, dict[str, object]], admin_key: str
) -> None:
    started = time.perf_counter()
    models = sorted(seeded)
    _require(set(SEEDED) <= set(models), f"the seeded models are {models}")
    key_ids = admin_key_ids(live.serve_url, admin_key)
    fuzz = fuzz_platform(live.serve_url, admin_key, models, key_ids)
    took = time.perf_counter() - started
    errors = sum(n for s, n in fuzz.statuses.items() if isinstance(s, int) and s >= 500)
    FIGURES.append(
        f"fuzz: {fuzz.cases:,} cases in {took:.0f}s, statuses {_histogram(fuzz.statuses)}, "
        f"{errors} 5xx, {fuzz.statuses[NO_ANSWER]} unanswered in {TIMEOUT_S} s"
    )
    _require(
        not fuzz.failures,
        f"{len(fuzz.failures)} of {fuzz.cases} cases got a server error or no answer; "
        "the first ones:\n" + "\n".join(fuzz.failures[:10]),
    )
    _require(fuzz.cases >= MIN_CASES, f"only {fuzz.cases} cases were generated")
    # The cases reached the models and the management API, not only their 4xx checks.
    for label in ("POST /v1/models/{name}/predict", "GET /v1/admin/status"):
        answered = fuzz.per_operation[label]
        _require(
            any(200 <= s < 300 for s in answered if isinstance(s, int)),
            f"{label} never answered 2xx: {dict(answered)}",
        )

    for strip, what in ((True, "no Authorization header"), (False, "a random bearer token")):
        bare = unauthenticated_pass(live.serve_url, models, key_ids, strip=strip)
        FIGURES.append(
            f"fuzz with {what}: {bare.cases} cases, statuses {_histogram(bare.statuses)}"
        )
        _require(
            not bare.failures,
            f"{len(bare.failures)} of {bare.cases} cases with {what} were let in or failed; "
            "the first ones:\n" + "\n".join(bare.failures[:10]),
        )


def _require(ok: bool, message: str) -> None:
    """Fail with ``message`` and no traceback: one would print the admin key (an argument)."""
    if not ok:
        pytest.fail(message, pytrace=False)


def _operations(schema: Any) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def _has_inputs(operation: APIOperation) -> bool:
    """Whether negative cases exist: besides the credential, something to generate."""
    params = [p for p in operation.iter_parameters() if p.name.lower() != "authorization"]
    return bool(operation.body) or bool(params)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _excerpt(body: Any, limit: int = 200) -> str:
    if body is None:
        return "(none)"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text if len(text) <= limit else text[:limit] + "..."


def _histogram(statuses: Counter[int | str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str)) + "}"
