"""The HTTP API's routes that need no API key, defined once.

CDK gives each one its own API Gateway method without the authorizer (every other path goes
through `/v1/{proxy+}` and the authorizer), the local front door skips the authorizer for them,
and the OpenAPI document marks them as needing no credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLIC_PATHS", "PUBLIC_ROUTES", "PublicRoute"]


@dataclass(frozen=True, slots=True)
class PublicRoute:
    method: str
    path: str
    why: str  # why it is public: the cdk-nag acknowledgement for a method without authorization


PUBLIC_ROUTES: tuple[PublicRoute, ...] = (
    PublicRoute("GET", "/health", "GET /health is public by contract: load balancers and uptime checks."),
    PublicRoute(
        "GET",
        "/v1/openapi.json",
        "GET /v1/openapi.json is public by contract: the API description, fetched by clients and tools "
        "before they hold a key; it carries no tenant data.",
    ),
)
PUBLIC_PATHS: frozenset[str] = frozenset(route.path for route in PUBLIC_ROUTES)
