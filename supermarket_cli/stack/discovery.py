"""Finds the local stack that `supermarket up` is running, from its state folder, so that
`query` and `dashboard` read its lake without AWS_ENDPOINT_URL being set by hand."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from supermarket_cli.defaults import DEFAULT_BUCKET
from supermarket_cli.stack.config import LOCAL_CREDENTIAL, LOCAL_REGION, from_environment


@dataclass(frozen=True)
class RunningStack:
    state_dir: Path
    lake: str  # s3://bucket
    endpoint: str | None  # moto's URL; None when the stack runs against AWS itself


def running_stack(state_dir: Path) -> RunningStack | None:
    """The stack whose supervisor is alive in the state folder; None when there is none."""
    try:
        record = json.loads((state_dir / "stack.json").read_text())
        pid, urls = int(record["supervisor_pid"]), dict(record["urls"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not psutil.pid_exists(pid) or "lake" not in urls:
        return None
    return RunningStack(state_dir, urls["lake"], urls.get("aws"))


@dataclass(frozen=True)
class LakeChoice:
    lake: str
    endpoint: str | None  # None: boto3's own resolution (AWS_ENDPOINT_URL, else AWS)
    stack: RunningStack | None
    explanation: str  # one line: which lake, on what, and what to do when it is not the one


def choose_lake(lake: str | None) -> LakeChoice:
    """--lake as given; else the running local stack's lake (unless AWS_ENDPOINT_URL says
    otherwise); else s3://$LAKE_BUCKET on boto3's endpoint, saying how to start a stack."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    state_dir = from_environment().state_dir
    if lake:
        on = f" on {endpoint}" if lake.startswith("s3://") and endpoint else ""
        return LakeChoice(lake, endpoint, None, f"reading {lake}{on}")
    bucket = os.environ.get("LAKE_BUCKET", DEFAULT_BUCKET)
    if endpoint:
        return LakeChoice(f"s3://{bucket}", endpoint, None, f"reading s3://{bucket} on {endpoint}")
    stack = running_stack(state_dir)
    if stack is not None:
        if stack.endpoint:  # moto takes any credentials and region; these never reach AWS
            os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
            os.environ.setdefault("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIAL)
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIAL)
        on = f"the local stack's moto at {stack.endpoint}" if stack.endpoint else "AWS"
        return LakeChoice(
            stack.lake, stack.endpoint, stack, f"reading {stack.lake} on {on} (from {state_dir})"
        )
    return LakeChoice(
        f"s3://{bucket}",
        None,
        None,
        f"reading s3://{bucket} on AWS: no local stack is running (state folder {state_dir}); "
        "start one with `supermarket up`, or pass --lake DIR or --lake s3://bucket",
    )
