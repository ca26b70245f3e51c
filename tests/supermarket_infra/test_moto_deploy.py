"""The translated template deployed into moto's CloudFormation, and what moto really created
checked through the services' own APIs. What moto accepts but does not create (bucket
policies, queue policies, the notification, Glue, Athena, alarms, QuickSight) is proven from
the template in test_template.py, not here."""

import ast
import io
import json
import re
import zipfile

import boto3
import pytest
from moto import mock_aws

from supermarket_cli.dagster_instance import RUN_CONTAINER

STACK = "supermarket"
REGION = "us-east-1"
# Removed before the deploy, each for a reason moto gives; what they declare is asserted from
# the template (test_template.py) instead.
MOTO_CANNOT = {
    "DagsterDatabase": "moto's RDS has no MasterUserSecret attribute (RDS-managed password)",
    # moto would run the function in Docker, which is not here; the function's own test
    # (tests/lambda_ingest/test_table_setup.py) answers its requests against a moto server.
    "LakeTables": "moto runs a custom resource's function only in Docker",
}


def for_moto(template: dict) -> dict:
    """The template less MOTO_CANNOT; their attributes become visible stand-in strings."""
    adapted = json.loads(json.dumps(template))
    for name in MOTO_CANNOT:
        del adapted["Resources"][name]
    names = "|".join(MOTO_CANNOT)

    def stand_in(value):
        if isinstance(value, dict):
            if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in MOTO_CANNOT:
                return "stand-in-" + "-".join(value["Fn::GetAtt"])
            if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
                text = re.sub(rf"\$\{{({names})\.([^}}]+)\}}", r"stand-in-\1-\2", value["Fn::Sub"])
                return {"Fn::Sub": text}
            return {k: stand_in(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stand_in(v) for v in value]
        return value

    return stand_in(adapted)


@pytest.fixture(scope="module")
def deployed(translated):
    """One deploy for the module's tests, which only read what it created."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate(("us-east-1a", "us-east-1b"))
        ]
        # What sam deploy does first: the function's zip and the template go to S3 (the
        # template is over CloudFormation's 51,200-byte inline limit).
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="supermarket-deploy")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("lambda_ingest/__init__.py", "")
        s3.put_object(Bucket="supermarket-deploy", Key="ingest.zip", Body=code.getvalue())
        body = json.dumps(for_moto(translated))
        assert len(body) > 51_200
        s3.put_object(Bucket="supermarket-deploy", Key="template.json", Body=body)
        parameters = {
            "VpcId": vpc,
            "PrivateSubnetIds": ",".join(subnets),
            "PaymentProcessorImageTag": "pp-1",
            "DagsterImageTag": "dagster-1",
            "HistoryStart": "2025-01-01",
            "QuickSightPrincipalArn": f"arn:aws:quicksight:{REGION}:123456789012:group/default/a",
        }
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateURL="https://supermarket-deploy.s3.amazonaws.com/template.json",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        (stack,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_the_lake_bucket_exists_encrypted_with_the_lake_key(deployed):
    s3 = boto3.client("s3")
    bucket = deployed["LakeBucketName"]

    assert bucket == f"{STACK}-lake-123456789012-{REGION}"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    # The stack's key, found by its alias (moto keeps a template's key policy in a form its own
    # DescribeKey cannot read, so the key is not described here).
    aliases = boto3.client("kms").list_aliases()["Aliases"]
    (alias,) = [a for a in aliases if a["AliasName"] == f"alias/{STACK}-lake"]
    assert default["KMSMasterKeyID"].endswith(alias["TargetKeyId"])


def test_the_ingest_queue_redrives_to_its_dead_letter_queue(deployed):
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=deployed["IngestQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=deployed["IngestDeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 5}
    assert attributes["VisibilityTimeout"] == "720"
    assert attributes["KmsMasterKeyId"]


def test_the_alert_topic_exists(deployed):
    topics = [t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]]

    assert deployed["AlertTopicArn"] in topics
    attributes = boto3.client("sns").get_topic_attributes(TopicArn=deployed["AlertTopicArn"])
    assert attributes["Attributes"]["KmsMasterKeyId"]


def test_the_function_and_its_sqs_event_source(deployed):
    lambda_ = boto3.client("lambda")
    function = lambda_.get_function(FunctionName=deployed["IngestFunctionName"])["Configuration"]

    # (moto reports every function as x86_64; arm64 is asserted from the template.)
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "lambda_ingest.handler.lambda_handler"
    assert function["Environment"]["Variables"]["LAKE_BUCKET"] == deployed["LakeBucketName"]
    assert function["Environment"]["Variables"]["GLUE_DATABASE"] == "supermarket_lake"
    assert function["Role"].split("/")[-1].startswith(f"{STACK}-IngestFunctionRole-")
    (mapping,) = [
        m
        for m in lambda_.list_event_source_mappings()["EventSourceMappings"]
        if m["FunctionArn"] == function["FunctionArn"]
    ]
    assert mapping["EventSourceArn"].endswith(":supermarket-ingest")
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumBatchingWindowInSeconds"] == 1


def test_the_roles_exist_with_only_their_inline_policies(deployed):
    iam = boto3.client("iam")
    roles = {
        r["RoleName"].split("-")[1]: r["RoleName"]
        for r in iam.list_roles()["Roles"]
        if r["RoleName"].startswith(f"{STACK}-")
    }

    assert set(roles) == {
        "IngestFunctionRole",
        "LakeTablesFunctionRole",
        "TaskExecutionRole",
        "PaymentProcessorTaskRole",
        "DagsterTaskRole",
        "DagsterRunTaskRole",
    }
    for name in roles.values():
        assert iam.list_role_policies(RoleName=name)["PolicyNames"]
        assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    document = iam.get_role_policy(
        RoleName=roles["PaymentProcessorTaskRole"], PolicyName="write-raw-incoming"
    )["PolicyDocument"]
    if isinstance(document, str):  # moto keeps a template's document as a Python repr
        document = ast.literal_eval(document)
    resources = [s["Resource"] for s in document["Statement"] if s["Sid"] == "WriteLiveLogs"]
    assert resources == [f"arn:aws:s3:::{deployed['LakeBucketName']}/raw/incoming/*"]


def test_the_ecs_task_definitions_and_services(deployed):
    ecs = boto3.client("ecs")
    families = {
        family: ecs.describe_task_definition(taskDefinition=f"{STACK}-{family}")["taskDefinition"]
        for family in ("payment-processor", "dagster", "dagster-run")
    }

    processor = families["payment-processor"]
    (container,) = processor["containerDefinitions"]
    assert container["image"].endswith("/supermarket-lake:pp-1")
    assert container["command"][:2] == ["supermarket", "payment-processor"]
    assert processor["memory"] == "512"
    assert {c["name"] for c in families["dagster"]["containerDefinitions"]} == {
        "webserver",
        "daemon",
    }
    (run,) = families["dagster-run"]["containerDefinitions"]
    assert run["name"] == RUN_CONTAINER
    assert deployed["DagsterRunTaskDefinitionArn"] == families["dagster-run"]["taskDefinitionArn"]
    # (ATHENA_WORKGROUP comes back empty: moto creates no workgroup to refer to.)
    environment = {e["name"]: e.get("value") for e in run["environment"]}
    assert environment["DAGSTER_RUN_TASK_DEFINITION"] == f"{STACK}-dagster-run"
    assert environment["LAKE_BUCKET"] == deployed["LakeBucketName"]
    services = ecs.describe_services(
        cluster=deployed["ClusterName"], services=["payment-processor", "dagster"]
    )["services"]
    assert {s["serviceName"]: s["desiredCount"] for s in services} == {
        "payment-processor": 1,
        "dagster": 1,
    }
