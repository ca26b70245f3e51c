"""The template: lint and security scan clean, generated from the one schema, and what moto
cannot deploy (policies, notification filter, lifecycle, Glue, Athena, alarms, QuickSight)
proven from the template itself."""

import json
import subprocess

import boto3
import pyarrow as pa
import pytest
import sqlglot
from moto import mock_aws

from lake_contract import layout, schema, tables
from lake_contract.pandas_free import WITHOUT_PANDAS_VARIABLE
from lake_contract.quarantine import QUARANTINE_TABLE
from supermarket_cli.dagster_instance import PRODUCTION_ENVIRONMENT, RUN_CONTAINER
from supermarket_dagster.partitions import DAYS_PER_RUN_VARIABLE, HISTORY_START_VARIABLE
from supermarket_infra import template as generator
from supermarket_queries import glue, views
from tests.supermarket_infra.conftest import TEMPLATE, resources_of, tool


def _sub(value, **names) -> str:
    """A generated Fn::Sub string with the placeholders filled in, as CloudFormation would."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for name, replacement in names.items():
        text = text.replace(f"${{{name}}}", replacement)
    return text.replace("${!", "${")


def _resolved(value, **names):
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return _sub(value, **names)
    if isinstance(value, dict):
        return {k: _resolved(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, **names) for v in value]
    return value


def test_the_checked_in_template_and_dagster_yaml_are_what_render_writes():
    assert generator.stale_files() == []


def test_cfn_lint_is_clean():
    done = subprocess.run(
        [str(TEMPLATE.parent.parent / ".venv" / "bin" / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "")


def _checkov(path) -> dict:
    done = subprocess.run(
        [
            tool("checkov"),
            "-f",
            str(path),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def _declared_skips(template: dict) -> set[tuple[str, str]]:
    return {
        (name, skip["id"])
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        if skip.get("comment", "").strip()
    }


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_checkov_passes_and_every_skip_is_justified_and_used(which, template, translated_file):
    path = TEMPLATE if which == "sam" else translated_file
    report = _checkov(path)

    assert report["summary"]["parsing_errors"] == 0
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 50
    # Each skip checkov applied is one declared with a reason next to its resource, and none
    # declared is left unused.
    skipped = {
        (c["resource"].split(".", 1)[1], c["check_id"]) for c in report["results"]["skipped_checks"]
    }
    assert skipped == _declared_skips(template)


# ---------------------------------------------------------------- the generated Glue tables


def test_every_table_of_the_schema_is_declared_with_its_columns(template):
    glue_tables = resources_of(template, "AWS::Glue::Table")
    by_name = {t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in glue_tables.values()}
    lake_tables = template["Resources"]["LakeTables"]["Properties"]

    assert set(by_name) == {*schema.TABLES, QUARANTINE_TABLE} - set(tables.ICEBERG_TABLES)
    assert lake_tables["Tables"] == list(tables.ICEBERG_TABLES)
    for name in set(schema.TABLES) - set(tables.ICEBERG_TABLES):
        columns = by_name[name]["TableInput"]["StorageDescriptor"]["Columns"]
        assert [(c["Name"], c["Type"]) for c in columns] == [
            (f.name, glue.hive_type(f.type)) for f in schema.TABLES[name]
        ]
        declared = _resolved(by_name[name]["TableInput"], LakeBucket="lake-bucket")
        assert declared == glue.table_input(name, "lake-bucket")


def test_the_iceberg_tables_are_made_on_deploy_by_the_setup_function_from_the_ingest_zip(
    template,
):
    resources = template["Resources"]
    lake_tables = resources["LakeTables"]
    function = resources["LakeTablesFunction"]["Properties"]
    ingest = resources["IngestFunction"]["Properties"]

    assert lake_tables["Type"] == "Custom::LakeTables"
    properties = lake_tables["Properties"]
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["LakeTablesFunction", "Arn"]}
    assert properties["Bucket"] == {"Ref": "LakeBucket"}
    assert properties["Database"] == {"Ref": "LakeDatabase"}
    assert function["Handler"] == "lambda_ingest.table_setup.on_deploy"
    assert function["CodeUri"] == ingest["CodeUri"] and function["Layers"] == ingest["Layers"]
    # The views read the Iceberg tables: QuickSight's data sets wait for them.
    data_sets = resources_of(template, "AWS::QuickSight::DataSet").values()
    assert {d["DependsOn"] for d in data_sets} == {"LakeTables"}


def test_a_column_added_to_the_schema_appears_in_the_rendered_template(monkeypatch):
    # Given a schema with one more column in a reference table
    widened = schema.TABLES["skus"].append(pa.field("shelf_life_days", pa.int32()))
    monkeypatch.setitem(schema.TABLES, "skus", widened)

    # When the Glue part is rendered again, then the table has it and the file is stale
    columns = generator.glue_tables()["GlueTableSkus"]["Properties"]["TableInput"][
        "StorageDescriptor"
    ]["Columns"]
    assert columns[-1] == {"Name": "shelf_life_days", "Type": "int", "Comment": ""}
    assert "shelf_life_days" in generator.render(TEMPLATE.read_text())


def test_an_iceberg_table_added_to_the_contract_is_in_the_setups_tables(monkeypatch):
    monkeypatch.setattr(tables, "ICEBERG_TABLES", (*tables.ICEBERG_TABLES, "store_daily_sales"))

    lake_tables = generator.glue_tables()["LakeTables"]["Properties"]["Tables"]

    assert lake_tables[-1] == "store_daily_sales"  # a changed property: the deploy's Update


def test_the_generated_tables_are_accepted_by_moto_glue(monkeypatch, template):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("glue")
        client.create_database(DatabaseInput={"Name": "supermarket_lake"})
        for resource in resources_of(template, "AWS::Glue::Table").values():
            properties = _resolved(resource["Properties"], LakeBucket="lake-bucket")
            client.create_table(
                DatabaseName="supermarket_lake", TableInput=properties["TableInput"]
            )
        stored = client.get_tables(DatabaseName="supermarket_lake")["TableList"]

    assert {t["Name"] for t in stored} == {*schema.TABLES, QUARANTINE_TABLE} - set(
        tables.ICEBERG_TABLES
    )


# ---------------------------------------------------------------- what moto does not deploy


def test_the_lake_bucket_is_encrypted_versioned_private_and_tls_only(template):
    bucket = template["Resources"]["LakeBucket"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    policy = template["Resources"]["LakeBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "LakeBucket"}
    tls = next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "TlsOnly")
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {json.dumps(r) for r in tls["Resource"]} == {
        json.dumps({"Fn::GetAtt": ["LakeBucket", "Arn"]}),
        json.dumps({"Fn::Sub": "${LakeBucket.Arn}/*"}),
    }


def test_raw_logs_and_quarantine_expire_after_their_parameters(template):
    rules = template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "Prefix" in r}

    assert expiring["raw/"] == {"Ref": "RawLogRetentionDays"}
    assert expiring[layout.QUARANTINE] == {"Ref": "QuarantineRetentionDays"}
    assert layout.RAW_INCOMING.startswith("raw/") and layout.RAW_HISTORY.startswith("raw/")
    for name in ("RawLogRetentionDays", "QuarantineRetentionDays"):
        assert template["Parameters"][name]["Type"] == "Number"


def test_only_raw_incoming_notifies_and_the_function_writes_elsewhere(template):
    (notification,) = template["Resources"]["LakeBucket"]["Properties"][
        "NotificationConfiguration"
    ]["QueueConfigurations"]
    (prefix,) = notification["Filter"]["S3Key"]["Rules"]

    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert prefix == {"Name": "prefix", "Value": layout.RAW_INCOMING}
    # The function can write only under its output prefixes, none of which notifies.
    role = template["Resources"]["IngestFunctionRole"]["Properties"]["Policies"][0]
    (writes,) = [s for s in role["PolicyDocument"]["Statement"] if s["Sid"] == "WriteItsOutputs"]
    written = {_sub(r, **{"LakeBucket.Arn": ""}).lstrip("/") for r in writes["Resource"]}
    assert written == {f"{p}*" for p in layout.OUTPUT_PREFIXES}
    assert not any(w.startswith(layout.RAW_INCOMING) for w in written)


def test_s3_may_send_to_the_queue_only_from_the_lake_bucket(template):
    policy = template["Resources"]["IngestQueuePolicy"]["Properties"]["PolicyDocument"]
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    bucket_name = template["Resources"]["LakeBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source = allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"


def test_the_function_is_arm64_python_312_with_the_layer_and_bounded_concurrency(template):
    function = template["Resources"]["IngestFunction"]["Properties"]
    runtime = function["Runtime"]

    assert runtime.startswith("python3.") and int(runtime.split(".")[1]) >= 12
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "lambda_ingest.handler.lambda_handler"
    (layer,) = function["Layers"]
    condition, managed, given = layer["Fn::If"]
    assert given == {"Ref": "PyarrowLayerArn"}
    assert "layer:AWSSDKPandas-Python312-Arm64:" in managed["Fn::Sub"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "PyarrowLayerArn"}, ""]}
    assert function["ReservedConcurrentExecutions"] == {"Ref": "IngestReservedConcurrency"}
    event = function["Events"]["IngestQueue"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    window = event["Properties"]["MaximumBatchingWindowInSeconds"]
    assert window == {"Ref": "IngestBatchingWindowSeconds"}
    queue = template["Resources"]["IngestQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert function["Environment"]["Variables"]["LAKE_BUCKET"] == {"Ref": "LakeBucket"}
    assert function["Environment"]["Variables"]["GLUE_DATABASE"] == {"Ref": "GlueDatabaseName"}


def test_the_athena_workgroup_enforces_encryption_and_a_scan_limit(template):
    config = template["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]

    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    encryption = config["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_KMS"


def test_the_alarms_watch_the_queues_and_the_function_and_page_the_alert_topic(template):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    watched = {
        (
            a["Properties"]["MetricName"],
            json.dumps(a["Properties"]["Dimensions"][0]["Value"]),
        )
        for a in alarms.values()
    }

    assert watched == {
        (
            "ApproximateNumberOfMessagesVisible",
            json.dumps({"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}),
        ),
        ("ApproximateAgeOfOldestMessage", json.dumps({"Fn::GetAtt": ["IngestQueue", "QueueName"]})),
        ("Errors", json.dumps({"Ref": "IngestFunction"})),
        ("Throttles", json.dumps({"Ref": "IngestFunction"})),
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_quicksight_has_a_data_set_per_view_reading_that_views_sql(template):
    data_sets = resources_of(template, "AWS::QuickSight::DataSet")
    by_view = {d["Properties"]["Name"]: d["Properties"] for d in data_sets.values()}

    assert set(by_view) == set(views.view_names())
    lake_tables = {*schema.TABLES, QUARANTINE_TABLE}
    for view, data_set in by_view.items():
        (table,) = data_set["PhysicalTableMap"].values()
        sql = _sub(table["CustomSql"]["SqlQuery"], GlueDatabaseName="supermarket_lake")
        # The same statement as the view's file, with the lake's tables named by database.
        unqualified = sqlglot.parse_one(sql, read="athena")
        for node in unqualified.find_all(sqlglot.exp.Table):
            if node.db == "supermarket_lake":
                node.set("db", None)
        original = sqlglot.parse_one(views.athena_sql(view), read="athena")
        assert unqualified.sql("athena") == original.sql("athena")
        referenced = {t.name for t in unqualified.find_all(sqlglot.exp.Table)} & lake_tables
        assert referenced, view
        assert table["CustomSql"]["Columns"], view
        assert table["CustomSql"]["DataSourceArn"] == {
            "Fn::GetAtt": ["QuickSightDataSource", "Arn"]
        }


def test_the_dagster_tasks_supply_every_variable_the_production_profile_reads(template):
    definitions = {
        name: template["Resources"][name]["Properties"]
        for name in ("DagsterTaskDefinition", "DagsterRunTaskDefinition")
    }
    containers = {c["Name"]: c for d in definitions.values() for c in d["ContainerDefinitions"]}

    assert set(containers) == {"webserver", "daemon", RUN_CONTAINER}
    for container in containers.values():
        supplied = {e["Name"] for e in container["Environment"]} | {
            s["Name"] for s in container["Secrets"]
        }
        assert set(PRODUCTION_ENVIRONMENT) <= supplied
    family = definitions["DagsterRunTaskDefinition"]["Family"]["Fn::Sub"]
    run_env = {e["Name"]: e["Value"] for e in containers[RUN_CONTAINER]["Environment"]}
    assert run_env["DAGSTER_RUN_TASK_DEFINITION"] == {"Fn::Sub": family}
    # Every container loads the definitions: the same fixed first day and days per run.
    for container in containers.values():
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env[HISTORY_START_VARIABLE] == {"Ref": "HistoryStart"}
        assert env[DAYS_PER_RUN_VARIABLE] == {"Ref": "HistoryDaysPerRun"}
    assert "Default" not in template["Parameters"]["HistoryStart"]  # never the moving default
    assert definitions["DagsterRunTaskDefinition"]["Cpu"] == "2048"  # two sources at once
    # The daemon polls for backfills every few seconds, as locally, not Dagster's fixed 30 s.
    assert containers["daemon"]["Command"] == [
        "python", "-m", "supermarket_cli.dagster_daemon", "run", "-w", "workspace.yaml"
    ]  # fmt: skip


def test_every_python_process_of_the_template_goes_without_pandas(template):
    # pyarrow imports pandas in each process that builds an array from Python objects
    function = template["Resources"]["IngestFunction"]["Properties"]
    assert function["Environment"]["Variables"][WITHOUT_PANDAS_VARIABLE] == "1"
    containers = [
        container
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
        for container in resource["Properties"]["ContainerDefinitions"]
    ]
    assert {c["Name"] for c in containers} == {"webserver", "daemon", RUN_CONTAINER,
                                               "payment-processor"}  # fmt: skip
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env.get(WITHOUT_PANDAS_VARIABLE) == "1", container["Name"]


def test_dagsters_database_is_private_encrypted_and_keeps_its_password_in_secrets_manager(
    template,
):
    # moto cannot create it (test_moto_deploy.MOTO_CANNOT): proven here instead.
    database = template["Resources"]["DagsterDatabase"]

    properties = database["Properties"]
    assert (properties["Engine"], properties["PubliclyAccessible"]) == ("postgres", False)
    assert properties["StorageEncrypted"] is True
    assert properties["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in properties
    assert properties["DeletionProtection"] is True and properties["MultiAZ"] is True
    assert int(properties["EngineVersion"].split(".")[0]) >= 15  # rds.force_ssl on by default
    assert database["DeletionPolicy"] == "Snapshot"
    ingress = template["Resources"]["DatabaseSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert {rule["SourceSecurityGroupId"]["Ref"] for rule in ingress} == {
        "DagsterSecurityGroup",
        "TaskSecurityGroup",
    }
    assert not [rule for rule in ingress if "CidrIp" in rule]


def test_the_services_run_on_fargate_in_private_subnets_and_one_daemon_at_a_time(template):
    services = resources_of(template, "AWS::ECS::Service")

    assert set(services) == {"PaymentProcessorService", "DagsterService"}
    for service in services.values():
        properties = service["Properties"]
        assert properties["LaunchType"] == "FARGATE"
        network = properties["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert network["Subnets"] == {"Ref": "PrivateSubnetIds"}
    deployment = services["DagsterService"]["Properties"]["DeploymentConfiguration"]
    assert deployment["MaximumPercent"] == 100
    for definition in resources_of(template, "AWS::ECS::TaskDefinition").values():
        assert definition["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
        for container in definition["Properties"]["ContainerDefinitions"]:
            assert container["ReadonlyRootFilesystem"] is True
