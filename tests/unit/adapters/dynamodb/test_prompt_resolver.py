import pytest

from llmops.adapters.dynamodb.prompt_store import CachedPromptResolver
from llmops.domain.chat import Role
from llmops.domain.errors import BadRequestError
from llmops.domain.prompts import LabelState, PromptNotFoundError, PromptRef, PromptVersion


class FakeSource:
    def __init__(self) -> None:
        self.versions = {n: PromptVersion("support", n, f"v{n}: {{{{ q }}}}", ("q",)) for n in (1, 2)}
        self.labels = {"production": LabelState("support", "production", 1)}
        self.calls: list[str] = []
        self.down = False

    def get_version(self, prompt_id: str, version: int) -> PromptVersion | None:
        self.calls.append(f"v{version}")
        if self.down:
            raise ConnectionError("table unreachable")
        return self.versions.get(version) if prompt_id == "support" else None

    def has_versions(self, prompt_id: str) -> bool:
        self.calls.append(f"has:{prompt_id}")
        if self.down:
            raise ConnectionError("table unreachable")
        return False  # no tenant has a template of its own here

    def get_label(self, prompt_id: str, label: str) -> LabelState | None:
        self.calls.append(f"label:{label}")
        if self.down:
            raise ConnectionError("table unreachable")
        return self.labels.get(label) if prompt_id == "support" else None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ref(**kwargs: object) -> PromptRef:
    return PromptRef.parse({"id": "support", "variables": {"q": "hi"}, **kwargs})


def test_label_moves_are_seen_after_the_ttl_and_not_before() -> None:
    source, clock = FakeSource(), Clock()
    resolver = CachedPromptResolver(source, ttl_s=10, clock=clock)
    version, messages = resolver.resolve(_ref())
    assert version.ref == "support@1"
    assert messages[0].role is Role.USER and messages[0].content == "v1: hi"

    source.labels["production"] = LabelState("support", "production", 2, history=(1,))
    clock.now += 9.9
    assert resolver.resolve(_ref()).version.version == 1
    clock.now += 0.2
    assert resolver.resolve(_ref()).version.version == 2


def test_versions_are_immutable_so_they_are_read_once() -> None:
    source, clock = FakeSource(), Clock()
    resolver = CachedPromptResolver(source, ttl_s=1, clock=clock)
    for _ in range(3):
        clock.now += 5
        resolver.resolve(_ref(version=2))
    assert source.calls == ["v2"]


def test_a_stale_label_keeps_serving_while_the_table_is_down() -> None:
    source, clock = FakeSource(), Clock()
    resolver = CachedPromptResolver(source, ttl_s=1, clock=clock)
    resolver.resolve(_ref())
    source.down = True
    clock.now += 5
    assert resolver.resolve(_ref()).version.version == 1
    with pytest.raises(ConnectionError):
        resolver.resolve(_ref(label="staging"))  # never loaded: nothing stale to serve


def test_unknown_prompts_versions_and_labels_are_404s_and_cached_for_the_ttl() -> None:
    source, clock = FakeSource(), Clock()
    resolver = CachedPromptResolver(source, ttl_s=10, clock=clock)
    for ref in (_ref(version=9), _ref(label="staging"), PromptRef.parse({"id": "other"})):
        with pytest.raises(PromptNotFoundError) as caught:
            resolver.resolve(ref)
        assert caught.value.status == 404 and caught.value.code == "prompt_not_found"
    calls = len(source.calls)
    with pytest.raises(PromptNotFoundError):
        resolver.resolve(_ref(version=9))
    assert len(source.calls) == calls


def test_bad_variables_are_400s() -> None:
    resolver = CachedPromptResolver(FakeSource(), ttl_s=10)
    with pytest.raises(BadRequestError) as caught:
        resolver.resolve(PromptRef.parse({"id": "support", "variables": {}}))
    assert caught.value.param == "prompt.variables"


def test_a_label_is_read_again_after_a_response_in_the_ttls_last_quarter() -> None:
    source, clock, deferred = FakeSource(), Clock(), []
    resolver = CachedPromptResolver(source, ttl_s=10, clock=clock, defer=deferred.append)
    assert resolver.resolve(_ref(), "acme").version.version == 1
    source.labels["production"] = LabelState("support", "production", 2, history=(1,))
    reads = len(source.calls)
    clock.now += 8
    assert resolver.resolve(_ref(), "acme").version.version == 1, "not read on the request"
    assert len(source.calls) == reads and len(deferred) == 2  # the label, and the tenant's scope entry
    for work in deferred:
        work()
    assert resolver.resolve(_ref(), "acme").version.version == 2
    clock.now += 10  # a TTL after the last read: read on the request
    source.labels["production"] = LabelState("support", "production", 1, history=(1, 2))
    assert resolver.resolve(_ref(), "acme").version.version == 1
