"""The price table and its overrides; the deployment as read from the template."""

import json

import pytest

from supermarket_cost.deployment import TEMPLATE, load_deployment
from supermarket_cost.model import Workload, estimate
from supermarket_cost.prices import DEFAULT_PRICES, load_prices
from tests.supermarket_cost.test_model import DEPLOYMENT, INPUTS, WORKLOAD


def _monthly(prices, service, item):
    design = estimate(INPUTS, DEPLOYMENT, WORKLOAD, prices).design
    (line,) = [x for x in design.lines if x.service == service and x.item.startswith(item)]
    return line.monthly


def test_a_prices_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"s3_put_per_1000": 0.01, "rds_instance_hour": {"db.t4g.small": 1}}))
    prices = load_prices(path)
    assert prices.s3_put_per_1000 == 0.01
    assert prices.s3_get_per_1000 == DEFAULT_PRICES.s3_get_per_1000
    assert (
        prices.rds_instance_hour["db.t4g.micro"] == DEFAULT_PRICES.rds_instance_hour["db.t4g.micro"]
    )
    # twice the PUT price doubles the PUT line; the database is priced by its class
    assert _monthly(prices, "S3", "PUT: the raw logs") == pytest.approx(
        2 * _monthly(DEFAULT_PRICES, "S3", "PUT: the raw logs"))  # fmt: skip
    assert _monthly(prices, "RDS", "Dagster's Postgres") == pytest.approx(730 * 2 * 1)
    assert load_prices(None) is DEFAULT_PRICES


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"s3_put_per_10000": 1}', "unknown price 's3_put_per_10000'"),
        ('{"s3_put_per_1000": "cheap"}', "must be a number"),
        ('{"s3_put_per_1000": -1}', "must be a number >= 0"),
        ('{"s3_put_per_1000": true}', "must be a number"),
        ('{"rds_instance_hour": 3}', "must map a class"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_prices_file_is_a_clear_error(tmp_path, body, message):
    path = tmp_path / "prices.json"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        load_prices(path)


def test_a_database_class_without_a_price_names_what_to_add():
    other = DEPLOYMENT.__class__(**{**DEPLOYMENT.__dict__, "database_class": "db.r7g.large"})
    with pytest.raises(ValueError, match=r"db\.r7g\.large.*rds_instance_hour"):
        estimate(INPUTS, other, Workload(1000), DEFAULT_PRICES)


def test_the_deployment_is_read_from_the_template_itself(tmp_path):
    deployed = load_deployment()
    text = TEMPLATE.read_text()
    # the same template with the function's memory and the run task's size changed
    changed = text.replace("      MemorySize: 2048\n", "      MemorySize: 1024\n", 1)
    assert changed != text, "the template's MemorySize moved: update this test"
    path = tmp_path / "template.yaml"
    path.write_text(changed)
    assert load_deployment(path).lambda_memory_mb == 1024
    assert deployed.lambda_memory_mb == 2048
    # parameters resolve to their defaults; resources are counted as declared
    assert deployed.batch_size == int(_parameter(text, "IngestBatchSize"))
    assert deployed.alarms == text.count("Type: AWS::CloudWatch::Alarm")
    assert deployed.noncurrent_retention_days == float(
        _parameter(text, "NoncurrentVersionRetentionDays"))  # fmt: skip


def _parameter(text, name):
    block = text.split(f"\n  {name}:\n", 1)[1]
    return block.split("Default:", 1)[1].split("\n", 1)[0].strip()


def test_a_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no template"):
        load_deployment(tmp_path / "none.yaml")
