"""A small client of a running Dagster webserver's GraphQL API, over plain HTTP.

It launches asset runs and partition backfills and waits for them, as the UI does, without
importing Dagster. Every failure is one `DagsterGraphQLError` with a one-line message: a
GraphQL error, a Python error raised in Dagster, a failed run's own error, or a timeout.
"""

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from supermarket_cli.processes import TimedOut, wait_until

T = TypeVar("T")

REPOSITORY = "__repository__"  # the repository a Definitions object loads as
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WILL_RETRY_TAG = "dagster/will_retry"  # a failed run the instance's run retries will re-execute
AUTO_RETRY_TAG = "dagster/auto_retry_run_id"  # set on it once its retry is launched

METADATA_FIELDS = """metadataEntries { label ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue } ... on TextMetadataEntry { text } }"""
PYTHON_ERROR = "message className causes { message className }"
ERROR_FIELDS = "... on Error { __typename message } ... on PythonError { className }"
# The history backfill logs "dt=YYYY-MM-DD: ..." once a day of its range is committed
# (supermarket_dagster/defs/history/assets.py): a range run's progress between its start and end.
LANDED_DAY = re.compile(r"^dt=(\d{4}-\d{2}-\d{2}): ")


class DagsterGraphQLError(RuntimeError):
    """A one-line account of what went wrong in or with Dagster."""


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines)[:2000]


def _asset_key(key: str) -> dict:
    """'a/b' -> {"path": ["a", "b"]}: asset keys are written with slashes, as in the UI."""
    return {"path": key.split("/")}


def _key_text(key: dict) -> str:
    return "/".join(key["path"])


def _wait(
    predicate: Callable[[], T], timeout: float, interval: float, describe: Callable[[], str]
) -> T:
    """wait_until, failing as everything here fails: with one DagsterGraphQLError."""
    try:
        return wait_until(predicate, timeout, interval, describe)
    except TimedOut as exc:
        raise DagsterGraphQLError(str(exc)) from None


def _raise_if_error(result: dict, doing: str) -> dict:
    """Unions of success and error types: an error type (it has `message`) becomes an
    exception."""
    if "message" in result:
        kind = result.get("className") or result["__typename"]
        raise DagsterGraphQLError(f"{doing}: {kind}: {_one_line(result['message'])}")
    return result


@dataclass(frozen=True)
class CheckResult:
    """One check evaluation a run recorded."""

    asset_key: str
    check_name: str
    partition: str | None
    passed: bool


@dataclass
class BackfillProgress:
    """Where a backfill stands, per requested partition: pending, running, succeeded or
    failed (from the backfill's own runs, so it is current between daemon ticks)."""

    backfill_id: str
    status: str  # the backfill's BulkActionStatus
    # partition key -> "pending" (no run yet), "queued", "running", "succeeded" or "failed"
    partitions: dict[str, str]
    runs: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    landed: int = 0  # days committed by runs still in progress (from their logs)

    def count(self, state: str) -> int:
        return sum(1 for value in self.partitions.values() if value == state)

    @property
    def done(self) -> int:
        return self.count("succeeded")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def finished(self) -> bool:
        settled = self.done + self.failed == len(self.partitions)
        return settled or self.status in FINISHED_BACKFILL

    def line(self) -> str:
        return (
            f"backfill {self.backfill_id}: {self.done}/{len(self.partitions)} partitions "
            f"materialized, {self.count('queued')} queued, {self.count('running')} running, "
            f"{self.failed} failed "
            f"({self.status.lower()})"
            + (f"; {self.landed} days landed so far" if self.landed else "")
        )

    def as_dict(self) -> dict:
        return {
            "backfill_id": self.backfill_id,
            "status": self.status,
            "partitions": dict(self.partitions),
            "done": self.done,
            "failed": self.failed,
            "runs": list(self.runs),
            "failures": list(self.failures),
        }


class DagsterGraphQL:
    """The GraphQL API of the webserver at url (e.g. http://127.0.0.1:3000)."""

    def __init__(self, url: str, request_timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.request_timeout = request_timeout
        self._location: str | None = None

    # -- transport -------------------------------------------------------------------------

    def query(self, text: str, variables: dict | None = None) -> dict:
        """The `data` of one GraphQL request; GraphQL errors raise."""
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            try:
                payload = json.loads(detail)
            except ValueError:
                raise DagsterGraphQLError(
                    f"Dagster at {self.url} answered HTTP {error.code}: {_one_line(detail)}"
                ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DagsterGraphQLError(f"Dagster at {self.url} is unreachable: {reason}") from None
        if payload.get("errors"):
            messages = "; ".join(_one_line(e.get("message", str(e))) for e in payload["errors"])
            raise DagsterGraphQLError(f"GraphQL error from {self.url}: {messages}")
        return payload["data"]

    # -- the code location -----------------------------------------------------------------

    def _locations(self) -> list[dict]:
        data = self.query(
            """{ workspaceOrError { __typename
                   ... on Workspace { locationEntries { name loadStatus
                       locationOrLoadError { __typename
                         ... on RepositoryLocation { repositories { name } }
                         ... on PythonError { message className } } } }
                   ... on PythonError { message className } } }"""
        )
        workspace = _raise_if_error(data["workspaceOrError"], "reading the workspace")
        return workspace["locationEntries"]

    def wait_ready(self, timeout: float) -> None:
        """Return once the server answers and its code location has loaded; raise with the
        location's load error if it failed, or when timeout seconds have passed."""
        last = "no answer yet"

        def loaded() -> bool:
            nonlocal last
            try:
                entries = self._locations()
            except DagsterGraphQLError as error:
                last = str(error)
                return False
            for entry in entries:
                loaded = entry["locationOrLoadError"]
                if loaded and loaded["__typename"] == "PythonError":
                    raise DagsterGraphQLError(
                        f"code location {entry['name']} failed to load: "
                        f"{loaded.get('className') or 'Error'}: {_one_line(loaded['message'])}"
                    )
            ready = [
                e
                for e in entries
                if e["loadStatus"] == "LOADED"
                and e["locationOrLoadError"]
                and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            ]
            if ready:
                self._location = ready[0]["name"]
                return True
            last = "code location still loading" if entries else "no code location"
            return False

        _wait(
            loaded,
            timeout,
            0.5,
            lambda: f"Dagster at {self.url} not ready after {timeout:.0f} s: {last}",
        )

    def location(self) -> str:
        if self._location is None:
            self.wait_ready(timeout=0)
        assert self._location is not None
        return self._location

    # -- assets ------------------------------------------------------------------------------

    def _asset_nodes(self, asset_keys: list[str] | None = None) -> list[dict]:
        variables = {"keys": [_asset_key(k) for k in asset_keys]} if asset_keys else {}
        data = self.query(
            """query Nodes($keys: [AssetKeyInput!]) {
                 assetNodes(assetKeys: $keys) { assetKey { path } jobNames isPartitioned } }""",
            variables,
        )
        return data["assetNodes"]

    def asset_keys(self) -> list[str]:
        """Every asset key of the loaded definitions, as 'a/b' strings, sorted."""
        return sorted(_key_text(node["assetKey"]) for node in self._asset_nodes())

    def _asset_job(self, asset_keys: list[str]) -> str:
        """The implicit asset job that holds all of asset_keys."""
        nodes = self._asset_nodes(asset_keys)
        found = {_key_text(node["assetKey"]) for node in nodes}
        missing = sorted(set(asset_keys) - found)
        if missing:
            raise DagsterGraphQLError(f"unknown asset keys: {', '.join(missing)}")
        common = set.intersection(*(set(node["jobNames"]) for node in nodes))
        implicit = sorted(name for name in common if name.startswith("__ASSET_JOB"))
        if not implicit:
            raise DagsterGraphQLError(f"no implicit asset job holds all of {', '.join(asset_keys)}")
        return implicit[0]

    def asset_checks(self, asset_keys: list[str]) -> list[tuple[str, str]]:
        """(asset key, check name) of every check on these assets."""
        data = self.query(
            """query Checks($keys: [AssetKeyInput!]) {
                 assetNodes(assetKeys: $keys) { assetKey { path } assetChecksOrError {
                   ... on AssetChecks { checks { name } } } } }""",
            {"keys": [_asset_key(k) for k in asset_keys]},
        )
        return [
            (_key_text(node["assetKey"]), check["name"])
            for node in data["assetNodes"]
            for check in (node["assetChecksOrError"] or {}).get("checks", [])
        ]

    def launch_assets(
        self,
        asset_keys: list[str],
        run_config: dict | None = None,
        partition_key: str | None = None,
        tags: dict[str, str] | None = None,
        with_checks: bool = False,
    ) -> str:
        """Queue one run materializing asset_keys (optionally one partition), with their checks
        if with_checks (as a backfill runs them; a launched run has none unless named); its run
        id."""
        run_tags = dict(tags or {})
        if partition_key is not None:
            run_tags[PARTITION_TAG] = partition_key
        params = {
            "selector": {
                "repositoryLocationName": self.location(),
                "repositoryName": REPOSITORY,
                "jobName": self._asset_job(asset_keys),
                "assetSelection": [_asset_key(k) for k in asset_keys],
                "assetCheckSelection": [
                    {"assetKey": _asset_key(asset), "name": name}
                    for asset, name in (self.asset_checks(asset_keys) if with_checks else [])
                ],
            },
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in run_tags.items()]},
        }
        data = self.query(
            f"""mutation Launch($params: ExecutionParams!) {{
                  launchRun(executionParams: $params) {{ __typename
                    ... on LaunchRunSuccess {{ run {{ runId }} }}
                    ... on RunConfigValidationInvalid {{ errors {{ message }} }}
                    {ERROR_FIELDS} }} }}""",
            {"params": params},
        )
        result = data["launchRun"]
        if result["__typename"] == "RunConfigValidationInvalid":
            messages = "; ".join(e["message"] for e in result["errors"])
            raise DagsterGraphQLError(f"launching {', '.join(asset_keys)}: bad config: {messages}")
        _raise_if_error(result, f"launching {', '.join(asset_keys)}")
        return result["run"]["runId"]

    def launch_backfill(
        self,
        asset_keys: list[str],
        partition_keys: list[str],
        run_config: dict | None = None,
        title: str | None = None,
    ) -> str:
        """Request a backfill of asset_keys over partition_keys, as the UI's "Materialize
        selected" does; the daemon turns it into runs. Its backfill id."""
        if not partition_keys:
            raise DagsterGraphQLError("a backfill needs at least one partition key")
        params: dict[str, Any] = {
            "assetSelection": [_asset_key(k) for k in asset_keys],
            "partitionNames": list(partition_keys),
        }
        if run_config:
            params["runConfigData"] = run_config
        if title:
            params["title"] = title
        data = self.query(
            f"""mutation Backfill($params: LaunchBackfillParams!) {{
                  launchPartitionBackfill(backfillParams: $params) {{ __typename
                    ... on LaunchBackfillSuccess {{ backfillId }}
                    {ERROR_FIELDS} }} }}""",
            {"params": params},
        )
        result = _raise_if_error(
            data["launchPartitionBackfill"], f"launching a backfill of {', '.join(asset_keys)}"
        )
        return result["backfillId"]

    # -- runs --------------------------------------------------------------------------------

    def run(self, run_id: str) -> dict:
        """runId, status, jobName, start/end times (epoch s), tags and asset selection."""
        data = self.query(
            f"""query Run($id: ID!) {{ runOrError(runId: $id) {{ __typename
                  ... on Run {{ runId status jobName creationTime startTime endTime
                               tags {{ key value }} assetSelection {{ path }} }}
                  {ERROR_FIELDS} }} }}""",
            {"id": run_id},
        )
        return _raise_if_error(data["runOrError"], f"reading run {run_id}")

    def run_failure(self, run_id: str) -> str:
        """The failed run's own error: its failed steps' errors, else the run failure message."""
        data = self.query(
            f"""query Logs($id: ID!) {{ logsForRun(runId: $id, limit: 10000) {{ __typename
                  ... on EventConnection {{ events {{ __typename
                    ... on ExecutionStepFailureEvent {{ stepKey error {{ {PYTHON_ERROR} }} }}
                    ... on RunFailureEvent {{ message }}
                    ... on EngineEvent {{ message error {{ {PYTHON_ERROR} }} }} }} }}
                  {ERROR_FIELDS} }} }}""",
            {"id": run_id},
        )
        logs = _raise_if_error(data["logsForRun"], f"reading the logs of run {run_id}")
        steps, run_level = [], []
        for event in logs["events"]:
            error = event.get("error")
            if event["__typename"] == "ExecutionStepFailureEvent" and error:
                steps.append(f"step {event['stepKey']}: {_root_cause(error)}")
            elif event["__typename"] == "EngineEvent" and error:
                run_level.append(_root_cause(error))
            elif event["__typename"] == "RunFailureEvent":
                run_level.append(_one_line(event["message"]))
        return "; ".join(steps or run_level) or "no failure message recorded"

    def wait_run(self, run_id: str, timeout: float) -> str:
        """Block until the run finishes; its final status. A failed or canceled run raises
        with its error; so does a run still going after timeout seconds."""
        status = "unknown"

        def succeeded() -> bool:
            nonlocal status
            run = self.run(run_id)
            status = run["status"]
            if status in FINISHED_RUN - {"SUCCESS"}:
                raise DagsterGraphQLError(
                    f"run {run_id} ({run['jobName']}) {status.lower()}: {self.run_failure(run_id)}"
                )
            return status == "SUCCESS"

        _wait(
            succeeded,
            timeout,
            0.5,
            lambda: f"run {run_id} still {status.lower()} after {timeout:.0f} s",
        )
        return status

    # -- backfills ---------------------------------------------------------------------------

    def landed_days(self, run_id: str, step_key: str) -> list[str]:
        """The days a range run's step has logged as committed so far (LANDED_DAY)."""
        return self.landed_days_by_step(run_id).get(step_key, [])

    def landed_days_by_step(self, run_id: str) -> dict[str, list[str]]:
        """Step key -> the days it has logged as committed so far (LANDED_DAY), in one read of
        the run's logs."""
        landed: dict[str, list[str]] = {}
        for event in self._run_log_events(run_id, "... on MessageEvent { message stepKey }"):
            if event.get("stepKey") and (match := LANDED_DAY.match(event.get("message") or "")):
                landed.setdefault(event["stepKey"], []).append(match.group(1))
        return landed

    def run_check_results(self, run_id: str) -> list[CheckResult]:
        """Every check evaluation the run recorded."""
        fields = """... on AssetCheckEvaluationEvent {
                      evaluation { assetKey { path } checkName partition success } }"""
        return [
            CheckResult(_key_text(e["assetKey"]), e["checkName"], e["partition"], e["success"])
            for e in (event["evaluation"] for event in self._run_log_events(run_id, fields)
                      if "evaluation" in event)
        ]  # fmt: skip

    def _run_log_events(self, run_id: str, fields: str) -> list[dict]:
        """Every event of the run's log, with the given fields of the event types they name."""
        data = self.query(
            f"""query Logs($id: ID!) {{ logsForRun(runId: $id, limit: 100000) {{ __typename
                  ... on EventConnection {{ events {{ __typename {fields} }} }}
                  {ERROR_FIELDS} }} }}""",
            {"id": run_id},
        )
        return _raise_if_error(data["logsForRun"], f"reading the logs of run {run_id}")["events"]

    def backfill_progress(
        self, backfill_id: str, landed_step: str | None = None
    ) -> BackfillProgress:
        """The backfill's status and, per requested partition, the state of its runs; with
        landed_step, also the days that step has committed in runs still going."""
        data = self.query(
            f"""query Backfill($id: String!) {{ partitionBackfillOrError(backfillId: $id) {{
                  __typename
                  ... on PartitionBackfill {{ id status partitionNames assetSelection {{ path }}
                      error {{ message className }}
                      runs {{ runId status startTime endTime
                              tags {{ key value }} assetSelection {{ path }} }} }}
                  {ERROR_FIELDS} }} }}""",
            {"id": backfill_id},
        )
        backfill = _raise_if_error(
            data["partitionBackfillOrError"], f"reading backfill {backfill_id}"
        )
        partitions = list(backfill["partitionNames"] or [])
        targets = {_key_text(k) for k in backfill["assetSelection"] or []}
        failures = []
        if backfill["error"]:
            failures.append(_one_line(backfill["error"]["message"]))
        states = partition_states(backfill["runs"], partitions, targets)
        landed = 0
        if landed_step:
            running = [r for r in backfill["runs"] if r["status"] == "STARTED"]
            landed = sum(len(set(self.landed_days(r["runId"], landed_step))) for r in running)
        return BackfillProgress(
            backfill_id=backfill_id,
            status=backfill["status"],
            partitions=states,
            landed=landed,
            runs=[
                {
                    "run_id": r["runId"],
                    "status": r["status"],
                    "start": r["startTime"],
                    "end": r["endTime"],
                    "partitions": _run_partitions(r, partitions),
                }
                for r in backfill["runs"]
            ],
            failures=failures,
        )

    def wait_backfill(
        self,
        backfill_id: str,
        timeout: float,
        progress: Callable[[BackfillProgress], None] | None = None,
        poll_seconds: float = 1.0,
        landed_step: str | None = None,
    ) -> dict:
        """Block until every requested partition has succeeded or failed (or the backfill has
        ended). Returns BackfillProgress.as_dict(): status, per-partition states, done and
        failed counts, runs. Raises on timeout, and if any partition failed, with the failed
        runs' errors. progress, if given, is called on every change."""
        shown = None
        state = None

        def finished() -> bool:
            nonlocal shown, state
            state = self.backfill_progress(backfill_id, landed_step if progress else None)
            if progress is not None and state.line() != shown:
                shown = state.line()
                progress(state)
            return state.finished

        _wait(
            finished,
            timeout,
            poll_seconds,
            lambda: f"not finished after {timeout:.0f} s: {state and state.line()}",
        )
        assert state is not None
        if state.failed or state.done < len(state.partitions):
            failed_runs = [r for r in state.runs if r["status"] in {"FAILURE", "CANCELED"}]
            reasons = [f"run {r['run_id']}: {self.run_failure(r['run_id'])}" for r in failed_runs]
            raise DagsterGraphQLError(
                f"{state.line()}: " + ("; ".join(state.failures + reasons) or "no runs succeeded")
            )
        return state.as_dict()

    # -- what the lake holds, as Dagster saw it -------------------------------------------------

    def latest_materialization(self, asset_key: str, partition: str | None = None) -> dict | None:
        """The latest materialization of the asset (or of one partition): run id, partition,
        timestamp (epoch s) and its numeric and text metadata; None if there is none."""
        variables: dict[str, Any] = {"key": _asset_key(asset_key)}
        if partition is not None:
            variables["partitions"] = [partition]
        data = self.query(
            f"""query Latest($key: AssetKeyInput!, $partitions: [String!]) {{
                 assetOrError(assetKey: $key) {{ __typename
                   ... on Asset {{ assetMaterializations(partitions: $partitions, limit: 1) {{
                       runId partition timestamp {METADATA_FIELDS} }} }}
                   ... on AssetNotFoundError {{ message }} }} }}""",
            variables,
        )
        asset = _raise_if_error(data["assetOrError"], f"reading asset {asset_key}")
        events = asset["assetMaterializations"]
        if not events:
            return None
        event = events[0]
        return {
            "run_id": event["runId"],
            "partition": event["partition"],
            "timestamp": int(event["timestamp"]) / 1000,
            "metadata": _metadata(event["metadataEntries"]),
        }

    def run_materializations(self, run_id: str) -> list[dict]:
        """The materializations a run recorded: asset key, partition and metadata each."""
        data = self.query(
            f"""query RunEvents($id: ID!) {{ runOrError(runId: $id) {{ __typename
                  ... on Run {{ assetMaterializations {{ assetKey {{ path }} partition
                      {METADATA_FIELDS} }} }}
                  {ERROR_FIELDS} }} }}""",
            {"id": run_id},
        )
        run = _raise_if_error(data["runOrError"], f"reading run {run_id}")
        return [
            {
                "asset_key": _key_text(event["assetKey"]),
                "partition": event["partition"],
                "metadata": _metadata(event["metadataEntries"]),
            }
            for event in run["assetMaterializations"]
        ]

    def launch_checks(self, checks: list[tuple[str, str]], partition_key: str) -> str:
        """Queue one run of these (asset key, check name) checks alone on one partition, as
        the checks' automation sensor requests them; its run id."""
        assets = sorted({asset for asset, _ in checks})
        params = {
            "selector": {
                "repositoryLocationName": self.location(),
                "repositoryName": REPOSITORY,
                "jobName": self._asset_job(assets),
                "assetSelection": [],
                "assetCheckSelection": [
                    {"assetKey": _asset_key(asset), "name": name} for asset, name in checks
                ],
            },
            "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": partition_key}]},
        }
        data = self.query(
            f"""mutation Launch($params: ExecutionParams!) {{
                  launchRun(executionParams: $params) {{ __typename
                    ... on LaunchRunSuccess {{ run {{ runId }} }}
                    {ERROR_FIELDS} }} }}""",
            {"params": params},
        )
        result = _raise_if_error(data["launchRun"], f"launching checks on {partition_key}")
        return result["run"]["runId"]

    def check_results_by_partition(self, asset_key: str, check_name: str) -> dict[str, bool]:
        """Partition -> whether the check's latest evaluation there passed."""
        data = self.query(
            """query Executions($key: AssetKeyInput!, $name: String!) {
                 assetCheckExecutions(assetKey: $key, checkName: $name, limit: 100000) {
                   partition evaluation { success } } }""",
            {"key": _asset_key(asset_key), "name": check_name},
        )
        results: dict[str, bool] = {}
        for execution in data["assetCheckExecutions"]:  # newest first
            evaluation = execution["evaluation"]
            if evaluation and execution["partition"] is not None:
                results.setdefault(execution["partition"], evaluation["success"])
        return results

    def asset_check_results(self, asset_key: str) -> dict[str, bool | None]:
        """Each check on the asset -> whether its latest evaluation passed (None: not yet
        evaluated for the latest materialization)."""
        data = self.query(
            """query Checks($keys: [AssetKeyInput!]) {
                 assetNodes(assetKeys: $keys) { assetChecksOrError { __typename
                   ... on AssetChecks { checks { name
                       executionForLatestMaterialization { status evaluation { success } } } }
                   ... on Error { message } } } }""",
            {"keys": [_asset_key(asset_key)]},
        )
        if not data["assetNodes"]:
            raise DagsterGraphQLError(f"unknown asset key: {asset_key}")
        checks = data["assetNodes"][0]["assetChecksOrError"]
        if checks["__typename"] != "AssetChecks":
            raise DagsterGraphQLError(f"reading checks of {asset_key}: {checks.get('message')}")
        results: dict[str, bool | None] = {}
        for check in checks["checks"]:
            execution = check["executionForLatestMaterialization"]
            evaluation = execution and execution["evaluation"]
            results[check["name"]] = evaluation["success"] if evaluation else None
        return results


def _root_cause(error: dict) -> str:
    """The innermost error: Dagster wraps the asset's own exception (the one worth reading)."""
    innermost = (error.get("causes") or [error])[-1]
    return f"{innermost.get('className') or 'Error'}: {_one_line(innermost['message'])}"


def _metadata(entries: list[dict]) -> dict[str, Any]:
    """Numeric and text metadata entries as label -> value (other kinds are left out)."""
    values = {}
    for entry in entries:
        for value_field in ("intValue", "floatValue", "text"):
            if value_field in entry:
                values[entry["label"]] = entry[value_field]
    return values


def partition_states(runs: list[dict], partitions: list[str], targets: set[str]) -> dict[str, str]:
    """Per requested partition, the state of the latest runs (newest first, as GraphQL lists
    them) covering it for every target asset. A failed run that the instance's run retries
    will re-execute (tagged will_retry, its retry not launched yet) is still queued: its retry
    run, once launched, is the latest."""
    latest: dict[tuple[str, str], str] = {}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        status = run["status"]
        if (
            status == "FAILURE"
            and tags.get(WILL_RETRY_TAG) == "true"
            and AUTO_RETRY_TAG not in tags
        ):
            status = "RETRYING"
        assets = {_key_text(k) for k in run["assetSelection"] or []} or targets
        for partition in _run_partitions(run, partitions):
            for asset in assets:
                latest.setdefault((partition, asset), status)
    states = {}
    for partition in partitions:
        statuses = [latest.get((partition, asset)) for asset in targets]
        if any(s in {"FAILURE", "CANCELED"} for s in statuses):
            states[partition] = "failed"
        elif statuses and all(s == "SUCCESS" for s in statuses):
            states[partition] = "succeeded"
        elif any(s in {"STARTING", "STARTED", "CANCELING", "SUCCESS"} for s in statuses):
            states[partition] = "running"
        elif any(s is not None for s in statuses):
            states[partition] = "queued"
        else:
            states[partition] = "pending"
    return states


def _run_partitions(run: dict, requested: list[str]) -> list[str]:
    """The requested partitions a run covers: its partition tag, or its partition range
    (a multi-partition run), read against the requested keys (daily keys sort as dates)."""
    tags = {t["key"]: t["value"] for t in run["tags"]}
    if PARTITION_TAG in tags:
        return [p for p in requested if p == tags[PARTITION_TAG]]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start is not None and end is not None:
        return [p for p in requested if start <= p <= end]
    return []
