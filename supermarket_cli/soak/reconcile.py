"""What a soak reconciles at its end: every transaction the producers (and the bad files) wrote is
in the lake exactly once or in quarantine with a reason, and nothing is in the lake that nobody
wrote. The truth is read back from the raw objects themselves; the lake from the tables'
current snapshots; the quarantine from its objects."""

import gzip
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from lake_contract import layout
from lake_contract.audit import AuditRecord
from lake_contract.quarantine import quarantine_records
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from supermarket_cli.soak.bad_files import BAD_PREFIX, BadFile

_ID = re.compile(rb'"transaction_id":\s*"([^"]+)"')
SAMPLE = 5


@dataclass
class Reconciliation:
    produced: int = 0  # transactions the producers wrote, plus the bad files' valid ones
    producer_files: int = 0
    landed: int = 0  # distinct transaction ids in the lake
    transaction_rows: int = 0
    item_rows: int = 0
    duplicated: int = 0  # ids with more than one transaction row
    duplicated_items: int = 0  # (id, line) with more than one item row
    missing: int = 0  # ids that must be in the lake and are not
    unexpected: int = 0  # ids in the lake that nobody wrote
    quarantined: int = 0  # quarantine records
    quarantine_without_reason: int = 0
    quarantine_reasons: Counter = field(default_factory=Counter)
    bad_files_wrong: list[str] = field(default_factory=list)  # a bad file not handled as it must be
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not (self.duplicated or self.duplicated_items or self.missing or self.unexpected
                    or self.quarantine_without_reason or self.bad_files_wrong)  # fmt: skip


def _ids(body: bytes) -> list[str]:
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return [m.decode() for m in _ID.findall(body)]


def _rule(reason: str) -> str:
    """A reason without its particulars (ids, numbers), to count reasons by rule."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "…", reason))[:90]


def reconcile(
    lake: LakeBucket, tables: LakeTables, bad_files: list[BadFile]
) -> tuple[Reconciliation, dict[str, Any]]:
    """The reconciliation, and what it read (for the report): raw keys, audit records."""
    result = Reconciliation()
    raw_keys = lake.keys(layout.RAW_INCOMING)
    # The producers' live files and the history the backfills wrote: every good record.
    producer_keys = [k for k in raw_keys if BAD_PREFIX not in k] + lake.keys(layout.RAW_HISTORY)
    produced: set[str] = set()
    for body in lake.read_many(producer_keys):
        produced.update(_ids(body))
    result.producer_files = len(producer_keys)
    bad_ids = set().union(*(f.ids for f in bad_files)) if bad_files else set()
    must_land = produced | set().union(*(f.lands for f in bad_files)) if bad_files else produced
    result.produced = len(must_land)

    transactions = (
        tables.current("transactions")
        .scan(selected_fields=("transaction_id", "source_key"))
        .to_arrow()
    )
    items = (
        tables.current("transaction_items")
        .scan(selected_fields=("transaction_id", "line_number"))
        .to_arrow()
    )
    result.transaction_rows, result.item_rows = transactions.num_rows, items.num_rows
    counts = pc.value_counts(transactions["transaction_id"]).to_pylist()
    in_lake = {c["values"] for c in counts}
    twice = [c["values"] for c in counts if c["counts"] > 1]
    result.landed, result.duplicated = len(in_lake), len(twice)
    item_keys = pc.binary_join_element_wise(
        items["transaction_id"], pc.cast(items["line_number"], "string"), "#"
    )
    items_twice = [c["values"] for c in pc.value_counts(item_keys).to_pylist() if c["counts"] > 1]
    result.duplicated_items = len(items_twice)
    missing = sorted(must_land - in_lake)
    unexpected = sorted(in_lake - produced - bad_ids)
    result.missing, result.unexpected = len(missing), len(unexpected)

    quarantined_by_source: dict[str, list[dict[str, Any]]] = {}
    for body in lake.read_many(lake.keys(layout.QUARANTINE)):
        for record in quarantine_records(body):
            quarantined_by_source.setdefault(record["source_key"], []).append(record)
            result.quarantined += 1
            if not (record.get("reason") or "").strip():
                result.quarantine_without_reason += 1
            result.quarantine_reasons[_rule(record.get("reason") or "")] += 1
    for bad in bad_files:
        records = quarantined_by_source.get(bad.key, [])
        whole = any(r.get("line_number") is None for r in records)
        if bad.rejected_whole and not whole:
            result.bad_files_wrong.append(f"{bad.kind}: not quarantined whole")
        quarantined_ids = {r.get("transaction_id") for r in records}
        lost = bad.ids - bad.lands - quarantined_ids - in_lake
        if lost and not whole and bad.kind != "json_array":  # an array's ids are not parsed
            result.bad_files_wrong.append(
                f"{bad.kind}: {len(lost)} ids neither landed nor in quarantine"
            )
        if bad.kind in ("duplicate_ids", "id_from_another_source") and not records:
            result.bad_files_wrong.append(f"{bad.kind}: the repeated ids were not quarantined")
        if bad.kind == "json_array" and not records:
            result.bad_files_wrong.append("json_array: nothing quarantined")
    result.samples = {
        name: values[:SAMPLE]
        for name, values in (("missing", missing), ("unexpected", unexpected),
                             ("duplicated", twice), ("duplicated_items", items_twice))
        if values
    }  # fmt: skip
    audits = [AuditRecord.from_json(b) for b in lake.read_many(lake.keys(layout.AUDIT))]
    return result, {"raw_keys": raw_keys, "audits": audits}
