"""Secret detectors. Every credential below is fake and built at run time where a scanner might object."""

from __future__ import annotations

import base64
import json

import pytest

from llmops.domain.guard import FindingType
from llmops.domain.guard.checksums import shannon_entropy
from llmops.domain.guard.redaction import resolve_overlaps
from llmops.domain.guard.secret_detectors import SecretsDetector

DETECTOR = SecretsDetector()
AWS_KEY_ID = "AKIA" + "Q3EGRNFX7ZK2WJ4M"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "zQ81xTw3Lb"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"


def found(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in resolve_overlaps(DETECTOR.detect(text))]


def test_aws_access_key_id() -> None:
    assert found(f"key {AWS_KEY_ID} here") == [(FindingType.AWS_ACCESS_KEY, AWS_KEY_ID)]
    assert found(f"X{AWS_KEY_ID}") == []  # glued to a word: part of something else


def test_aws_secret_needs_context() -> None:
    assert found(f"aws_secret_access_key = {AWS_SECRET}") == [(FindingType.AWS_SECRET_KEY, AWS_SECRET)]
    assert found(f"checksum {AWS_SECRET} of the build") == []


def test_pem_private_key_including_truncated() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7"
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    assert found(f"here:\n{pem}\nthanks") == [(FindingType.PRIVATE_KEY, pem)]
    truncated = f"-----BEGIN PRIVATE KEY-----\n{body}"
    assert found(truncated) == [(FindingType.PRIVATE_KEY, truncated)]


def test_jwt() -> None:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    token = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1234567890'})}.c2lnbmF0dXJlX2J5dGVz"
    [(kind, value)] = found(f"Authorization: {token}")
    assert (kind, value) == (FindingType.JWT, token)


def test_github_and_slack_tokens() -> None:
    assert found(f"use {GITHUB} please") == [(FindingType.GITHUB_TOKEN, GITHUB)]
    pat = "github_pat_" + "11ABCDEFG0" * 6
    assert found(pat) == [(FindingType.GITHUB_TOKEN, pat)]
    assert found(f"slack {SLACK}") == [(FindingType.SLACK_TOKEN, SLACK)]


def test_vendor_api_key() -> None:
    key = "sk-proj-" + "Xy7Qm2Lp9Rt4Vw8Zb3Nc6Hd1Kf5Gj0"
    assert found(f"OPENAI_API_KEY={key}") == [(FindingType.API_KEY, key)]
    assert found("a task-force of sk-ills") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('api_key = "Zx81mQp2Lr5Tv9Wc3Nb7"', "Zx81mQp2Lr5Tv9Wc3Nb7"),
        ("DB_PASSWORD=hunter22!", "hunter22!"),
        ('{"client_secret": "9fK2mQ7xR4tL1pZ8wB6n"}', "9fK2mQ7xR4tL1pZ8wB6n"),
        ("my password is S3cure#pass", "S3cure#pass"),
        ("Authorization: Bearer abcDEF123456ghiJKL789mnoPQR", "abcDEF123456ghiJKL789mnoPQR"),
        ("postgres://admin:Tr0ub4dor@db.internal:5432/app", "Tr0ub4dor"),
    ],
)
def test_generic_secret_assignments(text: str, value: str) -> None:
    assert found(text) == [(FindingType.GENERIC_SECRET, value)]


@pytest.mark.parametrize(
    "text",
    [
        "password = os.environ['DB_PASSWORD']",
        "token: ${GITHUB_TOKEN}",
        "api_key=<your-api-key>",
        "password: ********",
        "the key = important",
        "secret sauce is tomato",
        "token: refresh",
        "password is required",
        "postgres://user:%s@localhost/db",
    ],
)
def test_placeholders_and_prose_are_not_secrets(text: str) -> None:
    assert found(text) == []


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy(AWS_SECRET) > 4.0
    assert shannon_entropy("password") < 3.0
