"""Least privilege, on the template CloudFormation receives (after SAM): no wildcard action in
any role, no "*" resource except for the few actions IAM accepts on no other resource, and
no managed policy attached where the template could not see what it grants."""

import json

from lake_contract import tables
from tests.supermarket_infra.conftest import resources_of

# Actions that support no resource-level permission: "*" is the only resource IAM accepts.
NO_RESOURCE_LEVEL = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ecr:GetAuthorizationToken",
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeNetworkInterfaces",
    }
)


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict) -> list[tuple[str, dict]]:
    """(role, statement) for every identity-policy statement of every role."""
    found = []
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
    for name, policy in resources_of(template, "AWS::IAM::Policy").items():
        found += [(name, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    return found


def wildcard_problems(template: dict) -> list[str]:
    problems = []
    for role, statement in role_statements(template):
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{role}: NotAction/NotResource grant everything else")
        actions = _listed(statement.get("Action", []))
        problems += [f"{role}: wildcard action {a}" for a in actions if "*" in a]
        if "*" in _listed(statement.get("Resource", [])):
            broad = sorted(set(actions) - NO_RESOURCE_LEVEL)
            if broad:
                problems.append(f"{role}: {broad} on resource * where an ARN is known")
    return problems


def test_no_role_has_a_wildcard_action_or_an_avoidable_star_resource(translated):
    assert role_statements(translated), "no statements found: the scan is broken"
    assert wildcard_problems(translated) == []


def test_no_role_attaches_a_managed_policy(translated):
    roles = resources_of(translated, "AWS::IAM::Role")

    assert set(roles) >= {
        "IngestFunctionRole",
        "TaskExecutionRole",
        "PaymentProcessorTaskRole",
        "DagsterTaskRole",
        "DagsterRunTaskRole",
    }
    assert {name: r["Properties"].get("ManagedPolicyArns", []) for name, r in roles.items()} == {
        name: [] for name in roles
    }


def test_the_check_fails_on_a_wildcard(translated):
    # Given the translated template with one statement widened to a service wildcard
    widened = json.loads(json.dumps(translated))
    policy = widened["Resources"]["PaymentProcessorTaskRole"]["Properties"]["Policies"][0]
    policy["PolicyDocument"]["Statement"][0]["Action"] = "s3:*"
    star = widened["Resources"]["IngestFunctionRole"]["Properties"]["Policies"][0]
    star["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}
    )

    # Then both are reported
    assert wildcard_problems(widened) == [
        "IngestFunctionRole: ['sqs:SendMessage'] on resource * where an ARN is known",
        "PaymentProcessorTaskRole: wildcard action s3:*",
    ]


def test_the_ingest_function_reaches_only_its_prefixes_tables_and_queue(translated):
    statements = [s for role, s in role_statements(translated) if role == "IngestFunctionRole"]
    granted = {a for s in statements for a in _listed(s["Action"])}

    assert granted == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:UpdateTable",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert _glue_tables(statements) == set(tables.ICEBERG_TABLES)


def _glue_tables(statements: list[dict]) -> set[str]:
    (glue,) = [s for s in statements if s["Sid"] == "IcebergCatalog"]
    return {r["Fn::Sub"].rsplit("/", 1)[-1] for r in glue["Resource"] if "table/" in str(r)}


def test_the_table_setup_creates_only_the_iceberg_tables_and_their_metadata(translated):
    statements = [s for role, s in role_statements(translated) if role == "LakeTablesFunctionRole"]
    granted = {a for s in statements for a in _listed(s["Action"])}
    (metadata,) = [s for s in statements if s["Sid"] == "TableMetadata"]

    assert granted == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert _listed(metadata["Resource"]) == [{"Fn::Sub": "${LakeBucket.Arn}/lake/*"}]
    assert _glue_tables(statements) == set(tables.ICEBERG_TABLES)
