"""Bounded requests: an overall deadline per request, capped bodies (raw and decoded), Retry-After budgets.

The slow and huge upstreams are real servers on loopback (tests.loopback): a deadline or a size cap that
only holds against a mock proves nothing about sockets and decompression.
"""

from __future__ import annotations

import gc
import gzip
import socket
import threading
import time
import tracemalloc
import zlib

import httpx
import pytest

from od_scheduler.clients.bounded import BodyTooLarge, DeadlineBackend, network_transport, work_budget
from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import PayloadError, TransientUpstreamError
from tests.loopback import LoopbackServer

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

MB = 1_000_000


def head(*lines: str) -> bytes:
    return ("HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def drip(every_s: float):
    """Headers at once, then one body byte every ``every_s`` seconds (never finishing)."""

    def respond(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(head("Content-Type: application/json", "Content-Length: 100000") + b"[")
        while not stop.wait(every_s):
            conn.sendall(b" ")

    return respond


def client_for(server: LoopbackServer, **kw: object) -> BaseClient:
    return BaseClient(
        base_url=server.url,
        service="drip",
        timeout=30.0,  # the per-read timeout never trips for these servers
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01, jitter=False),
        **kw,  # type: ignore[arg-type]
    )


def test_the_real_transport_applies_the_deadline_to_every_socket_operation() -> None:
    transport = network_transport()
    assert isinstance(transport._pool._network_backend, DeadlineBackend)  # what the drip tests rely on
    transport.close()


@pytest.mark.parametrize("every_s", [20.0, 0.3], ids=["one byte per 20s", "one byte per 0.3s"])
def test_a_dripping_body_ends_within_the_request_deadline(every_s: float) -> None:
    with LoopbackServer(drip(every_s)) as server, client_for(server, deadline_s=1.5) as client:
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError, match=r"within its 1\.5s deadline"):
            client.request("GET", "/inventory")
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"the request took {elapsed:.1f}s, past its 1.5s deadline"
    assert len(server.heads) == 1, "the deadline is the request's, not each attempt's: no retry after it"


def test_headers_that_never_come_end_within_the_deadline() -> None:
    def silent(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.2):
            conn.sendall(b"X")  # a header line that never ends

    with LoopbackServer(silent) as server, client_for(server, deadline_s=1.0) as client:
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError, match="deadline"):
            client.request("GET", "/inventory")
    assert time.monotonic() - started < 2.0


def _gzip_bomb(decoded_mb: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * MB
    parts = [compressor.compress(block) for _ in range(decoded_mb)]
    return b"".join(parts) + compressor.flush()


BOMB = _gzip_bomb(200)  # ~200 KB on the wire, 200 MB decoded


def _peak_bytes(run) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_a_gzip_bomb_stops_at_the_cap_with_flat_memory() -> None:
    def bomb(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(head("Content-Encoding: gzip", f"Content-Length: {len(BOMB)}") + BOMB)

    assert len(BOMB) < MB
    with LoopbackServer(bomb) as server, client_for(server, max_response_bytes=2 * MB) as client:
        caught: list[BaseException] = []

        def run() -> None:
            try:
                client.request("GET", "/feed.csv")
            except PayloadError as err:
                caught.append(err)

        peak = _peak_bytes(run)
    assert caught
    assert isinstance(caught[0], BodyTooLarge)
    assert "decoded response body passed the 2 MB limit" in str(caught[0])
    assert "drip GET http://127.0.0.1" in str(caught[0])
    assert peak < 8 * MB, f"peak memory {peak / MB:.1f} MB while reading a 200 MB gzip bomb"


def test_an_oversized_body_stops_at_the_cap_with_flat_memory() -> None:
    def huge(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(head("Content-Type: text/csv", "Transfer-Encoding: chunked"))
        chunk = b"x" * 65536
        for _ in range(50 * MB // len(chunk)):  # 50 MB, chunked: no Content-Length to refuse it early
            if stop.is_set():
                return
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.sendall(b"0\r\n\r\n")

    with LoopbackServer(huge) as server, client_for(server, max_response_bytes=MB) as client:
        caught: list[BaseException] = []

        def run() -> None:
            try:
                client.request("GET", "/feed.csv")
            except PayloadError as err:
                caught.append(err)

        peak = _peak_bytes(run)
    assert caught
    assert isinstance(caught[0], BodyTooLarge)
    assert "raw response body passed the 1 MB limit" in str(caught[0])
    assert peak < 6 * MB, f"peak memory {peak / MB:.1f} MB while refusing a 50 MB body"


def test_an_announced_length_over_the_cap_is_refused_before_reading() -> None:
    script = Script(httpx.Response(200, headers={"Content-Length": str(5 * MB)}, content=b"x" * (5 * MB)))
    with (
        BaseClient(
            base_url="https://feeds.test", service="cobalt", transport=script.transport, max_response_bytes=MB
        ) as client,
        pytest.raises(BodyTooLarge, match=r"announces 5 MB \(Content-Length\), more than the 1 MB"),
    ):
        client.request("GET", "/feed.csv")


def test_bodies_under_the_cap_are_decoded_as_before() -> None:
    body = b'{"vehicles": []}' * 1000
    script = Script(
        httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(gzip.compress(body))
        )
    )
    with BaseClient(base_url="https://x.test", service="x", transport=script.transport) as client:
        response = client.request("GET", "/")
    assert response.content == body
    assert client.stats.bytes_fetched == len(body)
    assert script.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


def test_retry_after_longer_than_the_budget_fails_now_as_retryable(clock: FakeClock) -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    with (
        BaseClient(
            base_url="https://api.test",
            service="data_api",
            transport=script.transport,
            sleep=clock.sleep,
            clock=clock,
            deadline_s=300,
        ) as client,
        pytest.raises(TransientUpstreamError) as caught,
    ):
        client.request("POST", "/v1/vehicles/batch")
    assert clock.sleeps == [], "nothing is slept: Airflow's task retry waits instead of the worker"
    assert len(script.requests) == 1
    assert caught.value.status_code == 429
    message = str(caught.value)
    assert "Retry-After asks for 3600s" in message
    assert "more than the 300s this request may still wait" in message
    assert "Airflow's task retry" in message


def test_retry_after_within_the_budget_is_still_honoured(clock: FakeClock) -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "20"}), httpx.Response(200, json={}))
    with BaseClient(
        base_url="https://api.test", service="x", transport=script.transport, sleep=clock.sleep, clock=clock
    ) as client:
        client.request("GET", "/")
    assert clock.sleeps == [20.0]


def test_the_budget_counts_earlier_waits(clock: FakeClock) -> None:
    script = Script(*[httpx.Response(503, headers={"Retry-After": "120"}) for _ in range(3)])
    with (
        BaseClient(
            base_url="https://api.test",
            service="x",
            transport=script.transport,
            sleep=clock.sleep,
            clock=clock,
            deadline_s=300,
        ) as client,
        pytest.raises(TransientUpstreamError, match="more than the 60s this request may still wait"),
    ):
        client.request("GET", "/")
    assert clock.sleeps == [120.0, 120.0]


def test_a_dealers_budget_cuts_short_a_request_under_its_own_deadline() -> None:
    with LoopbackServer(drip(0.2)) as server, client_for(server, deadline_s=30) as client:
        started = time.monotonic()
        with (
            work_budget(1.0, "dealer Bay Honda (bay-honda)"),
            pytest.raises(TransientUpstreamError, match=r"within the 1s deadline of dealer Bay Honda"),
        ):
            client.request("GET", "/inventory")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the request took {elapsed:.1f}s, past the dealer's 1s budget"
    assert len(server.heads) == 1


def test_a_request_after_the_dealers_budget_is_not_sent() -> None:
    with LoopbackServer(drip(0.2)) as server, client_for(server, deadline_s=30) as client:
        with work_budget(0.05, "dealer Bay Honda (bay-honda)"):
            time.sleep(0.1)
            refused = r"not sent, dealer Bay Honda .* past its 0\.05s"
            with pytest.raises(TransientUpstreamError, match=refused):
                client.request("GET", "/inventory")
        time.sleep(0.1)
        assert server.accepted == 0, "no connection once the dealer's time is up"
