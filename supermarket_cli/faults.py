"""A fault-injecting reverse proxy for S3 on loopback, for soaks and tests (toxiproxy is not
packaged here).

In front of moto, for a fraction of calls it answers 503 SlowDown or 500 InternalError, resets
the connection (before forwarding, or halfway through the response), or delays the response;
every other call's bytes it forwards unchanged. It understands just enough HTTP/1.1 to find
where each call starts and ends on a kept-alive connection (Content-Length, chunked bodies,
HEAD, `Expect: 100-continue`). Point only S3 at it, the rest of AWS at moto:

    AWS_ENDPOINT_URL=http://127.0.0.1:MOTO  AWS_ENDPOINT_URL_S3=http://127.0.0.1:PROXY

`GET /_fault-proxy/stats` (a path no bucket can have) answers its counts as JSON, unfaulted;
`GET /_fault-proxy/rate/0.2` sets the share of calls faulted from then on (a soak's windows).
Bodies are held whole in memory while they pass: fine for logs of up to a few hundred MB.
"""

import asyncio
import contextlib
import dataclasses
import json
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SLOWDOWN = "slowdown"  # 503 SlowDown: S3's throttling
INTERNAL_ERROR = "internal_error"  # 500 InternalError
RESET = "reset"  # the connection reset before the call reaches S3
RESET_MID_RESPONSE = "reset_mid_response"  # S3 did it; the answer is cut off halfway
DELAY = "delay"  # the answer held back for delay_seconds
FAULTS = (SLOWDOWN, INTERNAL_ERROR, RESET, RESET_MID_RESPONSE, DELAY)
STATS_PATH = b"/_fault-proxy/stats"
RATE_PATH = b"/_fault-proxy/rate/"  # GET .../rate/0.2 sets the share of calls faulted from now
_HEAD_LIMIT = 1 << 20  # longest request or response head read


@dataclass(frozen=True)
class FaultPlan:
    """Which calls fail, and how. max_in_a_row caps consecutive failing faults across the proxy
    (a delay does not fail; None: no cap): with a cap below a client's attempts, a client calling
    one at a time always gets through, which makes a test's outcome certain, not likely."""

    rate: float = 0.2
    faults: tuple[str, ...] = FAULTS
    delay_seconds: float = 0.5
    max_in_a_row: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        unknown = set(self.faults) - set(FAULTS)
        if unknown or not self.faults:
            raise ValueError(f"faults must be some of {', '.join(FAULTS)}, got {self.faults}")


@dataclass
class FaultStats:
    calls: int = 0
    forwarded: int = 0  # reached the upstream (a reset mid-response and a delay count too)
    faults: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> bytes:
        return json.dumps(
            {"calls": self.calls, "forwarded": self.forwarded, "faults": dict(self.faults)}
        ).encode()


@dataclass(frozen=True)
class _Message:
    head: bytes
    body: bytes
    headers: dict[str, str]  # lower-case names

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"

    @property
    def interim(self) -> bool:
        """A 1xx response (100 Continue): the real one follows."""
        return self.head[9:10] == b"1"


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body as it came (sizes, chunks, trailers), to forward it unchanged."""
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                parts.append(trailer)
            parts.append(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))


async def _read_message(
    reader: asyncio.StreamReader,
    request_method: str | None = None,
    to_client: asyncio.StreamWriter | None = None,
) -> _Message:
    """One request (request_method None; an `Expect: 100-continue` answered on to_client) or
    the response to a request_method call."""
    head = await reader.readuntil(b"\r\n\r\n")
    headers = _headers(head)
    if to_client is not None and headers.get("expect", "").lower() == "100-continue":
        to_client.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it to send
        await to_client.drain()
    if request_method is not None:
        status = int(head.split(b" ", 2)[1])
        if request_method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return _Message(head, b"", headers)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _Message(head, await _read_chunked(reader), headers)
    if "content-length" in headers:
        return _Message(head, await reader.readexactly(int(headers["content-length"])), headers)
    if request_method is not None:  # a response without a length ends with its connection
        return _Message(head, await reader.read(), {**headers, "connection": "close"})
    return _Message(head, b"", headers)


_ERRORS = {  # status, reason, S3's error code, its message
    SLOWDOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    INTERNAL_ERROR: (500, "Internal Server Error", "InternalError", "We encountered an error."),
}


def _s3_error(status: int, reason: str, code: str, message: str, with_body: bool) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    body = body if with_body else b""  # an answer to HEAD has no body, whatever its length
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-request-id: {request_id}\r\n\r\n"
    )
    return head.encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST, as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """The proxy, on an asyncio loop; `running_fault_proxy` runs one on a thread of its own."""

    def __init__(
        self, upstream: str, plan: FaultPlan | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.plan = plan or FaultPlan()
        self.host, self.port = host, port
        self.stats = FaultStats()
        self._random = random.Random(self.plan.seed)
        self._in_a_row = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=_HEAD_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def _choose(self) -> str | None:
        """The fault for the next call, or None to forward it as it is."""
        self.stats.calls += 1
        capped = self.plan.max_in_a_row is not None and self._in_a_row >= self.plan.max_in_a_row
        if capped or self._random.random() >= self.plan.rate:
            self._in_a_row = 0
            return None
        fault = self._random.choice(self.plan.faults)
        self.stats.faults[fault] += 1
        self._in_a_row = 0 if fault == DELAY else self._in_a_row + 1  # a delay still succeeds
        return fault

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream = _Upstream(self.upstream)
        try:
            while True:
                try:
                    request = await _read_message(client, to_client=to_client)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the client is done with this connection
                if not await self._answer(request, to_client, upstream) or request.closes:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # either side went away mid-call: the client sees a dropped connection
        finally:
            self._connections.discard(task)
            upstream.close()
            to_client.close()

    async def _answer(
        self, request: _Message, to_client: asyncio.StreamWriter, upstream: "_Upstream"
    ) -> bool:
        """Answers one call; False when the client's connection is to end."""
        method, target = request.head.split(b" ", 2)[:2]
        if method == b"GET" and target.startswith(RATE_PATH):
            try:
                self.plan = dataclasses.replace(self.plan, rate=float(target[len(RATE_PATH) :]))
            except ValueError as exc:
                body, status = str(exc).encode(), "400 Bad Request"
            else:
                body, status = self.stats.to_json(), "200 OK"
            head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            to_client.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await to_client.drain()
            return True
        if method == b"GET" and target == STATS_PATH:
            body = self.stats.to_json()
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            to_client.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await to_client.drain()
            return True
        fault = self._choose()
        with_body = method != b"HEAD"
        if fault in (SLOWDOWN, INTERNAL_ERROR):
            to_client.write(_s3_error(*_ERRORS[fault], with_body))
            await to_client.drain()
            return True
        if fault == RESET:
            _reset(to_client)
            return False
        from_upstream, to_upstream = await upstream.streams()
        to_upstream.write(request.head + request.body)
        await to_upstream.drain()
        response = await _read_message(from_upstream, method.decode())
        while response.interim:  # the client had its 100 Continue from the proxy already
            response = await _read_message(from_upstream, method.decode())
        self.stats.forwarded += 1
        if response.closes:
            upstream.close()
        answer = response.head + response.body
        if fault == RESET_MID_RESPONSE:
            to_client.write(answer[: len(answer) // 2])  # a bodiless answer loses half its head
            await to_client.drain()
            _reset(to_client)
            return False
        if fault == DELAY:
            await asyncio.sleep(self.plan.delay_seconds)
        to_client.write(answer)
        await to_client.drain()
        return not response.closes


class _Upstream:
    """A client connection's own connection to the upstream, opened when first needed."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self.address, limit=_HEAD_LIMIT)
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@contextlib.contextmanager
def running_fault_proxy(
    upstream: str, plan: FaultPlan | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[FaultProxy]:
    """A proxy on a thread of its own with its own loop, stopped on exit; yields it (its url,
    its stats)."""
    loop = asyncio.new_event_loop()
    proxy = FaultProxy(upstream, plan, host, port)
    thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
        yield proxy
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def serve(proxy: FaultProxy, stop: threading.Event) -> FaultStats:
    """Runs a proxy on this thread until stop is set (the `fault-proxy` command)."""

    async def main() -> None:
        await proxy.start()
        print(f"fault-proxy {proxy.url} -> http://{proxy.upstream[0]}:{proxy.upstream[1]}, "
              f"{proxy.plan.rate:.0%} of calls faulted ({', '.join(proxy.plan.faults)})",
              flush=True)  # fmt: skip
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await proxy.close()

    asyncio.run(main())
    return proxy.stats
