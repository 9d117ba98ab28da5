from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.errors import BadRequestError
from llmops.domain.prompts import (
    DEFAULT_LABEL,
    PROMPT_MODEL,
    CheckKind,
    PromptDocumentError,
    PromptDraft,
    PromptParameters,
    PromptRef,
    PromptVersion,
    PropertyCheck,
    apply_prompt,
    check_output,
    diff,
    minimal_schema_errors,
    parse_prompt_document,
    placeholders,
    render,
)


def _version(**overrides: Any) -> PromptVersion:
    fields: dict[str, Any] = {
        "prompt_id": "support",
        "version": 3,
        "template": "Question: {{ question }} (product {{product}})",
        "variables": ("question", "product"),
        "system": "You support {{ product }}.",
        "model": "chat-default",
        "parameters": PromptParameters(temperature=0.0, max_tokens=200),
    }
    fields.update(overrides)
    return PromptVersion(**fields)


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "support",
        "template": "Q: {{ question }}",
        "variables": ["question"],
        "model": "chat-default",
        "parameters": {"temperature": 0, "max_tokens": 100, "stop": "END"},
        "examples": [{"name": "one", "variables": {"question": "hi"}, "expect": [{"contains": "hi"}]}],
    }
    doc.update(overrides)
    return doc


# -- rendering -------------------------------------------------------------------------------------


def test_render_puts_the_system_prompt_first_and_the_template_as_a_user_message() -> None:
    messages = render(_version(), {"question": "Where is my order?", "product": "Acme"})
    assert messages == (
        Message(Role.SYSTEM, "You support Acme."),
        Message(Role.USER, "Question: Where is my order? (product Acme)"),
    )


def test_render_names_every_missing_and_unknown_variable() -> None:
    with pytest.raises(BadRequestError) as caught:
        render(_version(), {"question": "x", "colour": "red", "size": 3})
    assert caught.value.status == 400
    assert caught.value.param == "prompt.variables"
    assert "missing variables: product" in caught.value.message
    assert "unknown variables: colour, size" in caught.value.message
    assert "support@3" in caught.value.message


def test_values_are_never_expanded_again_so_they_cannot_inject_placeholders() -> None:
    messages = render(_version(), {"question": "{{ product }} {% import os %}", "product": "Acme"})
    assert messages[1].content == "Question: {{ product }} {% import os %} (product Acme)"


def test_numbers_and_booleans_render_as_plain_text() -> None:
    version = _version(template="{{ n }} {{ ok }} {{ x }}", variables=("n", "ok", "x"), system=None)
    assert render(version, {"n": 3, "ok": True, "x": 0.5})[0].content == "3 true 0.5"


@given(st.dictionaries(st.sampled_from(["question", "product"]), st.text(), min_size=2, max_size=2))
def test_rendering_any_values_inserts_them_verbatim(values: dict[str, str]) -> None:
    user = render(_version(system=None), values)[0].content
    assert user == f"Question: {values['question']} (product {values['product']})"


def test_placeholders_are_listed_once_in_first_use_order() -> None:
    assert placeholders("{{ b }} {{a}} {{ b }}") == ("b", "a")


# -- references ------------------------------------------------------------------------------------


def test_a_reference_without_version_or_label_means_the_production_label() -> None:
    ref = PromptRef.parse({"id": "support", "variables": {"question": "q"}})
    assert ref.label == DEFAULT_LABEL and ref.version is None
    assert ref.to_request_field() == {"id": "support", "label": "production", "variables": {"question": "q"}}
    assert PromptRef.parse({"id": "support", "version": 2}).selector == "support@2"


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ("support", "prompt"),
        ({"id": "support", "version": 1, "label": "production"}, "prompt"),
        ({"id": "support", "extra": 1}, "prompt"),
        ({"version": 1}, "prompt.id"),
        ({"id": "has space"}, "prompt.id"),
        ({"id": "support", "version": 0}, "prompt.version"),
        ({"id": "support", "version": True}, "prompt.version"),
        ({"id": "support", "version": "2"}, "prompt.version"),
        ({"id": "support", "label": "12"}, "prompt.label"),
        ({"id": "support", "variables": ["a"]}, "prompt.variables"),
        ({"id": "support", "variables": {"a": {"nested": 1}}}, "prompt.variables"),
        ({"id": "support", "variables": {"a": None}}, "prompt.variables"),
        ({"id": "support", "variables": {"a": float("nan")}}, "prompt.variables"),
    ],
)
def test_bad_references_are_400s_naming_the_parameter(raw: Any, param: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        PromptRef.parse(raw)
    assert caught.value.param == param


def test_apply_prompt_prepends_rendered_messages_and_fills_unset_parameters() -> None:
    version = _version(parameters=PromptParameters(temperature=0.0, top_p=0.9, max_tokens=200, stop=("END",)))
    rendered = render(version, {"question": "q", "product": "p"})
    request = ChatRequest(model=PROMPT_MODEL, messages=(Message(Role.USER, "follow-up"),), max_tokens=50)
    applied = apply_prompt(request, version, rendered)
    assert applied.model == "chat-default"
    assert applied.messages == (*rendered, Message(Role.USER, "follow-up"))
    assert (applied.temperature, applied.top_p, applied.max_tokens, applied.stop) == (0.0, 0.9, 50, ("END",))
    explicit = apply_prompt(ChatRequest(model="other", messages=(), temperature=1.0), version, rendered)
    assert (explicit.model, explicit.temperature) == ("other", 1.0)


def test_apply_prompt_needs_a_model_when_the_prompt_has_none() -> None:
    with pytest.raises(BadRequestError) as caught:
        apply_prompt(ChatRequest(model=PROMPT_MODEL, messages=()), _version(model=None), ())
    assert caught.value.param == "model"


# -- documents -------------------------------------------------------------------------------------


def test_a_valid_document_parses_into_a_draft_and_examples() -> None:
    doc = parse_prompt_document(_doc(variables={"question": "the customer's question"}))
    assert doc.draft.prompt_id == "support"
    assert doc.draft.variables == ("question",)
    assert doc.draft.parameters == PromptParameters(temperature=0.0, max_tokens=100, stop=("END",))
    assert doc.examples[0].checks == (PropertyCheck(CheckKind.CONTAINS, "hi"),)


def test_document_validation_reports_every_problem_at_once() -> None:
    with pytest.raises(PromptDocumentError) as caught:
        parse_prompt_document(
            _doc(
                id="bad id",
                template="{{ question }} {{ other }} {% if x %}",
                variables=["question", "unused"],
                parameters={"temperature": 5, "colour": 1},
                surprise=True,
                examples=[{"variables": {"nope": 1}, "expect": [{"regex": "("}, {"max_length": 0}, {"what": 1}]}],
            )
        )
    text = "\n".join(caught.value.problems)
    for expected in (
        "unknown fields: surprise",
        "invalid prompt id",
        "unsupported template syntax",
        "undeclared variables used in the template: other",
        "declared variables never used: unused",
        "parameters.temperature",
        "unsupported fields: colour",
        "missing variables: question, unused",
        "unknown variables: nope",
        "invalid regex",
        "max_length needs a positive integer",
        "unknown check 'what'",
    ):
        assert expected in text


@pytest.mark.parametrize("template", ["{{ user.name }}", "{{ a | upper }}", "{# c #}", "{{}}"])
def test_anything_but_plain_placeholders_is_rejected(template: str) -> None:
    assert any("unsupported template syntax" in p for p in PromptDraft("p", template).problems())


def test_fingerprint_ignores_author_and_note_but_not_content() -> None:
    base = PromptDraft("p", "{{ a }}", ("a",), author="x", change_note="one")
    assert base.fingerprint == PromptDraft("p", "{{ a }}", ("a",), author="y", change_note="two").fingerprint
    assert base.fingerprint != PromptDraft("p", "{{ a }}!", ("a",)).fingerprint
    assert base.to_version(4, 1.0).fingerprint == base.fingerprint


def test_diff_is_a_unified_diff_between_refs() -> None:
    a = _version(version=1)
    b = _version(version=2, template="Question: {{ question }}!", variables=("question", "product"))
    text = diff(a, b)
    assert text.startswith("--- support@1\n+++ support@2\n")
    assert "-  Question: {{ question }} (product {{product}})" in text
    assert "+  Question: {{ question }}!" in text
    assert diff(a, a) == ""


# -- property checks -------------------------------------------------------------------------------


def test_property_checks_pass_and_fail_with_details() -> None:
    checks = [
        PropertyCheck(CheckKind.CONTAINS, "refund"),
        PropertyCheck(CheckKind.NOT_CONTAINS, "AI"),
        PropertyCheck(CheckKind.REGEX, r"\d+ days"),
        PropertyCheck(CheckKind.MAX_LENGTH, 10),
    ]
    results = check_output("A refund takes 5 days, says the AI.", checks)
    assert [r.passed for r in results] == [True, False, True, False]
    assert results[3].detail == "35 characters"


def test_json_schema_check_uses_the_given_validator_or_the_builtin_subset() -> None:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    check = PropertyCheck(CheckKind.JSON_SCHEMA, schema)
    assert check_output('{"answer": "yes"}', [check])[0].passed
    assert check_output("not json", [check])[0].detail == "output is not JSON"
    assert not check_output('{"answer": 1}', [check])[0].passed
    assert check_output("{}", [check], lambda _i, _s: [])[0].passed


@pytest.mark.parametrize(
    ("instance", "schema", "valid"),
    [
        ({"a": 1}, {"type": "object", "additionalProperties": False, "properties": {"a": {}}}, True),
        ({"a": 1, "b": 2}, {"type": "object", "additionalProperties": False, "properties": {"a": {}}}, False),
        ([1, 2], {"type": "array", "items": {"type": "integer"}, "maxItems": 2}, True),
        ([1, "x"], {"type": "array", "items": {"type": "integer"}}, False),
        ([], {"type": "array", "minItems": 1}, False),
        ("abc", {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^a"}, True),
        ("b", {"type": "string", "pattern": "^a"}, False),
        (5, {"type": "number", "minimum": 1, "maximum": 4}, False),
        (True, {"type": "integer"}, False),
        (None, {"type": ["string", "null"]}, True),
        ("x", {"enum": ["x", "y"]}, True),
        ("z", {"const": "x"}, False),
    ],
)
def test_minimal_schema_subset(instance: Any, schema: dict[str, Any], valid: bool) -> None:
    assert (minimal_schema_errors(instance, schema) == []) is valid
