"""PayloadCMS ``dealers`` collection (CONTRACTS §1), served under ``/cms``.

``GET /cms/api/dealers`` with Payload's query syntax and response envelope. Quirks kept:

- ``limit`` defaults to **10** when absent (Payload's default): a client that forgets ``limit`` or
  stops after the first page misses dealers.
- ``where[<path>][<operator>]=value`` filters (operators ``equals``, ``not_equals``, ``contains``,
  ``like``, ``in``, ``not_in``, ``exists``; dotted paths such as ``dealer_com_config.site_id``);
  a path the collection does not have answers 400, as Payload does.
- Default sort ``-createdAt`` (the table's order); ``sort=<field>`` / ``sort=-<field>`` work too.
- Auth: ``Authorization: <auth_collection> API-Key <key>``; anything else is 401 in Payload's
  ``{"errors": [{"message": ...}]}`` shape.
- ``dealer_com_config.base_url`` points back at this server (the request's own host:port).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import PLATFORM_IDS, DealerSpec, config_key
from include.sandbox.http import arrive, json_response, truncated_json_response
from include.sandbox.platforms import platform_config
from include.sandbox.state import SandboxState

PREFIX = "/cms"
TARGET = "cms"

_WHERE = re.compile(r"^where\[([A-Za-z0-9_.]+)\]\[([a-z_]+)\]$")
_QUERYABLE = frozenset(
    {"id", "name", "slug", "domain", "status", "timezone", "platforms", "schedule", "createdAt", "updatedAt"}
    | {config_key(platform) for platform in PLATFORM_IDS}
)
"""Top-level fields of the collection; ``where`` on anything else is a 400."""
_CREATED_BASE = datetime(2025, 6, 2, 15, 4, 5, 123000, tzinfo=UTC)


def _errors(message: str, status: int) -> Response:
    return json_response({"errors": [{"message": message}]}, status)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dealer_doc(dealer: DealerSpec, position: int, base_url: str) -> dict[str, Any]:
    """A dealer as Payload returns it with ``depth=0``."""
    doc: dict[str, Any] = {
        "id": dealer.id,
        "name": dealer.name,
        "slug": dealer.slug,
        "domain": dealer.domain,
        "status": dealer.status,
        "timezone": dealer.timezone,
        "platforms": list(dealer.platforms),
    }
    if dealer.schedule is not None:
        doc["schedule"] = {
            "interval_minutes": dealer.schedule.interval_minutes,
            "paused": dealer.schedule.paused,
        }
    for platform in dealer.platforms:
        doc[config_key(platform)] = platform_config(dealer, platform, base_url)
    # Newest first is Payload's default order; give the first table row the newest timestamp.
    created = _CREATED_BASE - timedelta(days=position, hours=position % 5)
    doc["createdAt"] = _timestamp(created)
    doc["updatedAt"] = _timestamp(created + timedelta(days=30, minutes=17 * position))
    return doc


def _lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches(value: Any, operator: str, raw: str) -> bool:
    items = [_text(item) for item in value] if isinstance(value, list) else None
    if operator == "equals":
        return raw in items if items is not None else _text(value) == raw
    if operator == "not_equals":
        return not _matches(value, "equals", raw)
    if operator == "contains":
        if items is not None:
            return raw in items
        return isinstance(value, str) and raw.lower() in value.lower()
    if operator == "like":
        return all(word in _text(value).lower() for word in raw.lower().split())
    if operator == "in":
        options = raw.split(",")
        return bool(set(items) & set(options)) if items is not None else _text(value) in options
    if operator == "not_in":
        return not _matches(value, "in", raw)
    if operator == "exists":
        return (value is not None) == (raw.lower() == "true")
    raise ValueError(operator)


_OPERATORS = frozenset({"equals", "not_equals", "contains", "like", "in", "not_in", "exists"})


def _positive_int(raw: str | None, default: int, *, minimum: int) -> int:
    try:
        return max(int(raw), minimum) if raw is not None else default
    except ValueError:
        return default


def build_router(state: SandboxState) -> APIRouter:
    """The CMS endpoints, bound to ``state``."""
    router = APIRouter(prefix=PREFIX, tags=["cms"])

    @router.get("/api/dealers")
    async def list_dealers(request: Request) -> Response:
        exchange = state.begin(request, "cms")
        response = await _list_dealers(request, exchange.detail)
        dealer_id = request.query_params.get("where[id][equals]")
        dealer = state.dealer(dealer_id) if dealer_id else None
        if dealer is not None:
            exchange.for_dealer(dealer)
        state.finish(exchange, response.status_code)
        return response

    async def _list_dealers(request: Request, detail: dict[str, Any]) -> Response:
        config = state.config
        expected = f"{config.cms_auth_collection} API-Key {config.cms_api_key}"
        if request.headers.get("authorization") != expected:
            return _errors("Unauthorized, you must be logged in to make this request.", 401)
        decision = await arrive(state, TARGET)
        if decision.fails:
            return json_response(
                {"errors": [{"message": decision.error_message(TARGET)}]},
                decision.status_code or 500,
                decision.headers(),
            )

        base_url = str(request.base_url).rstrip("/")
        docs = [dealer_doc(dealer, position, base_url) for position, dealer in enumerate(state.dealers)]
        for key, raw in request.query_params.multi_items():
            if not key.startswith("where"):
                continue
            match = _WHERE.match(key)
            if match is None:
                return _errors(f"Unsupported where clause {key!r}", 400)
            path, operator = match.groups()
            if path.split(".")[0] not in _QUERYABLE:
                return _errors(f"The following path cannot be queried: {path}", 400)
            if operator not in _OPERATORS:
                return _errors(f"Unknown operator {operator!r} on {path}", 400)
            docs = [doc for doc in docs if _matches(_lookup(doc, path), operator, raw)]

        sort = request.query_params.get("sort", "-createdAt")
        field_name = sort.lstrip("-")
        docs.sort(key=lambda doc: _text(_lookup(doc, field_name)), reverse=sort.startswith("-"))

        limit = _positive_int(request.query_params.get("limit"), config.cms_default_limit, minimum=0)
        page = _positive_int(request.query_params.get("page"), 1, minimum=1)
        detail.update(limit=limit, page=page)
        payload = paginate(docs, limit=limit, page=page)
        return truncated_json_response(payload) if decision.malformed else json_response(payload)

    return router


def paginate(docs: list[dict[str, Any]], *, limit: int, page: int) -> dict[str, Any]:
    """Payload's envelope. ``limit=0`` means no limit (one page with everything)."""
    total = len(docs)
    if limit == 0:
        page, total_pages, page_docs = 1, 1, docs
    else:
        total_pages = max(math.ceil(total / limit), 1)
        page_docs = docs[(page - 1) * limit : page * limit]
    has_prev = page > 1
    has_next = page < total_pages
    return {
        "docs": page_docs,
        "totalDocs": total,
        "limit": limit,
        "totalPages": total_pages,
        "page": page,
        "pagingCounter": (page - 1) * limit + 1,
        "hasPrevPage": has_prev,
        "hasNextPage": has_next,
        "prevPage": page - 1 if has_prev else None,
        "nextPage": page + 1 if has_next else None,
    }
