"""GuardPolicies: the registry's `production` version first, then configuration, then the default."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops.application.guard_policies import GuardPolicies
from llmops.config.env import Settings
from llmops.domain.guard import Action, Direction, GuardPolicy
from llmops.domain.guard.policy import PolicyError
from llmops.domain.guard_policy_registry import PRODUCTION_LABEL, GuardPolicyVersion
from llmops.domain.prompts import LabelState


class FakeRegistry:
    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], GuardPolicyVersion] = {}
        self.labels: dict[tuple[str, str], LabelState] = {}
        self.label_reads = 0
        self.down = False

    def add(self, name: str, version: int, document: dict[str, object]) -> None:
        self.versions[(name, version)] = GuardPolicyVersion(name, version, document)

    def point(self, name: str, version: int) -> None:
        self.labels[(name, PRODUCTION_LABEL)] = LabelState(name, PRODUCTION_LABEL, version)

    def get_version(self, name: str, version: int) -> GuardPolicyVersion | None:
        if self.down:
            raise ConnectionError("table unreachable")
        return self.versions.get((name, version))

    def get_label(self, name: str, label: str) -> LabelState | None:
        self.label_reads += 1
        if self.down:
            raise ConnectionError("table unreachable")
        return self.labels.get((name, label))


def email_action(guards: GuardPolicies, name: str) -> Action:
    return guards(name).policy.action_for("EMAIL", Direction.INPUT)


def test_the_production_label_wins_over_configuration_and_engines_are_per_version() -> None:
    registry = FakeRegistry()
    registry.add("strict", 1, {"actions": {"EMAIL": "block"}})
    registry.add("strict", 2, {"actions": {"EMAIL": "allow"}})
    registry.point("strict", 1)
    now = [0.0]
    guards = GuardPolicies(
        {"strict": {"actions": {"EMAIL": "log_only"}}}, registry=registry, ttl_s=10, clock=lambda: now[0]
    )

    first = guards("strict")
    assert email_action(guards, "strict") is Action.BLOCK
    assert guards("strict") is first
    registry.point("strict", 2)
    assert email_action(guards, "strict") is Action.BLOCK  # label cached for the TTL
    assert registry.label_reads == 1
    now[0] = 10.0
    assert email_action(guards, "strict") is Action.ALLOW
    registry.point("strict", 1)
    now[0] = 20.0
    assert guards("strict") is first  # the engine of version 1 is reused


def test_names_without_a_production_label_fall_back_to_configuration_then_default() -> None:
    registry = FakeRegistry()
    guards = GuardPolicies({"strict": {"actions": {"EMAIL": "block"}}}, registry=registry, ttl_s=10)
    assert email_action(guards, "strict") is Action.BLOCK
    assert email_action(guards, "unknown") is GuardPolicies()("default").policy.action_for("EMAIL", Direction.INPUT)


def test_a_label_pointing_at_a_missing_version_falls_back_to_configuration() -> None:
    registry = FakeRegistry()
    registry.point("strict", 7)
    guards = GuardPolicies({"strict": {"actions": {"EMAIL": "block"}}}, registry=registry, ttl_s=10)
    assert email_action(guards, "strict") is Action.BLOCK


def test_an_unreachable_registry_serves_the_cached_version_then_configuration() -> None:
    registry = FakeRegistry()
    registry.add("strict", 1, {"actions": {"EMAIL": "allow"}})
    registry.point("strict", 1)
    now = [0.0]
    guards = GuardPolicies(
        {"strict": {"actions": {"EMAIL": "block"}}}, registry=registry, ttl_s=10, clock=lambda: now[0]
    )
    assert email_action(guards, "strict") is Action.ALLOW
    registry.down = True
    now[0] = 100.0
    assert email_action(guards, "strict") is Action.ALLOW  # stale label, cached engine
    fresh = GuardPolicies({"strict": {"actions": {"EMAIL": "block"}}}, registry=registry, ttl_s=10)
    assert email_action(fresh, "strict") is Action.BLOCK  # never guards with nothing


def test_configured_policies_with_an_incomplete_service_detector_are_refused_at_start() -> None:
    # Settings.guard_policies is read once when the gateway is built; a policy naming the guardrail
    # without saying which one must stop it, naming the policy and the field.
    configured = Settings(guard_policies=json.dumps({"strict": {"detectors": ["pii", "bedrock_guardrail"]}}))
    with pytest.raises(PolicyError) as refused:
        GuardPolicies.from_json(configured.guard_policies)
    assert "strict: detectors: 'bedrock_guardrail' needs a 'bedrock_guardrail' object" in str(refused.value)


def test_engines_get_the_service_detectors_their_policy_configures() -> None:
    built: list[GuardPolicy] = []

    def detectors(policy: GuardPolicy) -> list[Any]:
        built.append(policy)
        return []

    spec = {"strict": {"bedrock_guardrail": {"guardrail_id": "gr1abc", "version": "1"}}}
    guards = GuardPolicies.from_json(json.dumps(spec), detectors=detectors)
    engine = guards("strict")
    assert guards("strict") is engine  # built once per policy version, detectors included
    assert [p.service_settings("bedrock_guardrail") is not None for p in built] == [True]


def test_a_stored_version_naming_an_unwired_detector_still_serves_without_it() -> None:
    # Pushed before pushes refused it: serving it as before beats failing every request of the tenant.
    registry = FakeRegistry()
    registry.add("strict", 1, {"detectors": ["pii", "comprehend"], "actions": {"EMAIL": "block"}})
    registry.point("strict", 1)
    assert email_action(GuardPolicies(registry=registry), "strict") is Action.BLOCK


def test_a_production_label_is_read_again_after_a_response_in_the_ttls_last_quarter() -> None:
    registry = FakeRegistry()
    registry.add("strict", 1, {"actions": {"EMAIL": "block"}})
    registry.add("strict", 2, {"actions": {"EMAIL": "allow"}})
    registry.point("strict", 1)
    now, deferred = [0.0], []
    guards = GuardPolicies(registry=registry, ttl_s=10, clock=lambda: now[0], defer=deferred.append)
    assert email_action(guards, "strict") is Action.BLOCK
    registry.point("strict", 2)
    now[0] = 8.0
    assert email_action(guards, "strict") is Action.BLOCK, "not read on the request"
    assert registry.label_reads == 1 and len(deferred) == 1
    deferred.pop()()
    assert registry.label_reads == 2
    assert email_action(guards, "strict") is Action.ALLOW
    registry.point("strict", 1)
    now[0] = 18.0  # a TTL after the last read: read on the request
    assert email_action(guards, "strict") is Action.BLOCK and registry.label_reads == 3
