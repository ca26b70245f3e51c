"""The Lambda package imports only the standard library, boto3 and pyarrow."""

import ast
import sys
from pathlib import Path

import lambda_ingest

ALLOWED = set(sys.stdlib_module_names) | {"boto3", "botocore", "pyarrow", "lambda_ingest"}


def test_lambda_ingest_imports_only_stdlib_boto3_and_pyarrow():
    package = Path(lambda_ingest.__file__).parent
    imported = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])

    assert imported, "no imports found: the scan is broken"
    assert imported <= ALLOWED, imported - ALLOWED
