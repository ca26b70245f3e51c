"""The CloudFormation custom resource that creates the lake's Iceberg tables on deploy, from
lake_contract.tables, the one definition used locally too. CloudFormation's own
AWS::Glue::Table cannot say an Iceberg table's partition spec, field ids or properties, so the
template asks this function instead; it runs from the ingest function's zip.

Create and Update create the tables that are missing and leave the others as they are; Delete
keeps them, because they are the lake's data and history.
"""

import json
import logging
import urllib.request
from typing import Any

from lake_contract import tables

LOG = logging.getLogger(__name__)
REASON_LIMIT = 1_000  # characters: CloudFormation refuses a response over 4 KB


def on_deploy(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Handles one custom resource request and answers it at its ResponseURL, whatever
    happens: CloudFormation waits an hour for an answer that never comes."""
    properties = event.get("ResourceProperties", {})
    database = str(properties.get("Database", ""))
    physical_id = event.get("PhysicalResourceId") or f"{database}/iceberg-tables"
    try:
        request = event["RequestType"]
        if request in ("Create", "Update"):
            bucket = properties["Bucket"]
            created = tables.create_tables(
                tables.glue_catalog(), f"s3://{bucket}", database, with_database=False
            )
            reason = f"the Iceberg tables {', '.join(created)} exist in {database}"
        elif request == "Delete":
            reason = "kept: the tables hold the lake's data and history"
        else:
            raise ValueError(f"unknown RequestType {request!r}")
        status = "SUCCESS"
    except Exception as error:
        LOG.exception("the lake's tables could not be set up")
        status, reason = "FAILED", f"{type(error).__name__}: {error}"[:REASON_LIMIT]
    response = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "Data": {"Database": database},
    }
    _answer(event["ResponseURL"], response)
    return response


def _answer(url: str, response: dict[str, Any]) -> None:
    # A pre-signed S3 URL: PUT, and no Content-Type, which the signature does not cover.
    body = json.dumps(response).encode()
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
