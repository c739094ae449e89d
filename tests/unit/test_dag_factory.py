"""The platform DAGs' documentation, composed from the registry entry and the params themselves."""

from __future__ import annotations

import pytest

from od_scheduler.dag_factory import inventory_doc_md, inventory_params, params_doc
from od_scheduler.platforms import PLATFORMS

pytestmark = pytest.mark.unit


def test_params_doc_lists_every_param_with_its_title_section_and_description() -> None:
    params = inventory_params()
    lines = params_doc(params).splitlines()
    assert [line.split("`")[1] for line in lines] == list(params)
    for line, (name, param) in zip(lines, params.items(), strict=True):
        assert line.startswith(f"- `{name}` ({param.schema['title']}"), line
        assert line.endswith(f": {param.description}"), line
        assert ("under Advanced" in line) == (param.schema.get("section") == "Advanced"), line


@pytest.mark.parametrize("platform_id", list(PLATFORMS))
def test_each_platform_dag_doc_is_its_entry_paragraph_then_the_shared_text(platform_id: str) -> None:
    platform = PLATFORMS[platform_id]
    doc = inventory_doc_md(platform_id)
    heading, paragraph = doc.split("\n\n", 2)[:2]
    assert heading.startswith(f"### {platform.name} inventory (schedule `")
    assert paragraph == platform.doc.split("\n\n")[0]
    assert platform.doc in doc
    assert f"(pool `{platform.pool}`, several dealers at once)" in doc
    assert f"`x-od://inventory/{platform.id}`" in doc
    assert params_doc(inventory_params()) in doc
    assert f'`airflow dags trigger {platform.dag_id} --conf \'{{"dealer_id": "<id>"}}\'`' in doc


def test_the_cobalt_doc_keeps_its_etag_paragraph() -> None:
    assert "HTTP 304" in inventory_doc_md("cobalt")
    assert "HTTP 304" not in inventory_doc_md("homenet")
