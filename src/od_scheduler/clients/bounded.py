"""Bounded HTTP exchanges: an overall deadline per request and a cap on the body, compressed or not.

httpx's ``timeout`` bounds each socket operation, not the exchange: a server that drips one byte every
20 s never trips a 30 s read timeout and holds the worker forever, and ``response.read()`` keeps whatever
size the server sends, decompressing a small gzip bomb into gigabytes. Two pieces close that:

- :class:`BoundedTransport` wraps the real transport (or a test's ``MockTransport``). It reads every body
  as a stream, decodes ``Content-Encoding`` itself in bounded steps (gzip and deflate; the client asks for
  nothing else) and fails as soon as the raw or the decoded body passes ``max_bytes``: the response that
  httpx sees is already decoded, so memory stays within the cap plus one step, whatever the encoding.
  Token responses read inside httpx's auth flow go through it too.
- A deadline (:func:`deadline_scope`, a context variable the client sets around each exchange) caps every
  socket operation's timeout by the time left (:class:`DeadlineBackend`, the network backend of the real
  transport) and is checked between chunks: connect, headers and body together end by the deadline.

No Airflow imports.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from od_scheduler.exceptions import ConfigError, PayloadError

#: Decoded bytes produced per decompression step: what one step can add to memory.
DECODE_STEP = 64 * 1024
#: The encodings the client accepts (sent as ``Accept-Encoding``); anything else is refused.
ACCEPT_ENCODING = "gzip, deflate"

_DEADLINE: ContextVar[float | None] = ContextVar("od_http_deadline", default=None)
_WORK_BUDGET: ContextVar[WorkBudget | None] = ContextVar("od_work_budget", default=None)


class WorkBudget:
    """How long one unit of work (a dealer's pull or ingest) may take, all its requests together.

    Set for a block by :func:`work_budget`; every request the block sends is capped by the time left, and
    one that would start after it is refused (``BaseClient.request``).
    """

    __slots__ = ("end", "seconds", "what")

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


@contextmanager
def work_budget(seconds: float | None, what: str) -> Iterator[WorkBudget | None]:
    """Every request in this block ends within ``seconds`` of its start (None: no budget)."""
    budget = None if seconds is None else WorkBudget(seconds, what)
    token = _WORK_BUDGET.set(budget)
    try:
        yield budget
    finally:
        _WORK_BUDGET.reset(token)


def current_work_budget() -> WorkBudget | None:
    """The budget of the work this thread is doing, if any."""
    return _WORK_BUDGET.get()


@contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Every exchange in this block ends by ``deadline`` (a ``time.monotonic()`` value; None: no deadline)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` capped by the time left before the current deadline; ``error`` once it has passed."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request's overall deadline passed")
    return left if timeout is None else min(timeout, left)


# --------------------------------------------------------------------------------------------------
# Network backend: every socket operation within the deadline; the connected peer checked
# --------------------------------------------------------------------------------------------------
PeerCheck = Callable[[str, ipaddress.IPv4Address | ipaddress.IPv6Address], None]


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes never wait past the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout=remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout=remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        upgraded = self._inner.start_tls(
            ssl_context, server_hostname, timeout=remaining(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with the deadline applied, and an optional check of the connected address.

    ``peer_check(host, address)`` runs right after the TCP connection is made, on the address really
    connected to (DNS may answer differently than when a URL was checked); it raises to refuse.
    """

    def __init__(self, inner: httpcore.NetworkBackend | None = None, peer_check: PeerCheck | None = None):
        self._inner = inner or httpcore.SyncBackend()
        self._peer_check = peer_check

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=remaining(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        if self._peer_check is not None:
            try:
                peer = stream.get_extra_info("server_addr")
                self._peer_check(host, ipaddress.ip_address(peer[0].split("%", 1)[0]))
            except BaseException:
                stream.close()
                raise
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, timeout=remaining(timeout, httpcore.ConnectTimeout), socket_options=socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (certificate verification on, the CA bundle loaded once) for every client of the
    process. Building one loads and parses the whole CA bundle, tens of milliseconds of CPU: a shard makes
    a client per dealer and upstream, and contexts are safe to share between connections and threads."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


def network_transport(*, peer_check: PeerCheck | None = None, **kwargs: Any) -> httpx.HTTPTransport:
    """``httpx.HTTPTransport(**kwargs)`` whose connections honour the deadline (and ``peer_check``).

    httpx takes no network backend, so it is set on the transport's httpcore pool; a unit test pins that
    this still holds for the installed httpx/httpcore. TLS uses :func:`shared_ssl_context` unless
    ``verify`` is given.
    """
    kwargs.setdefault("verify", shared_ssl_context())
    transport = httpx.HTTPTransport(**kwargs)
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx.HTTPTransport no longer exposes its httpcore pool: update bounded.py")
    pool._network_backend = DeadlineBackend(pool._network_backend, peer_check)
    return transport


# --------------------------------------------------------------------------------------------------
# Bounded bodies
# --------------------------------------------------------------------------------------------------
class _Decoder:
    """Streaming gzip/deflate/identity decoding that never produces more than one step at a time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._first = True
        if encoding in ("gzip", "x-gzip"):
            self._zlib: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        else:
            self._zlib = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if data:
                yield data
            return
        if self._first and self.encoding == "deflate" and data:
            self._first = False
            try:  # "deflate" is zlib-wrapped by the RFC, raw deflate in practice: try both, as httpx does
                probe = zlib.decompressobj()
                probe.decompress(data[:2])
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = data
        while True:
            try:
                out = self._zlib.decompress(pending, DECODE_STEP)
            except zlib.error as err:
                raise httpx.DecodingError(f"{self.encoding} body could not be decoded: {err}") from err
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            if not pending and len(out) < DECODE_STEP:
                return

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return bytes(self._zlib.flush(DECODE_STEP))
        except zlib.error as err:
            raise httpx.DecodingError(f"{self.encoding} body could not be decoded: {err}") from err


def mb(n_bytes: int) -> str:
    """``n_bytes`` as MB for messages (``"0.5 MB"``)."""
    return f"{n_bytes / 1_000_000:g} MB"


class BodyTooLarge(PayloadError):
    """The upstream's body (raw or decoded) passed the client's ``max_response_bytes``."""


class _BoundedStream(httpx.SyncByteStream):
    def __init__(
        self,
        inner: httpx.SyncByteStream,
        decoder: _Decoder,
        *,
        max_bytes: int,
        what: Callable[[], str],
        request: httpx.Request,
    ) -> None:
        self._inner = inner
        self._decoder = decoder
        self._max = max_bytes
        self._what = what
        self._request = request

    def _too_large(self, kind: str) -> BodyTooLarge:
        return BodyTooLarge(
            f"{self._what()}: the {kind} response body passed the {mb(self._max)} limit; reading stopped. "
            "If this upstream really sends that much, raise max_response_mb (setting, or the "
            "connection's extra)."
        )

    def _check_deadline(self) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None and time.monotonic() > deadline:
            raise httpx.ReadTimeout("the request's overall deadline passed", request=self._request)

    def __iter__(self) -> Iterator[bytes]:
        raw = decoded = 0
        for chunk in self._inner:
            raw += len(chunk)
            if raw > self._max:
                raise self._too_large("raw")
            for out in self._decoder.feed(chunk):
                decoded += len(out)
                if decoded > self._max:
                    raise self._too_large("decoded" if self._decoder.encoding != "identity" else "raw")
                yield out
            self._check_deadline()
        tail = self._decoder.flush()
        decoded += len(tail)
        if decoded > self._max:
            raise self._too_large("decoded")
        if tail:
            yield tail

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx.BaseTransport):
    """Wraps a transport so that every response body is capped at ``max_bytes``, raw and decoded.

    ``describe(request)`` names the exchange in errors (service, method, redacted URL).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        max_bytes: int,
        describe: Callable[[httpx.Request], str],
    ) -> None:
        if max_bytes < 1:
            raise ConfigError(f"max_response_bytes must be >= 1, got {max_bytes}")
        self._inner = inner
        self.max_bytes = max_bytes
        self._describe = describe

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        codings = [
            c.strip().lower() for c in response.headers.get("Content-Encoding", "").split(",") if c.strip()
        ]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            response.close()
            raise PayloadError(
                f"{self._describe(request)}: unsupported Content-Encoding "
                f"{response.headers.get('Content-Encoding', '')[:60]!r} (asked for {ACCEPT_ENCODING})"
            )
        decoder = _Decoder(codings[0] if codings else "identity")
        headers = response.headers.copy()
        if codings:
            # The body handed on is decoded: httpx must not decode it again, and its length differs.
            del headers["Content-Encoding"]
            headers.pop("Content-Length", None)
        length = headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            response.close()
            raise BodyTooLarge(
                f"{self._describe(request)}: the response announces {mb(int(length))} (Content-Length), "
                f"more than the {mb(self.max_bytes)} limit; not read. If this upstream really sends that "
                "much, raise max_response_mb (setting, or the connection's extra)."
            )
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_BoundedStream(
                stream,
                decoder,
                max_bytes=self.max_bytes,
                what=lambda: self._describe(request),
                request=request,
            ),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()
