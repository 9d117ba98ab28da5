"""Composition root: builds adapters from Settings and wires them into the domain services.

Called on the first request of a Lambda container (never at import time), and by the local stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from llmops.adapters import aws_clients
from llmops.adapters.bedrock.client import BedrockConverseProvider
from llmops.adapters.bedrock.embeddings import BedrockEmbeddingProvider
from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.cache_store import DynamoResponseCache
from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.adapters.dynamodb.prompt_store import CachedPromptResolver, DynamoPromptStore
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.request_books import DynamoRequestBooks
from llmops.adapters.dynamodb.route_source import DynamoRouteSource, FileRouteSource
from llmops.adapters.http_images import HttpImageFetcher
from llmops.adapters.sagemaker.client import SageMakerEndpointProvider
from llmops.adapters.sagemaker.embeddings import SageMakerEmbeddingProvider
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.application import after_response
from llmops.application.chat_endpoint import ChatEndpoint
from llmops.application.embeddings_endpoint import EmbeddingsEndpoint
from llmops.application.feedback_api import AuditRecordLookup
from llmops.application.guard_detectors import ServiceDetectors, parse_granted, with_policy_guardrail
from llmops.application.guard_policies import GuardPolicies
from llmops.config.env import Settings
from llmops.domain.completions import CompletionService
from llmops.domain.embeddings import EmbeddingService
from llmops.domain.ports import ChatProvider, EmbeddingProvider, RouteSource
from llmops.domain.request_trace import RequestTrace, SpanFactory
from llmops.domain.routing import CircuitBreaker, Provider
from llmops.domain.streaming import StreamingChatProvider

__all__ = ["AuthorizerRuntime", "GatewayRuntime", "build_authorizer", "build_gateway", "build_key_store"]


@dataclass(slots=True)
class GatewayRuntime:
    settings: Settings
    routes: RouteSource
    completions: CompletionService
    guards: GuardPolicies
    ledger: DynamoQuotaLedger
    audit: DynamoAuditLog
    audit_lookup: AuditRecordLookup
    feedback: DynamoFeedbackStore
    chat: ChatEndpoint
    embeddings: EmbeddingsEndpoint


def _control_plane_client(service: str) -> Callable[[], Any]:
    # Short timeouts: config and accounting calls are on the hot path and must fail fast.
    return partial(aws_clients.client, service, connect_timeout_s=1.0, read_timeout_s=3.0, max_attempts=3)


def resolve_pepper(settings: Settings) -> Settings:
    """The HMAC pepper for API keys, audit hashes and canaries, read from Secrets Manager once per
    container so the value never sits in the function's configuration."""
    if settings.key_pepper or not settings.key_pepper_secret_arn:
        return settings
    secrets = _control_plane_client("secretsmanager")()
    value = secrets.get_secret_value(SecretId=settings.key_pepper_secret_arn)["SecretString"]
    return settings.model_copy(update={"key_pepper": value})


def build_route_source(settings: Settings) -> RouteSource:
    if settings.routes_table:
        # An expired table is read again after the response (after_response.defer), not on a request.
        return DynamoRouteSource(
            _control_plane_client("dynamodb"),
            settings.routes_table,
            settings.config_ttl_s,
            defer=after_response.defer,
        )
    return FileRouteSource(Path(settings.routes_file)) if settings.routes_file else FileRouteSource()


def _provider_client(service: str, settings: Settings) -> Callable[[float | None], Any]:
    """`budget_s -> client` for one model call within that budget (`aws_clients` caches the clients)."""

    def for_call(budget_s: float | None) -> Any:
        return aws_clients.provider_client(
            service,
            budget_s=budget_s,
            connect_timeout_s=settings.provider_connect_timeout_s,
            read_timeout_s=settings.provider_read_timeout_s,
        )

    return for_call


# Each real provider both completes and streams (`ChatProvider` and `StreamingChatProvider`).
ModelProvider = BedrockConverseProvider | SageMakerEndpointProvider


def build_providers(settings: Settings) -> dict[Provider, ModelProvider]:
    return {
        Provider.BEDROCK: BedrockConverseProvider(_provider_client("bedrock-runtime", settings)),
        Provider.SAGEMAKER: SageMakerEndpointProvider(_provider_client("sagemaker-runtime", settings)),
    }


def build_embedding_providers(settings: Settings) -> dict[Provider, EmbeddingProvider]:
    """InvokeModel (Titan, Cohere) and InvokeEndpoint (embedding containers), on the chat path's clients."""
    return {
        Provider.BEDROCK: BedrockEmbeddingProvider(_provider_client("bedrock-runtime", settings)),
        Provider.SAGEMAKER: SageMakerEmbeddingProvider(_provider_client("sagemaker-runtime", settings)),
    }


def build_completions(
    settings: Settings,
    routes: RouteSource,
    providers: dict[Provider, ChatProvider] | None = None,
    streaming: dict[Provider, StreamingChatProvider] | None = None,
) -> CompletionService:
    """Provider calls within the request's deadline: retries are the domain's, not botocore's.

    Without `providers` the real ones complete and stream; injected `providers` stream only through
    `streaming` (else their buffered answers are streamed whole).
    """
    real = build_providers(settings) if providers is None else None
    return CompletionService(
        routes=routes,
        providers=providers or real or {},
        streaming=streaming or real or {},
        deadline_margin_s=settings.deadline_margin_s,
        attempts_per_target=settings.provider_max_attempts,
        # A call shorter than this could not even connect and wait one second for an answer.
        min_attempt_s=settings.provider_connect_timeout_s + 1.0,
        breaker=CircuitBreaker(cooldown_s=settings.breaker_cooldown_s),
    )


def build_gateway(
    settings: Settings,
    *,
    routes: RouteSource | None = None,
    providers: dict[Provider, ChatProvider] | None = None,
    streaming: dict[Provider, StreamingChatProvider] | None = None,
    embedding_providers: dict[Provider, EmbeddingProvider] | None = None,
    on_finished: Callable[[RequestTrace], None] | None = None,
    on_answered: Callable[[RequestTrace], None] | None = None,
    spans: SpanFactory | None = None,
) -> GatewayRuntime:
    settings = resolve_pepper(settings)
    route_source = routes or build_route_source(settings)
    completions = build_completions(settings, route_source, providers, streaming)
    dynamodb = _control_plane_client("dynamodb")()
    dead_letters = DeadLetterQueue(_control_plane_client("sqs")(), settings.audit_dlq_url)
    ledger = DynamoQuotaLedger(
        dynamodb, settings.quotas_table, settings.usage_table, on_settle_failure=dead_letters.send_settlement
    )
    audit = DynamoAuditLog(dynamodb, settings.audit_table, dead_letter=dead_letters.send_audit)
    granted = parse_granted(settings.granted_guardrails)
    guards = GuardPolicies.from_json(
        settings.guard_policies,
        registry=DynamoGuardPolicyStore(dynamodb, settings.prompts_table),
        ttl_s=settings.config_ttl_s,
        defer=after_response.defer,  # expired labels are read again after the response
        # Bedrock Guardrails / Comprehend, for the policies that name them; each call keeps the
        # deadline margin back for the stages after the guard.
        detectors=ServiceDetectors(
            margin_s=settings.deadline_margin_s, granted=granted, comprehend_granted=settings.comprehend_granted
        ),
    )
    prompts = CachedPromptResolver(
        DynamoPromptStore(dynamodb, settings.prompts_table), ttl_s=settings.config_ttl_s, defer=after_response.defer
    )
    chat = ChatEndpoint(
        completions,
        guards,
        ledger,
        DynamoRequestBooks(ledger, audit),  # the settle rides in the audit record's transaction
        audit_pepper=settings.key_pepper,
        prompts=prompts,
        cache=DynamoResponseCache(dynamodb, settings.cache_table),
        # Used only for tenants whose content policy allows remote image URLs.
        image_fetcher=HttpImageFetcher(),
        policy_guardrail=partial(with_policy_guardrail, granted=granted),
    )
    if on_finished is not None:
        chat.on_finished = on_finished
    if on_answered is not None:
        chat.on_answered = on_answered
    if spans is not None:
        chat.spans = spans
    embeddings = EmbeddingsEndpoint(
        EmbeddingService(
            completions, build_embedding_providers(settings) if embedding_providers is None else embedding_providers
        ),
        guards,
        ledger,
        record=chat.record,  # one audit recorder (and metrics) for both endpoints
        spans=chat.spans,
    )
    return GatewayRuntime(
        settings=settings,
        routes=route_source,
        completions=completions,
        guards=guards,
        ledger=ledger,
        audit=audit,
        audit_lookup=AuditRecordLookup(audit),
        feedback=DynamoFeedbackStore(dynamodb, settings.feedback_table),
        chat=chat,
        embeddings=embeddings,
    )


@dataclass(slots=True)
class AuthorizerRuntime:
    settings: Settings
    keys: DynamoKeyStore


def build_key_store(settings: Settings) -> DynamoKeyStore:
    settings = resolve_pepper(settings)
    return DynamoKeyStore(_control_plane_client("dynamodb")(), settings.keys_table, settings.key_pepper)


def build_authorizer(settings: Settings) -> AuthorizerRuntime:
    return AuthorizerRuntime(settings=settings, keys=build_key_store(settings))
