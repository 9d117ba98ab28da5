from llmops.adapters.dynamodb.prompt_items import (
    label_from_item,
    label_item,
    prompt_id_from_pk,
    version_from_item,
    version_item,
    version_sk,
)
from llmops.domain.prompts import LabelState, PromptParameters, PromptVersion


def test_versions_round_trip_with_sortable_keys() -> None:
    version = PromptVersion(
        prompt_id="support",
        version=12,
        template="Q: {{ q }}",
        variables=("q",),
        model="chat-default",
        parameters=PromptParameters(temperature=0.2, top_p=0.9, max_tokens=64, stop=("END", "##")),
        system="Be brief.",
        author="ana",
        change_note="shorter",
        created_at=1_800_000_000.5,
    )
    item = version_item(version)
    assert item["pk"] == {"S": "prompt#support"}
    assert item["sk"] == {"S": "v#0000012"}
    assert item["parameters"]["M"]["temperature"] == {"N": "0.2"}
    assert item["fingerprint"] == {"S": version.fingerprint}
    assert version_from_item(item) == version
    assert prompt_id_from_pk(item["pk"]["S"]) == "support"
    assert version_sk(9) < version_sk(10) < version_sk(100)


def test_optional_fields_are_omitted_and_read_back_as_defaults() -> None:
    version = PromptVersion(prompt_id="p", version=1, template="hi")
    item = version_item(version)
    assert "model" not in item and "system" not in item
    assert item["parameters"] == {"M": {}}
    assert version_from_item(item) == version


def test_labels_round_trip_with_history() -> None:
    state = LabelState("support", "production", 4, history=(1, 3), updated_at=1_800_000_000.25, updated_by="ana")
    item = label_item(state)
    assert item["sk"] == {"S": "label#production"}
    assert item["history"] == {"L": [{"N": "1"}, {"N": "3"}]}
    assert label_from_item(item) == state
