"""Authorizer Lambda: resolves `Authorization: Bearer <key>` to a tenant context.

API Gateway caches the result per Authorization header for the authorizer TTL, so a revoked key
stops working within that TTL. The policy allows every method of this API stage so one cached
answer serves all routes for the key.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from llmops.application.wiring import AuthorizerRuntime, build_authorizer
from llmops.config.env import Settings
from llmops.domain.errors import GatewayError
from llmops.domain.keys import authorizer_context

logger = Logger()
_runtime: AuthorizerRuntime | None = None


def runtime() -> AuthorizerRuntime:
    global _runtime  # noqa: PLW0603 - built on the first invocation, reused by the container
    if _runtime is None:
        _runtime = build_authorizer(Settings.from_env())
    return _runtime


def _bearer(headers: dict[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _stage_arn(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../stage/*/*
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*/*" if len(parts) >= 2 else method_arn


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = _bearer(event.get("headers") or {}) or str(event.get("authorizationToken", "")).removeprefix("Bearer ")
    try:
        tenant = runtime().keys.resolve(token, time.time())
    except GatewayError:
        logger.info("key refused")
        # This exact message makes API Gateway answer 401 (the UNAUTHORIZED gateway response).
        raise PermissionError("Unauthorized") from None
    return {
        "principalId": f"{tenant.tenant_id}/{tenant.key_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _stage_arn(event["methodArn"]),
                }
            ],
        },
        "context": authorizer_context(tenant),
    }
