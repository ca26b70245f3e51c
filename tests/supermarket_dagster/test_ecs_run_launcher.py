"""The production profile's EcsRunLauncher against moto's ECS: a history backfill run over a
range of days is launched as one ECS task of the template's run task definition.

moto records the RunTask call and the task it describes, but runs no container: what is
proved is what the launcher asks ECS for (task definition, container, command, image,
environment, network), not that a run executes in a task. The daemon's own task, which the
profile copies cluster and networking from (use_current_ecs_task_config), is a task moto
records too, and its metadata endpoint (ECS_CONTAINER_METADATA_URI_V4) a loopback server here.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import dagster as dg
import pytest
from dagster._core.test_utils import in_process_test_workspace, instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value

from supermarket_cli.dagster_instance import (
    REPO_ROOT,
    RUN_CONTAINER,
    production_instance_config,
)
from supermarket_dagster.definitions import defs
from supermarket_infra.template import DAGSTER_ENVIRONMENT, dagster_task_definitions
from tests.moto_server import running_moto

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/supermarket-lake:test"
RUN_FAMILY = "supermarket-dagster-run"
RANGE = ("2026-03-01", "2026-03-07")


def _plain_environment() -> list[dict[str, str]]:
    """The template's Dagster environment with its CloudFormation references made concrete."""
    concrete = {k: v for k, v in DAGSTER_ENVIRONMENT.items() if isinstance(v, str)}
    concrete |= {"LAKE_BUCKET": "lake", "DAGSTER_RUN_TASK_DEFINITION": RUN_FAMILY}
    return [{"name": k, "value": v} for k, v in concrete.items()]


def _container_definitions(template: dict) -> list[dict]:
    """The template's containers (CloudFormation's PascalCase) as the ECS API takes them; each
    with the task's memory too, which moto sums per container even on Fargate."""
    memory = int(template["Properties"]["Memory"])
    return [
        {"name": c["Name"], "image": IMAGE, "essential": True, "memory": memory,
         "environment": _plain_environment(), **({"command": c["Command"]} if "Command" in c
                                                  else {})}
        for c in template["Properties"]["ContainerDefinitions"]
    ]  # fmt: skip


def _register(ecs, family: str, template: dict) -> str:
    properties = template["Properties"]
    return ecs.register_task_definition(
        family=family,
        requiresCompatibilities=properties["RequiresCompatibilities"],
        networkMode=properties["NetworkMode"],
        cpu=properties["Cpu"],
        memory=properties["Memory"],
        containerDefinitions=_container_definitions(template),
    )["taskDefinition"]["taskDefinitionArn"]


class _TaskMetadata(BaseHTTPRequestHandler):
    """ECS's task metadata endpoint (v4) for the daemon's task: /task -> Cluster, TaskARN."""

    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200 if self.path.endswith("/task") else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def daemon_task(monkeypatch):
    """moto's ECS with a cluster, the template's two Dagster task definitions, the daemon's
    task running in a subnet and security group, and its metadata endpoint."""
    with running_moto(monkeypatch):
        ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto 5.2.5 names a task's network interface only in a VPC with DNS hostnames on.
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="dagster", Description="d", VpcId=vpc)
        cluster = ecs.create_cluster(clusterName="supermarket")["cluster"]["clusterArn"]
        definitions = dagster_task_definitions()
        _register(ecs, "supermarket-dagster", definitions["DagsterTaskDefinition"])
        _register(ecs, RUN_FAMILY, definitions["DagsterRunTaskDefinition"])
        network = {"awsvpcConfiguration": {"subnets": [subnet], "assignPublicIp": "DISABLED",
                                           "securityGroups": [group["GroupId"]]}}  # fmt: skip
        daemon = ecs.run_task(cluster=cluster, taskDefinition="supermarket-dagster",
                              launchType="FARGATE",
                              networkConfiguration=network)["tasks"][0]  # fmt: skip
        _TaskMetadata.body = json.dumps({"Cluster": cluster, "TaskARN": daemon["taskArn"]}).encode()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _TaskMetadata)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv(
            "ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{server.server_port}"
        )
        # As in the daemon's task: what the profile and the resources read.
        monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", RUN_FAMILY)
        monkeypatch.setenv("LAKE_BUCKET", "lake")
        monkeypatch.setenv("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:alerts")
        try:
            yield ecs, cluster, subnet, group["GroupId"]
        finally:
            server.shutdown()


def test_a_backfill_range_run_is_launched_as_one_task_of_the_run_task_definition(daemon_task):
    ecs, cluster, subnet, _ = daemon_task
    launcher = production_instance_config()["run_launcher"]  # the profile's, unchanged
    origin = LoadableTargetOrigin(
        module_name="supermarket_dagster.definitions",
        working_directory=str(REPO_ROOT),
        executable_path=sys.executable,
    )
    with (
        instance_for_test(overrides={"run_launcher": launcher}) as instance,
        in_process_test_workspace(instance, origin, container_image=IMAGE) as workspace,
    ):
        location = workspace.get_code_location(workspace.code_location_names[0])
        remote_job = location.get_repository("__repository__").get_full_job("__ASSET_JOB")
        # Given a run of the history backfill over a week, as the backfill daemon makes it.
        run = instance.create_run_for_job(
            job_def=defs.resolve_implicit_global_asset_job_def(),
            asset_selection=frozenset(
                dg.AssetKey(t) for t in ("transactions", "transaction_items")
            ),
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            tags={
                "dagster/asset_partition_range_start": RANGE[0],
                "dagster/asset_partition_range_end": RANGE[1],
            },
        )
        # When the daemon's run queue launches it.
        instance.launch_run(run.run_id, workspace)
        launched = instance.get_run_by_id(run.run_id)

    # Then ECS was asked for one task of the template's run task definition, in the daemon's
    # cluster, subnet and security group.
    arns = ecs.list_tasks(cluster=cluster, family=RUN_FAMILY)["taskArns"]
    assert len(arns) == 1
    (task,) = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    assert task["taskDefinitionArn"].split("/")[-1].startswith(f"{RUN_FAMILY}:")
    assert task["launchType"] == "FARGATE"
    assert launched.tags["ecs/task_arn"] == task["taskArn"]
    (override,) = task["overrides"]["containerOverrides"]
    assert override["name"] == RUN_CONTAINER
    # The command is the run worker's, for exactly this run (the range travels in its tags).
    command = override["command"]
    assert command[:3] == ["dagster", "api", "execute_run"]
    args = deserialize_value(command[3], ExecuteRunArgs)
    assert args.run_id == run.run_id
    assert args.job_origin.job_name == "__ASSET_JOB"
    assert (
        args.job_origin.repository_origin.code_pointer.module == "supermarket_dagster.definitions"
    )
    assert launched.tags["dagster/asset_partition_range_end"] == RANGE[1]
    # The image and the environment are the run task definition's: the project's image, and
    # what the profile and the code read (the instance from DAGSTER_HOME, the lake's bucket).
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    (container,) = definition["taskDefinition"]["containerDefinitions"]
    assert container["name"] == RUN_CONTAINER and container["image"] == IMAGE
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["DAGSTER_HOME"] == DAGSTER_ENVIRONMENT["DAGSTER_HOME"]
    assert environment["DAGSTER_RUN_TASK_DEFINITION"] == RUN_FAMILY
    assert environment["LAKE_BUCKET"] == "lake"
    attachments = {d["name"]: d["value"] for a in task.get("attachments", [])
                   for d in a["details"]}  # fmt: skip
    assert attachments.get("subnetId") == subnet
