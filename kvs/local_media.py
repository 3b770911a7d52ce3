"""The local twin of the KVS data plane, for tests and local runs: a real HTTP server on
127.0.0.1 that answers `GetDataEndpoint` (with its own URL), `GetMedia` (chunked MKV, the wire
format KVS uses) and `PutMedia` (records what a producer sends, acknowledges each fragment).

Streams hold fragments as KVS would send them from GetMedia (`add_fragment`), e.g. the bytes of a
recorded GetMedia response split at its EBML headers. Faults can be injected: throttling
(`ClientLimitExceededException`), a connection that breaks after N bytes, bodies written in chunks
of any size, and a live stream (`follow_s`) that holds the connection open for new fragments.

Selectors follow the KVS documentation: EARLIEST, NOW (only fragments added after the call),
FRAGMENT_NUMBER (from that fragment: `AfterFragmentNumber` "from where you want GetMedia to start";
the reader copes with either reading), CONTINUATION_TOKEN (the token is the number of the last
fragment read: start after it), PRODUCER_TIMESTAMP / SERVER_TIMESTAMP (first fragment at or after).

In a process of its own (a benchmark does this, so that serving the bytes is not charged to the
reader it measures), with streams loaded from recorded GetMedia responses:

    python -m kvs.local_media --stream cam-1=recorded.mkv [--chunk-bytes 16384 65536]

It prints `serving <url>` once every fragment is loaded, and serves until its stdin closes (or it
is interrupted): the process that started it holds the pipe, so the twin never outlives it.
`twin_process()` starts it so from Python (the benchmark, tests)."""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

logger = logging.getLogger(__name__)

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
SEGMENT_ID = b"\x18\x53\x80\x67"


def split_fragments(data: bytes) -> list[bytes]:
    """A recorded GetMedia response -> one byte string per fragment (cut at the EBML headers).

    An EBML header counts only when a Segment follows it: the four bytes of its id can turn up
    inside video data (about once in 4 GB of it, which long recordings reach)."""
    starts = [m.start() for m in re.finditer(re.escape(EBML_MAGIC), data) if _segment_follows(data, m.end())]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)], strict=True)]


def _segment_follows(data: bytes, pos: int) -> bool:
    """Whether the EBML header whose size starts at `pos` is followed by a Segment."""
    if pos >= len(data) or data[pos] == 0:
        return False
    length = 9 - data[pos].bit_length()
    size = int.from_bytes(data[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    end = pos + length + size
    return data[end : end + len(SEGMENT_ID)] == SEGMENT_ID


def _tag(fragment: bytes, name: bytes) -> str | None:
    """The TagString after the TagName `name`, read by hand (independent of `kvs.parser`)."""
    at = fragment.find(name + b"\x44\x87")
    if at < 0:
        return None
    pos = at + len(name) + 2
    length = 9 - fragment[pos].bit_length()
    size = int.from_bytes(fragment[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    return fragment[pos + length : pos + length + size].decode()


@dataclass
class StoredFragment:
    data: bytes
    number: str
    producer_timestamp: float
    server_timestamp: float


@dataclass
class LocalStream:
    name: str
    fragments: list[StoredFragment] = field(default_factory=list)
    break_after: list[int] = field(default_factory=list)
    """Bytes after which the next GetMedia connections break (one entry per connection)."""
    throttle_next: int = 0
    """Answer this many next GetMedia calls with ClientLimitExceededException."""
    follow_s: float = 0.0
    """After the last fragment, keep the connection open this long for new ones (a live stream)."""
    chunk_range: tuple[int, int] = (1, 16384)
    """Body writes are of a random size in this range: fragments cut at any byte."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    puts: list[dict[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add_fragment(self, data: bytes) -> StoredFragment:
        number = _tag(data, b"AWS_KINESISVIDEO_FRAGMENT_NUMBER")
        if number is None:
            raise ValueError("fragment has no AWS_KINESISVIDEO_FRAGMENT_NUMBER tag")
        fragment = StoredFragment(
            data=data,
            number=number,
            producer_timestamp=float(_tag(data, b"AWS_KINESISVIDEO_PRODUCER_TIMESTAMP") or 0),
            server_timestamp=float(_tag(data, b"AWS_KINESISVIDEO_SERVER_TIMESTAMP") or 0),
        )
        with self.changed:
            self.fragments.append(fragment)
            self.changed.notify_all()
        return fragment

    def start_index(self, selector: dict[str, Any]) -> int:
        kind = selector.get("StartSelectorType")
        numbers = [f.number for f in self.fragments]
        if kind == "EARLIEST":
            return 0
        if kind == "NOW":
            return len(self.fragments)
        if kind == "FRAGMENT_NUMBER":
            return _index_at_or_after(numbers, int(selector["AfterFragmentNumber"]))
        if kind == "CONTINUATION_TOKEN":
            return _index_at_or_after(numbers, int(selector["ContinuationToken"]) + 1)
        if kind in ("PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"):
            when = float(selector["StartTimestamp"])
            attr = "producer_timestamp" if kind == "PRODUCER_TIMESTAMP" else "server_timestamp"
            return next(
                (i for i, f in enumerate(self.fragments) if getattr(f, attr) >= when), len(self.fragments)
            )
        raise ValueError(f"unknown StartSelectorType {kind!r}")


def _index_at_or_after(numbers: list[str], number: int) -> int:
    return next((i for i, n in enumerate(numbers) if int(n) >= number), len(numbers))


class LocalKvsMedia:
    """`with LocalKvsMedia() as kvs: kvs.stream("cam-1").add_fragment(...)`; `kvs.env()` points
    boto3's `kinesisvideo` client at it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> None:
        self.host = host
        self.port = port  # 0: any free port, known once started (no race with another process)
        self.streams: dict[str, LocalStream] = {}
        self.endpoint_calls = 0
        self.random = random.Random(seed)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stream(self, name: str) -> LocalStream:
        if name not in self.streams:
            self.streams[name] = LocalStream(name)
        return self.streams[name]

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_KINESIS_VIDEO": self.url}

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"media": self})
        self._server = _QuietServer((self.host, self.port), handler)
        self.port = int(self._server.server_address[1])
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-kvs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("local kvs: client %s went away", client_address)  # readers hang up mid-body


class _Handler(BaseHTTPRequestHandler):
    media: LocalKvsMedia
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local kvs: %s", format % args)

    def do_POST(self) -> None:
        routes = {
            "/getDataEndpoint": self._get_data_endpoint,
            "/getMedia": self._get_media,
            "/putMedia": self._put_media,
        }
        route = routes.get(self.path)
        if route is None:
            self._error(404, "ResourceNotFoundException", f"no such API {self.path}")
            return
        route()

    def _json_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _known_stream(self, name: str | None) -> LocalStream | None:
        stream = self.media.streams.get(name or "")
        if stream is None:
            self._error(404, "ResourceNotFoundException", f"stream {name} not found")
        return stream

    def _get_data_endpoint(self) -> None:
        request = self._json_body()
        if self._known_stream(request.get("StreamName")) is None:
            return
        self.media.endpoint_calls += 1
        body = json.dumps({"DataEndpoint": self.media.url}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _get_media(self) -> None:
        request = self._json_body()
        stream = self._known_stream(request.get("StreamName"))
        if stream is None:
            return
        selector = request.get("StartSelector", {})
        stream.requests.append(selector)
        if stream.throttle_next > 0:
            stream.throttle_next -= 1
            self._error(400, "ClientLimitExceededException", "too many GetMedia calls")
            return
        try:
            index = stream.start_index(selector)
        except (ValueError, KeyError) as exc:
            self._error(400, "InvalidArgumentException", str(exc))
            return
        break_after = stream.break_after.pop(0) if stream.break_after else None
        self.send_response(200)
        self.send_header("Content-Type", "video/webm")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        low, high = stream.chunk_range
        while True:
            with stream.changed:
                if index >= len(stream.fragments) and stream.follow_s > 0:
                    stream.changed.wait(stream.follow_s)
                if index >= len(stream.fragments):
                    break
                data = stream.fragments[index].data
            index += 1
            pos = 0
            while pos < len(data):
                size = self.media.random.randint(low, high)
                piece = data[pos : pos + size]
                if break_after is not None and sent + len(piece) >= break_after:
                    piece = piece[: break_after - sent]
                    self._chunk(piece)
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # no final chunk: a broken response
                    self.close_connection = True
                    return
                self._chunk(piece)
                sent += len(piece)
                pos += len(piece)
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, piece: bytes) -> None:
        if piece:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))

    def _put_media(self) -> None:
        from kvs.parser import MkvFrame, MkvStreamParser  # the receiving side of PutMedia

        name = self.headers.get("x-amzn-stream-name")
        stream = self._known_stream(name)
        if stream is None:
            return
        parser = MkvStreamParser()
        frames = keyframes = 0
        body = bytearray()
        for piece in self._request_chunks():
            body += piece
            for event in parser.feed(piece):
                if isinstance(event, MkvFrame):
                    frames += 1
                    keyframes += event.keyframe
        parser.close()
        stream.puts.append(
            {
                "headers": {key.lower(): value for key, value in self.headers.items()},
                "frames": frames,
                "keyframes": keyframes,
                "bytes": len(body),
                "body": bytes(body),
                "received_at": time.time(),
            }
        )
        acks = b"".join(
            json.dumps({"EventType": kind, "FragmentTimecode": i, "FragmentNumber": str(10**20 + i)}).encode()
            + b"\n"
            for i in range(keyframes)
            for kind in ("RECEIVED", "PERSISTED")
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(acks)))
        self.end_headers()
        self.wfile.write(acks)

    def _request_chunks(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            while length > 0:
                piece = self.rfile.read(min(65536, length))
                if not piece:
                    return
                length -= len(piece)
                yield piece


# -- a twin in a process of its own ----------------------------------------------------------------


def _stream_file(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name, Path(path)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kvs.local_media",
        description="Serve the local KVS twin (GetDataEndpoint, GetMedia, PutMedia) until stdin closes.",
    )
    parser.add_argument(
        "--stream",
        type=_stream_file,
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a stream and the recorded GetMedia response (fragments one after another) it serves; "
        "repeatable (default: none)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one)")
    parser.add_argument(
        "--chunk-bytes",
        type=int,
        nargs=2,
        default=(1, 16384),
        metavar=("LOW", "HIGH"),
        help="GetMedia body writes are of a random size in [LOW, HIGH] bytes (default 1 16384)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the write sizes (default 0)")
    return parser


@dataclass
class TwinProcess:
    """A twin serving in a process of its own: its URL, the line it announced itself with, the process."""

    url: str
    announced: str
    process: subprocess.Popen[str]


@contextmanager
def twin_process(streams: dict[str, Path], *args: str, cwd: Path | None = None) -> Iterator[TwinProcess]:
    """`python -m kvs.local_media` serving `streams` (name -> recorded GetMedia response), with
    more of its flags in `args`, until the block ends: then its stdin closes and it exits (killed
    if it has not within 10 s). Raises RuntimeError when it does not announce itself."""
    command = [sys.executable, "-m", "kvs.local_media", *args]
    for name, path in streams.items():
        command += ["--stream", f"{name}={path}"]
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()  # "serving http://127.0.0.1:PORT (name: N fragments)"
        if not line.startswith("serving "):
            raise RuntimeError(f"the local KVS twin did not start: {line!r}")
        yield TwinProcess(line.split()[1], line, process)
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    low, high = args.chunk_bytes
    if not 1 <= low <= high:
        raise SystemExit(f"--chunk-bytes: need 1 <= LOW <= HIGH, got {low} {high}")
    media = LocalKvsMedia(args.host, args.port, seed=args.seed)
    for name, path in args.stream:
        stream = media.stream(name)
        stream.chunk_range = (low, high)
        for fragment in split_fragments(path.read_bytes()):
            stream.add_fragment(fragment)
    with media:
        counts = ", ".join(f"{name}: {len(s.fragments)} fragments" for name, s in media.streams.items())
        print(f"serving {media.url} ({counts or 'no streams'})", flush=True)
        try:
            sys.stdin.read()  # until the parent closes the pipe (or goes away)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
