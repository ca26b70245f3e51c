"""moto server that counts every request it serves, by service, billed kind and lake object
kind, with the bytes in and out: what the cost benchmark bills. Every client counts (boto3,
pyarrow's S3 under pyiceberg, DuckDB's httpfs), since it is counted where they all arrive.

    python -m supermarket_cost.counting_moto -p PORT

GET /_cost/counts returns the counts as JSON; moto serves everything else as the stack's moto
server does (supermarket_cli.moto_server).
"""

import argparse
import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

COUNTS_PATH = "/_cost/counts"
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


def object_kind(key: str) -> str:
    """What a lake key holds, as the cost model groups objects."""
    if key.startswith("lake/"):
        if "/metadata/" in key:
            if key.endswith(".metadata.json"):
                return "iceberg_metadata"
            return "iceberg_manifest_list" if "/snap-" in key else "iceberg_manifest"
        return "data"
    return key.split("/", 1)[0] or "bucket"


def s3_kind(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str, str]:
    """(billed tier, object kind, operation) of an S3 request, path-style. Tiers: PUT (PUT,
    COPY, POST), LIST (billed as PUT), GET (GET, HEAD), DELETE (free)."""
    _, _, key = unquote(path).lstrip("/").partition("/")
    kind = object_kind(key) if key else "bucket"
    if method == "DELETE":
        return "DELETE", kind, "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "POST" and "delete" in query:
        return "DELETE", kind, "DeleteObjects"
    if not key:  # a request on the bucket itself
        return ("LIST", kind, "ListObjects") if method == "GET" else ("PUT", kind, method)
    if method == "POST":
        operation = "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
        return "PUT", kind, operation
    if method == "PUT":
        return "PUT", kind, "UploadPart" if "partNumber" in query else "PutObject"
    return "GET", kind, "HeadObject" if method == "HEAD" else "GetObject"


class CountingApp:
    """WSGI middleware in front of moto's app."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.bytes_in: Counter[str] = Counter()
        self.bytes_out: Counter[str] = Counter()

    def _kind(self, environ: dict[str, Any]) -> str:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        found = _SERVICE.search(auth)
        service = found.group(1) if found else "unsigned"
        if service == "s3":
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            tier, kind, operation = s3_kind(environ["REQUEST_METHOD"], environ["PATH_INFO"], query)
            return f"s3 {tier} {kind} {operation}"
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:  # JSON protocol (Glue, SQS): Service.Operation
            return f"{service} {target.rsplit('.', 1)[-1]}"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return f"{service} {action}"

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with self.lock:
                body = json.dumps(
                    {
                        "requests": self.requests,
                        "bytes_in": self.bytes_in,
                        "bytes_out": self.bytes_out,
                    }
                ).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        kind = self._kind(environ)
        with self.lock:
            self.requests[kind] += 1
            self.bytes_in[kind] += int(environ.get("CONTENT_LENGTH") or 0)
        return self._counted(kind, self.app(environ, start_response))

    def _counted(self, kind: str, body: Iterable[bytes]) -> Iterable[bytes]:
        sent = 0
        try:
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close:
                close()
            with self.lock:
                self.bytes_out[kind] += sent


def main() -> None:
    from supermarket_cli.moto_server import MotoApp, serve

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    serve(CountingApp(MotoApp()), args.host, args.port)


if __name__ == "__main__":
    main()
