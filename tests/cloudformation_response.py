"""A stand-in for the pre-signed S3 URL a CloudFormation custom resource answers: a loopback
HTTP server that records every PUT body as JSON."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yields (url, answers): each PUT to url appends its JSON body to answers."""
    answers: list[dict[str, Any]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answers.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_port}/cloudformation-response?X-Amz-Signature=1",
            answers,
        )
    finally:
        server.shutdown()
        server.server_close()


def custom_resource_event(request: str, url: str, **properties: str) -> dict[str, Any]:
    """A custom resource request as CloudFormation sends it."""
    event = {
        "RequestType": request,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/supermarket/1",
        "RequestId": f"request-{request.lower()}",
        "LogicalResourceId": "LakeTables",
        "ResourceType": "Custom::LakeTables",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:1:function:f"}
        | properties,
    }
    if request != "Create":
        event["PhysicalResourceId"] = f"{properties.get('Database', '')}/iceberg-tables"
    return event
