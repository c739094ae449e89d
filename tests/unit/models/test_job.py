"""DealerRef, a dealer's identity: built from its CMS document, its job-history key, its labels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.job import DealerRef, ExecutionKey, Shard, dealer_label

pytestmark = pytest.mark.unit

DEALER = Dealer.model_validate(
    {
        "id": "d-4711",
        "name": "Hilltop Motors",
        "slug": "hilltop-motors",
        "status": "active",
        "platforms": ["dealer.com"],
        "dealer_com_config": {"site_id": "hilltop", "base_url": "https://www.hilltopmotors.com"},
    }
)


def test_a_valid_document_gives_its_identity_on_the_platform() -> None:
    ref = DealerRef.of(DEALER, "dealer.com")
    assert ref == DealerRef(
        dealer_id="d-4711", platform="dealer.com", name="Hilltop Motors", slug="hilltop-motors"
    )
    assert ref.error is None


def test_an_invalid_document_keeps_its_error_and_an_id_even_without_one() -> None:
    broken = InvalidDealer(id="d-9", name="Broken Motors", slug=None, error="slug: Field required")
    ref = DealerRef.of(broken, "homenet")
    assert (ref.dealer_id, ref.platform, ref.name, ref.slug) == ("d-9", "homenet", "Broken Motors", None)
    assert ref.error == "invalid dealer document in PayloadCMS: slug: Field required"
    nameless = DealerRef.of(InvalidDealer(slug="ghost-motors", error="id: Field required"), "homenet")
    assert nameless.dealer_id == "unknown:ghost-motors"


def test_the_key_is_the_dealer_on_its_platform_in_the_run() -> None:
    key = DealerRef.of(DEALER, "dealer.com").key(dag_id="inventory_dealer_com", run_id="manual__1")
    assert key == ExecutionKey(
        dag_id="inventory_dealer_com", run_id="manual__1", dealer_id="d-4711", platform="dealer.com"
    )
    assert key.job_id == "d-4711_dealer.com"


@pytest.mark.parametrize(
    ("name", "slug", "short", "full"),
    [
        ("Hilltop", "hilltop-motors", "Hilltop (hilltop-motors)", "Hilltop (hilltop-motors, id d-1)"),
        ("Hilltop", None, "Hilltop (d-1)", "Hilltop (id d-1)"),
        (None, "hilltop-motors", "? (hilltop-motors)", "hilltop-motors (id d-1)"),
        (None, None, "? (d-1)", "d-1"),
    ],
)  # fmt: skip
def test_labels_name_the_dealer_the_same_way_everywhere(
    name: str | None, slug: str | None, short: str, full: str
) -> None:
    ref = DealerRef(dealer_id="d-1", platform="dealer.com", name=name, slug=slug)
    assert (ref.label, ref.full_label) == (short, full)
    assert dealer_label("d-1", name, slug, with_id=False) == short
    assert dealer_label("d-1", name, slug) == full


def test_a_shard_survives_its_xcom_round_trip_with_the_platform() -> None:
    shard = Shard.of([DealerRef.of(DEALER, "dealer.com")])
    again = Shard.model_validate(shard.model_dump(mode="json"))
    assert again == shard
    assert again.label == "Hilltop Motors (hilltop-motors)"
    assert again.dealers[0].platform == "dealer.com"


def test_a_shard_listed_before_refs_carried_their_platform_is_read_with_the_tasks_platform() -> None:
    # A run in flight across the upgrade: its list_dealers XCom has no "platform" in its refs.
    listed = {"dealers": [{"dealer_id": "d1", "name": "Acme", "slug": "acme"}], "label": "Acme (acme)"}
    shard = Shard.load(listed, "cobalt")
    assert shard.dealers[0].platform == "cobalt"
    assert shard.dealers[0].key(dag_id="inventory_cobalt", run_id="r").platform == "cobalt"


def test_a_refs_own_platform_is_kept_and_a_missing_one_without_a_task_platform_is_an_error() -> None:
    listed = {"dealers": [{"dealer_id": "d1", "platform": "homenet"}], "label": "d1"}
    assert Shard.load(listed, "cobalt").dealers[0].platform == "homenet"
    with pytest.raises(ValidationError, match="platform"):
        Shard.model_validate({"dealers": [{"dealer_id": "d1"}], "label": "d1"})
