"""supermarket package-lambda: the zip holds our two packages and the bundled dependencies
alone, and it works in a clean interpreter that has only the standard library, what the Lambda
runtime provides (boto3) and what the layer provides (pyarrow): the handler, imported from the
unpacked zip, ingests a raw log from a moto server."""

import json
import subprocess
import sys
import zipfile
from datetime import date
from importlib import metadata
from pathlib import Path

import boto3
import pytest

from lake_contract import layout, tables
from supermarket_infra import lambda_package
from tests.cloudformation_response import custom_resource_event, response_url
from tests.factories import ndjson, record
from tests.moto_server import running_moto, table_rows

BUCKET = "supermarket-lake-package"
DAY = date(2026, 3, 1)  # the day tests.factories.record sells on


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    # This machine's build (the venv's own files of the locked versions): an arm64 zip cannot
    # be imported on an x86_64 test machine, and the build is otherwise the same.
    out = tmp_path_factory.mktemp("package") / "ingest.zip"
    report = lambda_package.build(out, platform="host")
    return report


def _provided_folder(root: Path, distributions: frozenset[str]) -> Path:
    """A folder with only the given distributions' files, as the runtime or a layer has them."""
    root.mkdir()
    for name in distributions:
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        tops = {Path(str(f)).parts[0] for f in distribution.files or []}
        for top in tops - {".."}:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (root / top).exists():
                (root / top).symlink_to(source)
    return root


def test_the_zip_holds_our_packages_and_the_bundle_only(package):
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
        unzipped = sum(i.file_size for i in archive.infolist())
    tops = {n.split("/")[0] for n in names}

    assert {"lambda_ingest", "lake_contract", "pyiceberg", "pyiceberg_core"} <= tops
    assert "lambda_ingest/handler.py" in names and "lake_contract/schema.py" in names
    assert not tops & {"boto3", "botocore", "pyarrow", "numpy", "pandas", "dagster", "duckdb"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert set(package.distributions) >= {"pyiceberg", "pyiceberg-core", "pydantic"}
    assert not set(package.distributions) & lambda_package.CLI_ONLY  # pyiceberg's CLI's
    assert not tops & {"hive_metastore", "rich", "pygments", "click"}
    assert not [n for n in names if n.startswith("pyiceberg/cli/")]
    assert not set(package.distributions) & (
        lambda_package.RUNTIME_PROVIDED | lambda_package.LAYER_PROVIDED
    )
    assert unzipped == package.unzipped_bytes
    assert package.zip_bytes < package.unzipped_bytes < 150_000_000


def test_the_report_checks_the_zip_beside_the_layer_against_lambdas_limit(package):
    assert package.layer_bytes == lambda_package.ASSUMED_LAYER_BYTES
    assert package.fits == (
        package.unzipped_bytes + package.layer_bytes <= lambda_package.LAMBDA_UNZIPPED_LIMIT
    )
    small_layer = lambda_package.PackageReport(**{**package.__dict__, "layer_bytes": 1})
    huge_layer = lambda_package.PackageReport(**{**package.__dict__, "layer_bytes": 250_000_000})
    assert small_layer.fits and not huge_layer.fits
    assert "DOES NOT FIT" in huge_layer.summary()


# Run in the clean interpreter: python -S (no site-packages at all), then only the unpacked
# zip, the runtime's folder and the layer's folder on sys.path.
_CLEAN = """
import json, sys
sys.path[:0] = {paths!r}
import pyiceberg.catalog.glue, pyiceberg.io.pyarrow, pyiceberg.table, pyiceberg_core
from lambda_ingest.handler import lambda_handler
from lambda_ingest.table_setup import on_deploy
setup = on_deploy(json.loads(sys.argv[2]), None)  # what CloudFormation asks on deploy first
event = json.loads(sys.argv[1])
result = lambda_handler(event, None)
allowed = tuple({paths!r}) + (sys.base_prefix,)
strays = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
print(json.dumps({{"setup": setup["Status"], "result": result, "strays": strays}}))
"""


def test_the_zip_runs_the_handler_in_a_clean_interpreter(package, tmp_path, monkeypatch):
    code = tmp_path / "task"  # what Lambda unpacks into /var/task
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(code)
    runtime = _provided_folder(tmp_path / "runtime", lambda_package.RUNTIME_PROVIDED)
    layer = _provided_folder(tmp_path / "layer", lambda_package.LAYER_PROVIDED)
    paths = [str(code), str(layer), str(runtime)]

    with running_moto(monkeypatch) as endpoint, response_url() as (url, answers):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("glue").create_database(DatabaseInput={"Name": tables.DEFAULT_DATABASE})
        setup = custom_resource_event(
            "Create", url, Bucket=BUCKET, Database=tables.DEFAULT_DATABASE
        )
        key = f"{layout.day_prefix(layout.RAW_INCOMING, DAY)}feed-1.ndjson"
        s3.put_object(Bucket=BUCKET, Key=key, Body=ndjson(record("T-1"), record("T-2"), "{"))
        event = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-03-01T10:00:00.000Z",
                    "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}},
                }
            ]
        }
        done = subprocess.run(
            [
                sys.executable,
                "-S",
                "-c",
                _CLEAN.format(paths=paths),
                json.dumps(event),
                json.dumps(setup),
            ],
            capture_output=True,
            text=True,
            env={
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "PATH": "/usr/bin:/bin",
            },
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outcome = json.loads(done.stdout.splitlines()[-1])
        written = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
        landed = table_rows("transactions").column("transaction_id").to_pylist()

    assert outcome["strays"] == []
    assert outcome["setup"] == "SUCCESS" and [a["Status"] for a in answers] == ["SUCCESS"]
    assert sorted(landed) == ["T-1", "T-2"]
    assert layout.quarantine_key(key) in written  # the broken third line, with its reason
    assert any(k.startswith(layout.AUDIT) for k in written)
