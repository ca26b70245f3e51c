import gzip
import json
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lake_contract import money
from simulator import catalog
from simulator.history import HistoryOptions, generate_history, history_key, plan_files
from simulator.reference import generate_skus

ROOT = Path(__file__).resolve().parents[2]


def _options(tmp_path, **changes):
    base = {
        "location": str(tmp_path),
        "transactions": 3_000,
        "start": date(2026, 3, 1),
        "end": date(2026, 3, 3),
        "seed": 5,
        "skus": 800,
        "file_transactions": 600,
    }
    return HistoryOptions(**{**base, **changes})


def _generate(options):
    return list(generate_history(options))


def _records(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.rglob("*.ndjson*")):
        data = path.read_bytes()
        text = gzip.decompress(data) if path.name.endswith(".gz") else data
        records += [json.loads(line) for line in text.splitlines()]
    return records


def test_files_land_under_raw_history_by_day_and_hold_every_transaction(tmp_path):
    options = _options(tmp_path)

    written = _generate(options)

    assert sum(f.transactions for f, _ in written) == 3_000
    folders = {p.parent.name for p in tmp_path.rglob("*.ndjson")}
    assert folders == {"dt=2026-03-01", "dt=2026-03-02", "dt=2026-03-03"}
    assert all(f.transactions <= 600 for f, _ in written)
    assert len(_records(tmp_path)) == 3_000


def test_transactions_fall_on_their_files_day_in_store_hours(tmp_path):
    _generate(_options(tmp_path))

    open_hours = {h for h, share in enumerate(catalog.HOURLY_TRAFFIC) if share}
    for path in tmp_path.rglob("*.ndjson"):
        day = path.parent.name.removeprefix("dt=")
        for line in path.read_text().splitlines():
            stamp = json.loads(line)["transaction_datetime"]
            assert stamp.startswith(day) and stamp.endswith("Z")
            assert datetime.fromisoformat(stamp).hour in open_hours


def test_baskets_look_like_a_supermarkets(tmp_path):
    _generate(_options(tmp_path, transactions=5_000))
    records = _records(tmp_path)

    sizes = [len(r["items"]) for r in records]
    assert 4.5 < sum(sizes) / len(sizes) < 7.5
    assert min(sizes) == 1 and max(sizes) > 15
    payments = Counter(r["payment_method"] for r in records)
    assert set(payments) == set(catalog.PAYMENT_METHODS)
    assert payments.most_common(1)[0][0] == "credit_card"
    stores = Counter(r["store_id"] for r in records)
    assert len(stores) == 5 and max(stores.values()) > 1.3 * min(stores.values())


def test_unit_prices_are_the_skus_shelf_prices(tmp_path):
    _generate(_options(tmp_path))
    skus = generate_skus(800, seed=5)
    price = dict(
        zip(skus["sku_id"].to_pylist(), money.to_cents(skus["price"]).to_pylist(), strict=True)
    )

    for record in _records(tmp_path):
        for item in record["items"]:
            assert round(item["unit_price"] * 100) == price[item["sku_id"]]


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    _generate(_options(tmp_path / "one", workers=1))
    _generate(_options(tmp_path / "two", workers=2))
    _generate(_options(tmp_path / "other", seed=6))

    def files(folder):
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.ndjson")}

    assert files(tmp_path / "one") == files(tmp_path / "two")
    other = files(tmp_path / "other")
    assert set(other) != set(files(tmp_path / "one"))  # file names carry the seed


def test_ids_are_unique_across_producers_running_at_once(tmp_path):
    # Three independent processes writing into the same folder at the same time.
    producers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "supermarket_cli.main", "generate", "history"),
                *("--out", str(tmp_path), "--seed", str(seed), "--transactions", "2000"),
                *("--start", "2026-03-01", "--end", "2026-03-02", "--skus", "300"),
                *("--file-transactions", "500", "--workers", "2"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        for seed in (1, 2, 3)
    ]
    assert [p.wait(timeout=120) for p in producers] == [0, 0, 0]

    ids = [r["transaction_id"] for r in _records(tmp_path)]
    assert len(ids) == 6_000
    assert len(set(ids)) == 6_000


def test_gzip_files_hold_the_same_logs(tmp_path):
    _generate(_options(tmp_path / "plain"))
    _generate(_options(tmp_path / "zipped", compress=True))

    assert {p.name.endswith(".ndjson.gz") for p in (tmp_path / "zipped").rglob("*.*")} == {True}
    assert _records(tmp_path / "zipped") == _records(tmp_path / "plain")


def test_plan_spreads_transactions_with_busier_weekends(tmp_path):
    # 2026-03-02 is a Monday; 2026-03-07/08 the weekend after it.
    options = _options(tmp_path, transactions=140_000, start=date(2026, 3, 2), end=date(2026, 3, 8))
    per_day = Counter()
    for file in plan_files(options):
        per_day[file.day] += file.transactions

    assert sum(per_day.values()) == 140_000
    assert per_day[date(2026, 3, 7)] > per_day[date(2026, 3, 3)] * 1.15


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="after end"):
        plan_files(_options(tmp_path, start=date(2026, 3, 5), end=date(2026, 3, 1)))
    with pytest.raises(ValueError, match="must not be negative"):
        plan_files(_options(tmp_path, transactions=-1))


@mock_aws
def test_an_s3_url_receives_the_same_objects(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    options = _options(tmp_path, location="s3://lake/demo", transactions=500)

    written = _generate(options)

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]}
    assert keys == {f"demo/{history_key(options, f)}" for f, _ in written}
    _generate(_options(tmp_path / "local", transactions=500))
    local = _records(tmp_path / "local")
    remote = []
    for key in sorted(keys):
        body = s3.get_object(Bucket="lake", Key=key)["Body"].read()
        remote += [json.loads(line) for line in body.splitlines()]
    assert remote == local


@mock_aws
def test_a_missing_bucket_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from supermarket_cli.main import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    code = main(["generate", "reference", "--out", "s3://no-such-bucket", "--skus", "10"])

    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("supermarket generate: AWS error:") and "NoSuchBucket" in error
