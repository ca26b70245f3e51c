import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_one_definitions_loads_without_deprecation_warnings():
    # In a process of its own: where another test loaded them first, nothing would be warned.
    load = (
        "import warnings, dagster as dg\n"
        "warnings.simplefilter('error')\n"
        "warnings.simplefilter('ignore', dg.BetaWarning)  # backfill_policy, chosen for #14\n"
        "from supermarket_dagster.definitions import defs\n"
        "print(*(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))"
    )
    result = subprocess.run([sys.executable, "-c", load], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {
        "supermarkets", "skus", "raw_history_logs", "transactions", "transaction_items",
        "sku_daily_sales",
    }  # fmt: skip


def test_dagster_validates_the_workspace(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "LAKE_BUCKET": "validate"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
