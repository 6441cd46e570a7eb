"""HttpClient against a real local HTTP server (tests/servers/exchange_server.py): retries by
cause, Retry-After, refusals, timeouts, request weight, concurrency and counters.

Sleeps are injected (recorded, not slept) except where the test is about real waiting; the
served bars are a small seeded random walk (``random_bars``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from servers.exchange_server import ExchangeServer, Fault
from servers.served_data import random_bars

from research_lib.sources.base import DataError, SourceError
from research_lib.sources.http import HttpClient, resolve_base_url

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
PATH = "/api/v3/klines"
PARAMS = {"symbol": "BTCUSDT", "interval": "1h", "startTime": START_MS, "limit": 3}


class FakeTime:
    """A clock that only moves when someone sleeps: waits are recorded, not spent."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now_s

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now_s += seconds


@pytest.fixture(scope="module")
def server() -> ExchangeServer:
    with ExchangeServer(
        spot_bars={"1h": random_bars(["BTCUSDT"], start_ms=START_MS, bars=50)}
    ) as srv:
        yield srv


@pytest.fixture
def fresh(server: ExchangeServer) -> ExchangeServer:
    server.set_faults()
    return server


def _client(server: ExchangeServer, fake: FakeTime | None = None, **options) -> HttpClient:
    fake = fake or FakeTime(1_700_000_000.0)
    return HttpClient(
        server.url,
        venue="binance_spot",
        seed=1,
        sleep=fake.sleep,
        clock=fake.clock,
        **{"timeout_s": 2.0, **options},
    )


def _clean_body(server: ExchangeServer) -> list:
    server.set_faults()
    with _client(server) as client:
        body = client.get_json(PATH, PARAMS)
    server.set_faults()
    return body


def test_get_json_returns_the_decoded_body_and_counts_one_request(fresh: ExchangeServer) -> None:
    with _client(fresh) as client:
        body = client.get_json(PATH, PARAMS)
        assert client.stats == {"requests": 1, "retries": {}, "weight_waits": 0, "slept_s": 0.0}
    assert [row[0] for row in body] == [START_MS, START_MS + 3_600_000, START_MS + 7_200_000]
    assert fresh.requests[0].params["limit"] == "3"


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("500", "5xx"),
        ("502", "5xx"),
        ("503", "5xx"),
        ("truncate", "bad_json"),
        ("not_json", "bad_json"),
        ("drop", "dropped"),
        ("drop_mid_body", "dropped"),
    ],
)
def test_a_transient_fault_is_retried_with_backoff_and_counted(
    fresh: ExchangeServer, kind: str, cause: str
) -> None:
    expected = _clean_body(fresh)
    fresh.set_faults(Fault(kind, nth=(1, 2)))
    fake = FakeTime(1_700_000_000.0)
    with _client(fresh, fake, backoff_s=0.25) as client:
        assert client.get_json(PATH, PARAMS) == expected
        stats = client.stats
    assert stats["requests"] == 3
    assert stats["retries"] == {cause: 2}
    # Full jitter: the n-th wait is uniform on [0, backoff * 2**(n-1)].
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 0.25 and 0 <= fake.sleeps[1] <= 0.5
    assert stats["slept_s"] == pytest.approx(sum(fake.sleeps))
    assert [r.fault for r in fresh.requests] == [kind, kind, None]


@pytest.mark.parametrize("kind", ["429", "418"])
def test_429_and_418_wait_the_retry_after_seconds_then_retry(
    fresh: ExchangeServer, kind: str
) -> None:
    expected = _clean_body(fresh)
    fresh.set_faults(Fault(kind, nth=(1,), retry_after_s=1.0))
    fake = FakeTime(1_700_000_000.0)
    with _client(fresh, fake) as client:
        assert client.get_json(PATH, PARAMS) == expected
        assert client.stats["retries"] == {kind: 1}
    assert fake.sleeps == [1.0]
    assert [r.status for r in fresh.requests] == [int(kind), 200]


def test_a_ban_longer_than_max_retry_after_raises_at_once_saying_how_long(
    fresh: ExchangeServer,
) -> None:
    fresh.set_faults(Fault("418", every=1, retry_after_s=7200.0))
    fake = FakeTime(1_700_000_000.0)
    with _client(fresh, fake, max_retry_after_s=600.0) as client:
        with pytest.raises(SourceError, match=r"HTTP 418 .*asks to wait 7200 s .*600"):
            client.get_json(PATH, PARAMS)
    assert fake.sleeps == [] and len(fresh.requests) == 1


def test_a_slow_response_times_out_and_the_retry_succeeds(fresh: ExchangeServer) -> None:
    expected = _clean_body(fresh)
    fresh.set_faults(Fault("slow", nth=(1,), delay_s=4.0))
    with _client(fresh, timeout_s=2.0) as client:
        assert client.get_json(PATH, PARAMS) == expected
        assert client.stats["retries"] == {"timeout": 1}


def test_persistent_5xx_raises_source_error_naming_venue_path_params_and_attempts(
    fresh: ExchangeServer,
) -> None:
    fresh.set_faults(Fault("503", every=1))
    with _client(fresh, max_retries=3) as client:
        with pytest.raises(SourceError) as caught:
            client.get_json(PATH, PARAMS)
        assert client.stats["retries"] == {"5xx": 3}
    message = str(caught.value)
    for part in ("binance_spot", PATH, "'symbol': 'BTCUSDT'", "after 4 attempt(s)", "HTTP 503"):
        assert part in message
    assert len(fresh.requests) == 4


def test_a_body_that_is_never_json_raises_data_error(fresh: ExchangeServer) -> None:
    fresh.set_faults(Fault("not_json", every=1))
    with _client(fresh, max_retries=2) as client, pytest.raises(DataError, match="not JSON"):
        client.get_json(PATH, PARAMS)
    assert len(fresh.requests) == 3


def test_invalid_symbol_raises_at_once_with_binances_message(fresh: ExchangeServer) -> None:
    with _client(fresh) as client:
        with pytest.raises(SourceError) as caught:
            client.get_json(PATH, {**PARAMS, "symbol": "NOPEUSDT"})
        assert client.stats["retries"] == {}
    message = str(caught.value)
    assert "HTTP 400 Invalid symbol. (code -1121)" in message
    assert "binance_spot" in message and PATH in message and "NOPEUSDT" in message
    assert len(fresh.requests) == 1


def test_a_closed_port_is_a_connect_error_after_retries() -> None:
    with ExchangeServer() as gone:
        url = gone.url
    fake = FakeTime(0.0)
    client = HttpClient(url, venue="binance_spot", max_retries=2, sleep=fake.sleep, seed=3)
    with client, pytest.raises(SourceError, match="last cause connect"):
        client.get_json(PATH, PARAMS)
    assert client.stats["retries"] == {"connect": 2}


def test_the_jitter_is_reproducible_from_the_seed(fresh: ExchangeServer) -> None:
    waits = []
    for _ in range(2):
        fresh.set_faults(Fault("500", nth=(1, 2, 3)))
        fake = FakeTime(0.0)
        with _client(fresh, fake) as client:
            client.get_json(PATH, PARAMS)
        waits.append(fake.sleeps)
    assert waits[0] == waits[1] and len(set(waits[0])) == 3


def test_weight_near_the_limit_waits_for_the_servers_next_minute_instead_of_a_429() -> None:
    # Server and client share a fake clock, 30.5 s into a minute; limit=500 weighs 5.
    fake = FakeTime(1_700_000_000.0 - 1_700_000_000.0 % 60 + 30.5)
    with ExchangeServer(
        spot_bars={"1h": random_bars(["BTCUSDT"], start_ms=START_MS, bars=10)},
        weight_limits={"spot": 20},
        clock=fake.clock,
    ) as limited:
        client = _client(limited, fake, weight_header="X-MBX-USED-WEIGHT-1M", weight_limit=20)
        with client:
            for _ in range(10):
                client.get_json(PATH, {**PARAMS, "limit": 500})
            stats = client.stats
        statuses = [r.status for r in limited.requests]
    assert statuses == [200] * 10
    # Used weight 5, 10, 15 < 18; 20 >= 90% of 20: wait. The Date header has whole seconds,
    # so the first wait is 60 - 30 s and lands half a second into the next minute.
    assert fake.sleeps == [29.5 + 0.5, 60.0]
    assert stats["weight_waits"] == 2 and stats["retries"] == {}
    assert stats["slept_s"] == pytest.approx(90.0)


def test_the_servers_429_path_with_real_waiting() -> None:
    # A half-second weight window that admits one limit=500 request (weight 5).
    with ExchangeServer(
        spot_bars={"1h": random_bars(["BTCUSDT"], start_ms=START_MS, bars=10)},
        weight_limits={"spot": 6},
        weight_window_s=0.5,
    ) as limited:
        with HttpClient(limited.url, venue="binance_spot", seed=1) as client:
            for _ in range(3):
                assert len(client.get_json(PATH, {**PARAMS, "limit": 500})) == 10
            stats = client.stats
        statuses = [r.status for r in limited.requests]
    assert statuses.count(200) == 3 and set(statuses) <= {200, 429}
    assert stats["retries"].get("429", 0) == statuses.count(429) >= 1
    assert 0 < stats["slept_s"] <= 0.6 * statuses.count(429)


def test_concurrent_requests_share_one_client_within_max_concurrency(
    fresh: ExchangeServer,
) -> None:
    fresh.set_faults(Fault("slow", every=1, delay_s=0.05))
    with _client(fresh, max_concurrency=2) as client:
        with ThreadPoolExecutor(max_workers=6) as pool:
            bodies = list(pool.map(lambda _: client.get_json(PATH, PARAMS), range(12)))
        assert client.stats["requests"] == 12
    assert all(body == bodies[0] for body in bodies)
    assert fresh.max_in_flight == 2


def test_logs_name_the_path_and_params_not_the_url(
    fresh: ExchangeServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh.set_faults(Fault("500", nth=(1,)))
    with caplog.at_level(logging.DEBUG, logger="research_lib.sources.http"):
        with _client(fresh) as client:
            client.get_json(PATH, PARAMS)
    text = caplog.text
    assert PATH in text and "'symbol': 'BTCUSDT'" in text and "HTTP 500" in text
    assert fresh.url not in text and "http://" not in text


def test_base_url_argument_beats_the_environment_which_beats_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESEARCH_BINANCE_SPOT_URL", "http://127.0.0.1:8001/")
    assert (
        resolve_base_url(
            override=None, env_var="RESEARCH_BINANCE_SPOT_URL", default="https://api.binance.com"
        )
        == "http://127.0.0.1:8001"
    )
    assert (
        resolve_base_url(
            override="http://h:1", env_var="RESEARCH_BINANCE_SPOT_URL", default="https://x"
        )
        == "http://h:1"
    )
    monkeypatch.delenv("RESEARCH_BINANCE_SPOT_URL")
    assert (
        resolve_base_url(
            override=None, env_var="RESEARCH_BINANCE_SPOT_URL", default="https://api.binance.com"
        )
        == "https://api.binance.com"
    )


def test_weight_options_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="set both"):
        HttpClient("http://x", venue="v", weight_header="X-MBX-USED-WEIGHT-1M")
