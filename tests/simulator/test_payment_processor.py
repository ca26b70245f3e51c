import contextlib
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lake_contract import money
from lambda_ingest.transform import transform
from simulator.payment_processor import FeedOptions, PaymentProcessor
from simulator.reference import generate_skus
from supermarket_cli.processes import TimedOut, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _processor(tmp_path, **changes):
    return PaymentProcessor(FeedOptions(location=str(tmp_path), skus=500, **changes))


def _logs(folder):
    return sorted(folder.rglob("*.ndjson"))


def test_concurrent_processors_never_clash_and_write_valid_logs(tmp_path):
    processors = [_processor(tmp_path, transactions_per_second=200) for _ in range(3)]
    threads = [threading.Thread(target=lambda p=p: [p.write_file() for _ in range(15)])
               for p in processors]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    logs = _logs(tmp_path)
    assert len(logs) == 45
    ids = []
    for log in logs:
        result = transform(log.read_bytes(), str(log))
        assert result.rejects == []
        ids += result.transactions["transaction_id"].to_pylist()
    assert len(ids) == sum(p.stats.transactions for p in processors)
    assert len(set(ids)) == len(ids)


def test_files_land_in_todays_incoming_folder_with_current_timestamps(tmp_path):
    processor = _processor(tmp_path)

    key = processor.write_file()

    today = datetime.now(UTC).date()
    assert key.startswith(f"raw/incoming/dt={today.isoformat()}/{processor.producer_id}-")
    result = transform((tmp_path / key).read_bytes(), key)
    newest = max(result.transactions["transaction_datetime"].to_pylist())
    assert abs((datetime.now(UTC) - newest).total_seconds()) < 5


def test_prices_are_the_lakes_sku_prices(tmp_path):
    processor = _processor(tmp_path, seed=3)
    key = processor.write_file()
    skus = generate_skus(500, seed=3)
    price = dict(zip(skus["sku_id"].to_pylist(), money.to_cents(skus["price"]).to_pylist(),
                     strict=True))  # fmt: skip

    items = transform((tmp_path / key).read_bytes(), key).transaction_items
    sold = zip(items["sku_id"].to_pylist(), money.to_cents(items["unit_price"]).to_pylist(),
               strict=True)  # fmt: skip
    assert all(price[sku] == unit_price for sku, unit_price in sold)


def test_run_writes_on_schedule_until_stopped(tmp_path):
    processor = _processor(tmp_path, files_per_second=20, transactions_per_second=100)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()

    stats = processor.run(stop)

    assert 12 <= stats.files <= 24  # ~20 in one second; loose, the machine may be busy
    assert len(_logs(tmp_path)) == stats.files


@pytest.mark.parametrize("rate", [0, -1])
def test_rates_must_be_positive(tmp_path, rate):
    with pytest.raises(ValueError, match="positive"):
        _processor(tmp_path, files_per_second=rate)


def test_the_process_stops_cleanly_on_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "supermarket_cli.main", "payment-processor",
         "--out", str(tmp_path), "--fps", "10", "--skus", "300", "--producer-id", "feedA"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with contextlib.suppress(TimedOut):  # the assertions below say what is missing
        wait_until(lambda: len(_logs(tmp_path)) >= 3, timeout=20, interval=0.05)

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)

    assert process.returncode == 0, err
    files = int(out.split("stopped: ")[1].split(" files")[0])
    assert files == len(_logs(tmp_path)) >= 3
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing half-written


def test_a_failing_sink_is_reported_and_the_feed_carries_on(tmp_path, monkeypatch):
    processor = _processor(tmp_path, files_per_second=50)
    real_put, calls = processor._sink.put, []

    def flaky_put(key, data):
        calls.append(key)
        if len(calls) == 1:
            raise ConnectionError("S3 is away")
        real_put(key, data)

    monkeypatch.setattr(processor._sink, "put", flaky_put)
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()

    stats = processor.run(stop)

    assert stats.files >= 1 and len(_logs(tmp_path)) == stats.files
    ids = [transform(p.read_bytes(), str(p)).transactions["transaction_id"].to_pylist()
           for p in _logs(tmp_path)]  # fmt: skip
    first = ids[0][0]
    assert first.endswith("-0000000000")  # the failed file's ids were not spent
