"""The tenant's content policy on the chat path: `ChatEndpoint` parses each request with its tenant's
`GuardPolicy.content` and its `image_fetcher`, so what one tenant may send (remote image URLs,
pass-through fields) another is refused, and the composition root wires the SSRF-safe fetcher."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmops.adapters.http_images import HttpImageFetcher
from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.wiring import GatewayRuntime
from llmops.config.env import Settings
from llmops.domain.chat import ImagePart
from llmops.domain.errors import BadRequestError
from llmops.domain.images import FetchedImage
from llmops.domain.tenancy import TenantContext
from tests.fakes import FakeProvider, gateway_runtime

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
POLICIES = {
    "open": {
        "content": {
            "allow_remote_image_urls": True,
            "remote_image_timeout_s": 3,
            "allowed_passthrough_fields": ["serviceTier"],
        }
    },
    "no-images": {"content": {"allow_images": False}},
}


@dataclass
class RecordingFetcher:
    calls: list[tuple[str, int, float]] = field(default_factory=list)

    def fetch(self, url: str, *, max_bytes: int, timeout_s: float) -> FetchedImage:
        self.calls.append((url, max_bytes, timeout_s))
        return FetchedImage(PNG, "image/png")


@pytest.fixture
def runtime(aws_settings: Settings, fake_provider: FakeProvider) -> GatewayRuntime:
    settings = aws_settings.model_copy(update={"guard_policies": json.dumps(POLICIES)})
    return gateway_runtime(settings, fake_provider)


def _ask(runtime: GatewayRuntime, policy: str, url: str, **fields: Any) -> Any:
    body = ChatCompletionRequest.model_validate(
        {
            "model": "chat-default",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
            **fields,
        }
    )
    return runtime.chat.handle(body, TenantContext("t1", "k1", policy=policy), "req-content")


def test_the_gateway_wires_the_ssrf_safe_fetcher(runtime: GatewayRuntime) -> None:
    assert isinstance(runtime.chat.image_fetcher, HttpImageFetcher)


def test_a_tenant_whose_policy_allows_remote_urls_gets_them_fetched(
    runtime: GatewayRuntime, fake_provider: FakeProvider
) -> None:
    fetcher = RecordingFetcher()
    runtime.chat.image_fetcher = fetcher
    response = _ask(runtime, "open", "https://images.example/cat.png", serviceTier="priority")
    assert response.status == 200
    ((url, max_bytes, timeout_s),) = fetcher.calls
    assert (url, max_bytes) == ("https://images.example/cat.png", 3_932_160) and 0 < timeout_s <= 3
    seen = fake_provider.requests[-1]
    (image,) = seen.messages[-1].images
    assert isinstance(image, ImagePart) and image.data == PNG
    assert seen.provider_options == {"serviceTier": {"type": "priority"}}


def test_the_default_policy_refuses_remote_urls_and_pass_through_fields(
    runtime: GatewayRuntime, fake_provider: FakeProvider
) -> None:
    fetcher = RecordingFetcher()
    runtime.chat.image_fetcher = fetcher
    with pytest.raises(BadRequestError) as caught:
        _ask(runtime, "default", "https://images.example/cat.png")
    assert caught.value.param == "messages[0].content[1].image_url"
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    with pytest.raises(BadRequestError) as caught:
        _ask(runtime, "default", data_url, serviceTier="priority")
    assert caught.value.param == "serviceTier"
    assert fetcher.calls == [] and fake_provider.requests == []
    assert _ask(runtime, "default", data_url).status == 200


def test_a_policy_without_images_refuses_them_before_the_provider(
    runtime: GatewayRuntime, fake_provider: FakeProvider
) -> None:
    with pytest.raises(BadRequestError) as caught:
        _ask(runtime, "no-images", "data:image/png;base64," + base64.b64encode(PNG).decode())
    assert caught.value.param == "messages[0].content[1]"
    assert fake_provider.requests == []
