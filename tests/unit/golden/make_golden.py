"""Writes the golden files the per-vehicle CPU work (issue 12) is checked against. Not a test.

Run once, on the code *before* that work (``main`` at b7d9924), with
``.venv/bin/python -m tests.unit.golden.make_golden``. Never re-run it to make a failing golden test pass:
the files pin what the old code produced, and a difference is a behaviour change.

When ``main`` itself changes what a record becomes (not this branch), the expected outcomes are re-made
from the *same* records with ``main``'s code, never with this branch's: export ``main`` and point
``OD_GOLDEN_CODE_ROOT`` at it::

    rm -rf /tmp/od-main && mkdir /tmp/od-main && git archive main | tar -x -C /tmp/od-main
    OD_GOLDEN_CODE_ROOT=/tmp/od-main .venv/bin/python -m tests.unit.golden.make_golden --expected-only

Done once so far, on 2026-12-07 with ``main`` at 10c3719 (hostile-input hardening): ``absolute_url``
returns ``None`` for a URL urllib cannot split instead of raising ``ValueError``, so the four records that
expected ``{"error": "ValueError"}`` now expect what ``main`` makes of them (two vehicles, two rejects);
the other 296 came out byte-identical. The staged file was re-written by ``main``'s ``write_vehicles``
(unchanged since b7d9924) because its 80 vehicles are the first 80 expected ones.

- ``dealer_com_records.jsonl.gz``: Dealer.com widget records from the sandbox generator, a third of them
  mutated with the quirks real feeds send (relative, protocol-relative, odd and hostile URLs, placeholder
  prices, bad VINs, implausible years and mileages), each with the site base URL it is joined against;
- ``dealer_com_expected.jsonl.gz``: per record, the canonical vehicle (``to_api()``), its content hash and
  warnings, or the reject reason;
- ``staged_by_old_code.jsonl.gz`` + ``staged_by_old_code.sha256``: a staged file (vehicles and
  rejected-VIN lines) written by the old ``write_vehicles``.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("OD_GOLDEN_CODE_ROOT") or HERE.parents[2]).resolve()
# The code under ROOT wins over the installed package: src/ today, plugins/ in checkouts from before the
# package moved (b7d9924 and 10c3719 above).
CODE = ROOT / "src" if (ROOT / "src" / "od_scheduler").is_dir() else ROOT / "plugins"
sys.path[:0] = [str(CODE), str(ROOT)]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="od-golden-"))

BASES = (
    "https://www.example.com",
    "https://www.example.com/",
    "dealer.test",
    "//dealer.test/site/",
    "https://dealer.test/inventory/index.htm",
    "http://dealer.test",
    "HTTPS://Dealer.Test",
    "  https://dealer.test  ",
)
ODD_URLS = (
    "/img/a.jpg",
    "img/b.jpg",
    "../c.jpg",
    "./d.jpg",
    "//cdn.test/e.jpg",
    "HTTPS://CDN.TEST/F.JPG",
    "Https://cdn.test/g.jpg",
    " https://cdn.test/h.jpg ",
    "https://cdn.test/i j.jpg",
    "https://cdn.test/k.jpg?",
    "https://cdn.test/l.jpg#",
    "https://cdn.test/m.jpg?#",
    "https://cdn.test/n.jpg;",
    "https://cdn.test/o.jpg;v=1",
    "https://cdn.test/p.jpg?w=640&h=480",
    "https://cdn.test/q.jpg#frag",
    "https://cdn.test/a/../r.jpg",
    "https://cdn.test/a/./s.jpg",
    "https://cdn.test//t.jpg",
    "/a//u.jpg",
    "/a/../v.jpg",
    "https:///w.jpg",
    "https:x.jpg",
    "http://cdn.test/x.jpg",
    "ftp://cdn.test/y.jpg",
    "javascript:alert(1)",
    "mailto:a@b.test",
    "data:image/png;base64,AAAA",
    "https://[::1]/z.jpg",
    "https://[::1/z.jpg",
    "https://bücher.test/ä.jpg",
    "https://cdn.test/\u00e9.jpg",
    "https://cdn.test/tab\t.jpg",
    "https://cdn.test/nl\n.jpg",
    "\x00https://cdn.test/null.jpg",
    "https://cdn.test/ctl\x1f",
    "https://user:pw@cdn.test:8443/auth.jpg",
    "https://cdn.test",
    "https://cdn.test?x=1",
    "https://cdn.test#top",
    "https://",
    "http:/cdn.test/one-slash.jpg",
    "?q=1",
    "#frag",
    "/",
    "",
    "   ",
)


def mutate(rng: random.Random, item: dict[str, Any]) -> dict[str, Any]:
    item = json.loads(json.dumps(item))
    images = item.get("images") or []
    for _ in range(rng.randint(1, 4)):
        entry = {"uri": rng.choice(ODD_URLS), "alt": "x"}
        images.insert(rng.randint(0, len(images)), entry)
    if images and rng.random() < 0.3:
        images.append(dict(images[0]))  # a duplicate
    item["images"] = images
    roll = rng.random()
    if roll < 0.3:
        item["link"] = rng.choice(ODD_URLS)
    elif roll < 0.4:
        item["link"] = None
    choices: list[tuple[str, Any]] = [
        ("vin", (item.get("vin") or "").lower()),
        ("vin", " " + str(item.get("vin")) + " "),
        ("vin", "1HGCM82633A004353"),  # wrong check digit
        ("vin", "1HGCM8263"),
        ("vin", None),
        ("year", "20"),
        ("year", 1899),
        ("year", "2099"),
        ("year", "0"),
        ("year", "1975"),
        ("condition", "Demo"),
        ("condition", "Certified Pre-Owned"),
        ("certified", "yes"),
        ("stockNumber", "  "),
        ("make", 42),
        ("model", 3.5),
        ("trim", True),
        ("inventoryDate", "00/24/2025"),
        ("inventoryDate", "2/3/2025"),
    ]
    for key, value in rng.sample(choices, rng.randint(0, 3)):
        item[key] = value
    attrs = item.get("trackingAttributes") or []
    for name, value in rng.sample(
        [
            ("odometer", "abc"),
            ("odometer", "-5"),
            ("odometer", "0"),
            ("odometer", "2,000,000"),
            ("odometer", "12.5"),
            ("odometer", "34,512 mi"),
            ("exteriorColor", "  "),
            ("engine", None),
            ("driveLine", '\u00e9l\u00e9ctrique "4x4"'),
        ],
        rng.randint(0, 2),
    ):
        attrs.insert(0, {"name": name, "value": value})
    item["trackingAttributes"] = attrs
    pricing = item.get("pricing") or {}
    dprice = pricing.get("dprice") or []
    for value in rng.sample(["0", "$0", "Call for price", "$1", "$9,999,999", "25999.999", "$25,999.00"], 1):
        dprice.insert(0, {"typeClass": rng.choice(["internetPrice", "msrp"]), "value": value})
    pricing["dprice"] = dprice
    item["pricing"] = pricing
    return item


def main() -> None:
    import od_scheduler
    from include.sandbox.app import create_app
    from include.sandbox.platforms import PLATFORMS
    from od_scheduler.exceptions import RecordRejected
    from od_scheduler.models.dealer_com import DealerComVehicle
    from od_scheduler.models.vehicle import Vehicle
    from od_scheduler.staging import write_vehicles

    print(f"code from {Path(od_scheduler.__file__).parent}")
    records: list[dict[str, Any]] = []
    if "--expected-only" in sys.argv[1:]:
        with gzip.open(HERE / "dealer_com_records.jsonl.gz", "rt", encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
    else:
        rng = random.Random(12)
        state = create_app().state.sandbox
        platform = PLATFORMS["dealer.com"]
        dealers = [d for d in state.dealers if "dealer.com" in d.platforms and state.lot("dealer.com", d)]
        rendered = [platform.render(d, v) for d in dealers for v in state.lot("dealer.com", d).vehicles]
        for i, item in enumerate(rng.sample(rendered, 300)):
            if i % 3 == 0:
                item = mutate(rng, item)
            base = BASES[i % len(BASES)] if i % 2 else "https://www.example.com"
            records.append({"base_url": base, "item": item})
    expected: list[dict[str, Any]] = []
    vehicles: list[Vehicle] = []
    for record in records:
        base, item = record["base_url"], record["item"]
        try:
            vehicle = DealerComVehicle.model_validate(item).to_vehicle(dealer_id="golden", base_url=base)
        except RecordRejected as err:
            expected.append({"rejected": err.reason})
            continue
        except ValueError as err:  # what b7d9924 raised for a URL urllib refuses (IPv6 brackets); not main
            expected.append({"error": type(err).__name__})
            continue
        vehicles.append(vehicle)
        expected.append(
            {"vehicle": vehicle.to_api(), "hash": vehicle.content_hash(), "warnings": list(vehicle.warnings)}
        )
    for name, rows in (("dealer_com_records", records), ("dealer_com_expected", expected)):
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        (HERE / f"{name}.jsonl.gz").write_bytes(gzip.compress(text.encode(), mtime=0))

    from airflow.sdk import ObjectStoragePath

    folder = tempfile.mkdtemp(prefix="od-golden-stage-")
    path = ObjectStoragePath(f"file://{folder}/staged.jsonl.gz")
    _, checksum = write_vehicles(path, vehicles[:80], rejected_vins=["1HGCM82633A004353", "JUNKVIN"])
    (HERE / "staged_by_old_code.jsonl.gz").write_bytes(Path(folder, "staged.jsonl.gz").read_bytes())
    (HERE / "staged_by_old_code.sha256").write_text(checksum + "\n")
    kinds = {k: sum(1 for e in expected if k in e) for k in ("vehicle", "rejected", "error")}
    print(f"{len(records)} records: {kinds}; staged 80 vehicles, sha256 {checksum}")


if __name__ == "__main__":
    main()
