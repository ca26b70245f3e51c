"""The Lambda package (lambda_ingest with the lake contract it ships with) imports only the
standard library, boto3, pyarrow and pyiceberg; the contract imports nothing else of ours."""

import ast
import sys
from pathlib import Path

import lake_contract
import lambda_ingest

# pyiceberg writes the Iceberg tables; it is deployed in the Lambda package with its dependencies.
THIRD_PARTY = {"boto3", "botocore", "pyarrow", "pyiceberg"}


def _imports(package) -> set[str]:
    imported = set()
    for source in Path(package.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported, f"no imports found in {package.__name__}: the scan is broken"
    return imported - set(sys.stdlib_module_names)


def test_lambda_ingest_imports_only_stdlib_boto3_pyarrow_pyiceberg_and_the_contract():
    assert _imports(lambda_ingest) <= THIRD_PARTY | {"lambda_ingest", "lake_contract"}


def test_the_contract_imports_nothing_of_ours():
    assert _imports(lake_contract) <= THIRD_PARTY | {"lake_contract"}
