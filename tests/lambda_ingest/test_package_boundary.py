"""The Lambda package (lambda_ingest with the lake contract it ships with) imports only the
standard library, boto3, pyarrow and pyiceberg; the contract imports nothing else of ours. The
boundary is supermarket_infra.lambda_package's, the one package-lambda checks."""

from supermarket_infra import lambda_package


def test_lambda_ingest_and_the_contract_import_only_what_the_boundary_allows():
    assert lambda_package.boundary_violations() == {}


def test_the_scan_reports_an_import_outside_the_boundary(tmp_path):
    package = tmp_path / "leaky"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import json\nimport pandas as pd\nfrom dagster import asset\n"
    )

    assert lambda_package.third_party_imports(package) == {"pandas", "dagster"}
