"""Redaction: secrets and secret-looking URL parts masked in every log line and error message.

Every secret a client is handed (``secrets=``, its auth's own, tokens obtained at run time) is registered
with its :class:`Redactor` and with the process-wide :data:`HTTP_LOG_REDACTOR`, a filter on httpx's and
httpcore's loggers; ``token=``-style query parameters and URL user-info are masked too. Response bodies are
never logged; an error quotes at most a short, redacted, single-line :func:`excerpt`.

No Airflow imports.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection, Iterable
from urllib.parse import quote, quote_plus

#: Characters of a response body quoted in an error message (redacted), never more.
EXCERPT_CHARS = 200

_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:token|access_token|api_key|apikey|api-key|key|client_secret|secret|password)=)[^&#\s]*"
)
_URL_USERINFO = re.compile(r"(://)[^/@\s:]+:[^/@\s]*@")
REDACTED = "***"
MIN_SECRET_LENGTH = 4


class Redactor:
    """Replaces known secrets (and their URL-encoded forms) and secret-looking URL parts with ``***``.

    Secrets shorter than 4 characters are ignored: masking ``"1"`` would garble every number. Every
    secret added is also told to ``on_add`` (e.g. Airflow's ``mask_secret``) and to the process-wide
    filter on the ``httpx``/``httpcore`` loggers (:class:`HttpLogRedactor`).
    """

    def __init__(self, secrets: Iterable[str] = (), *, on_add: Callable[[str], None] | None = None) -> None:
        self._secrets: set[str] = set()
        self.on_add = on_add
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret (and its percent-encoded forms)."""
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret)}
        self._secrets.update(forms)
        HTTP_LOG_REDACTOR.add(forms)
        if self.on_add is not None:
            self.on_add(secret)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret and secret query parameter masked."""
        return redact_text(text, self._secrets)


def redact_text(text: str, secrets: Collection[str]) -> str:
    """``text`` with ``secrets`` (longest first), secret query parameters and URL user-info masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _SECRET_PARAMS.sub(rf"\1{REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text)


class HttpLogRedactor(logging.Filter):
    """Redacts the records of httpx's and httpcore's own loggers.

    httpx logs every request URL at INFO (``HTTP Request: POST https://hooks.slack.com/services/...``).
    Airflow's task logging lowers ``httpx`` to WARNING, but that is a deployment's logging config, not
    ours: ``airflow dags test``, other entry points and non-Airflow users of these clients log it. Rather
    than silencing a useful line everywhere, this filter rewrites each record with every secret any client
    of this process registered, plus the generic patterns (``token=`` parameters, URL user-info), masked.
    """

    #: Loggers it is installed on (filters on a logger do not apply to its children's records).
    LOGGERS = (
        "httpx",
        "httpcore",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
    )

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        """Mask ``secrets`` in every later record."""
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        with self._lock:
            secrets = tuple(self._secrets)
        redacted = redact_text(message, secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    def install(self) -> None:
        """Attach to the httpx/httpcore loggers (idempotent)."""
        for name in self.LOGGERS:
            target = logging.getLogger(name)
            if self not in target.filters:
                target.addFilter(self)


HTTP_LOG_REDACTOR = HttpLogRedactor()
HTTP_LOG_REDACTOR.install()

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def excerpt(body: bytes | str, redactor: Redactor | None = None, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, redacted excerpt of a response body for an error message.

    Control characters (NUL included: PostgreSQL text cannot hold it) become ``?``.
    """
    if isinstance(body, bytes):
        body = body[: limit * 10].decode("utf-8", errors="replace")
    text = " ".join(_CONTROL_CHARS.sub("?", body[: limit * 10]).split())
    if redactor is not None:
        text = redactor.redact(text)
    if not text:
        return "<empty body>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
