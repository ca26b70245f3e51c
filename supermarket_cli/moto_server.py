"""moto, the local stack's AWS, served on loopback: `python -m supermarket_cli.moto_server`.

`python -m moto.server` serves moto's app with werkzeug's development server, which gives every
request a connection and a thread of its own (it always answers `Connection: close`), writes a
log line for it, and lists moto's package folder to find the request's service, under one lock
that all requests share. On the stack's calls that is ~3 ms of moto's CPU a request
(benchmarks/moto_requests.py), and moto was the busiest process of the running stack. Here the
same app (moto's dispatcher and backends, so the same behaviour) is served by waitress, which
keeps connections alive and hands requests to a pool of threads, and the service of a signed
request is looked up once per signing service and region. S3 listings are answered a page at
a time (supermarket_cli/moto_listing.py).
"""

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from supermarket_cli import moto_listing

# Signing services whose app moto picks from the signing service and region alone (its
# special cases look at the path or headers too; S3's are S3 Control's, excluded below).
# A request for any other service goes through moto's own lookup every time.
CACHED_SERVICES = frozenset(
    {"athena", "cloudformation", "ecs", "events", "glue", "iam", "lambda", "logs",
     "monitoring", "s3", "sns", "sqs", "sts"}
)  # fmt: skip
# Each SQS long poll holds a thread for up to 20 s: enough threads for every poller at once
# (the runtimes', the soak's second runtime's) with the rest of the stack's requests beside them.
THREADS = 32
# Clients keep pools of connections open (boto3, pyarrow's S3, DuckDB's httpfs, in every process
# of the stack); waitress's default of 100 would stop accepting new ones.
CONNECTION_LIMIT = 1_000
MAX_REQUEST_BYTES = 5 * 2**30  # S3's limit for one PUT; waitress's default is 1 GiB


def signed_service(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(signing service, region) of a SigV4-signed request whose app depends on nothing else."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/latest/", "/favicon.ico")):
        return None  # moto's own routes, looked up before any signature
    try:
        # "AWS4-HMAC-SHA256 Credential=KEY/20261206/us-east-1/s3/aws4_request, ..."
        scope = environ["HTTP_AUTHORIZATION"].split(",")[0].split()[1].split("/")
        region, service = scope[2], scope[3].lower()
    except (KeyError, IndexError):
        return None
    if service not in CACHED_SERVICES:
        return None
    if service == "s3" and (
        path.startswith("/v20180820/") or "s3-control" in environ.get("HTTP_HOST", "")
    ):
        return None
    return service, region


class MotoApp(DomainDispatcherApplication):
    """moto's dispatcher, remembering which app serves each signing service and region."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._apps: dict[tuple[str, str], Any] = {}
        self._remember = threading.Lock()

    def get_application(self, environ: dict[str, Any]) -> Any:
        key = signed_service(environ)
        if key is None:
            return super().get_application(environ)
        app = self._apps.get(key)
        if app is None:
            app = super().get_application(environ)
            with self._remember:
                app = self._apps.setdefault(key, app)
        return app


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _channel_class() -> type:
    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):
        def send_continue(self) -> None:
            # waitress 3.0.2 answers "Expect: 100-continue" on a request with no body (boto3's
            # PutObject of an empty file) with 100 Continue, then waits for a body that never
            # comes. With nothing to wait for, the request is whole: answer it (RFC 9110 10.1.1).
            if self.request.content_length == 0 and not self.request.chunked:
                self.request.expect_continue = False
                return
            super().send_continue()

    return Channel


def serve(app: WsgiApp, host: str, port: int) -> None:
    """Serves a WSGI app (moto's, or one in front of it) until SIGTERM or SIGINT."""
    from waitress.server import create_server

    def stop(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    server = create_server(
        app,
        host=host,
        port=port,
        threads=THREADS,
        connection_limit=CONNECTION_LIMIT,
        max_request_body_size=MAX_REQUEST_BYTES,
        asyncore_use_poll=True,  # select() stops at 1,024 descriptors
        ident="moto",
    )
    server.channel_class = _channel_class()
    server.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    # As moto.server: moto's CloudFormation calls back into this server for custom resources.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_listing.install()
    serve(MotoApp(), args.host, args.port)


if __name__ == "__main__":
    main()
