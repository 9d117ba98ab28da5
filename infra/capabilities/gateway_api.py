"""The request path: REST API, API-key authorizer and the gateway Lambda behind `/v1/{proxy+}`.

The routes that need no key (`llmops.config.public_routes`) get methods of their own without the
authorizer; API Gateway prefers them to the greedy `{proxy+}`.

Errors API Gateway produces itself (bad key, throttling, unknown path, timeouts) are rewritten into
the OpenAI error shape, so callers see one error contract whether or not the Lambda ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.capabilities.guard_detectors import grant_guard_detectors
from infra.capabilities.key_pepper import KeyPepper
from infra.capabilities.lambda_layer import EXEC_WRAPPER_PATH
from infra.capabilities.model_access import grant_model_invoke
from infra.capabilities.python_function import FunctionSpec, PythonFunction, retention
from infra.capabilities.tables import TableAccess, Tables
from infra.config import GatewayConfig
from infra.nag import acknowledge
from llmops.config import timeouts
from llmops.config.edge_responses import EDGE_RESPONSES, EdgeResponse
from llmops.config.env import EnvVar
from llmops.config.public_routes import PUBLIC_ROUTES
from llmops.observability.metrics import GATEWAY_SERVICE

__all__ = ["AUTHORIZER_CACHE_TTL_S", "AUTHORIZER_TABLES", "GATEWAY_TABLES", "GatewayApi", "access_log_format"]

AUTHORIZER_CACHE_TTL_S = 60

# Least privilege per table. Audit is read/write because records are hash-chained per shard (the
# writer reads the previous head); Feedback reads its own records to de-duplicate.
GATEWAY_TABLES: Mapping[str, TableAccess] = {
    "Routes": TableAccess.READ,
    "Quotas": TableAccess.READ_WRITE,
    "Usage": TableAccess.READ_WRITE,
    "Audit": TableAccess.READ_WRITE,
    "Prompts": TableAccess.READ,
    "Feedback": TableAccess.READ_WRITE,
    "ResponseCache": TableAccess.READ_WRITE,
}
AUTHORIZER_TABLES: Mapping[str, TableAccess] = {"ApiKeys": TableAccess.READ}

# Fields chosen to answer "who called what, how did it end, how long did it take" with no bodies.
_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "principalId": "$context.authorizer.principalId",
    "tenantId": "$context.authorizer.tenant_id",
    "authorizerLatencyMs": "$context.authorizer.latency",
    "authorizerError": "$context.authorizer.error",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}


def access_log_format() -> str:
    return json.dumps(_ACCESS_LOG_FIELDS, separators=(",", ":"))


def _openai_error(response: EdgeResponse) -> dict[str, str]:
    return {"application/json": json.dumps(response.body(), separators=(",", ":"))}


class GatewayApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        tables: Tables,
        layer: lambda_.ILayerVersion,
        key_pepper: KeyPepper,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config

        self.gateway = PythonFunction(
            self,
            "Gateway",
            config=config,
            layer=layer,
            spec=FunctionSpec(
                directory="gateway",
                service=GATEWAY_SERVICE,
                description="llmops gateway: OpenAI-compatible request path",
                memory_mb=config.gateway_memory_mb,
                timeout_s=config.gateway_timeout_s,
                reserved_concurrency=config.gateway_reserved_concurrency,
                # Each request runs against the deadline its Lambda context gives, keeping back a
                # margin to release or settle, audit and answer with an OpenAI-shaped 504 before
                # Lambda cuts the connection; llmops.config.timeouts.
                environment={
                    # Our runtime loop instead of the Python runtime's, which cannot stream: it
                    # answers in the Runtime API's streaming mode (llmops.lambda_runtime).
                    "AWS_LAMBDA_EXEC_WRAPPER": EXEC_WRAPPER_PATH,
                    EnvVar.PROVIDER_READ_TIMEOUT_S: str(timeouts.provider_read_timeout_s(config.gateway_timeout_s)),
                    EnvVar.PROVIDER_CONNECT_TIMEOUT_S: str(timeouts.PROVIDER_CONNECT_TIMEOUT_S),
                    EnvVar.PROVIDER_MAX_ATTEMPTS: str(timeouts.PROVIDER_MAX_ATTEMPTS),
                    EnvVar.DEADLINE_MARGIN_S: str(timeouts.DEADLINE_MARGIN_S),
                    # What grant_guard_detectors allows, so the gateway never calls a guardrail IAM denies.
                    EnvVar.GRANTED_GUARDRAILS: ",".join(config.bedrock_guardrails) or "none",
                    EnvVar.COMPREHEND_GRANTED: str(config.comprehend_pii_detection).lower(),
                },
            ),
        )
        tables.grant(self.gateway.function, GATEWAY_TABLES)
        grant_model_invoke(self.gateway.role, config)
        grant_guard_detectors(self.gateway.role, config)

        self.authorizer = PythonFunction(
            self,
            "Authorizer",
            config=config,
            layer=layer,
            spec=FunctionSpec(
                directory="authorizer",
                service="authorizer",
                description="llmops authorizer: API key to tenant context",
                memory_mb=512,
                timeout_s=timeouts.AUTHORIZER_TIMEOUT_S,
                reserved_concurrency=config.authorizer_reserved_concurrency,
            ),
        )
        tables.grant(self.authorizer.function, AUTHORIZER_TABLES)
        key_pepper.inject(self.authorizer.function)
        key_pepper.inject(self.gateway.function)

        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY,
        )
        self.api = self._rest_api(config)
        self._routes()
        self._gateway_responses()

    def _rest_api(self, config: GatewayConfig) -> apigw.RestApi:
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"llmops-gateway-{config.stage.value}",
            description="llmops gateway: OpenAI-compatible API under /v1",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=(cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage.value,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(access_log_format()),
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Execution logs with data tracing would hold request and response bodies.
                data_trace_enabled=False,
            ),
        )
        acknowledge(
            api,
            (
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level API Gateway logging role needs exactly this AWS-maintained policy.",
            ),
            (
                "AwsSolutions-APIG3",
                "No WAF in the core stack: every route needs an API key checked by the authorizer, stage "
                "throttling and per-key quotas apply; attach an org-wide WAF (Firewall Manager) if required.",
            ),
        )
        return api

    def _routes(self) -> None:
        authorizer = apigw.TokenAuthorizer(
            self,
            "ApiKeyAuthorizer",
            handler=self.authorizer.function,
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=cdk.Duration.seconds(AUTHORIZER_CACHE_TTL_S),
            # Malformed headers are refused by API Gateway without invoking the authorizer.
            validation_regex=r"^[Bb]earer \S+$",
        )
        validator = apigw.RequestValidator(
            self,
            "Validator",
            rest_api=self.api,
            validate_request_parameters=True,
            # The gateway validates bodies itself (one place for OpenAI-compatible error details);
            # API Gateway validates a body only where a method declares a model.
            validate_request_body=True,
        )
        # STREAM: API Gateway calls InvokeWithResponseStream and relays the body as the function
        # writes it, so tokens reach the caller as they are generated. Every route of the gateway
        # function uses it: the function answers every event in the streaming format (prelude,
        # delimiter, body), and one function has one response mode. The integration may then run
        # as long as the function (up to 15 minutes); lambda:InvokeFunction, which the integration
        # grants API Gateway, also authorizes InvokeWithResponseStream.
        integration = apigw.LambdaIntegration(
            self.gateway.function,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=cdk.Duration.seconds(self.config.gateway_timeout_s),
        )

        v1 = self.api.root.add_resource("v1")
        proxy = v1.add_resource("{proxy+}")
        self.proxy_method = proxy.add_method(
            "ANY",
            integration,
            authorizer=authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
            request_validator=validator,
            request_parameters={"method.request.header.Authorization": True},
        )
        acknowledge(
            self.proxy_method,
            (
                "AwsSolutions-COG4",
                "Callers authenticate with gateway API keys, checked by the Lambda authorizer.",
            ),
        )

        self.public_methods: dict[str, apigw.Method] = {}
        for route in PUBLIC_ROUTES:
            resource = self.api.root.resource_for_path(route.path)
            method = resource.add_method(route.method, integration, authorization_type=apigw.AuthorizationType.NONE)
            acknowledge(method, ("AwsSolutions-APIG4", route.why), ("AwsSolutions-COG4", route.why))
            self.public_methods[f"{route.method} {route.path}"] = method

    def _gateway_responses(self) -> None:
        # The definitions are shared with the local front door (llmops.config.edge_responses).
        for response in EDGE_RESPONSES:
            response_type = apigw.ResponseType.of(response.response_type)
            # Header values in a gateway response are mapping expressions: static ones are quoted.
            headers = {name: f"'{value}'" for name, value in response.headers().items()}
            options: dict[str, Any] = {
                "type": response_type,
                "templates": _openai_error(response),
                "response_headers": {"Content-Type": "'application/json'", **headers},
            }
            if response.status is not None:
                options["status_code"] = str(response.status)
            self.api.add_gateway_response(f"{response_type.response_type.title().replace('_', '')}Response", **options)

    @property
    def url(self) -> str:
        return self.api.url
