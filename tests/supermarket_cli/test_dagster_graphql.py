"""How a backfill's runs, as the webserver lists them (newest first), become per-day states."""

from supermarket_cli.dagster_graphql import partition_states

DAYS = ["2026-12-01", "2026-12-02"]
TARGETS = {"transactions", "transaction_items"}


def _run(status: str, start: str, end: str, **tags: str) -> dict:
    tags = {"dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end, **tags}  # fmt: skip
    return {"status": status, "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "assetSelection": None}  # fmt: skip


def test_a_failed_run_the_instance_will_retry_is_still_queued_not_failed():
    waiting = _run("FAILURE", *DAYS, **{"dagster/will_retry": "true"})
    assert partition_states([waiting], DAYS, TARGETS) == dict.fromkeys(DAYS, "queued")


def test_once_its_retry_is_launched_the_retry_run_decides():
    parent = _run("FAILURE", *DAYS, **{"dagster/will_retry": "true",
                                        "dagster/auto_retry_run_id": "r2"})  # fmt: skip
    retry = _run("STARTED", *DAYS)
    assert partition_states([retry, parent], DAYS, TARGETS) == dict.fromkeys(DAYS, "running")
    retry = _run("SUCCESS", *DAYS)
    assert partition_states([retry, parent], DAYS, TARGETS) == dict.fromkeys(DAYS, "succeeded")
    # a retry launched but not yet listed: the parent's own failure stands meanwhile
    assert partition_states([parent], DAYS, TARGETS) == dict.fromkeys(DAYS, "failed")


def test_a_failed_run_that_will_not_be_retried_fails_its_days_only():
    failed = _run("FAILURE", DAYS[1], DAYS[1], **{"dagster/will_retry": "false"})
    landed = _run("SUCCESS", DAYS[0], DAYS[0])
    states = partition_states([failed, landed], DAYS, TARGETS)
    assert states == {DAYS[0]: "succeeded", DAYS[1]: "failed"}
    assert partition_states([], DAYS, TARGETS) == dict.fromkeys(DAYS, "pending")
