"""Shards: one mapped task instance works on many dealers at once, and each dealer stays its own job.

Inside a shard task up to ``pool_slots`` dealers are worked on at once (:func:`run_dealers`), each with its
own `job_executions` row and its own failure; each dealer's log lines are written as one folded section
when it ends; the task fails when any dealer failed (:func:`finish_shard`), retryably when one failure was
transient. Why shards and how retries re-do only unfinished dealers: docs/design.md, "Shards, not a task
per dealer".
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from od_scheduler.clients.bounded import work_budget
from od_scheduler.exceptions import OdSchedulerError
from od_scheduler.hooks.http_base import shared_connections
from od_scheduler.models.job import DealerRef
from od_scheduler.operators.job_tracking import TASK_STOPPING, describe
from od_scheduler.task_gc import task_gc

#: How many failed dealers a shard's error message names (all are in the job history and the log).
MAX_NAMED_FAILURES = 10
#: The package's own loggers (clients, hooks): their lines join the dealer's folded section too.
PACKAGE_LOGGER = "od_scheduler"


class ShardFailed(OdSchedulerError):
    """Some dealers of a shard failed and at least one failure was transient: Airflow retries the task,
    and the retry re-does only the dealers that did not succeed in this run."""


class NothingToDo(Exception):
    """A dealer needs no work in this try (done earlier in this run, or nothing to ingest)."""


class DealerWaits(Exception):
    """A dealer's work goes on elsewhere (an Apify run): the shard task defers and resumes it later."""


class DealerState(StrEnum):
    """How one dealer's work in a shard try ended."""

    DONE = "done"
    NOTHING = "nothing to do"
    SKIPPED = "skipped"
    FAILED = "failed"
    WAITING = "waiting"


@dataclass(frozen=True)
class DealerOutcome:
    """One dealer's end in a shard try."""

    ref: DealerRef
    state: DealerState
    detail: str | None = None
    retryable: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Small and JSON-safe, to carry across a deferral (the ref is found again by its id)."""
        return {
            "dealer_id": self.ref.dealer_id,
            "state": self.state.value,
            "detail": self.detail,
            "retryable": self.retryable,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, ref: DealerRef, value: dict[str, Any]) -> DealerOutcome:
        """Back from :meth:`as_dict`."""
        return cls(
            ref=ref,
            state=DealerState(value["state"]),
            detail=value.get("detail"),
            retryable=bool(value.get("retryable")),
            seconds=float(value.get("seconds") or 0.0),
        )


class DealerLog:
    """A dealer's log lines, kept while it works and written as one folded section when it ends.

    Stands in for the operator's ``self.log`` in the dealer's thread (same methods, %-style arguments), and
    keeps the package loggers' records of that thread (see :func:`capture_package_logs`) in order with them.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]] | logging.LogRecord] = []

    def _add(self, method: str, msg: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.entries.append((method, msg, args, kwargs))

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._add("debug", msg, args, kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._add("info", msg, args, kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._add("warning", msg, args, kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._add("error", msg, args, kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # The exception is the one being handled now; replayed later it must be carried along.
        self._add("error", msg, args, {**kwargs, "exc_info": sys.exc_info()})

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._add("critical", msg, args, kwargs)

    def write(self, log: Any, title: str) -> None:
        """Write the kept lines to ``log`` as one section titled ``title``."""
        with _WRITE_LOCK:
            log.info("::group::%s", title)
            for entry in self.entries:
                if isinstance(entry, logging.LogRecord):
                    logging.getLogger().handle(entry)
                else:
                    method, msg, args, kwargs = entry
                    getattr(log, method)(msg, *args, **kwargs)
            log.info("::endgroup::")


_WRITE_LOCK = threading.Lock()
_current = threading.local()


def current_dealer_log() -> DealerLog | None:
    """The dealer log of this thread, when it works on one dealer of a shard."""
    return getattr(_current, "log", None)


class _PackageCapture(logging.Handler):
    """Sends the package loggers' records of a dealer's thread to its section; others go on as usual."""

    def emit(self, record: logging.LogRecord) -> None:
        log = current_dealer_log()
        if log is not None:
            log.entries.append(record)
        else:
            logging.getLogger().handle(record)


@contextmanager
def capture_package_logs() -> Iterator[None]:
    """While a shard runs, route the package loggers through the dealers' sections."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    handler = _PackageCapture()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class ShardLogMixin:
    """``self.log`` is the dealer's section in a dealer's thread, the task's log elsewhere."""

    @property
    def log(self) -> Any:
        return current_dealer_log() or super().log  # type: ignore[misc]


def run_dealers(
    dealers: Iterable[DealerRef],
    work: Callable[[DealerRef], Any],
    *,
    in_flight: int,
    log: Any,
    what: str,
    deadline_s: float | None = None,
    on_end: Callable[[DealerOutcome], None] | None = None,
) -> list[DealerOutcome]:
    """Run ``work(ref)`` for every dealer, ``in_flight`` at once; one outcome per dealer, in order.

    ``dealers`` may be a list or an iterable that yields dealers as they become ready (it is drawn from in
    this thread, between submissions, e.g. :class:`od_scheduler.operators.ingest_feed.StagedFeed`);
    ``on_end(outcome)`` is called in the dealer's thread when each dealer ends.

    ``deadline_s`` bounds each dealer's requests together (``work_budget``): past it, the dealer's next
    request is refused and the one under way cut short, as a transient failure of that dealer only.

    ``work`` records its dealer's row itself (``failing_job``); here its end is only classified:
    ``NothingToDo`` and ``AirflowSkipException`` are not failures, ``AirflowFailException`` is a permanent
    failure, any other exception a transient one.
    """
    if isinstance(dealers, Sized):
        if not len(dealers):
            return []
        workers = max(1, min(in_flight, len(dealers)))
        log.info("%s of %d dealer(s), %d at a time", what, len(dealers), workers)
    else:
        workers = max(1, in_flight)
        log.info("%s of each dealer as it is ready, %d at a time", what, workers)

    def one(ref: DealerRef) -> DealerOutcome:
        section = DealerLog()
        _current.log = section
        started = time.monotonic()
        log.info("%s: %s started", ref.label, what)
        try:
            with work_budget(deadline_s, f"dealer {ref.label}"):
                work(ref)
            outcome = DealerOutcome(ref, DealerState.DONE)
        except NothingToDo as err:
            outcome = DealerOutcome(ref, DealerState.NOTHING, detail=str(err))
        except DealerWaits as err:
            outcome = DealerOutcome(ref, DealerState.WAITING, detail=str(err))
        except AirflowSkipException as err:
            outcome = DealerOutcome(ref, DealerState.SKIPPED, detail=str(err))
        except AirflowFailException as err:
            outcome = DealerOutcome(ref, DealerState.FAILED, detail=str(err))
        except Exception as err:
            outcome = DealerOutcome(ref, DealerState.FAILED, detail=describe(err), retryable=True)
        finally:
            _current.log = None
        seconds = time.monotonic() - started
        outcome = DealerOutcome(outcome.ref, outcome.state, outcome.detail, outcome.retryable, seconds)
        if outcome.state == DealerState.FAILED:
            section.error("%s failed: %s", what, outcome.detail)
        elif outcome.detail:
            section.info("%s", outcome.detail)
        try:
            section.write(log, f"{ref.label}: {outcome.state.value} ({seconds:.1f}s)")
        finally:
            if on_end is not None:
                on_end(outcome)
        return outcome

    TASK_STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dealer")
    try:
        # The task's own process: a larger young GC generation for its parsing (see od_scheduler.task_gc).
        with capture_package_logs(), task_gc(), shared_connections():
            # Each dealer's thread runs in a copy of the task's context (Airflow keeps some of a task's state,
            # e.g. connections preset for it, in context variables, which new threads would not see).
            futures = []
            try:
                for ref in dealers:
                    futures.append(pool.submit(contextvars.copy_context().run, one, ref))
            except Exception:
                # The source of dealers failed (not a kill or a timeout): the dealers at work end and record
                # their own end before the error goes on (and the task's connections are closed).
                wait(futures)
                raise
            return [future.result() for future in futures]
    except BaseException:
        # Killed or timed out (the exception arrives in this thread): dealers not started never start, and
        # those at work stop at their next lease check (each records its own end).
        TASK_STOPPING.set()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def finish_shard(outcomes: Sequence[DealerOutcome], *, what: str, log: Any) -> dict[str, Any]:
    """The shard task's verdict: a small summary, or an error naming the dealers that failed."""
    count = {state: sum(1 for o in outcomes if o.state == state) for state in DealerState}
    log.info(
        "%s: %d dealer(s): %d done, %d with nothing to do, %d skipped, %d failed",
        what,
        len(outcomes),
        count[DealerState.DONE],
        count[DealerState.NOTHING],
        count[DealerState.SKIPPED],
        count[DealerState.FAILED],
    )
    failed = [o for o in outcomes if o.state == DealerState.FAILED]
    if failed:
        named = "; ".join(f"{o.ref.label}: {o.detail}" for o in failed[:MAX_NAMED_FAILURES])
        more = f" (and {len(failed) - MAX_NAMED_FAILURES} more)" if len(failed) > MAX_NAMED_FAILURES else ""
        message = (
            f"{len(failed)} of {len(outcomes)} dealer(s) of this shard failed their {what}{more}; the others "
            f"are recorded as they ended. {named}"
        )
        if any(o.retryable for o in failed):
            raise ShardFailed(
                message + " — a retry or a clear re-does only the dealers that did not succeed in this run"
            )
        raise AirflowFailException(message)
    return {
        "dealers": len(outcomes),
        **{state.name.lower(): n for state, n in count.items()},
    }
