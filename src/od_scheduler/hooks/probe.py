"""The connection test (the UI's Test button): its bounds, and the probe for upstreams with no cheap read.

Each hook's ``probe()`` says what it sends (:meth:`OdHttpHook.test_connection` runs it with these bounds).
Where the contract has an endpoint for a cheap authenticated read, the probe reads it; where every path is
a dealer's or a write, :func:`auth_probe` sends one request that reads and changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.redaction import excerpt

if TYPE_CHECKING:
    from od_scheduler.hooks.http_base import OdHttpHook

#: The connection test's bounds: one attempt, answered in seconds (the UI waits for it).
TEST_TIMEOUT_S = 10.0
TEST_DEADLINE_S = 20.0
#: Every HTTP status: a probe's answer is judged by the hook, never retried or raised by the client.
ANY_STATUS = range(100, 600)
#: The id a probe asks for where the upstream only serves per-dealer paths (no dealer has it).
PROBE_ID = "od-scheduler-connection-test"


def auth_probe(
    hook: OdHttpHook,
    client: BaseClient,
    method: str,
    path: str,
    *,
    name: str,
    accepted: Collection[int],
    probe: str,
    fix: str,
    **kwargs: Any,
) -> tuple[bool, str]:
    """Probe an upstream that has no endpoint for a cheap authenticated read.

    One request that the upstream must authenticate but that reads no dealer's data and changes nothing
    (``probe`` says what it is) goes out twice: without credentials, where it must be refused (401/403:
    the host is the upstream and it checks this path), then with the connection's, where it must get
    one of ``accepted``, the contract's answer to such a request. ``fix`` says what to check when the
    credentials are refused.
    """
    url = client.redactor.redact(f"{client.base_url.rstrip('/')}{path}")
    named = name[:1].upper() + name[1:]
    wanted = "/".join(str(s) for s in accepted)
    with BaseClient(base_url=client.base_url, service=client.service, **hook.client_kwargs()) as anonymous:
        status = anonymous.request(method, path, ok=ANY_STATUS, **kwargs).status_code
    if status not in (401, 403):
        return False, (
            f"{named}: {method} {url} answered HTTP {status} without credentials, where {name} refuses "
            f"(401 or 403): check that the host of connection {hook.conn_id!r} is the {name} base URL."
        )
    response = client.request(method, path, ok=ANY_STATUS, **kwargs)
    answer = f"HTTP {response.status_code}: {excerpt(response.content, client.redactor, 120)}"
    if response.status_code in (401, 403):
        return False, f"{named} refused the credentials ({method} {url}: {answer}). Check {fix}."
    if response.status_code not in accepted:
        return False, f"{named}: {method} {url} answered {answer}; expected HTTP {wanted} for {probe}."
    return True, (
        f"{named} is reachable and accepted the credentials: {method} {url} answered HTTP "
        f"{response.status_code} as expected for {probe} (without credentials: {status})."
    )
