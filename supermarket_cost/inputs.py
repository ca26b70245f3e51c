"""The measured inputs of the cost model: what the benchmark measured on the moto-backed lake,
kept as a checked-in JSON file with its date and machine, which `supermarket cost` reads."""

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INPUTS_FILE = Path(__file__).resolve().parent / "measured_inputs.json"


@dataclass(frozen=True)
class Linear:
    """A figure per Lambda batch (or compaction run): fixed + per source file + per
    transaction, fitted by least squares over the measured batches."""

    fixed: float = 0.0
    per_file: float = 0.0
    per_transaction: float = 0.0

    def at(self, files: float, transactions: float) -> float:
        return self.fixed + self.per_file * files + self.per_transaction * transactions


@dataclass(frozen=True)
class Batches:
    """The handler on SQS batches of raw logs, as the event source mapping delivers them."""

    samples: int
    seconds: Linear
    peak_rss_mb: float  # the process's, at its highest over every batch
    log_bytes: Linear  # the handler's own log lines
    requests: dict[str, Linear]  # "s3 PUT data", "glue UpdateTable", ...


@dataclass(frozen=True)
class Compaction:
    """One compacted_days run of a day (both tables): fixed + per file rewritten, and per
    byte rewritten for the time."""

    samples: int
    seconds_fixed: float
    seconds_per_mb: float
    requests: dict[str, Linear]  # Linear.per_file = per small file rewritten


@dataclass(frozen=True)
class Storage:
    raw_bytes_per_transaction: float  # NDJSON as the feed writes it
    data_bytes_per_transaction_small: float  # both tables, a Lambda batch's own files
    data_bytes_per_transaction_compacted: float  # both tables, after compaction
    metadata_bytes: float  # every Iceberg table's live metadata, manifests and lists
    metadata_json_bytes: float  # one table's metadata file, rewritten on every commit
    audit_bytes_per_file: float


@dataclass(frozen=True)
class DashboardQuery:
    view: str
    scope_days: int | None  # the days its filter reads; None: every day retained
    bytes_per_scoped_transaction: float  # Parquet bytes read, per transaction in its scope
    s3_gets: int
    glue_requests: int


@dataclass(frozen=True)
class Dagster:
    audit_sensor_seconds: float  # ticks of the sensors that list audit/ and read each record
    late_files_sensor_seconds: float
    audit_reads_per_record: float  # GETs per audit record per sensor
    lists_per_tick: float
    compaction_runs_per_day: float  # the open day's schedule, plus the nightly run
    other_runs_per_day: float  # housekeeping, the rollup
    housekeeping_requests: dict[str, float]  # one run, at the measured lake's size
    run_worker_start_seconds: float  # a run worker's imports, before its step runs


@dataclass(frozen=True)
class Throughput:
    transform_seconds_per_raw_mb: float  # the one transform, as a Glue job would run it
    backfill_seconds_per_transaction: float  # one history day, converted and committed
    backfill_seconds_fixed: float


@dataclass(frozen=True)
class MeasuredInputs:
    measured_at: str
    machine: dict[str, str]
    scale: dict[str, Any]
    batches: Batches
    compaction: Compaction
    storage: Storage
    dashboard: list[DashboardQuery]
    dagster: Dagster
    throughput: Throughput
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=False) + "\n"


def _convert(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        hints = typing.get_type_hints(kind)
        values = {}
        for f in dataclasses.fields(kind):
            if f.name not in value:
                if f.default is not dataclasses.MISSING or (
                    f.default_factory is not dataclasses.MISSING
                ):
                    continue
                raise ValueError(f"{where}: missing {f.name!r}")
            values[f.name] = _convert(hints[f.name], value[f.name], f"{where}.{f.name}")
        return kind(**values)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        (inner,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(inner, value, where)
    if origin is dict:
        _, inner = typing.get_args(kind)
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {value!r}")
        return {str(k): _convert(inner, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (inner,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [_convert(inner, v, f"{where}[{n}]") for n, v in enumerate(value)]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    return value  # Any


def parse_inputs(text: str, source: str = "inputs") -> MeasuredInputs:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not JSON ({exc})") from None
    return _convert(MeasuredInputs, data, source)


def load_inputs(path: Path = INPUTS_FILE) -> MeasuredInputs:
    if not path.is_file():
        raise FileNotFoundError(
            f"no measured inputs at {path}: run `supermarket cost --measure` "
            "or benchmarks/cost_inputs.py"
        )
    return parse_inputs(path.read_text(), str(path))


def save_inputs(inputs: MeasuredInputs, path: Path = INPUTS_FILE) -> Path:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(inputs.to_json())
    temporary.replace(path)
    return path
