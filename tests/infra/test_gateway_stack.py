"""The synthesized gateway stack, for dev and prod: security properties, wiring, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import assertions
from cfnlint.api import ManualArgs, lint

from infra.capabilities.gateway_api import AUTHORIZER_CACHE_TTL_S
from infra.capabilities.lambda_layer import EXEC_WRAPPER_PATH
from infra.config import GatewayConfig, routes_document
from llmops.adapters.dynamodb.audit_items import entry_transaction
from llmops.adapters.dynamodb.quota_items import settle_transaction
from llmops.adapters.dynamodb.route_items import table_items
from llmops.config.edge_responses import EDGE_RESPONSES
from llmops.config.tables import TABLES
from llmops.config.timeouts import GATEWAY_TIMEOUT_S
from llmops.domain.audit import AuditRecord, ShardHead, chain_entry
from llmops.domain.quotas import Scope, UsageEntry, Window, WindowDelta, WindowKind

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-synth")]

# CDK itself emits DependsOn on a function's role next to the GetAtt of that role.
CFN_LINT_IGNORED = ["W3005"]


@pytest.fixture(scope="module", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest, synthesized: Any) -> Any:
    return synthesized(request.param)


@pytest.fixture(scope="module")
def template(synth: Any) -> assertions.Template:
    return assertions.Template.from_json(synth.template)


def _table_resource(synth: Any, logical_name: str) -> dict[str, Any]:
    ref = synth.template["Outputs"][f"{logical_name}TableName"]["Value"]["Ref"]
    resource: dict[str, Any] = synth.template["Resources"][ref]
    return resource


def _function(synth: Any, service: str) -> dict[str, Any]:
    for resource in synth.resources("AWS::Lambda::Function").values():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if variables.get("POWERTOOLS_SERVICE_NAME") == service:
            return resource
    raise AssertionError(f"no function for service {service}")


def _statements(synth: Any) -> Iterator[dict[str, Any]]:
    for policy in synth.resources("AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render(value: Any) -> str:
    """A readable string for an ARN expression: Fn::Join flattened, pseudo parameters named."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(p) for p in parts)
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return json.dumps(value)


# --- tables -----------------------------------------------------------------------------------


def test_every_shared_table_is_deployed_with_its_keys_indexes_and_ttl(synth: Any) -> None:
    for spec in TABLES:
        props = _table_resource(synth, spec.logical_name)["Properties"]
        keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        expected = {spec.partition_key.name: "HASH"}
        if spec.sort_key:
            expected[spec.sort_key.name] = "RANGE"
        assert keys == expected, spec.logical_name
        assert {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])} == {i.name for i in spec.indexes}
        assert {a["AttributeName"] for a in props["AttributeDefinitions"]} == {
            a.name for a in spec.attribute_definitions()
        }
        if spec.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props


def test_tables_are_on_demand_recoverable_and_encrypted_with_one_rotating_key(synth: Any) -> None:
    keys = synth.resources("AWS::KMS::Key")
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())
    key_refs = set()
    for spec in TABLES:
        props = _table_resource(synth, spec.logical_name)["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        sse = props["SSESpecification"]
        assert (sse["SSEEnabled"], sse["SSEType"]) == (True, "KMS")
        key_refs.add(sse["KMSMasterKeyId"]["Fn::GetAtt"][0])
    assert len(key_refs) == 1
    assert key_refs <= keys.keys()


def test_prod_tables_are_protected_and_dev_tables_disposable(synth: Any) -> None:
    prod = synth.stage == "prod"
    for spec in TABLES:
        table = _table_resource(synth, spec.logical_name)
        assert table["Properties"].get("DeletionProtectionEnabled", False) is prod
        assert table["DeletionPolicy"] == ("Retain" if prod else "Delete")
    for key in synth.resources("AWS::KMS::Key").values():
        assert key["DeletionPolicy"] == ("Retain" if prod else "Delete")


# --- functions --------------------------------------------------------------------------------


def test_functions_run_python312_on_arm64_traced_with_the_shared_layer(synth: Any) -> None:
    (layer_id,) = synth.resources("AWS::Lambda::LayerVersion")
    for service in ("gateway", "authorizer"):
        props = _function(synth, service)["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Handler"] == "handler.handler"
        assert props["Layers"] == [{"Ref": layer_id}]
        assert "LogGroup" in props["LoggingConfig"]
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "LLMOps"
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        assert variables["LLMOPS_STAGE"] == synth.stage


def test_log_groups_keep_logs_for_the_stage_retention(template: assertions.Template, synth: Any) -> None:
    days = 365 if synth.stage == "prod" else 30
    for log_group in synth.resources("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == days


def test_gateway_function_is_told_every_table_but_the_keys(synth: Any) -> None:
    variables = _function(synth, "gateway")["Properties"]["Environment"]["Variables"]
    for spec in TABLES:
        if spec.logical_name == "ApiKeys":
            # Keys are the authorizer's business: the gateway can neither read nor name them.
            assert spec.env_var not in variables
        else:
            assert variables[spec.env_var] == {"Ref": _ref_of(synth, spec.logical_name)}


def test_authorizer_sees_only_the_keys_table(synth: Any) -> None:
    variables = _function(synth, "authorizer")["Properties"]["Environment"]["Variables"]
    assert {k for k in variables if k.endswith("_TABLE")} == {"LLMOPS_KEYS_TABLE"}


def _ref_of(synth: Any, logical_name: str) -> str:
    ref: str = synth.template["Outputs"][f"{logical_name}TableName"]["Value"]["Ref"]
    return ref


# --- API --------------------------------------------------------------------------------------


def test_api_stage_logs_access_as_json_traces_and_throttles(synth: Any) -> None:
    ((_, stage),) = synth.resources("AWS::ApiGateway::Stage").items()
    props = stage["Properties"]
    assert props["StageName"] == synth.stage
    assert props["TracingEnabled"] is True
    access_log = props["AccessLogSetting"]
    fields = json.loads(access_log["Format"])
    assert {"requestId", "status", "principalId", "responseLatencyMs"} <= fields.keys()
    assert "log-group" in _render(access_log["DestinationArn"])
    (settings,) = props["MethodSettings"]
    defaults = GatewayConfig()
    assert settings["ThrottlingRateLimit"] == defaults.throttle_rate_limit
    assert settings["ThrottlingBurstLimit"] == defaults.throttle_burst_limit
    assert settings["DataTraceEnabled"] is False


def test_api_is_regional_without_cors(synth: Any) -> None:
    ((_, api),) = synth.resources("AWS::ApiGateway::RestApi").items()
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert not [
        m for m in synth.resources("AWS::ApiGateway::Method").values() if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]


def test_authorizer_is_a_cached_token_authorizer_on_the_authorization_header(
    template: assertions.Template,
) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "TOKEN",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": AUTHORIZER_CACHE_TTL_S,
        },
    )


def test_v1_proxy_needs_the_authorizer_and_health_and_openapi_are_public(synth: Any) -> None:
    resources = synth.resources("AWS::ApiGateway::Resource")
    path_of = {rid: r["Properties"]["PathPart"] for rid, r in resources.items()}
    methods = {
        (path_of[m["Properties"]["ResourceId"]["Ref"]], m["Properties"]["HttpMethod"]): m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
    }
    assert set(methods) == {("{proxy+}", "ANY"), ("health", "GET"), ("openapi.json", "GET")}
    proxy = methods[("{proxy+}", "ANY")]
    assert proxy["AuthorizationType"] == "CUSTOM"
    assert proxy["Integration"]["Type"] == "AWS_PROXY"
    for public in (methods[("health", "GET")], methods[("openapi.json", "GET")]):
        assert public["AuthorizationType"] == "NONE"
        assert public["Integration"] == proxy["Integration"]  # the same gateway Lambda
    for part in ("{proxy+}", "openapi.json"):
        (resource,) = [r for r in resources.values() if r["Properties"]["PathPart"] == part]
        assert path_of[resource["Properties"]["ParentId"]["Ref"]] == "v1"


def test_the_gateway_integration_streams_through_our_runtime_loop(synth: Any) -> None:
    """STREAM on every method of the gateway function (one function, one response mode), invoked
    with InvokeWithResponseStream, for as long as the function may run; the function starts our
    streaming runtime loop through the layer's exec wrapper."""
    methods = synth.resources("AWS::ApiGateway::Method").values()
    assert methods
    for method in methods:
        integration = method["Properties"]["Integration"]
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["TimeoutInMillis"] == GATEWAY_TIMEOUT_S * 1000
        uri = _render(integration["Uri"])
        assert ":lambda:path/2021-11-15/functions/${" in uri
        assert uri.endswith("/response-streaming-invocations")
    gateway = _function(synth, "gateway")["Properties"]
    assert gateway["Timeout"] == GATEWAY_TIMEOUT_S
    assert gateway["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == EXEC_WRAPPER_PATH
    assert gateway["Runtime"] == "python3.12"  # the wrapper execs this runtime's interpreter
    assert len(gateway["Layers"]) == 1  # the shared layer, which holds the wrapper


def test_api_gateway_errors_use_the_openai_error_shape(synth: Any) -> None:
    responses = synth.resources("AWS::ApiGateway::GatewayResponse")
    by_type = {r["Properties"]["ResponseType"]: r["Properties"] for r in responses.values()}
    assert {"UNAUTHORIZED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= by_type.keys()
    assert by_type["UNAUTHORIZED"]["StatusCode"] == "401"
    assert by_type["THROTTLED"]["StatusCode"] == "429"
    for props in by_type.values():
        error = json.loads(props["ResponseTemplates"]["application/json"])["error"]
        assert set(error) == {"message", "type", "code", "param"}
    assert json.loads(by_type["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])["error"]["code"] == (
        "invalid_api_key"
    )


def test_gateway_responses_are_the_shared_edge_definitions(synth: Any) -> None:
    # The local front door answers from the same definitions (tests/unit/local/test_front_door_edge.py).
    responses = synth.resources("AWS::ApiGateway::GatewayResponse")
    by_type = {r["Properties"]["ResponseType"]: r["Properties"] for r in responses.values()}
    assert set(by_type) == {edge.response_type for edge in EDGE_RESPONSES}
    for edge in EDGE_RESPONSES:
        props = by_type[edge.response_type]
        assert json.loads(props["ResponseTemplates"]["application/json"]) == edge.body()
        assert props.get("StatusCode") == (str(edge.status) if edge.status is not None else None)
        for name, value in edge.headers().items():
            assert props["ResponseParameters"][f"gatewayresponse.header.{name}"] == f"'{value}'"
    failure = by_type["AUTHORIZER_FAILURE"]
    assert failure["StatusCode"] == "503"
    assert failure["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


# --- IAM --------------------------------------------------------------------------------------


def test_bedrock_invoke_is_scoped_to_the_configured_models(synth: Any) -> None:
    expected: set[str] = set()
    for model in GatewayConfig().bedrock_model_ids:
        if model.startswith("us."):  # a cross-region inference profile: the profile, and its model anywhere
            expected.add(
                f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}:${{AWS::AccountId}}:inference-profile/{model}"
            )
            expected.add(f"arn:${{AWS::Partition}}:bedrock:*::foundation-model/{model.removeprefix('us.')}")
        else:
            expected.add(f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{model}")
    assert any(m.startswith("us.") for m in GatewayConfig().bedrock_model_ids)
    bedrock = [s for s in _statements(synth) if any(a.startswith("bedrock:") for a in _as_list(s["Action"]))]
    assert len(bedrock) == 1
    assert set(_as_list(bedrock[0]["Action"])) == {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    }
    assert {_render(r) for r in _as_list(bedrock[0]["Resource"])} == expected


def test_sagemaker_invoke_is_scoped_to_the_configured_endpoints(synth: Any) -> None:
    invoke = {"sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"}
    sagemaker = [s for s in _statements(synth) if set(_as_list(s["Action"])) & invoke]
    assert len(sagemaker) == 1
    resources = {_render(r) for r in _as_list(sagemaker[0]["Resource"])}
    assert resources == {
        f"arn:${{AWS::Partition}}:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{name}"
        for name in GatewayConfig().sagemaker_endpoint_names
    }


# Actions AWS offers no resource-level permissions for: X-Ray, CloudWatch Logs delivery for state
# machine logging, DescribeAlarms (the canary's gates) and ListModelPackages (retraining).
_RESOURCELESS_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "cloudwatch:DescribeAlarms",
    # The retraining machine finds the package its pipeline run registered (docs/workflows.md).
    "sagemaker:ListModelPackages",
}


def test_no_statement_uses_wildcard_resources_or_actions_except_where_aws_has_none(synth: Any) -> None:
    for statement in _statements(synth):
        actions = _as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        if "*" in _as_list(statement["Resource"]):
            assert all(a.startswith("xray:") or a in _RESOURCELESS_ACTIONS for a in actions), statement


def test_dynamodb_access_names_tables_and_the_route_table_is_read_only_for_the_gateway(synth: Any) -> None:
    routes_ref = _ref_of(synth, "Routes")
    gateway_role = _function(synth, "gateway")["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _as_list(statement["Action"])
            if not any(a.startswith("dynamodb:") for a in actions):
                continue
            rendered = [_render(r) for r in _as_list(statement["Resource"])]
            assert all("${Tables" in r for r in rendered), statement
            writes = {
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            }
            if {"Ref": gateway_role} in policy["Properties"]["Roles"] and writes & set(actions):
                assert not any(r == f"${{{routes_ref}.Arn}}" for r in rendered), statement


def _settle_with_audit_record_items() -> list[dict[str, Any]]:
    """The gateway's one write after an answer (`request_books`), built by the adapters' own pure
    builders, with the logical table names in place of the physical ones."""
    window = Window(Scope.KEY, "t", "k", WindowKind.TOKENS_PER_MINUTE, "202701010000", 0, 60, 100)
    usage = UsageEntry("t", "2027-01-01", "chat", 1, 1, 1)
    settle = settle_transaction(
        "Quotas", "Usage", request_id="r", deltas=(WindowDelta(window, -5),), usage=usage, now=0
    )
    head = ShardHead(seq=1, hash="h", expires_at=None)
    entry = chain_entry(AuditRecord("r", "t", "k", 0.0, 1.0, 200), 0, head)
    return [*entry_transaction("Audit", entry, head), *settle.items]


def test_the_gateway_may_write_the_settle_with_its_audit_record_in_one_transaction(synth: Any) -> None:
    # TransactWriteItems is authorized item by item: each Put, Update and Delete needs its own action
    # on the table it touches, so one grant missing would fail every admitted request's settle.
    gateway_role = _function(synth, "gateway")["Properties"]["Role"]["Fn::GetAtt"][0]
    granted: set[tuple[str, str]] = set()
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": gateway_role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                resources = {_render(r) for r in _as_list(statement["Resource"])}
                granted |= {(a, r) for a in _as_list(statement["Action"]) for r in resources}
    needed = {
        (f"dynamodb:{op}Item", "${" + _ref_of(synth, body["TableName"]) + ".Arn}")
        for item in _settle_with_audit_record_items()
        for op, body in item.items()
    }
    assert {table for _, table in needed} == {
        "${" + _ref_of(synth, name) + ".Arn}" for name in ("Quotas", "Usage", "Audit")
    }
    assert needed <= granted, needed - granted


# --- route seeding ----------------------------------------------------------------------------


def test_route_seed_writes_every_item_of_routes_json(synth: Any) -> None:
    written: list[dict[str, Any]] = []
    for resource in synth.resources("Custom::AWS").values():
        call = json.loads(_render(resource["Properties"]["Create"]))
        assert call["service"] == "DynamoDB"
        assert call["action"] == "batchWriteItem"
        ((table, requests),) = call["parameters"]["RequestItems"].items()
        assert table == "${" + _ref_of(synth, "Routes") + "}"
        written.extend(r["PutRequest"]["Item"] for r in requests)
    assert written == table_items(routes_document())


# --- policy checks ----------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synth: Any) -> None:
    (report,) = [r for r in synth.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    findings = [(v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]]) for v in report["violations"]]
    assert findings == []
    for acknowledged in report.get("suppressedViolations", []):
        assert len(acknowledged["reason"]) > 30, acknowledged["ruleName"]


def test_cfn_lint_is_clean(synth: Any) -> None:
    matches = lint(
        synth.template_path.read_text(),
        config=ManualArgs(ignore_checks=CFN_LINT_IGNORED, regions=["us-east-1", "eu-west-1"]),
    )
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


# --- alerting ---------------------------------------------------------------------------------


def test_on_call_topic_is_encrypted_tls_only_and_cloudwatch_can_publish(synth: Any) -> None:
    ((_, topic),) = synth.resources("AWS::SNS::Topic").items()
    key_ref = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_policy = synth.template["Resources"][key_ref]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key_policy)
    ((_, topic_policy),) = synth.resources("AWS::SNS::TopicPolicy").items()
    (deny,) = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_functions_get_the_pepper_secret_arn_never_its_value(synth: Any) -> None:
    ((secret_id, secret),) = synth.resources("AWS::SecretsManager::Secret").items()
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] == 64
    assert secret["DeletionPolicy"] == ("Retain" if synth.stage == "prod" else "Delete")
    for name in ("authorizer", "gateway"):
        variables = _function(synth, name)["Properties"]["Environment"]["Variables"]
        assert "LLMOPS_KEY_PEPPER" not in variables
        assert variables["LLMOPS_KEY_PEPPER_SECRET_ARN"] == {"Ref": secret_id}
