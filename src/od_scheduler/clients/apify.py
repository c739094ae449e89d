"""Apify API client (docs/contracts.md §4): start an actor run, watch it, abort it, page through its dataset.

Two clients share the contract:

- :class:`ApifyClient` (sync, on :class:`~od_scheduler.clients.http.BaseClient`) is what the operator uses
  on a worker: ``start_run``, ``get_run``, ``abort_run``, ``iter_items`` (the run's dataset, paged by
  offset with ``clean=true&format=json``; ``X-Apify-Pagination-Total`` gives the total), and
  ``find_started_run`` (the actor's recent runs, ``GET /v2/acts/<actor>/runs?desc=1&limit=<n>``, each
  compared by its ``INPUT`` record, ``GET /v2/actor-runs/<id>/key-value-store/records/INPUT``).
- :class:`ApifyRunWatcher` (async, ``httpx.AsyncClient``) is what the deferrable trigger uses in the
  triggerer: it long-polls ``GET /v2/actor-runs/<id>?waitForFinish=<s>`` (at most 60 s a call, Apify's own
  bound) until the run reaches a terminal status or our deadline passes, and aborts a run whose task was
  killed. Its polls and aborts are retried by the sync client's own policy
  (:func:`~od_scheduler.clients.retry.async_retrying`: ``Retry-After``, backoff, counters, redaction).

Starting a run is the one request that is not idempotent: every ``POST /v2/acts/<actor>/runs`` that
reaches Apify starts a paid run, and Apify takes no idempotency key. So ``start_run`` sends it as not
idempotent, and a start that may have arrived is never re-sent: only a 429 (Apify refused it) and a
connection that was never established are retried; a timeout, a broken connection, a 5xx or an
unreadable answer raise :class:`AmbiguousStartError` (transient) at once. The operator then fails the
try, and the next try first looks for the run it may have started (``find_started_run``) before it starts
another. Polls, aborts and dataset reads are idempotent and retried like every request.

The token travels only in ``Authorization: Bearer`` (never ``?token=``, which would put it in every
URL a proxy or log line sees) and is redacted from every log line and error either client writes.
Apify answers rate limiting with 429 and ``{"error": {"type": "rate-limit-exceeded"}}``: retried after
``Retry-After`` like every 429.

No Airflow imports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from od_scheduler.clients.auth import BearerAuth
from od_scheduler.clients.bounded import shared_ssl_context
from od_scheduler.clients.http import USER_AGENT, BaseClient, RequestStats
from od_scheduler.clients.pagination import OffsetPaginator, Page, PullReport
from od_scheduler.clients.redaction import Redactor, excerpt
from od_scheduler.clients.retry import (
    AmbiguousRequestError,
    RetryPolicy,
    TransientFailure,
    async_retrying,
    is_transient,
)
from od_scheduler.clients.url_guard import check_start_url
from od_scheduler.exceptions import (
    ConfigError,
    PayloadError,
    PermanentUpstreamError,
    TransientUpstreamError,
)
from od_scheduler.models.dealer import summarize_validation_error
from od_scheduler.models.normalize import parse_int
from od_scheduler.models.web_scraping import ApifyRun, ScrapedVehicle

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.apify.com"
RUNS_PATH = "/v2/acts/{actor}/runs"
RUN_PATH = "/v2/actor-runs/{run_id}"
ABORT_PATH = "/v2/actor-runs/{run_id}/abort"
INPUT_PATH = "/v2/actor-runs/{run_id}/key-value-store/records/INPUT"
ITEMS_PATH = "/v2/datasets/{dataset_id}/items"
TOTAL_HEADER = "X-Apify-Pagination-Total"
#: Apify holds a ``waitForFinish`` request for at most 60 seconds.
MAX_WAIT_FOR_FINISH_S = 60
#: Dataset items per request when the connection does not say otherwise.
DEFAULT_PAGE_SIZE = 1000
#: How many of the actor's latest runs ``find_started_run`` looks through.
RECENT_RUNS = 10
#: A run Apify says started up to this long before we sent the start still counts as ours (clock skew).
CLOCK_SKEW = timedelta(seconds=60)


class AmbiguousStartError(AmbiguousRequestError):
    """A start request may have reached Apify, but its answer was lost: the run may be running.

    Never re-sent by the client (it would start a second paid run). Transient: the next task try looks
    the run up among the actor's recent runs before it starts one.
    """


def actor_path_id(actor_id: str) -> str:
    """The actor as a URL path segment: Apify spells ``username/actor-name`` as ``username~actor-name``."""
    actor = actor_id.strip().replace("/", "~")
    if not actor:
        raise ConfigError("the Apify actor id is empty: set web_scraping_config.actor_id in the CMS")
    return quote(actor, safe="~")


def run_input(
    *,
    start_urls: Sequence[str],
    dealer_id: str,
    max_items: int | None,
    allowlist: Collection[str] | str = (),
) -> dict[str, Any]:
    """The actor input of docs/contracts.md §4: ``{startUrls: [{url}], dealerId, maxItems}``.

    The start URLs come from the CMS and are only handed to Apify, so their shape is checked (https, a
    host, no user-info; http only for ``allowlist`` hosts), not where they resolve: ``ConfigError``
    naming the dealer and the field otherwise.
    """
    urls = [
        check_start_url(
            url, dealer=dealer_id, field=f"web_scraping_config.start_urls[{i}]", allowlist=allowlist
        )
        for i, url in enumerate(start_urls)
    ]
    body: dict[str, Any] = {"startUrls": [{"url": url} for url in urls], "dealerId": dealer_id}
    if max_items is not None:
        body["maxItems"] = max_items
    return body


def parse_run(body: Any, where: str) -> ApifyRun:
    """The run in an Apify ``{"data": {...}}`` envelope; ``PayloadError`` for any other shape."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise PayloadError(f"{where}: expected a JSON object with a 'data' object, got {type(body).__name__}")
    try:
        return ApifyRun.model_validate(data)
    except ValidationError as err:
        raise PayloadError(f"{where}: the run object is invalid: {summarize_validation_error(err)}") from err


def same_input(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two actor inputs are the same run request (key order does not matter)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _path(template: str, **ids: str) -> str:
    # Ids come from responses and the CMS: never let one add path segments or a query.
    return template.format(**{name: quote(value, safe="~") for name, value in ids.items()})


# --------------------------------------------------------------------------------------------------
# Sync client (operator side)
# --------------------------------------------------------------------------------------------------
class ApifyClient(BaseClient):
    """Starts, reads and aborts actor runs and reads their datasets. After ``iter_items``, ``report``."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = 10_000,
        **kw: Any,
    ) -> None:
        if not token:
            raise ConfigError("the Apify API token is empty: put it in the od_apify connection's password")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        kw.setdefault("service", "apify")
        super().__init__(base_url=base_url.rstrip("/"), auth=BearerAuth(token), **kw)
        self.page_size = page_size
        self.max_pages = max_pages
        self.report = PullReport()

    def start_run(self, actor_id: str, actor_input: Mapping[str, Any]) -> ApifyRun:
        """``POST /v2/acts/<actor>/runs`` with the actor input; returns the new run (READY or RUNNING).

        Not idempotent, so sent at most once unless Apify certainly did not receive it: a 429 (rate
        limited, nothing started) and a connection that was never established are retried; a timeout, a
        broken connection, a 5xx or an unreadable answer raise :class:`AmbiguousStartError` without a retry.
        """
        path = _path(RUNS_PATH, actor=actor_path_id(actor_id))
        where = f"apify start of actor {actor_id!r}"
        ambiguous = (
            "The run may have started: the request is not re-sent (it would start a second paid run); "
            "the next try looks for it among the actor's recent runs before it starts one."
        )
        try:
            response = self.request("POST", path, json=dict(actor_input), ok=(200, 201), idempotent=False)
        except AmbiguousRequestError as err:
            raise AmbiguousStartError(
                f"{where}: {err.what}", status_code=err.status_code, advice=ambiguous
            ) from err
        except TransientUpstreamError as err:  # refused or never sent: certainly nothing started
            raise TransientUpstreamError(
                f"{where}: no run was started: {err}", status_code=err.status_code
            ) from err
        try:
            body = response.json()
        except (ValueError, RecursionError) as err:
            raise AmbiguousStartError(
                f"{where}: HTTP {response.status_code} with invalid JSON "
                f"({excerpt(response.content, self.redactor)})",
                advice=ambiguous,
            ) from err
        try:
            return parse_run(body, where)
        except PayloadError as err:
            raise AmbiguousStartError(str(err), advice=ambiguous) from err

    def list_runs(self, actor_id: str, *, limit: int = RECENT_RUNS) -> list[ApifyRun]:
        """The actor's latest runs, newest first (``GET /v2/acts/<actor>/runs?desc=1&limit=<n>``)."""
        path = _path(RUNS_PATH, actor=actor_path_id(actor_id))
        where = f"apify runs of actor {actor_id!r}"
        body = self.get_json(path, params={"desc": 1, "limit": limit})
        data = body.get("data") if isinstance(body, dict) else None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise PayloadError(f"{where}: expected {{'data': {{'items': [...]}}}}, got {excerpt(str(body))}")
        runs = []
        for index, item in enumerate(items):
            try:
                runs.append(ApifyRun.model_validate(item))
            except ValidationError as err:
                raise PayloadError(f"{where}: item {index}: {summarize_validation_error(err)}") from err
        return runs

    def get_run_input(self, run_id: str) -> Any | None:
        """The input a run was started with (its default key-value store's ``INPUT``); None if it has none."""
        response = self.request("GET", _path(INPUT_PATH, run_id=run_id), ok=(200, 404))
        if response.status_code == 404:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError):
            return None  # not JSON (or nested past the stack): not an input this project sent

    def find_started_run(
        self, actor_id: str, actor_input: Mapping[str, Any], *, since: datetime, limit: int = RECENT_RUNS
    ) -> ApifyRun | None:
        """The run a start sent at ``since`` created, if Apify has it: the newest of the actor's runs
        started since then (less :data:`CLOCK_SKEW`) whose input is ``actor_input``.

        After an :class:`AmbiguousStartError` this tells "the run started, its answer was lost" from "it
        never started". Only runs started after ``since`` are compared, so an earlier pull's run with the
        same input is never adopted.
        """
        cutoff = since - CLOCK_SKEW
        for run in self.list_runs(actor_id, limit=limit):
            if run.started_at is None:  # parsed as an aware UTC time
                continue
            if run.started_at < cutoff:
                break  # newest first: every further run is older still
            recorded = self.get_run_input(run.id)
            if isinstance(recorded, dict) and same_input(recorded, actor_input):
                return run
        return None

    def get_run(self, run_id: str, *, wait_for_finish: int = 0) -> ApifyRun:
        """``GET /v2/actor-runs/<id>``; with ``wait_for_finish`` (≤ 60 s) Apify holds the answer as long."""
        wait = max(0, min(int(wait_for_finish), MAX_WAIT_FOR_FINISH_S))
        body = self.get_json(_path(RUN_PATH, run_id=run_id), params={"waitForFinish": wait})
        return parse_run(body, f"apify run {run_id}")

    def abort_run(self, run_id: str) -> ApifyRun:
        """``POST /v2/actor-runs/<id>/abort``; returns the run (``ABORTING``, or already terminal)."""
        # Idempotent: aborting a run that is already aborting or finished changes nothing.
        body = self.post_json(_path(ABORT_PATH, run_id=run_id), idempotent=True)
        return parse_run(body, f"apify abort of run {run_id}")

    def fetch_items(self, dataset_id: str, offset: int) -> Page[ScrapedVehicle]:
        """One page of the dataset from ``offset``; the total comes from ``X-Apify-Pagination-Total``."""
        where = f"apify dataset {dataset_id} offset {offset}"
        response = self.request(
            "GET",
            _path(ITEMS_PATH, dataset_id=dataset_id),
            params={"offset": offset, "limit": self.page_size, "clean": "true", "format": "json"},
        )
        self.stats.pages += 1
        try:
            body = response.json()
        except (ValueError, RecursionError) as err:  # RecursionError: nested deeper than the stack
            raise PayloadError(f"{where}: not JSON: {excerpt(response.content, self.redactor)}") from err
        if not isinstance(body, list):
            raise PayloadError(f"{where}: expected a JSON array of items, got {type(body).__name__}")
        items = []
        for index, item in enumerate(body):
            if not isinstance(item, dict):
                raise PayloadError(
                    f"{where}: item {offset + index} is a {type(item).__name__}, not an object"
                )
            try:
                items.append(ScrapedVehicle.model_validate(item))
            except ValidationError as err:  # the model is tolerant; this means the actor's output changed
                raise PayloadError(
                    f"{where}: item {offset + index}: {summarize_validation_error(err)}"
                ) from err
        return Page(items=items, total=parse_int(response.headers.get(TOTAL_HEADER)))

    def iter_items(self, dataset_id: str, *, max_items: int | None = None) -> Iterator[ScrapedVehicle]:
        """Every item of the dataset, lazily; then ``self.report`` says whether the pull was complete.

        Items are not deduplicated here (the pull screens VINs); a dataset as large as the run's
        ``maxItems`` means the actor stopped at its limit, so the pull is marked incomplete (partial: the
        lot may hold more, and nothing must be delisted from it).
        """
        self.report = PullReport()
        paginator: OffsetPaginator[ScrapedVehicle] = OffsetPaginator(
            partial(self.fetch_items, dataset_id), max_pages=self.max_pages
        )
        count = 0
        for page in paginator.iter_pages():
            count += len(page.items)
            logger.info(
                "apify dataset %s offset %d: %d items on page, %d of %s so far",
                dataset_id,
                page.offset,
                page.returned,
                count,
                page.total if page.total is not None else "?",
            )
            yield from page.items
        part = self.report.record("dataset", paginator, items=count)
        if max_items is not None and count >= max_items:
            self.report.complete = False
            self.report.notes.append(
                f"dataset: {count} items = the run's maxItems ({max_items}); the actor stopped at its limit, "
                "so the lot may hold more vehicles"
            )
        logger.info(
            "apify dataset %s done: %d items in %d pages, total %s, stopped: %s",
            dataset_id,
            count,
            part.pages,
            part.total_count,
            part.stop_reason,
        )
        if not self.report.complete:
            logger.warning("apify dataset %s: pull incomplete: %s", dataset_id, "; ".join(self.report.notes))


# --------------------------------------------------------------------------------------------------
# Async watcher (trigger side)
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchResult:
    """How watching a run ended: ``finished`` with the terminal run, or the deadline passed first."""

    run: ApifyRun | None  # the last run object seen (None when no poll ever succeeded)
    finished: bool
    polls: int
    waited_s: float
    poll_failures: int  # polls that failed even after their retries (the watch went on)


class ApifyRunWatcher:
    """Long-polls one actor run from async code (the trigger), holding no worker slot.

    ``get_run`` retries transient failures like :meth:`BaseClient.request` (same ``is_transient``,
    ``Retry-After``, backoff, counters, redaction). ``wait_until_finished`` loops until the run is
    terminal or the wall-clock ``deadline`` (epoch seconds, so it survives a triggerer restart) passes;
    a poll that still fails after its retries does not end the watch, because the run goes on upstream
    whatever our connection does. Injectable ``transport``, ``sleep`` and ``clock`` for tests.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        conn_id: str | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        if not token:
            raise ConfigError("the Apify API token is empty: put it in the od_apify connection's password")
        self.service = "apify"
        self.conn_id = conn_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self.redactor = Redactor([token, *secrets], on_add=on_secret)
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=BearerAuth(token),
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=shared_ssl_context(),  # a shard's trigger watches many runs: one CA bundle load
            follow_redirects=False,
            event_hooks={"request": [self._count_request]},
        )

    async def _count_request(self, request: httpx.Request) -> None:
        self.stats.api_calls += 1

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _where(self) -> str:
        return f"connection {self.conn_id!r}" if self.conn_id else "the Apify client settings"

    async def get_run(self, run_id: str, *, wait_for_finish: int = 0) -> ApifyRun:
        """One poll (retried while transient); ``PermanentUpstreamError`` / ``PayloadError`` otherwise."""
        wait = max(0, min(int(wait_for_finish), MAX_WAIT_FOR_FINISH_S))
        # The read timeout must outlast the server's hold of a long poll.
        timeout = httpx.Timeout(self.timeout + wait, connect=min(self.timeout, 10.0))
        return await self._run_request(
            "GET", _path(RUN_PATH, run_id=run_id), run_id, params={"waitForFinish": wait}, timeout=timeout
        )

    async def abort_run(self, run_id: str) -> ApifyRun:
        """``POST /v2/actor-runs/<id>/abort`` (idempotent, so retried while transient); returns the run."""
        return await self._run_request("POST", _path(ABORT_PATH, run_id=run_id), run_id)

    async def _run_request(
        self,
        method: str,
        path: str,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> ApifyRun:
        """One request answered by ``{"data": run}``, retried by the one retry policy (a poll or an abort:
        both idempotent)."""
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        base = str(self._client.base_url).rstrip("/")
        shown = self.redactor.redact(f"{base}{path}" + (f"?{query}" if query else ""))
        retrying = async_retrying(
            self.retry,
            label=f"apify {method} {shown}",
            counters=self.stats,
            sleep=self._sleep,
            idempotent=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._run_attempt(
                    method, path, run_id, shown, attempt.retry_state.attempt_number, params, timeout
                )
        raise AssertionError("unreachable")  # pragma: no cover: the loop returns or raises

    async def _run_attempt(
        self,
        method: str,
        path: str,
        run_id: str,
        shown: str,
        attempt: int,
        params: Mapping[str, Any] | None,
        timeout: httpx.Timeout | None,
    ) -> ApifyRun:
        """One attempt: the run; ``TransientFailure`` when retrying can help (invalid JSON: one more try)."""
        try:
            response = await self._client.request(
                method, path, params=dict(params or {}), timeout=timeout or self._client.timeout
            )
        except httpx.HTTPError as err:
            failure = self.redactor.redact(f"{type(err).__name__}: {err or 'no detail'}")
            if not is_transient(exc=err):
                raise PermanentUpstreamError(f"apify {method} {shown} failed: {failure}") from err
            raise TransientFailure(failure) from err
        self.stats.bytes_fetched += len(response.content)
        status = response.status_code
        if status == 200:
            try:
                return parse_run(response.json(), f"apify run {run_id}")
            except RecursionError as err:
                raise PayloadError(f"apify {method} {shown} returned JSON nested too deeply") from err
            except ValueError as err:  # invalid JSON: usually a cut connection, worth one more try
                failure = f"invalid JSON: {excerpt(response.content, self.redactor)}"
                if attempt >= 2:
                    raise PayloadError(f"apify {method} {shown} returned {failure}") from err
                raise TransientFailure(failure, status_code=status) from err
        body = excerpt(response.content, self.redactor)
        if not is_transient(status_code=status):
            hint = (
                f"Check the API token in {self._where()}."
                if status in (401, 403)
                else "The run id is unknown to Apify (deleted, or another account's run)."
                if status == 404
                else ""
            )
            raise PermanentUpstreamError(
                f"apify {method} {shown} returned HTTP {status}: {body}. {hint}".rstrip(),
                status_code=status,
            )
        raise TransientFailure(
            f"HTTP {status}: {body}", status_code=status, retry_after=response.headers.get("Retry-After")
        )

    async def wait_until_finished(
        self,
        run_id: str,
        *,
        deadline: float,
        wait_for_finish_s: int = MAX_WAIT_FOR_FINISH_S,
        min_interval_s: float = 1.0,
    ) -> WatchResult:
        """Poll until the run is terminal or ``deadline`` (epoch seconds) passes.

        Each poll asks Apify to hold the answer up to ``wait_for_finish_s`` (≤ 60, never past the
        deadline); a poll answered sooner without a terminal status is followed by a pause so polls are
        at least ``min_interval_s`` apart.
        """
        started = self._clock()
        last: ApifyRun | None = None
        polls = failures = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return WatchResult(last, False, polls, self._clock() - started, failures)
            wait = max(0, min(wait_for_finish_s, MAX_WAIT_FOR_FINISH_S, math.floor(remaining)))
            began = self._clock()
            try:
                run = await self.get_run(run_id, wait_for_finish=wait)
            except TransientUpstreamError as err:
                failures += 1
                pause = min(self.retry.max_delay, max(deadline - self._clock(), 0.0))
                logger.warning(
                    "apify run %s: poll failed (%s); the run goes on upstream, polling again in %.1fs",
                    run_id,
                    err,
                    pause,
                )
                await self._sleep(pause)
                continue
            polls += 1
            last = run
            logger.info(
                "apify %s after %d poll(s), %.0fs of waiting", run.describe(), polls, self._clock() - started
            )
            if run.finished:
                return WatchResult(run, True, polls, self._clock() - started, failures)
            pause = min(min_interval_s - (self._clock() - began), deadline - self._clock())
            if pause > 0:
                await self._sleep(pause)
