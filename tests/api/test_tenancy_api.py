"""Keys, exact quotas, usage, isolation and the audit trail, through the SDK and the admin CLI."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

HELLO: list[Any] = [{"role": "user", "content": "Hello!"}]


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _usage(local_stack: dict[str, Any], key: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{local_stack['base_url']}/usage", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def test_request_rate_limit_admits_exactly_the_limit(new_key: Any) -> None:
    _, client = new_key(_tenant(), "--rpm", "3")
    for _ in range(3):
        client.chat.completions.create(model="nova-lite", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="nova-lite", messages=HELLO)
    assert err.value.code == "rate_limit_exceeded"
    assert int(err.value.response.headers["retry-after"]) >= 1


def test_budget_exhaustion_is_insufficient_quota(new_key: Any) -> None:
    _, client = new_key(_tenant(), "--monthly-budget-usd", "0.000001")
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="chat-default", messages=HELLO, max_tokens=50)
    assert err.value.code == "insufficient_quota"


def test_usage_shows_windows_and_remaining(new_key: Any, local_stack: dict[str, Any]) -> None:
    raw, client = new_key(_tenant(), "--rpm", "10", "--tokens-per-day", "100000")
    client.chat.completions.create(model="nova-lite", messages=HELLO, max_tokens=20)
    usage = _usage(local_stack, raw)
    windows = {w["window"]: w for w in usage["windows"] if w["scope"] == "key"}
    assert windows["rpm"]["used"] == 1
    assert windows["rpm"]["remaining"] == 9
    assert 0 < windows["tpd"]["used"] < 1000  # settled to actual usage, not the reservation


def test_key_is_limited_to_its_models(new_key: Any) -> None:
    _, client = new_key(_tenant(), "--models", "nova-lite")
    assert [m.id for m in client.models.list()] == ["nova-lite"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="chat-default", messages=HELLO)


def test_revoked_key_is_refused(new_key: Any, llmops_cli: Any, local_stack: dict[str, Any]) -> None:
    tenant = _tenant()
    raw, client = new_key(tenant)
    prefix = raw.split("-")[1]
    llmops_cli("keys", "revoke", prefix, "--tenant", tenant)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="nova-lite", messages=HELLO)


@pytest.mark.parametrize("bad", ["--rpm=-1", "--tokens-per-day=99999999999999"])
def test_absurd_limits_are_refused_by_the_cli(llmops_cli: Any, bad: str) -> None:
    result = llmops_cli("keys", "create", "--tenant", _tenant(), bad, check=False)
    assert result.returncode != 0


def test_feedback_is_isolated_per_tenant_and_replaced(new_key: Any) -> None:
    _, alice = new_key(_tenant())
    _, bob = new_key(_tenant())
    raw = alice.chat.completions.with_raw_response.create(model="nova-lite", messages=HELLO)
    request_id = raw.headers["x-request-id"]
    first = alice.post("/feedback", body={"request_id": request_id, "score": "down"}, cast_to=object)
    assert first["negative"] is True  # type: ignore[index]
    second = alice.post("/feedback", body={"request_id": request_id, "score": 5, "label": "good"}, cast_to=object)
    assert second["negative"] is False  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        bob.post("/feedback", body={"request_id": request_id, "score": "up"}, cast_to=object)
    with pytest.raises(openai.NotFoundError):
        alice.post("/feedback", body={"request_id": "no-such-request", "score": "up"}, cast_to=object)


def _key_id(raw_key: str) -> str:
    return raw_key.split("-")[1]  # llmops-<prefix>-<secret>


def test_a_rating_belongs_to_its_key_and_user_never_reaches_another_keys(new_key: Any) -> None:
    tenant = _tenant()
    raw_a, key_a = new_key(tenant)
    raw_b, key_b = new_key(tenant)
    request_id = key_a.chat.completions.with_raw_response.create(model="nova-lite", messages=HELLO).headers[
        "x-request-id"
    ]
    theirs = key_b.post("/feedback", body={"request_id": request_id, "score": 5, "label": "good"}, cast_to=object)
    assert theirs["rater"] == _key_id(raw_b)  # type: ignore[index]
    # Naming key B as the user writes key A's own row, never key B's.
    forged = key_a.post(
        "/feedback",
        body={"request_id": request_id, "score": 1, "label": "unsafe", "user": _key_id(raw_b)},
        cast_to=object,
    )
    assert forged["rater"] == f"{_key_id(raw_a)}/{_key_id(raw_b)}"  # type: ignore[index]

    # Ballot stuffing is bounded: a sixth made-up user of one key is refused, naming `user`.
    for n in range(1, 5):
        key_a.post("/feedback", body={"request_id": request_id, "score": "down", "user": f"sock{n}"}, cast_to=object)
    with pytest.raises(openai.BadRequestError) as refused:
        key_a.post("/feedback", body={"request_id": request_id, "score": "down", "user": "sock5"}, cast_to=object)
    assert (refused.value.code, refused.value.param) == ("too_many_feedback_users", "user")
    again = key_a.post("/feedback", body={"request_id": request_id, "score": "up", "user": "sock1"}, cast_to=object)
    assert again["score"] == "up"  # type: ignore[index]


def test_audit_trail_verifies_and_holds_no_raw_pii(new_key: Any, llmops_cli: Any) -> None:
    tenant = _tenant()
    _, client = new_key(tenant)
    canary_email = "canary.person.4242@example.org"
    raw = client.chat.completions.with_raw_response.create(
        model="nova-lite", messages=[{"role": "user", "content": f"Email me at {canary_email} please"}]
    )
    request_id = raw.headers["x-request-id"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="nova-lite", messages=HELLO, n=2)
    llmops_cli("audit", "verify", "--tenant", tenant)
    shown = llmops_cli("audit", "show", request_id, "--tenant", tenant).stdout
    assert request_id in shown
    assert canary_email not in shown
