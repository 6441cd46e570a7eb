"""A loopback JSON-RPC proxy in front of a real node (anvil), with injectable faults.

It forwards every request body unchanged to ``upstream`` and returns the node's answer,
except where a fault fires. Faults are deterministic: requests are numbered from 1, and a
fault fires on the numbers it lists (``nth``) or every k-th (``every``), optionally only for
bodies that call ``method``:

- ``500`` / ``502`` / ``503``: that HTTP status with a plain-text body;
- ``slow``: answer after ``delay_s`` (a client timeout below it sees a timeout);
- ``garbage``: HTTP 200 with a body that is not JSON;
- ``rpc_error``: HTTP 200 with a JSON-RPC error object (code -32603, internal error).

Provider limits (always on when set, like a hosted node's):

- ``max_block_range``: ``eth_getLogs`` over more blocks answers -32602 "block range is too
  wide" (as Alchemy and others do);
- ``max_results``: ``eth_getLogs`` returning more logs answers -32005 "query returned more
  than N results" (Infura's wording).

Run it in a thread (``with RpcProxy(upstream) as proxy``) or as a subprocess, which prints
its URL on the first line of stdout::

    python tests/servers/rpc_proxy.py --upstream http://127.0.0.1:8545 --delay-s 0.02
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    kind: str  # 500, 502, 503, slow, garbage, rpc_error
    nth: tuple[int, ...] = ()
    every: int | None = None
    method: str | None = None
    delay_s: float = 4.0

    def fires(self, number: int, methods: list[str]) -> bool:
        if self.method is not None and self.method not in methods:
            return False
        return number in self.nth or (self.every is not None and number % self.every == 0)


@dataclass
class RpcProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    max_block_range: int | None = None
    max_results: int | None = None
    delay_s: float = 0.0  # added to every request (to make a run slow enough to kill)
    # Called with (request number, methods) before a request is forwarded: a test can change
    # the chain behind the proxy mid-run (a reorg between two of the indexer's reads).
    hook: Callable[[int, list[str]], None] | None = None
    port: int = 0
    log: list[tuple[int, list[str], str]] = field(default_factory=list)  # (n, methods, outcome)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, payload = proxy._handle(body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out on a slow fault and hung up: as intended

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handle(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        methods = [c.get("method", "") for c in calls]
        with self._lock:
            self._count += 1
            number = self._count
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.hook is not None:
            self.hook(number, methods)
        for fault in self.faults:
            if fault.fires(number, methods):
                self.log.append((number, methods, fault.kind))
                return self._fault(fault, calls)
        if not isinstance(request, list) and request.get("method") == "eth_getLogs":
            refusal = self._provider_limit(request)
            if refusal is not None:
                self.log.append((number, methods, "limit"))
                return 200, json.dumps(refusal).encode()
        self.log.append((number, methods, "ok"))
        return 200, self._forward(body)

    def _fault(self, fault: Fault, calls: list[dict[str, Any]]) -> tuple[int, bytes]:
        if fault.kind in ("500", "502", "503"):
            return int(fault.kind), b"upstream unavailable"
        if fault.kind == "slow":
            time.sleep(fault.delay_s)
            return 200, b'{"jsonrpc": "2.0", "id": 0, "result": null}'
        if fault.kind == "garbage":
            return 200, b"<html>gateway error</html>"
        if fault.kind == "rpc_error":
            error = {"code": -32603, "message": "internal error"}
            reply = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return 200, json.dumps(reply if len(calls) > 1 else reply[0]).encode()
        raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _provider_limit(self, request: dict[str, Any]) -> dict[str, Any] | None:
        (flt,) = request["params"]
        span = int(flt["toBlock"], 16) - int(flt["fromBlock"], 16) + 1
        rid = request.get("id")
        if self.max_block_range is not None and span > self.max_block_range:
            message = f"block range is too wide (max {self.max_block_range})"
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": message}}
        if self.max_results is not None:
            reply = json.loads(self._forward(json.dumps(request).encode()))
            if len(reply.get("result") or []) > self.max_results:
                message = f"query returned more than {self.max_results} results"
                return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32005, "message": message}}
        return None

    def _forward(self, body: bytes) -> bytes:
        req = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    def start(self) -> RpcProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--max-block-range", type=int, default=None)
    args = parser.parse_args()
    proxy = RpcProxy(
        args.upstream, port=args.port, delay_s=args.delay_s, max_block_range=args.max_block_range
    )
    print(proxy.url, flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
