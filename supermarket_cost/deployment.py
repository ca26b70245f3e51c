"""What is deployed, as the cost model needs it, read from infra/template.yaml itself: memory
sizes, task sizes, the queue's batching, retention, alarms. Nothing here is a second copy of the
template's numbers."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub ...) read as {"Ref": value} etc."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _tagged)


@dataclass(frozen=True)
class EcsTask:
    vcpu: float
    memory_gb: float


@dataclass(frozen=True)
class Deployment:
    lambda_memory_mb: int
    lambda_architecture: str
    lambda_tracing: bool
    batch_size: int  # SQS messages per invocation
    batching_window_seconds: float
    dagster_service: EcsTask  # webserver and daemon, always on
    dagster_service_count: int
    dagster_run: EcsTask  # one task per run (EcsRunLauncher)
    feed: EcsTask  # the simulated payment processor
    database_class: str
    database_multi_az: bool
    database_storage_gb: float
    alarms: int
    kms_keys: int
    raw_retention_days: float
    noncurrent_retention_days: float
    access_log_retention_days: float
    log_retention_days: float


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _value(template: dict[str, Any], value: Any) -> Any:
    """A property as deployed with the parameters' defaults."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template["Parameters"].get(value["Ref"])
        if parameter is None or "Default" not in parameter:
            raise ValueError(f"template: {value['Ref']} has no default to cost")
        return parameter["Default"]
    return value


def _task(template: dict[str, Any], name: str) -> EcsTask:
    properties = template["Resources"][name]["Properties"]
    return EcsTask(
        vcpu=int(_value(template, properties["Cpu"])) / 1024,
        memory_gb=int(_value(template, properties["Memory"])) / 1024,
    )


def _lifecycle_days(rules: list[dict[str, Any]], template: dict[str, Any], rule_id: str) -> float:
    for rule in rules:
        if rule["Id"] == rule_id:
            days = rule.get("ExpirationInDays")
            if days is None:
                days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            return float(_value(template, days))
    raise ValueError(f"template: no lifecycle rule {rule_id!r}")


def load_deployment(path: Path = TEMPLATE) -> Deployment:
    """The deployment the template describes, with every parameter at its default."""
    if not path.is_file():
        raise FileNotFoundError(f"no template at {path}")
    template = yaml.load(path.read_text(), Loader=_CloudFormationLoader)
    function = template["Resources"]["IngestFunction"]["Properties"]
    (source,) = function["Events"].values()
    lake_rules = template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]
    log_rules = template["Resources"]["AccessLogBucket"]["Properties"]["LifecycleConfiguration"]
    database = template["Resources"]["DagsterDatabase"]["Properties"]
    retention = {
        float(group["Properties"]["RetentionInDays"])
        for group in _resources(template, "AWS::Logs::LogGroup").values()
    }
    return Deployment(
        lambda_memory_mb=int(_value(template, function["MemorySize"])),
        lambda_architecture=function["Architectures"][0],
        lambda_tracing=function.get("Tracing") == "Active",
        batch_size=int(_value(template, source["Properties"]["BatchSize"])),
        batching_window_seconds=float(
            _value(template, source["Properties"]["MaximumBatchingWindowInSeconds"])
        ),
        dagster_service=_task(template, "DagsterTaskDefinition"),
        dagster_service_count=int(
            template["Resources"]["DagsterService"]["Properties"]["DesiredCount"]
        ),
        dagster_run=_task(template, "DagsterRunTaskDefinition"),
        feed=_task(template, "PaymentProcessorTaskDefinition"),
        database_class=str(_value(template, database["DBInstanceClass"])),
        database_multi_az=bool(database.get("MultiAZ", False)),
        database_storage_gb=float(database["AllocatedStorage"]),
        alarms=len(_resources(template, "AWS::CloudWatch::Alarm")),
        kms_keys=len(_resources(template, "AWS::KMS::Key")),
        raw_retention_days=_lifecycle_days(lake_rules["Rules"], template, "expire-raw-logs"),
        noncurrent_retention_days=_lifecycle_days(
            lake_rules["Rules"], template, "expire-old-versions"
        ),
        access_log_retention_days=_lifecycle_days(
            log_rules["Rules"], template, "expire-access-logs"
        ),
        log_retention_days=max(retention),
    )
