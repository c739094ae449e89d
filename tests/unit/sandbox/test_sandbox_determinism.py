"""Same seed, same bytes: two sandboxes serve identical data; another seed serves different lots."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from include.sandbox.config import SandboxConfig
from include.sandbox.dealers import DEALERS

pytestmark = pytest.mark.unit

MakeClient = Callable[[SandboxConfig], httpx.Client]
CMS_HEADERS = {"Authorization": "users API-Key sandbox-cms-key"}


def _snapshot(client: httpx.Client) -> list[bytes]:
    pages = [client.get("/cms/api/dealers", params={"limit": 100}, headers=CMS_HEADERS).content]
    for dealer in DEALERS:
        if "dealer.com" in dealer.platforms:
            pages.append(client.get(f"/_sandbox/truth/dealer.com/{dealer.slug}").content)
            site_id = dealer.platforms["dealer.com"]["site_id"]
            body = {"siteId": site_id, "preferences": {"pageSize": "100", "listing.config.id": "auto-used"}}
            if dealer.fault is None:
                pages.append(
                    client.post(
                        f"/dealer-com/{dealer.slug}/api/widget/ws-inv-data/getInventory", json=body
                    ).content
                )
    return pages


def test_same_seed_gives_byte_identical_data(make_client: MakeClient) -> None:
    first = _snapshot(make_client(SandboxConfig(seed=42)))
    second = _snapshot(make_client(SandboxConfig(seed=42)))

    assert len(first) > 30
    assert first == second


def test_another_seed_gives_other_lots_but_the_same_dealers(make_client: MakeClient) -> None:
    default = _snapshot(make_client(SandboxConfig(seed=42)))
    other = _snapshot(make_client(SandboxConfig(seed=7)))

    assert default[0] == other[0]  # the CMS does not depend on the seed
    assert default[1:] != other[1:]
