"""The quarantine record: one JSON line per rejected record (or whole file), with its reason."""

import json

from lambda_ingest.transform import Reject


def quarantine_ndjson(source_key: str, rejects: list[Reject]) -> bytes:
    """Rejects as NDJSON; each line names its source, so any quarantine object stands alone."""
    lines = (
        json.dumps({"source_key": source_key, **reject.to_dict()}, ensure_ascii=False)
        for reject in rejects
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")
