"""Inventory platforms the sandbox serves: one module per platform, registered in ``PLATFORMS``.

A platform module subclasses ``Platform``: it names its platform id, fills in the per-request
parts of its CMS config, renders a ``SourceVehicle`` into its wire format, optionally lists its
segments, returns a router serving its HTTP contract (docs/contracts.md), and says how the scheduler's
connection reaches it (``include/tools/localenv.py`` names that connection by the platform's registry
entry: the sandbox does not import ``od_scheduler``). Adding a platform =
one module here + one line in ``PLATFORMS`` + dealer rows in ``dealers.py``. Platforms with
dealers in the table but no module would appear in the CMS with their static config only
(every platform has one now).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from fastapi import APIRouter

from include.sandbox.dealers import DealerSpec
from include.sandbox.lots import Lot, SourceVehicle
from include.sandbox.state import SandboxState


class Platform:
    """Base of a served platform. Override ``render`` and ``router``; the rest has defaults."""

    platform_id: ClassVar[str]

    def cms_config(self, dealer: DealerSpec, base_url: str) -> dict[str, Any]:
        """The dealer's ``<platform>_config`` as the CMS returns it; ``base_url`` = this server."""
        return copy.deepcopy(dict(dealer.platforms[self.platform_id]))

    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        """One vehicle in the platform's wire format."""
        raise NotImplementedError

    def segments(self, lot: Lot) -> dict[str, list[str]]:
        """VINs per listing segment, in served order (empty when the platform has none)."""
        return {}

    def router(self, state: SandboxState) -> APIRouter:
        """The platform's HTTP contract, bound to ``state``."""
        raise NotImplementedError

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection to this platform here (one entry of Airflow's ``connections import``
        JSON, credentials the sandbox accepts); ``base_url`` = this server."""
        raise NotImplementedError


def _registry() -> dict[str, Platform]:
    from include.sandbox.platforms.cobalt import CobaltPlatform
    from include.sandbox.platforms.dealer_com import DealerComPlatform
    from include.sandbox.platforms.dealersocket import DealersocketPlatform
    from include.sandbox.platforms.homenet import HomenetPlatform
    from include.sandbox.platforms.vinsolutions import VinsolutionsPlatform
    from include.sandbox.platforms.web_scraping import WebScrapingPlatform

    platforms: list[Platform] = [
        DealerComPlatform(),
        HomenetPlatform(),
        CobaltPlatform(),
        WebScrapingPlatform(),
        VinsolutionsPlatform(),
        DealersocketPlatform(),
    ]
    return {platform.platform_id: platform for platform in platforms}


PLATFORMS: dict[str, Platform] = _registry()
"""Served platforms by platform id."""


def platform_config(dealer: DealerSpec, platform: str, base_url: str) -> dict[str, Any]:
    """A dealer's config for ``platform``, through the platform module when there is one."""
    module = PLATFORMS.get(platform)
    return module.cms_config(dealer, base_url) if module else copy.deepcopy(dict(dealer.platforms[platform]))
