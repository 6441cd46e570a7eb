"""The HTTP client every venue shares: retries with jittered backoff, rate limits, counters.

One ``httpx.Client`` keeps connections alive; a semaphore bounds the requests in flight, so
one client can be shared by threads that collect several symbols at once. ``get_json``
retries what a later attempt can fix and raises at once what it cannot:

- retried with full-jitter exponential backoff (``uniform(0, min(max_backoff_s, backoff_s *
  2**(attempt - 1)))`` from a seeded RNG): connect errors, timeouts, a dropped connection, any
  5xx, and a 200 whose body is not JSON (truncated or garbled in transit);
- 429 (too many requests) and 418 (Binance's IP ban after ignored 429s): every thread waits
  the ``Retry-After`` seconds, then the request is retried (it counts as a retry); a wait
  longer than ``max_retry_after_s`` (a ban of hours) raises ``SourceError`` at once instead,
  saying how long the venue asked to wait;
- any other 4xx: ``SourceError`` at once, with the status and the venue's own message.

When retries run out the error names the venue, path, params, attempts and the last cause:
``SourceError``, or ``DataError`` when every failure was a body that was not JSON (the venue
answers, but with something we cannot store).

Request weight: venues such as Binance report the weight used in the current minute in a
response header. When it reaches 90% of ``weight_limit`` the client holds every request until
the next minute boundary of the server's clock (its ``Date`` header, else the local clock),
instead of running into 429s and, after those, a ban.

Only the path and params are logged, never a full URL, so a key in a URL cannot leak.

Examples
--------
>>> client = HttpClient("https://api.binance.com", venue="binance_spot", seed=1)
>>> client.stats["requests"], client.stats["retries"]
(0, {})
>>> client.close()
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import httpx
import polars as pl

from research_lib.sources.base import DataError, SourceError

__all__ = ["WEIGHT_WAIT_FRACTION", "HttpClient", "resolve_base_url"]

logger = logging.getLogger(__name__)

# Wait for the next minute once the used weight reaches this fraction of the limit: requests
# already in flight on other threads still land inside the limit.
WEIGHT_WAIT_FRACTION = 0.9
_BODY_SNIPPET_CHARS = 200

Params = Mapping[str, str | int | float]


def resolve_base_url(*, override: str | None, env_var: str, default: str) -> str:
    """The base URL to use: the argument, else the environment variable, else the default.

    Examples
    --------
    >>> resolve_base_url(override=None, env_var="RESEARCH_UNSET_URL", default="https://x.io/")
    'https://x.io'
    """
    url = override or os.environ.get(env_var) or default
    return url.rstrip("/")


class Closing:
    """``with`` support for an object with ``close()``: the block's end closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HttpClient(Closing):
    """A retrying, rate-limited JSON-over-HTTP client for one venue (thread-safe).

    Parameters
    ----------
    base_url
        Scheme and host (and optional prefix) that request paths are joined to.
    venue
        The venue's name, used in errors and logs, e.g. ``"binance_spot"``.
    timeout_s
        Connect and read timeout of one attempt, in seconds.
    max_retries
        Retries after the first attempt; ``max_retries + 1`` attempts in all.
    backoff_s, max_backoff_s
        Base and cap of the full-jitter exponential backoff, in seconds.
    max_concurrency
        Requests in flight at once (also the connection pool's size).
    weight_header, weight_limit
        The response header that reports the weight used this minute, and the venue's limit
        per minute; with both set the client pauses at 90% of the limit.
    seed
        Seed of the jitter RNG (``None``: from the OS), for reproducible waits in tests.
    sleep, clock
        ``time.sleep`` and ``time.time`` unless injected (tests run without waiting).

    Examples
    --------
    >>> with HttpClient("http://127.0.0.1:1", venue="nowhere", max_retries=0) as client:
    ...     try:
    ...         client.get_json("/ping", {"a": 1})
    ...     except SourceError as exc:
    ...         print(str(exc).split(": last")[0])
    nowhere GET /ping {'a': 1} failed after 1 attempt(s)
    """

    def __init__(
        self,
        base_url: str,
        *,
        venue: str,
        timeout_s: float = 10.0,
        max_retries: int = 6,
        backoff_s: float = 0.25,
        max_backoff_s: float = 30.0,
        max_concurrency: int = 4,
        weight_header: str | None = None,
        weight_limit: int | None = None,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_retry_after_s: float = 300.0,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries} must be >= 0")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency={max_concurrency} must be >= 1")
        if (weight_header is None) != (weight_limit is None):
            raise ValueError(
                f"weight_header={weight_header!r} and weight_limit={weight_limit!r}: set both "
                "(e.g. 'X-MBX-USED-WEIGHT-1M' and 1200) or neither"
            )
        self.base_url = base_url.rstrip("/")
        self.venue = venue
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.weight_header = weight_header
        self.weight_limit = weight_limit
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        # Every thread holds its next request until this wall-clock time (429/418, weight).
        self._resume_at = 0.0
        self._weight_minute_waited = -1
        self._stats: dict[str, Any] = {
            "requests": 0,
            "retries": {},
            "weight_waits": 0,
            "slept_s": 0.0,
        }
        self._client = httpx.Client(
            base_url=self.base_url,
            # Plain http needs no TLS context (building one loads the CA bundle: ~50 ms).
            verify=not self.base_url.startswith("http://"),
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            headers={"Accept": "application/json", "User-Agent": "research-lib/0.1"},
        )

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: ``requests``, ``retries`` by cause, ``weight_waits``, ``slept_s``.

        ``slept_s`` sums the waits of every thread: four threads held for 10 s count 40 s.
        """
        with self._lock:
            return {**self._stats, "retries": dict(self._stats["retries"])}

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def get_json(
        self,
        path: str,
        params: Params | None = None,
        *,
        decode: Callable[[bytes], Any] = json.loads,
    ) -> Any:
        """GET ``path`` with ``params`` and return the decoded JSON body, retrying as above.

        ``decode`` turns the body's bytes into the result (``json.loads`` by default); a
        ``ValueError`` from it counts as a body that is not JSON (retried). A venue can pass
        a faster decoder for its hot endpoint that falls back to ``json.loads``.

        Raises
        ------
        SourceError
            A 4xx other than 429/418 (at once), or retries exhausted.
        DataError
            Retries exhausted and every failure was a 200 whose body was not JSON.
        """
        return self._request("GET", path, params=params, body=None, decode=decode)

    def post_json(
        self, path: str, body: Any, *, decode: Callable[[bytes], Any] = json.loads
    ) -> Any:
        """POST ``body`` as JSON to ``path`` (JSON-RPC) and return the decoded JSON body,
        retrying and raising as :meth:`get_json` does. The body is never logged."""
        return self._request("POST", path, params=None, body=body, decode=decode)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None,
        body: Any,
        decode: Callable[[bytes], Any],
    ) -> Any:
        params = dict(params or {})
        causes: list[str] = []
        last_detail = ""
        for attempt in range(1, self.max_retries + 2):
            self._wait_for_gate()
            retry_after: float | None = None
            try:
                with self._slots:
                    self._add("requests", 1)
                    logger.debug(
                        "%s %s %s %s (attempt %d)", self.venue, method, path, params, attempt
                    )
                    response = self._client.request(method, path, params=params, json=body)
            except httpx.TimeoutException as exc:
                cause, last_detail = "timeout", f"{type(exc).__name__}: {exc}"
            except httpx.ConnectError as exc:
                cause, last_detail = "connect", f"{type(exc).__name__}: {exc}"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                cause, last_detail = "dropped", f"{type(exc).__name__}: {exc}"
            else:
                self._note_weight(response)
                status = response.status_code
                if status == 200:
                    try:
                        return decode(response.content)
                    except ValueError as exc:
                        cause = "bad_json"
                        last_detail = f"body is not JSON ({exc}): {_snippet(response.content)}"
                elif status in (418, 429):
                    cause = str(status)
                    retry_after = _retry_after_s(response)
                    last_detail = f"HTTP {status} {_venue_message(response)}"
                    if retry_after is not None and retry_after > self.max_retry_after_s:
                        raise SourceError(
                            f"{self.venue} {method} {path} {params}: {last_detail} asks to wait "
                            f"{retry_after:.0f} s (Retry-After), more than max_retry_after_s="
                            f"{self.max_retry_after_s:.0f}; try again later"
                        )
                elif status >= 500:
                    cause = "5xx"
                    last_detail = f"HTTP {status} {_venue_message(response)}"
                else:
                    raise SourceError(
                        f"{self.venue} {method} {path} {params} was refused: HTTP {status} "
                        f"{_venue_message(response)}; check the symbol, interval and range"
                    )
            causes.append(cause)
            if attempt > self.max_retries:
                break
            with self._lock:
                retries = self._stats["retries"]
                retries[cause] = retries.get(cause, 0) + 1
            if retry_after is not None:
                logger.warning(
                    "%s %s %s %s: %s, every request waits Retry-After %.1f s",
                    self.venue,
                    method,
                    path,
                    params,
                    last_detail,
                    retry_after,
                )
                self._hold_all(retry_after)
            else:
                delay = self._backoff(attempt)
                logger.warning(
                    "%s %s %s %s: %s (attempt %d of %d), retrying in %.2f s",
                    self.venue,
                    method,
                    path,
                    params,
                    last_detail,
                    attempt,
                    self.max_retries + 1,
                    delay,
                )
                self._slept(delay)
        error = DataError if all(c == "bad_json" for c in causes) else SourceError
        raise error(
            f"{self.venue} {method} {path} {params} failed after {len(causes)} attempt(s): last "
            f"cause {causes[-1]} ({last_detail}); causes {causes}. Check that the venue is "
            "reachable, or raise max_retries / timeout_s"
        )

    def _backoff(self, attempt: int) -> float:
        cap = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        with self._lock:
            return self._rng.uniform(0.0, cap)

    def _add(self, key: str, amount: float) -> None:
        with self._lock:
            self._stats[key] += amount

    def _slept(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)
            self._add("slept_s", seconds)

    def _hold_all(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def _wait_for_gate(self) -> None:
        with self._lock:
            deadline = self._resume_at
            delay = deadline - self._clock()
        if delay <= 0:
            return
        self._slept(delay)
        with self._lock:
            # Cleared only if nobody set a later deadline meanwhile; this also keeps an
            # injected sleep that does not move the clock from waiting twice.
            if self._resume_at == deadline:
                self._resume_at = 0.0

    def _note_weight(self, response: httpx.Response) -> None:
        if self.weight_header is None or self.weight_limit is None:
            return
        raw = response.headers.get(self.weight_header)
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            logger.warning("%s: header %s=%r is not a number", self.venue, self.weight_header, raw)
            return
        if used < WEIGHT_WAIT_FRACTION * self.weight_limit:
            return
        now_s = _server_time_s(response) or self._clock()
        minute = int(now_s // 60)
        with self._lock:
            if minute <= self._weight_minute_waited:
                return
            self._weight_minute_waited = minute
            self._stats["weight_waits"] += 1
            wait_s = (minute + 1) * 60 - now_s
            self._resume_at = max(self._resume_at, self._clock() + wait_s)
        logger.info(
            "%s: used weight %d of %d, holding requests %.1f s until the next minute",
            self.venue,
            used,
            self.weight_limit,
            wait_s,
        )


def _server_time_s(response: httpx.Response) -> float | None:
    date = response.headers.get("Date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date); ``None`` if absent or garbled."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _venue_message(response: httpx.Response) -> str:
    """The venue's own error text: Binance ``{code, msg}``, Coinbase ``message``, ..."""
    try:
        body = response.json()
    except ValueError:
        return _snippet(response.content)
    if isinstance(body, dict):
        for key in ("msg", "message", "error", "error_message"):
            if key in body:
                code = body.get("code")
                return f"{body[key]}" + (f" (code {code})" if code is not None else "")
        status = body.get("status")
        if isinstance(status, dict) and "error_message" in status:
            return str(status["error_message"])
    return _snippet(response.content)


def _snippet(content: bytes) -> str:
    text = content[:_BODY_SNIPPET_CHARS].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(content) > _BODY_SNIPPET_CHARS else "")


class HttpSource(Closing):
    """Base of the network sources: an ``HttpClient`` they made (and close) or were lent."""

    client: HttpClient
    name: str
    _owns_client: bool = True

    def close(self) -> None:
        """Close the HTTP client if this source made it."""
        if self._owns_client:
            self.client.close()

    def _in_order(
        self,
        fetch: Callable[[int, int], tuple[pl.DataFrame, bool]],
        windows: Sequence[tuple[int, int]],
    ) -> Iterator[pl.DataFrame]:
        """``fetch(lo, hi)`` of each window, run concurrently, pages yielded in window order.

        Up to the client's ``max_concurrency`` requests run at once and twice that many wait
        queued. ``fetch`` returns a page and whether it held a bar that is still open; the
        windows after it are not read (pending ones are cancelled), nor are the rest when the
        consumer stops early.
        """
        workers = max(1, getattr(self.client, "max_concurrency", 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.name) as pool:
            pending: deque[Future[tuple[pl.DataFrame, bool]]] = deque()
            try:
                for window in [*windows, None]:  # None: no more windows, drain the queue
                    if window is not None:
                        pending.append(pool.submit(fetch, *window))
                    while len(pending) > (2 * workers if window is not None else 0):
                        page, still_open = pending.popleft().result()
                        if page.height:
                            yield page
                        if still_open:
                            return
            finally:
                for future in pending:
                    future.cancel()
