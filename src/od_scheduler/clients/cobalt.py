"""Cobalt inventory-feed client (docs/contracts.md §7): one CSV per dealer, with conditional GET.

``GET /feeds/<dealer_code>/inventory.csv`` with HTTP Basic auth. Given the ETag of the last successful
pull, the client sends ``If-None-Match`` and a ``304 Not Modified`` means the feed is unchanged: nothing is
parsed and ``feed.not_modified`` is set. A ``200`` carries the feed and its ``ETag`` (``feed.etag``), to be
saved as per-source state once the vehicles are safely ingested.

Parsing is the ``csv`` module over the response body, row by row (no list of rows, no pandas): a UTF-8
byte-order mark is dropped, quoted fields keep their commas and quotes, header names are matched to the
contract's without regard to case or surrounding blanks, and a row whose field count differs from the
header's is passed on marked (``row_problem``) so it is rejected, not ingested with shifted columns. A
header without a ``VIN`` column, bytes that are not UTF-8 or CSV the parser cannot read are a
``PayloadError``. The base reads the body before returning it (retries need the status first); feeds are
a few hundred kilobytes.
"""

from __future__ import annotations

import base64
import codecs
import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.redaction import excerpt
from od_scheduler.exceptions import ConfigError, PayloadError
from od_scheduler.models.cobalt import COLUMNS, SOURCE, CobaltVehicle

logger = logging.getLogger(__name__)

FEED_PATH = "/feeds/{dealer_code}/inventory.csv"
_BOM = "\ufeff"
#: A header row longer or wider than this is refused unparsed (the contract's has 18 columns).
MAX_HEADER_BYTES = 64 * 1024
MAX_COLUMNS = 500
_BY_LOWER = {name.lower(): name for name in COLUMNS}


def feed_path(dealer_code: str) -> str:
    """The feed's path for ``dealer_code`` (percent-encoded: a code is never a path)."""
    return FEED_PATH.format(dealer_code=quote(dealer_code, safe=""))


@dataclass
class FeedReport:
    """What the last ``iter_inventory`` saw: 200 or 304, the feed's ETag, rows read and malformed."""

    dealer_code: str = ""
    status: int | None = None
    etag: str | None = None
    not_modified: bool = False
    rows: int = 0
    malformed_rows: int = 0
    unknown_columns: tuple[str, ...] = ()


class CobaltClient(BaseClient):
    """Reads Cobalt inventory feeds (one client per connection; one feed per call)."""

    def __init__(self, *, base_url: str, login: str, password: str, **kw: Any) -> None:
        if not login or not password:
            raise ConfigError("Cobalt feeds need HTTP Basic credentials: set login and password")
        kw.setdefault("service", SOURCE)
        super().__init__(base_url=base_url.rstrip("/"), auth=httpx.BasicAuth(login, password), **kw)
        self.redactor.add(password)
        # What really travels: ``Authorization: Basic base64(login:password)`` (httpx encodes UTF-8).
        self.redactor.add(base64.b64encode(f"{login}:{password}".encode()).decode("ascii"))
        self.feed = FeedReport()

    def iter_inventory(self, dealer_code: str, *, etag: str | None = None) -> Iterator[CobaltVehicle]:
        """The feed's rows as raw vehicles, lazily; nothing when the server answers 304 to ``etag``.

        After the iterator ends, ``self.feed`` says whether the feed was unchanged and holds its ETag.
        """
        self.feed = FeedReport(dealer_code=dealer_code)
        headers = {"Accept": "text/csv"}
        if etag:
            headers["If-None-Match"] = etag
        response = self.request("GET", feed_path(dealer_code), ok=(200, 304), headers=headers)
        self.stats.pages += 1
        self.feed.status = response.status_code
        where = f"cobalt feed {dealer_code!r}"
        if response.status_code == 304:
            if not etag:
                raise PayloadError(f"{where}: 304 Not Modified to a request without If-None-Match")
            self.feed.not_modified = True
            self.feed.etag = response.headers.get("ETag") or etag
            logger.info("%s: not modified since ETag %s (HTTP 304); nothing to fetch", where, etag)
            return
        self.feed.etag = response.headers.get("ETag")
        if not self.feed.etag:
            logger.warning("%s: the feed has no ETag; the next pull cannot be conditional", where)
        yield from self._parse(response.content, where)
        logger.info(
            "%s: %d row(s), %d malformed, %d bytes, ETag %s",
            where,
            self.feed.rows,
            self.feed.malformed_rows,
            len(response.content),
            self.feed.etag,
        )

    def _parse(self, body: bytes, where: str) -> Iterator[CobaltVehicle]:
        if body.startswith(codecs.BOM_UTF8):
            body = body[len(codecs.BOM_UTF8) :]
        # The header is checked before the csv module builds it: a line of a million columns would be a
        # list of a million strings before the first "VIN" test could refuse it.
        end = body.find(b"\n", 0, MAX_HEADER_BYTES + 1)
        header_line = body[: end if end != -1 else MAX_HEADER_BYTES + 1]
        if len(header_line) > MAX_HEADER_BYTES or header_line.count(b",") >= MAX_COLUMNS:
            raise PayloadError(
                f"{where}: the header row is over {MAX_HEADER_BYTES} bytes or {MAX_COLUMNS} columns "
                f"(the feed has {len(COLUMNS)}): not an inventory feed"
            )
        text = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8", errors="strict", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                raise PayloadError(f"{where}: the feed is empty (no header row)")
            names = [self._column(name) for name in header]
            if "VIN" not in names:
                raise PayloadError(
                    f"{where}: the header row has no VIN column: {excerpt(','.join(header), self.redactor)}"
                )
            self.feed.unknown_columns = tuple(
                h.strip() for h, n in zip(header, names, strict=True) if n is None
            )
            if self.feed.unknown_columns:
                logger.info("%s: ignoring unknown column(s) %s", where, ", ".join(self.feed.unknown_columns))
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # a blank line (some exporters end with several)
                self.feed.rows += 1
                problem = None
                if len(fields) != len(names):
                    self.feed.malformed_rows += 1
                    problem = f"line {reader.line_num}: {len(fields)} fields, the header has {len(names)}"
                row = {name: value for name, value in zip(names, fields, strict=False) if name is not None}
                yield CobaltVehicle.model_validate({**row, "line": reader.line_num, "row_problem": problem})
        except UnicodeDecodeError as err:
            raise PayloadError(
                f"{where}: the feed is not UTF-8 (after line {reader.line_num}): {err.reason}"
            ) from err
        except csv.Error as err:
            raise PayloadError(f"{where}: unreadable CSV at line {reader.line_num}: {err}") from err

    @staticmethod
    def _column(name: str) -> str | None:
        """The contract's column for a header cell (case and blanks ignored; a stray BOM too)."""
        return _BY_LOWER.get(name.replace(_BOM, "").strip().lower())
