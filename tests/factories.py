"""Valid log records to start from; tests break them on purpose."""

import copy
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lake_contract.audit import AuditRecord

GOOD: dict[str, Any] = {
    "transaction_id": "T-1",
    "store_id": "STORE0001",
    "transaction_datetime": "2026-03-01T10:15:30.250Z",
    "payment_method": "credit_card",
    "items": [
        {"sku_id": "SKU00001", "quantity": 2, "unit_price": 3.49},
        {"sku_id": "SKU00002", "quantity": 1, "unit_price": 10},
    ],
}


def record(transaction_id: str = "T-1", **changes: Any) -> dict[str, Any]:
    """GOOD with a new id and top-level fields replaced."""
    result = copy.deepcopy(GOOD)
    result["transaction_id"] = transaction_id
    result.update(changes)
    return result


def ndjson(*records: dict[str, Any] | str) -> bytes:
    """Records as log lines; a str is written as the raw line itself."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def audit(source_key: str, records_read: int, **changes: Any) -> AuditRecord:
    """An audit record of a clean ingestion of `records_read` one-line transactions."""
    fields: dict[str, Any] = {
        "source_bucket": "lake",
        "source_key": source_key,
        "size_bytes": 1,
        "event_time": None,
        "started_at": datetime(2026, 3, 2, 12, tzinfo=UTC),
        "finished_at": datetime(2026, 3, 2, 12, tzinfo=UTC),
        "records_read": records_read,
        "records_quarantined": 0,
        "file_rejected": False,
        "rows_written": {"transactions": records_read, "transaction_items": records_read},
    }
    return AuditRecord(**(fields | changes))


def run_at_once(work: Callable[[int], None], count: int) -> list[BaseException]:
    """Runs work(0) .. work(count - 1) on threads of their own at once; what each raised."""
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        try:
            work(number)
        except BaseException as exc:  # surfaced to the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
