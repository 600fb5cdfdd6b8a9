"""The core HTTP helper against a local server that misbehaves the way exchanges do."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from etl.errors import PermanentError, TransientError
from etl.http import Circuit, HttpClient, RateLimiter, rate_limiter, retry_after_seconds, retry_call
from etl.testing import FakeServer, Reply

ROWS = [[1704067200000, "42000.1"], [1704067260000, "42001.2"]]


@pytest.fixture
def server():
    with FakeServer(lambda request: Reply.json({"path": request.path, "query": request.query, "rows": ROWS})) as s:
        yield s


def client(server: FakeServer, **kwargs) -> HttpClient:
    return HttpClient(server.url, timeout=kwargs.pop("timeout", 2.0), base_delay=0.01, **kwargs)


def test_get_json_joins_base_url_and_sends_params(server):
    body = client(server).get_json("/api/v3/klines", {"symbol": "BTCUSDT", "limit": 2})
    assert body == {"path": "/api/v3/klines", "query": {"symbol": "BTCUSDT", "limit": "2"}, "rows": ROWS}


@pytest.mark.parametrize("fault", [
    Reply(500, b"null"),
    Reply(502, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}),
    Reply.reset(),
    Reply.truncated(Reply.json({"rows": ROWS})),
    Reply(200, b"<html>cloudflare</html>", {"Content-Type": "text/html"}),
    Reply.timeout(1.5),
])
def test_transient_faults_are_retried_until_the_data_comes(server, fault):
    server.fail_next(fault, fault)
    body = client(server, timeout=0.5).get_json("/x")
    assert body["rows"] == ROWS
    assert len(server.requests) == 3


def test_retry_after_is_honoured_and_pauses_every_thread_of_the_limiter(server):
    limiter = RateLimiter(1000, 1)
    server.fail_next(Reply.json({"code": -1003, "msg": "Too much request weight used"}, 429, {"Retry-After": "1"}))
    started = time.monotonic()
    assert client(server, limiter=limiter).get_json("/x")["rows"] == ROWS
    assert time.monotonic() - started >= 1.0
    assert len(server.requests) == 2


def test_418_ban_is_transient_with_its_retry_after(server):
    server.fail_next(Reply.json({"code": -1003, "msg": "IP banned"}, 418, {"Retry-After": "0.2"}))
    assert client(server).get_json("/x")["rows"] == ROWS


def test_permanent_errors_fail_at_once_with_the_body(server):
    server.fail_next(Reply.json({"code": -1121, "msg": "Invalid symbol."}, 400))
    with pytest.raises(PermanentError) as info:
        client(server).get_json("/api/v3/klines")
    assert str(info.value) == f'GET {server.url}/api/v3/klines: HTTP 400: {{"code":-1121,"msg":"Invalid symbol."}}'
    assert len(server.requests) == 1


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_fails_in_seconds_and_says_so():
    """Without a network, every host refuses or cannot be resolved: a few tries, not the minute of backoff."""
    port = closed_port()
    http = HttpClient(f"http://127.0.0.1:{port}", timeout=2.0)  # the default attempts (8) and backoff (0.5 s)
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        http.get_json("/api/v3/exchangeInfo")
    assert time.monotonic() - started < 20
    assert str(info.value) == f"GET http://127.0.0.1:{port}/api/v3/exchangeInfo: connection refused"
    assert info.value.host_down


def test_a_host_name_that_does_not_resolve_is_a_dns_failure():
    http = HttpClient("http://market-etl-test.invalid", timeout=2.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"^GET http://market-etl-test\.invalid/x: DNS failure \(.+\)$"):
        http.get_json("/x")
    assert time.monotonic() - started < 20


def test_a_host_that_accepts_no_connection_in_time_gets_three_tries():
    """A listening socket whose backlog is full drops new connections, like a host behind a firewall."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        port = listening.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for waiting in queued:
            waiting.setblocking(False)
            waiting.connect_ex(("127.0.0.1", port))
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(TransientError) as info:
            HttpClient(f"http://127.0.0.1:{port}", timeout=0.5).get_json("/x")
        elapsed = time.monotonic() - started
        for waiting in queued:
            waiting.close()
    assert str(info.value) == f"GET http://127.0.0.1:{port}/x: timed out connecting"
    assert 1.5 <= elapsed < 10, "three tries of 0.5 s and the pauses between them"


def test_a_libcurl_client_that_cannot_connect_fails_in_seconds_too():
    """yfinance talks through curl_cffi, whose errors carry libcurl's code instead of a socket error."""
    curl = pytest.importorskip("curl_cffi.requests")
    url = f"http://127.0.0.1:{closed_port()}/v8/finance/chart/AAPL"
    tries = []

    def chart():
        tries.append(url)
        try:
            return curl.get(url, timeout=2)
        except OSError as exc:
            raise TransientError(f"yahoo: {type(exc).__name__} fetching AAPL", host_down=True) from None

    with pytest.raises(TransientError):
        retry_call(chart, attempts=6, base_delay=0.01)
    assert len(tries) == 3


def test_a_host_that_answers_503_keeps_the_patient_retries(server):
    server.fail_next(*[Reply(503, b"maintenance")] * 5)
    assert client(server).get_json("/x")["rows"] == ROWS
    assert len(server.requests) == 6, "more tries than a host that does not answer gets"


@pytest.mark.parametrize(("fault", "said"), [
    (Reply.timeout(1.5), "timed out waiting for the answer"),
    (Reply.reset(), "connection reset or closed before the answer"),
])
def test_a_network_failure_names_its_cause(server, fault, said):
    server.fail_next(fault, fault)
    with pytest.raises(TransientError) as info:
        client(server, timeout=0.5, attempts=2).get_json("/x")
    assert str(info.value) == f"GET {server.url}/x: {said}"
    assert len(server.requests) == 2, "a host that answered, then failed, is not taken for unreachable"


def test_a_long_error_body_is_shortened_at_a_word_boundary(server):
    server.fail_next(Reply.text("scheduled maintenance " * 40, 503))
    with pytest.raises(TransientError) as info:
        client(server, attempts=1).get_json("/x")
    message = str(info.value)
    said = message.removeprefix(f"GET {server.url}/x: HTTP 503: ")
    assert said.endswith(" ...") and len(said) <= 200
    assert set(said.removesuffix(" ...").split()) == {"scheduled", "maintenance"}, "no word cut in two"


def test_gives_up_after_the_attempts_with_the_last_error(server):
    server.fail_next(*[Reply(503, b"maintenance")] * 3)
    with pytest.raises(TransientError, match="HTTP 503: maintenance"):
        client(server, attempts=3).get_json("/x")
    assert len(server.requests) == 3


def test_a_host_that_failed_every_retry_is_not_called_again(server):
    """The rest of the run's requests to a host that is down fail at once, naming the failure that tripped it."""
    http = client(server, attempts=3)
    server.fail_next(*[Reply(503, b"maintenance")] * 3)
    with pytest.raises(TransientError):
        http.get_json("/x")
    with pytest.raises(TransientError) as later:
        http.get_json("/y")
    host = server.url.removeprefix("http://")
    assert str(later.value) == (f"GET {server.url}/y: not sent: {host} failed every retry earlier in this run "
                                f"(GET {server.url}/x: HTTP 503: maintenance)")
    assert len(server.requests) == 3
    assert client(server).get_json("/z")["rows"] == ROWS, "another client (the next run's) calls the host again"


def test_a_500_that_outlasts_the_retries_is_the_request_s_not_the_host_s(server):
    """Hyperliquid answers an unknown coin with 500 null: the other coins' requests must still be sent."""
    http = client(server, attempts=2)
    server.fail_next(Reply(500, b"null"), Reply(500, b"null"))
    with pytest.raises(TransientError, match="HTTP 500"):
        http.get_json("/info")
    assert http.get_json("/info")["rows"] == ROWS
    assert http.circuit.failure is None


def test_a_request_under_way_that_succeeds_brings_the_host_back():
    circuit = Circuit("exchange.test")
    entered, answer = threading.Event(), threading.Event()
    results = []

    def slow_answer():
        entered.set()
        answer.wait(5)
        return "late answer"

    def down():
        raise TransientError("connection refused", host_down=True)

    under_way = threading.Thread(target=lambda: results.append(retry_call(slow_answer, circuit=circuit)))
    under_way.start()
    entered.wait(5)
    with pytest.raises(TransientError, match="connection refused"):
        retry_call(down, attempts=2, base_delay=0.01, circuit=circuit)
    with pytest.raises(TransientError, match=r"not sent: exchange\.test failed every retry"):
        retry_call(lambda: "never called", circuit=circuit, describe="next")
    answer.set()
    under_way.join(5)
    assert results == ["late answer"]
    assert retry_call(lambda: "sent again", circuit=circuit) == "sent again"


def test_a_call_retrying_stops_once_another_call_has_tripped_the_circuit():
    """Streams already retrying when the host is declared down do not spend their own retries on it."""
    circuit = Circuit("exchange.test")
    calls = []

    def maintenance():
        calls.append(1)
        circuit.trip(TransientError("another stream: HTTP 503", host_down=True))
        raise TransientError("HTTP 503: maintenance", host_down=True)

    with pytest.raises(TransientError, match="HTTP 503: maintenance"):
        retry_call(maintenance, attempts=8, base_delay=0.01, circuit=circuit)
    assert len(calls) == 1


def test_check_hook_classifies_errors_inside_http_200(server):
    def check(response):
        body = response.json()
        if body.get("retCode") == 10006:
            raise TransientError("bybit rate limited", retry_after=0.1)
        if body.get("retCode") == 10001:
            raise PermanentError(f"bybit: {body['retMsg']}")

    server.fail_next(Reply.json({"retCode": 10006, "retMsg": "Too many visits!"}))
    assert client(server, check=check).get_json("/x")["rows"] == ROWS
    server.fail_next(Reply.json({"retCode": 10001, "retMsg": "Not supported symbols"}))
    with pytest.raises(PermanentError, match="Not supported symbols"):
        client(server, check=check).get_json("/x")


def test_post_json_sends_the_body(server):
    seen = []
    server.handler = lambda request: (seen.append(request.json()), Reply.json([]))[1]
    assert client(server).post_json("/info", {"type": "meta"}) == []
    assert seen == [{"type": "meta"}]


def test_token_bucket_spaces_requests_to_the_rate():
    limiter = RateLimiter(capacity=10, per_seconds=1)
    started = time.monotonic()
    for _ in range(30):
        limiter.acquire(1)
    elapsed = time.monotonic() - started
    assert 1.8 <= elapsed <= 3.0


def test_weights_and_charges_share_one_bucket_across_threads():
    limiter = RateLimiter(capacity=20, per_seconds=1)
    limiter.charge(20)
    started = time.monotonic()
    threads = [threading.Thread(target=limiter.acquire, args=(5,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 0.9


def test_a_bucket_resized_smaller_still_serves_a_caller_already_waiting():
    """A caller waiting for more tokens than the new capacity holds gets a full bucket instead of waiting forever."""
    limiter = RateLimiter(capacity=10, per_seconds=1)
    limiter.charge(10)
    waiter = threading.Thread(target=limiter.acquire, args=(8,))
    waiter.start()
    limiter.resize(2, 0.5)
    waiter.join(5)
    assert not waiter.is_alive()
    assert limiter.rate == 4


def test_a_window_count_holds_requests_while_the_server_counts_others_weight():
    from etl.ratelimit import WindowCount

    count = WindowCount(limit=10, seconds=0.5, slack=0.0)
    count.acquire(2)
    count.report(used=9, unanswered=0)  # 7 of another client
    started = time.monotonic()
    count.acquire(2)
    assert 0.4 <= time.monotonic() - started < 2, "until the other client's weight has left the window"


def test_registry_returns_one_bucket_per_key():
    assert rate_limiter("test.example:1", 5, 1) is rate_limiter("test.example:1", 99, 9)


def test_retry_after_header_parsing():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_retry_call_wraps_other_client_libraries():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("timeout")
        return "ok"

    assert retry_call(flaky, base_delay=0.01) == "ok"
    assert len(calls) == 3


def test_a_ban_longer_than_allowed_fails_instead_of_sleeping(server):
    server.fail_next(Reply.json({"code": -1003, "msg": "Way too much request weight used; IP banned"}, 418,
                                {"Retry-After": "86400"}))
    started = time.monotonic()
    with pytest.raises(TransientError, match="HTTP 418"):
        client(server).get_json("/x")
    assert time.monotonic() - started < 5
    assert len(server.requests) == 1
