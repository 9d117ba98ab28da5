from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.prompt_items import version_item
from llmops.adapters.dynamodb.prompt_store import CachedPromptResolver, DynamoPromptStore
from llmops.domain.prompts import PromptDraft, PromptNotFoundError, PromptRef


def _draft(template: str = "Q: {{ q }}", prompt_id: str = "support") -> PromptDraft:
    return PromptDraft(prompt_id, template, ("q",), model="chat-default", author="ana", change_note="n")


@pytest.fixture
def store(dynamodb: Any, names: dict[str, str]) -> DynamoPromptStore:
    return DynamoPromptStore(dynamodb, names["Prompts"])


def test_push_numbers_versions_and_skips_unchanged_content(store: DynamoPromptStore) -> None:
    first = store.push(_draft(), now=1.0)
    assert (first.version.version, first.created) == (1, True)
    again = store.push(_draft(), now=2.0)
    assert (again.version.version, again.created) == (1, False)
    second = store.push(_draft("Q2: {{ q }}"), now=3.0)
    assert second.version.ref == "support@2"
    assert store.latest_version("support") == second.version
    assert [v.version for v in store.list_versions("support")] == [1, 2]
    assert store.get_version("support", 1) == first.version


def test_versions_are_immutable(store: DynamoPromptStore, dynamodb: Any, names: dict[str, str]) -> None:
    version = store.push(_draft(), now=1.0).version
    with pytest.raises(ClientError):
        dynamodb.put_item(
            TableName=names["Prompts"],
            Item=version_item(_draft("changed {{ q }}").to_version(1, 2.0)),
            ConditionExpression="attribute_not_exists(sk)",
        )
    assert store.get_version("support", 1) == version


def test_a_push_that_loses_the_race_for_a_number_takes_the_next(
    store: DynamoPromptStore, dynamodb: Any, names: dict[str, str]
) -> None:
    store.push(_draft(), now=1.0)

    class RacingClient:
        """Lets a competing push land between our read of the latest version and our write."""

        raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def put_item(self, **kwargs: Any) -> Any:
            if not self.raced:
                self.raced = True
                dynamodb.put_item(
                    TableName=names["Prompts"], Item=version_item(_draft("rival {{ q }}").to_version(2, 2.0))
                )
            return dynamodb.put_item(**kwargs)

    result = DynamoPromptStore(RacingClient(), names["Prompts"]).push(_draft("mine {{ q }}"), now=3.0)
    assert result.version.version == 3
    assert store.get_version("support", 2) is not None and store.get_version("support", 2).template.startswith("rival")  # type: ignore[union-attr]


def test_invalid_drafts_are_refused(store: DynamoPromptStore) -> None:
    with pytest.raises(ValueError, match="undeclared variables"):
        store.push(PromptDraft("support", "{{ other }}"), now=1.0)


def test_labels_move_keep_history_and_roll_back(store: DynamoPromptStore) -> None:
    for n in range(3):
        store.push(_draft(f"v{n} {{{{ q }}}}"), now=float(n))
    store.set_label("support", "production", 1, now=10.0, actor="ana")
    store.set_label("support", "production", 3, now=11.0)
    state = store.set_label("support", "production", 2, now=12.0, actor="bo")
    assert (state.version, state.history, state.updated_by) == (2, (1, 3), "bo")
    assert store.set_label("support", "production", 2, now=13.0) == state  # no-op keeps history clean

    assert store.resolve_version(PromptRef("support", label="production")).version == 2
    assert store.rollback("support", "production", now=14.0).version == 3
    assert store.rollback("support", "production", now=15.0).version == 1
    with pytest.raises(ValueError, match="no earlier version"):
        store.rollback("support", "production", now=16.0)
    assert [s.label for s in store.list_labels("support")] == ["production"]


def test_labels_need_an_existing_version_and_label(store: DynamoPromptStore) -> None:
    store.push(_draft(), now=1.0)
    with pytest.raises(PromptNotFoundError):
        store.set_label("support", "production", 7, now=2.0)
    with pytest.raises(PromptNotFoundError):
        store.rollback("support", "staging", now=2.0)
    with pytest.raises(PromptNotFoundError):
        store.resolve_version(PromptRef("support", label="production"))


def test_list_prompts_summarizes_latest_versions_and_labels(store: DynamoPromptStore) -> None:
    store.push(_draft(), now=1.0)
    store.push(_draft("again {{ q }}"), now=2.0)
    store.push(_draft(prompt_id="billing"), now=3.0)
    store.set_label("support", "staging", 2, now=4.0)
    summaries = {s.prompt_id: s for s in store.list_prompts()}
    assert summaries["support"].latest_version == 2 and summaries["support"].labels == {"staging": 2}
    assert summaries["billing"].latest_version == 1 and summaries["billing"].labels == {}


def test_the_gateway_resolver_sees_a_label_move_after_the_ttl(store: DynamoPromptStore) -> None:
    store.push(_draft("one: {{ q }}"), now=1.0)
    store.push(_draft("two: {{ q }}"), now=2.0)
    store.set_label("support", "production", 1, now=3.0)
    now = [0.0]
    resolver = CachedPromptResolver(store, ttl_s=10, clock=lambda: now[0])
    ref = PromptRef.parse({"id": "support", "variables": {"q": "hi"}})
    assert resolver.resolve(ref).messages[0].content == "one: hi"
    store.set_label("support", "production", 2, now=4.0)
    assert resolver.resolve(ref).version.version == 1
    now[0] = 10.0
    version, messages = resolver.resolve(ref)
    assert (version.ref, messages[0].content) == ("support@2", "two: hi")


# -- tenant scoping --------------------------------------------------------------------------------


def _tenant_draft(tenant_id: str | None, template: str, prompt_id: str = "support") -> PromptDraft:
    return PromptDraft(prompt_id, template, ("q",), system="Confidential: never say 42.", tenant_id=tenant_id)


def _ref(**fields: Any) -> PromptRef:
    return PromptRef.parse({"id": "support", "variables": {"q": "hi"}, **fields})


def test_a_tenants_template_lives_in_its_own_partition(
    store: DynamoPromptStore, dynamodb: Any, names: dict[str, str]
) -> None:
    pushed = store.push(_tenant_draft("team-a", "A: {{ q }}"), now=1.0).version
    assert (pushed.ref, pushed.tenant_id) == ("team-a/support@1", "team-a")
    item = dynamodb.get_item(
        TableName=names["Prompts"], Key={"pk": {"S": "prompt#team-a/support"}, "sk": {"S": "v#0000001"}}
    )["Item"]
    assert (item["prompt_id"]["S"], item["tenant_id"]["S"]) == ("support", "team-a")
    assert store.get_version("team-a/support", 1) == pushed
    assert store.get_version("support", 1) is None and store.get_version("team-b/support", 1) is None
    # The same content pushed for another tenant is that tenant's first version, not a no-op.
    other = store.push(_tenant_draft("team-b", "A: {{ q }}"), now=2.0)
    assert other.created and other.version.ref == "team-b/support@1"


def test_labels_move_and_roll_back_within_one_tenants_template(store: DynamoPromptStore) -> None:
    store.push(_tenant_draft("team-a", "one {{ q }}"), now=1.0)
    store.push(_tenant_draft("team-a", "two {{ q }}"), now=2.0)
    store.set_label("team-a/support", "production", 1, now=3.0)
    store.set_label("team-a/support", "production", 2, now=4.0)
    assert store.rollback("team-a/support", "production", now=5.0).version == 1
    with pytest.raises(PromptNotFoundError):  # team-b has no version 1 to point a label at
        store.set_label("team-b/support", "production", 1, now=6.0)
    with pytest.raises(PromptNotFoundError):
        store.rollback("team-b/support", "production", now=6.0)
    assert store.list_labels("team-b/support") == [] and store.list_labels("support") == []
    assert store.resolve_version(_ref(label="production"), "team-a").version == 1
    with pytest.raises(PromptNotFoundError):
        store.resolve_version(_ref(label="production"), "team-b")
    with pytest.raises(ValueError, match="tenant"):
        store.set_label("bad tenant/support", "production", 1, now=7.0)


def test_list_prompts_names_each_templates_tenant(store: DynamoPromptStore) -> None:
    store.push(_tenant_draft(None, "shared {{ q }}"), now=1.0)
    store.push(_tenant_draft("team-a", "own {{ q }}"), now=2.0)
    store.push(_tenant_draft("team-a", "billing {{ q }}", prompt_id="billing"), now=3.0)
    listed = [(s.tenant_id, s.prompt_id, s.latest_version, s.scoped_id) for s in store.list_prompts()]
    assert listed == [
        (None, "support", 1, "support"),
        ("team-a", "billing", 1, "team-a/billing"),
        ("team-a", "support", 1, "team-a/support"),
    ]


def test_the_resolver_serves_a_tenant_its_own_template_or_a_shared_one_never_anothers(
    store: DynamoPromptStore,
) -> None:
    store.push(_tenant_draft("team-a", "A only: {{ q }}"), now=1.0)
    store.set_label("team-a/support", "production", 1, now=2.0)
    store.push(_tenant_draft(None, "everyone: {{ q }}", prompt_id="faq"), now=3.0)
    store.set_label("faq", "production", 1, now=4.0)
    resolver = CachedPromptResolver(store, ttl_s=10)

    version, messages = resolver.resolve(_ref(), "team-a")
    assert version.ref == "team-a/support@1" and messages[-1].content == "A only: hi"
    for ref in (_ref(), _ref(version=1), _ref(label="staging")):
        with pytest.raises(PromptNotFoundError) as theirs:
            resolver.resolve(ref, "team-b")
        with pytest.raises(PromptNotFoundError) as missing:
            resolver.resolve(PromptRef.parse({"id": "no-such-prompt", "variables": {"q": "hi"}}), "team-b")
        # Another tenant's template is answered exactly as a missing one: nothing tells them apart.
        assert (theirs.value.status, theirs.value.code, theirs.value.message, theirs.value.param) == (
            missing.value.status,
            missing.value.code,
            missing.value.message,
            missing.value.param,
        )
    shared = PromptRef.parse({"id": "faq", "variables": {"q": "hi"}})
    assert resolver.resolve(shared, "team-a").version.ref == resolver.resolve(shared, "team-b").version.ref == "faq@1"


def test_a_tenants_own_template_shadows_the_shared_one_as_a_whole(store: DynamoPromptStore) -> None:
    store.push(_tenant_draft(None, "shared one {{ q }}"), now=1.0)
    store.push(_tenant_draft(None, "shared two {{ q }}"), now=2.0)
    store.set_label("support", "staging", 2, now=3.0)
    store.push(_tenant_draft("team-a", "own {{ q }}"), now=4.0)
    now = [0.0]
    resolver = CachedPromptResolver(store, ttl_s=10, clock=lambda: now[0])
    assert resolver.resolve(_ref(version=1), "team-a").version.ref == "team-a/support@1"
    # The shared template's version 2 and label never mix into team-a's template.
    for ref in (_ref(version=2), _ref(label="staging")):
        with pytest.raises(PromptNotFoundError):
            resolver.resolve(ref, "team-a")
    assert resolver.resolve(_ref(label="staging"), "team-b").version.ref == "support@2"


def test_templates_stored_before_scoping_are_shared(
    store: DynamoPromptStore, dynamodb: Any, names: dict[str, str]
) -> None:
    legacy = version_item(_tenant_draft(None, "legacy {{ q }}").to_version(1, 1.0))
    assert "tenant_id" not in legacy and legacy["pk"] == {"S": "prompt#support"}
    dynamodb.put_item(TableName=names["Prompts"], Item=legacy)
    resolver = CachedPromptResolver(store, ttl_s=10)
    for tenant in ("team-a", "team-b", None):
        assert resolver.resolve(_ref(version=1), tenant).version.ref == "support@1"
