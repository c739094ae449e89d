"""One exception hierarchy for the project.

``TransientUpstreamError`` is worth retrying (timeouts, connection errors, 429, 5xx).
``PermanentUpstreamError`` and ``ConfigError`` fail at once (operators raise
``AirflowFailException`` for them). ``PayloadError`` means a source sent something unusable.
``RecordRejected`` is a single bad record: counted by reason, never fatal for the pull.

No Airflow import here: clients and models use these without Airflow installed.
"""

from __future__ import annotations


class OdSchedulerError(Exception):
    """Base of every error raised by the project."""


class UpstreamError(OdSchedulerError):
    """An upstream HTTP service failed."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientUpstreamError(UpstreamError):
    """Retryable: timeout, connection error, 429 or 5xx (after the client's own retries)."""


class PermanentUpstreamError(UpstreamError):
    """Not retryable: 401/403/404/422 and other 4xx; retrying cannot help."""


class ConfigError(OdSchedulerError):
    """A connection, setting or dealer configuration is missing or invalid."""


class PayloadError(OdSchedulerError):
    """The upstream answered, but with a body that cannot be used (bad JSON, wrong shape, error field)."""


class RecordRejected(OdSchedulerError):
    """One source record cannot become a canonical vehicle.

    ``reason`` is a short machine-readable code (``missing_vin``, ``invalid_vin_check_digit``, ...)
    used as the key of the rejects-by-reason counts; ``ref`` names the record (VIN or stock number).
    """

    def __init__(self, reason: str, ref: str | None = None, detail: str | None = None) -> None:
        super().__init__(f"{reason}: {ref or '<no id>'}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.ref = ref
        self.detail = detail


class BatchTooLarge(PermanentUpstreamError):
    """The Data API refused a batch as too large (413): the caller splits it and sends the halves."""
