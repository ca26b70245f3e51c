"""The template as written (SAM) and as CloudFormation receives it (translated by
aws-sam-translator in the infra tools' environment, .tools/infra, which scripts/test.sh builds)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from supermarket_infra.template import TEMPLATE

REPO_ROOT = TEMPLATE.parent.parent
TOOLS = REPO_ROOT / ".tools" / "infra" / "bin"
CODE_URI = "s3://supermarket-deploy/ingest.zip"


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run bash scripts/tools.sh (scripts/test.sh does)")
    return str(path)


def _plain(value):
    """cfn-lint's nodes as plain dicts and lists, so equality and json work as usual."""
    return json.loads(json.dumps(value))


@pytest.fixture(scope="session")
def template() -> dict:
    return _plain(cfn_yaml.load(str(TEMPLATE)))


@pytest.fixture(scope="session")
def translated(tmp_path_factory) -> dict:
    done = subprocess.run(
        [
            tool("python"),
            str(TEMPLATE.parent / "tools" / "sam_translate.py"),
            str(TEMPLATE),
            "--code-uri",
            CODE_URI,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def translated_file(translated, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("translated") / "template.json"
    path.write_text(json.dumps(translated))
    return path


def resources_of(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}
