"""The `content` sub-policy of a guard policy: images, remote image URLs, tools, pass-through fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmops.cli.guard_policies import load_guard_policy_file
from llmops.domain.guard import GuardPolicy, PolicyError
from llmops.domain.guard.policy import PASSTHROUGH_FIELDS, ContentPolicy


def test_defaults_allow_data_url_images_and_nothing_else_extra() -> None:
    content = GuardPolicy.default().content
    assert content == ContentPolicy()
    assert content.allow_images and not content.allow_remote_image_urls
    assert (content.max_images, content.max_image_bytes, content.max_tools) == (20, 3_932_160, 128)
    assert content.remote_image_timeout_s == 5.0
    assert content.allowed_passthrough_fields == frozenset()


def test_content_layers_field_by_field_over_the_base() -> None:
    base = GuardPolicy.from_mapping({"content": {"allow_remote_image_urls": True, "max_images": 5}})
    policy = GuardPolicy.from_mapping(
        {"content": {"max_image_bytes": 1_000_000, "allowed_passthrough_fields": ["guardrailConfig", "serviceTier"]}},
        base=base,
    )
    assert policy.content == ContentPolicy(
        allow_remote_image_urls=True,
        max_images=5,
        max_image_bytes=1_000_000,
        allowed_passthrough_fields=frozenset({"guardrailConfig", "serviceTier"}),
    )


def test_round_trip_through_json() -> None:
    policy = GuardPolicy.from_mapping(
        {
            "content": {
                "allow_images": False,
                "remote_image_timeout_s": 2,
                "allowed_passthrough_fields": sorted(PASSTHROUGH_FIELDS),
                "max_tools": 16,
            }
        }
    )
    again = GuardPolicy.from_mapping(json.loads(json.dumps(policy.to_mapping())))
    assert again == policy and again.content.remote_image_timeout_s == 2.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ([], "content: must be an object"),
        ({"max_imgs": 3}, "content: unknown field 'max_imgs'"),
        ({"allow_images": "yes"}, "content.allow_images: must be true or false"),
        ({"allow_remote_image_urls": 1}, "content.allow_remote_image_urls: must be true or false"),
        ({"max_images": 0}, "content.max_images: must be an integer from 1 to 100"),
        ({"max_images": True}, "content.max_images"),
        ({"max_image_bytes": 30_000_000}, "content.max_image_bytes: must be an integer from 1 to 26214400"),
        ({"max_image_bytes": 1.5}, "content.max_image_bytes"),
        ({"max_tools": 129}, "content.max_tools: must be an integer from 1 to 128"),
        ({"remote_image_timeout_s": 0}, "content.remote_image_timeout_s"),
        ({"remote_image_timeout_s": 60}, "content.remote_image_timeout_s"),
        ({"remote_image_timeout_s": "5"}, "content.remote_image_timeout_s"),
        ({"allowed_passthrough_fields": "guardrailConfig"}, "content.allowed_passthrough_fields: must be a list"),
        ({"allowed_passthrough_fields": ["toolConfig"]}, "content.allowed_passthrough_fields: unknown toolConfig"),
    ],
)
def test_bad_content_is_refused_naming_the_field(content: Any, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        GuardPolicy.from_mapping({"content": content})
    assert any(problem in error for error in caught.value.errors), caught.value.errors


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PolicyError) as caught:
        GuardPolicy.from_mapping({"content": {"max_images": -1, "max_tools": 0, "bogus": 1}})
    assert len(caught.value.errors) == 3


def test_push_refuses_a_bad_content_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: images\npolicy:\n  content:\n    allow_remote_image_urls: maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"content\.allow_remote_image_urls: must be true or false"):
        load_guard_policy_file(path)
    path.write_text("name: images\npolicy:\n  content:\n    allow_remote_image_urls: true\n", encoding="utf-8")
    assert load_guard_policy_file(path).document == {"content": {"allow_remote_image_urls": True}}


def test_the_documented_example_policy_loads() -> None:
    path = Path(__file__).resolve().parents[4] / "docs" / "guard-policies" / "remote-images.yaml"
    content = GuardPolicy.from_mapping(load_guard_policy_file(path).document).content
    assert content.allow_remote_image_urls and content.allowed_passthrough_fields == frozenset({"serviceTier"})
    assert (content.max_images, content.max_image_bytes, content.remote_image_timeout_s) == (8, 2_097_152, 3.0)
