"""A real local HTTP server that speaks Binance's REST wire format, with injectable faults.

Tests run it in a background thread (``with ExchangeServer(...) as server``); benchmarks and
crash tests run it as a subprocess, which prints its URL on the first line of stdout::

    python tests/servers/exchange_server.py --port 0 --data ../shared/data/real
    python tests/servers/exchange_server.py --data ../shared/data/real --fault 500:every=3

Endpoints and their semantics follow Binance's documentation:

- ``GET /api/v3/klines`` (spot, limit default 500, max 1000) and ``GET /fapi/v1/klines``
  (USDⓈ-M, max 1500): symbol, interval, startTime and endTime (both inclusive filters on the
  open time), limit. Without startTime the newest ``limit`` rows up to endTime are returned.
  Rows are ``[openTime, "open", "high", "low", "close", "volume", closeTime,
  "quoteAssetVolume", trades, "takerBuyBase", "takerBuyQuote", "0"]``; prices are strings
  written with ``repr(float64)`` so that ``float(text)`` gives back the served value bit for
  bit; closeTime = openTime + interval - 1.
- ``GET /fapi/v1/fundingRate``: symbol, startTime, endTime, limit (default 100, max 1000);
  ``[{"symbol", "fundingTime", "fundingRate", "markPrice"}]``, markPrice ``""`` where the
  served frame has NaN (or absent, with ``mark_price_missing="absent"``).
- Errors as Binance sends them: 400 ``{"code": -1121, "msg": "Invalid symbol."}`` and friends.
- Weight: ``X-MBX-USED-WEIGHT-1M`` grows per request (klines by limit: <100: 1, <500: 2,
  <=1000: 5, else 10; funding 1) and resets each window (a minute of the server's clock);
  a request that would pass the limit (1200 spot, 2400 USDⓈ-M) gets 429 with Retry-After.

Faults (``Fault``) are deterministic: the server numbers requests from 1 and a fault fires on
the request numbers it lists (``nth``) or on every k-th (``every``), optionally only for
paths starting with ``path``. ``requests`` logs every request as (path, params, status,
fault) for the tests to inspect.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import email.utils
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import polars as pl

from research_lib.config import INTERVAL_MS

if __package__:
    from servers.served_data import load_real
else:  # run as a script: python tests/servers/exchange_server.py
    from served_data import load_real

KLINE_PATHS = {"/api/v3/klines": "spot", "/fapi/v1/klines": "usdm"}
FUNDING_PATH = "/fapi/v1/fundingRate"
MAX_LIMIT = {"spot": 1000, "usdm": 1500, "funding": 1000}
DEFAULT_LIMIT = {"spot": 500, "usdm": 500, "funding": 100}
WEIGHT_LIMIT = {"spot": 1200, "usdm": 2400}
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
FAULT_KINDS = (
    "429",  # too many requests, with Retry-After
    "418",  # IP ban, with Retry-After
    "500",
    "502",
    "503",
    "truncate",  # a 200 whose JSON body is cut in half (Content-Length matches the cut)
    "not_json",  # a 200 with an HTML body
    "wrong_shape",  # a 200 with a JSON object where a list belongs
    "short_row",  # a 200 whose first row lacks its last field
    "bad_number",  # a 200 whose first row has open = "n/a" (funding: fundingRate)
    "negative_price",  # a 200 whose first row has a negative low
    "off_grid",  # a 200 whose first row's open time is 1 ms off the interval grid
    "slow",  # the right answer after delay_s (longer than the client's timeout)
    "drop",  # the connection closes without a response
    "drop_mid_body",  # headers and half the body, then the connection closes
)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One deterministic fault: ``kind`` on request numbers ``nth`` or every ``every``-th.

    Examples
    --------
    >>> Fault("500", every=2).fires(4, "/api/v3/klines"), Fault("drop", nth=(1,)).fires(2, "/")
    (True, False)
    """

    kind: str
    nth: tuple[int, ...] = ()
    every: int = 0
    path: str | None = None
    retry_after_s: float = 1.0
    delay_s: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is unknown; use one of {FAULT_KINDS}")

    def fires(self, number: int, path: str) -> bool:
        """Whether the ``number``-th request (1-based), to ``path``, gets this fault."""
        if self.path is not None and not path.startswith(self.path):
            return False
        return number in self.nth or (self.every > 0 and number % self.every == 0)


@dataclasses.dataclass(frozen=True)
class Logged:
    """One request as the server saw it; status 0 means the connection was dropped."""

    path: str
    params: dict[str, str]
    status: int
    fault: str | None


@dataclasses.dataclass
class _Series:
    """One symbol's served rows: numeric arrays and the pre-rendered JSON of each row."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]
    rows: list[bytes]


class _BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> bytes:
        return _error(self.code, self.msg)


class _CoinbaseError(_BinanceError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, 0, message)

    def body(self) -> bytes:
        return json.dumps({"message": self.msg}).encode()


class _CoingeckoError(_BinanceError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, 0, message)

    def body(self) -> bytes:
        return json.dumps({"error": self.msg}).encode()


COINBASE_GRANULARITY = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 21600: "6h", 86400: "1d"}
COINBASE_MAX_CANDLES = 300


def _fmt(value: float) -> str:
    return repr(float(value))


def _kline_row(ts: int, values: Sequence[float], step_ms: int, **override: Any) -> bytes:
    if override:
        return _kline_row_with(ts, values, step_ms, override)
    o, h, low, c, v = values
    # One format string per row: the server renders a year of hourly bars in ~0.1 s.
    return (
        f'[{ts},"{o!r}","{h!r}","{low!r}","{c!r}","{v!r}",{ts + step_ms - 1},"{c * v!r}",'
        f'{int(v) % 997 + 1},"{v / 2!r}","{c * v / 2!r}","0"]'
    ).encode()


def _kline_row_with(
    ts: int, values: Sequence[float], step_ms: int, override: Mapping[str, Any]
) -> bytes:
    fields = json.loads(_kline_row(ts, values, step_ms))
    names = ["openTime", "open", "high", "low", "close", "volume", "closeTime"]
    for name, value in override.items():
        fields[names.index(name)] = value
    return json.dumps(fields, separators=(",", ":")).encode()


def _funding_row(
    symbol: str, ts: int, rate: float, mark: float, missing: str, **override: Any
) -> bytes:
    row: dict[str, Any] = {"symbol": symbol, "fundingTime": ts, "fundingRate": _fmt(rate)}
    if not math.isnan(mark):
        row["markPrice"] = _fmt(mark)
    elif missing == "empty":
        row["markPrice"] = ""
    row.update(override)
    return json.dumps(row, separators=(",", ":")).encode()


def _kline_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


class ExchangeServer:
    """Serve polars frames as Binance klines and funding rates on 127.0.0.1.

    Parameters
    ----------
    spot_bars, usdm_bars
        Interval (``"1h"``) -> frame with ts, symbol, open, high, low, close, volume.
    funding
        Frame with ts, symbol, funding_rate, mark_price (NaN: not reported).
    faults
        Faults to inject; replace them at any time with ``set_faults``.
    weight_limits, weight_window_s
        Weight allowed per market and window, and the window's length in seconds.
    mark_price_missing
        How a NaN mark price is sent: ``"empty"`` (``""``) or ``"absent"`` (no key).
    clock
        The server's clock (epoch seconds) for its ``Date`` header and weight windows.
    """

    def __init__(
        self,
        *,
        spot_bars: Mapping[str, pl.DataFrame] | None = None,
        usdm_bars: Mapping[str, pl.DataFrame] | None = None,
        funding: pl.DataFrame | None = None,
        coinbase_bars: Mapping[str, pl.DataFrame] | None = None,
        coingecko_prices: pl.DataFrame | None = None,
        faults: Sequence[Fault] = (),
        weight_limits: Mapping[str, int] | None = None,
        weight_window_s: float = 60.0,
        mark_price_missing: str = "empty",
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._frames: dict[tuple[str, str], pl.DataFrame] = {}
        for market, bars in (("spot", spot_bars), ("usdm", usdm_bars)):
            for interval, frame in (bars or {}).items():
                if interval not in INTERVAL_MS:
                    raise ValueError(f"interval {interval!r} is not one of {list(INTERVAL_MS)}")
                self._frames[(market, interval)] = frame
        if funding is not None:
            self._frames[("funding", "")] = funding
        for interval, frame in (coinbase_bars or {}).items():
            self._frames[("coinbase", interval)] = frame
        if coingecko_prices is not None:
            self._frames[("coingecko", "")] = coingecko_prices
        self._series: dict[tuple[str, str, str], _Series] = {}
        self.faults: list[Fault] = list(faults)
        self.weight_limits = {**WEIGHT_LIMIT, **(weight_limits or {})}
        self.weight_window_s = weight_window_s
        self.mark_price_missing = mark_price_missing
        self.clock = clock
        self.requests: list[Logged] = []
        self._lock = threading.Lock()
        self._count = 0
        self._weight: dict[str, tuple[int, int]] = {}  # market -> (window, used)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests handled at once since ``set_faults``
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ExchangeServer:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ExchangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_faults(self, *faults: Fault) -> None:
        """Replace the faults, clear the request log and numbering, and reset the weights.

        First waits (up to 10 s) for requests still in flight, such as a slow response whose
        client already timed out, so that they do not count against the next test.
        """
        deadline = time.monotonic() + 10.0
        while self.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.faults = list(faults)
            self.requests = []
            self._count = 0
            self._weight = {}
            self.max_in_flight = 0

    def frame(self, market: str, interval: str, symbol: str) -> pl.DataFrame:
        """The served rows of one symbol (market ``"spot"``/``"usdm"``, or ``"funding"``)."""
        frame = self._frames[(market, interval if market != "funding" else "")]
        return frame.filter(pl.col("symbol").cast(pl.String) == symbol).sort("ts")

    # -- request handling -------------------------------------------------------------------

    def _next(self, path: str) -> tuple[int, Fault | None]:
        with self._lock:
            self._count += 1
            number = self._count
        return number, next((f for f in self.faults if f.fires(number, path)), None)

    def _log(self, path: str, params: dict[str, str], status: int, fault: Fault | None) -> None:
        with self._lock:
            self.requests.append(Logged(path, params, status, fault.kind if fault else None))

    def _charge(self, market: str, weight: int) -> tuple[int, float | None]:
        """Add ``weight``; return (used, None) or (used, retry_after_s) when over the limit."""
        now = self.clock()
        window = int(now // self.weight_window_s)
        with self._lock:
            seen, used = self._weight.get(market, (window, 0))
            if seen != window:
                used = 0
            if used + weight > self.weight_limits[market]:
                self._weight[market] = (window, used)
                return used, max(0.0, (window + 1) * self.weight_window_s - now)
            used += weight
            self._weight[market] = (window, used)
            return used, None

    def _series_of(self, market: str, interval: str, symbol: str) -> _Series:
        key = (market, interval, symbol)
        with self._lock:
            series = self._series.get(key)
        if series is not None:
            return series
        frame = self._frames.get((market, interval if market != "funding" else ""))
        if frame is None:
            raise _BinanceError(400, -1120, "Invalid interval.")
        rows = frame.filter(pl.col("symbol").cast(pl.String) == symbol).sort("ts")
        if rows.height == 0:
            raise _BinanceError(400, -1121, "Invalid symbol.")
        ts = rows["ts"].to_numpy()
        if market == "funding":
            columns = {c: rows[c].to_numpy() for c in ("funding_rate", "mark_price")}
            rendered = [
                _funding_row(symbol, int(t), r, m, self.mark_price_missing)
                for t, r, m in zip(
                    ts.tolist(),
                    columns["funding_rate"].tolist(),
                    columns["mark_price"].tolist(),
                    strict=True,
                )
            ]
        else:
            step = INTERVAL_MS[interval]
            names = ("open", "high", "low", "close", "volume")
            columns = {c: rows[c].to_numpy() for c in names}
            values = np.column_stack([columns[c] for c in names]).tolist()
            rendered = [_kline_row(t, v, step) for t, v in zip(ts.tolist(), values, strict=True)]
        series = _Series(ts, columns, rendered)
        with self._lock:
            self._series[key] = series
        return series

    def answer(self, path: str, params: dict[str, str], fault: Fault | None) -> tuple[int, bytes]:
        """Status and body of one request (raises ``_BinanceError`` for venue errors)."""
        if path.startswith("/products/"):
            return 200, self._coinbase_candles(path, params, fault)
        if path.startswith("/api/v3/coins/"):
            return 200, self._coingecko_range(path, params, fault)
        if path in KLINE_PATHS:
            market = KLINE_PATHS[path]
            interval = params.get("interval", "")
            if interval not in INTERVAL_MS:
                raise _BinanceError(400, -1120, "Invalid interval.")
        elif path == FUNDING_PATH:
            market, interval = "funding", ""
        else:
            raise _BinanceError(404, -1000, f"Unknown path {path}.")
        symbol = params.get("symbol")
        if not symbol:
            raise _BinanceError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT[market]))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError as exc:
            raise _BinanceError(400, -1100, f"Illegal characters in a parameter: {exc}") from None
        if not 1 <= limit <= MAX_LIMIT[market]:
            raise _BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            raise _BinanceError(400, -1023, "Start time is greater than end time.")
        series = self._series_of(market, interval, symbol)
        lo = 0 if start is None else int(np.searchsorted(series.ts, start, side="left"))
        hi = len(series.ts) if end is None else int(np.searchsorted(series.ts, end, "right"))
        if start is None:
            lo = max(lo, hi - limit)
        else:
            hi = min(hi, lo + limit)
        rows = series.rows[lo:hi]
        if fault is not None and rows:
            rows = self._corrupt_first(rows, series, lo, market, interval, symbol, fault.kind)
        body = b"[" + b",".join(rows) + b"]"
        if fault is not None and fault.kind == "wrong_shape":
            body = b'{"data":' + body + b"}"
        return 200, body

    def _coinbase_candles(self, path: str, params: dict[str, str], fault: Fault | None) -> bytes:
        """Coinbase Exchange candles: ``[time_s, low, high, open, close, volume]``, newest first.

        start and end are ISO 8601 and both inclusive; more than 300 candles is a 400.
        """
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[2] != "candles":
            raise _CoinbaseError(404, "NotFound")
        product = parts[1]
        try:
            granularity = int(params.get("granularity", "60"))
        except ValueError:
            raise _CoinbaseError(400, "Unsupported granularity") from None
        interval = COINBASE_GRANULARITY.get(granularity)
        if interval is None:
            raise _CoinbaseError(400, "Unsupported granularity")
        frame = self._frames.get(("coinbase", interval))
        if frame is None:
            raise _CoinbaseError(400, "Unsupported granularity")
        rows = frame.filter(pl.col("symbol").cast(pl.String) == product)
        if rows.height == 0:
            raise _CoinbaseError(404, "NotFound")
        try:
            start = int(dt.datetime.fromisoformat(params["start"]).timestamp() * 1000)
            end = int(dt.datetime.fromisoformat(params["end"]).timestamp() * 1000)
        except (KeyError, ValueError):
            raise _CoinbaseError(400, "Invalid start or end") from None
        if end < start:
            raise _CoinbaseError(400, "start must be before end")
        if (end - start) // (granularity * 1000) + 1 > COINBASE_MAX_CANDLES:
            raise _CoinbaseError(
                400,
                "granularity too small for the requested time range. Count of aggregations "
                "requested exceeds 300",
            )
        rows = rows.filter(pl.col("ts").is_between(start, end)).sort("ts", descending=True)
        out = [
            [t // 1000, low, high, o, c, v]
            for t, o, high, low, c, v in rows.select(
                "ts", "open", "high", "low", "close", "volume"
            ).iter_rows()
        ]
        if fault is not None and out:
            kind = fault.kind  # corrupts the oldest candle (the last row: newest come first)
            if kind == "short_row":
                out[-1] = out[-1][:5]
            elif kind == "bad_number":
                out[-1][3] = "n/a"
            elif kind == "negative_price":
                out[-1][1] = -out[-1][1]
            elif kind == "off_grid":
                out[-1][0] += 1
        body = json.dumps(out, separators=(",", ":")).encode()
        if fault is not None and fault.kind == "wrong_shape":
            body = b'{"candles":' + body + b"}"
        return body

    def _coingecko_range(self, path: str, params: dict[str, str], fault: Fault | None) -> bytes:
        """CoinGecko ``market_chart/range``: ``{"prices", "market_caps", "total_volumes"}``.

        from and to are epoch seconds, both inclusive. Granularity is automatic as on the
        venue: a range over 90 days gets one point per UTC day (the day's first), otherwise
        every served point (hourly; the venue would send 5-minutely under a day, which these
        frames cannot, so such requests are logged and answered hourly).
        """
        parts = path.strip("/").split("/")
        if len(parts) != 6 or parts[4:] != ["market_chart", "range"]:
            raise _CoingeckoError(404, "Not found")
        coin = parts[3]
        if params.get("vs_currency") != "usd":
            raise _CoingeckoError(400, "invalid vs_currency")
        frame = self._frames.get(("coingecko", ""))
        rows = None if frame is None else frame.filter(pl.col("symbol") == coin)
        if rows is None or rows.height == 0:
            raise _CoingeckoError(404, "coin not found")
        try:
            start_s, end_s = float(params["from"]), float(params["to"])
        except (KeyError, ValueError):
            raise _CoingeckoError(400, "invalid from or to") from None
        rows = rows.filter(pl.col("ts").is_between(start_s * 1000, end_s * 1000)).sort("ts")
        if end_s - start_s > 90 * 86_400:
            rows = rows.filter(pl.col("ts") == pl.col("ts").min().over(pl.col("ts") // 86_400_000))
        series = {
            key: [[t, v] for t, v in zip(rows["ts"].to_list(), rows[column].to_list(), strict=True)]
            for key, column in (
                ("prices", "price"),
                ("market_caps", "market_cap"),
                ("total_volumes", "total_volume"),
            )
        }
        if fault is not None and series["prices"]:
            kind = fault.kind
            if kind == "short_row":
                series["prices"][0] = series["prices"][0][:1]
            elif kind == "bad_number":
                series["prices"][0][1] = "n/a"
            elif kind == "negative_price":
                series["prices"][0][1] = -series["prices"][0][1]
            elif kind == "off_grid":  # the three arrays disagree on a timestamp
                series["total_volumes"][0][0] += 1
            elif kind == "wrong_shape":
                return json.dumps(series["prices"]).encode()
        return json.dumps(series, separators=(",", ":")).encode()

    def _corrupt_first(
        self,
        rows: list[bytes],
        series: _Series,
        at: int,
        market: str,
        interval: str,
        symbol: str,
        kind: str,
    ) -> list[bytes]:
        ts = int(series.ts[at])
        if market == "funding":
            rate = float(series.columns["funding_rate"][at])
            mark = float(series.columns["mark_price"][at])
            override = {
                "short_row": None,
                "bad_number": {"fundingRate": "n/a"},
                "off_grid": {"fundingTime": ts + 1},
            }.get(kind, {})
            if override is None:
                row = json.loads(_funding_row(symbol, ts, rate, mark, self.mark_price_missing))
                del row["fundingTime"]
                first = json.dumps(row).encode()
            else:
                first = _funding_row(symbol, ts, rate, mark, self.mark_price_missing, **override)
            return [first, *rows[1:]]
        step = INTERVAL_MS[interval]
        values = [float(series.columns[c][at]) for c in ("open", "high", "low", "close", "volume")]
        if kind == "short_row":
            first = json.dumps(json.loads(_kline_row(ts, values, step))[:-1]).encode()
        elif kind == "bad_number":
            first = _kline_row(ts, values, step, open="n/a")
        elif kind == "negative_price":
            first = _kline_row(ts, values, step, low=_fmt(-values[2]))
        elif kind == "off_grid":
            first = _kline_row(ts, values, step, openTime=ts + 1, closeTime=ts + step)
        else:
            return rows
        return [first, *rows[1:]]


def _handler_for(server: ExchangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real venue
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is ``server.requests``

        def date_time_string(self, timestamp: float | None = None) -> str:
            return email.utils.formatdate(server.clock(), usegmt=True)

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            path, params = split.path, dict(parse_qsl(split.query))
            _, fault = server._next(path)
            kind = fault.kind if fault else None
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._serve(path, params, fault, kind)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the client gave up (e.g. timed out on a slow response)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _serve(self, path: str, params: dict[str, str], fault: Fault | None, kind: Any) -> None:
            if kind == "drop":
                server._log(path, params, 0, fault)
                self.close_connection = True
                return
            if kind == "slow":
                # Logged on arrival: the client has usually given up before the answer.
                server._log(path, params, 200, fault)
                self._logged = True
                time.sleep(fault.delay_s if fault else 0.0)
            headers: dict[str, str] = {}
            market = KLINE_PATHS.get(path, "usdm" if path == FUNDING_PATH else None)
            if kind in ("429", "418") and fault is not None:
                code = -1003
                msg = "Too many requests." if kind == "429" else "Way too many requests; banned."
                self._send(int(kind), _error(code, msg), fault, path, params, fault.retry_after_s)
                return
            if kind in ("500", "502", "503"):
                body = b"<html><body><h1>" + kind.encode() + b" Server Error</h1></body></html>"
                self._send(int(kind), body, fault, path, params, content_type="text/html")
                return
            if market is not None:
                limit = int(params.get("limit", DEFAULT_LIMIT.get(market, 500)) or 0)
                weight = 1 if path == FUNDING_PATH else _kline_weight(limit)
                used, retry_after = server._charge(market, weight)
                headers[WEIGHT_HEADER] = str(used)
                if retry_after is not None:
                    body = _error(-1003, "Too much request weight used; current limit exceeded.")
                    # Whole seconds on the real venue; tenths here, for sub-second windows.
                    wait_s = math.ceil(retry_after * 10) / 10
                    self._send(429, body, fault, path, params, wait_s, headers)
                    return
            try:
                status, body = server.answer(path, params, fault)
            except _BinanceError as exc:
                body = exc.body()
                self._send(exc.status, body, fault, path, params, None, headers)
                return
            if kind == "not_json":
                body = b"<html><body>upstream connect error</body></html>"
            elif kind == "truncate":
                body = body[: max(1, len(body) // 2)]
            elif kind == "drop_mid_body":
                server._log(path, params, 0, fault)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, body, fault, path, params, None, headers)

        def _send(
            self,
            status: int,
            body: bytes,
            fault: Fault | None,
            path: str,
            params: dict[str, str],
            retry_after: float | None = None,
            headers: Mapping[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            if not getattr(self, "_logged", False):
                server._log(path, params, status, fault)
            self._logged = False
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
                self.send_header("Retry-After", str(seconds))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _error(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


# -- small served frames for fast tests -----------------------------------------------------


def _parse_fault(text: str) -> Fault:
    """``KIND`` or ``KIND:every=K`` or ``KIND:nth=1,5`` (optionally ``;retry_after_s=1``)."""
    kind, _, spec = text.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, spec.split(";")):
        key, _, value = part.partition("=")
        if key == "nth":
            options["nth"] = tuple(int(v) for v in value.split(","))
        elif key == "every":
            options["every"] = int(value)
        elif key in ("retry_after_s", "delay_s"):
            options[key] = float(value)
        elif key == "path":
            options["path"] = value
        else:
            raise ValueError(f"fault option {key!r} is unknown in {text!r}")
    if "nth" not in options and "every" not in options:
        options["every"] = 1
    return Fault(kind, **options)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, required=True, help="../shared/data/real")
    parser.add_argument("--symbols", nargs="*", default=None)
    parser.add_argument("--fault", action="append", default=[], help="KIND[:every=K|:nth=N,M]")
    parser.add_argument("--weight-limit", type=int, default=None, help="per minute, all markets")
    args = parser.parse_args(argv)
    limit = args.weight_limit
    server = ExchangeServer(
        **load_real(args.data, symbols=args.symbols),
        faults=[_parse_fault(f) for f in args.fault],
        weight_limits=None if limit is None else {"spot": limit, "usdm": limit},
        host=args.host,
        port=args.port,
    )
    print(server.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    sys.exit(main())
