import os
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_one_definitions_loads_without_deprecation_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from supermarket_dagster.definitions import defs

        keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys >= {"supermarkets", "skus", "raw_history_logs", "transactions", "transaction_items",
                    "sku_daily_sales"}  # fmt: skip


def test_dagster_validates_the_workspace(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "LAKE_BUCKET": "validate"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
