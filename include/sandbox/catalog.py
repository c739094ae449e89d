"""What a lot can hold: real makes, models, trims, powertrains and factory colours.

Plain data, no logic. Prices are base MSRPs in US dollars for the current model year (the
generator depreciates them for older years). WMIs are real world-manufacturer identifiers for
where the model is built, so a lot mixes North-American VINs (``1``..``5``, ``7``) with Japanese,
Korean, German and Chinese ones. ``city``/``highway`` are EPA mpg (MPGe for electric); ``0`` means
not rated (heavy-duty trucks), which the renderers show as an empty string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Powertrain:
    """An engine/transmission pairing as a window sticker names it."""

    engine: str
    engine_size: str
    fuel: str
    transmission: str
    city: int
    highway: int


@dataclass(frozen=True)
class Model:
    """A model line: body style, where it is built, trims with base MSRP, powertrains, drivelines."""

    name: str
    body: str
    wmis: tuple[str, ...]
    trims: tuple[tuple[str, int], ...]
    powertrains: tuple[Powertrain, ...]
    drivelines: tuple[str, ...]
    first_year: int = 2015
    last_year: int = 2026


@dataclass(frozen=True)
class Make:
    """A make with its models and its factory exterior and interior colour names."""

    name: str
    models: tuple[Model, ...]
    exterior: tuple[str, ...]
    interior: tuple[str, ...]


GAS = "Gasoline Fuel"
HYBRID = "Hybrid Fuel"
ELECTRIC = "Electric Fuel"
DIESEL = "Diesel Fuel"


def _pt(engine: str, size: str, fuel: str, transmission: str, city: int, highway: int) -> Powertrain:
    return Powertrain(engine, size, fuel, transmission, city, highway)


def _ev(city: int, highway: int) -> Powertrain:
    return Powertrain("Electric", "", ELECTRIC, "1-Speed Automatic", city, highway)


MAKES: tuple[Make, ...] = (
    Make(
        "Toyota",
        (
            Model(
                "Camry",
                "Sedan",
                ("4T1",),
                (("LE", 28400), ("SE", 31000), ("XLE", 34600), ("XSE", 35700)),
                (
                    _pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 28, 39),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 51, 53),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "RAV4",
                "Sport Utility",
                ("2T3", "JTM"),
                (
                    ("LE", 28475),
                    ("XLE", 30045),
                    ("XLE Premium", 33135),
                    ("Adventure", 35095),
                    ("Limited", 36665),
                ),
                (
                    _pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 27, 35),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 41, 38),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Tacoma",
                "Crew Cab Pickup",
                ("3TM", "5TF"),
                (("SR", 31500), ("SR5", 35400), ("TRD Off-Road", 41200), ("Limited", 48900)),
                (
                    _pt("3.5L V-6 cyl", "3.5L", GAS, "6-Speed Automatic", 19, 24),
                    _pt("2.4L I-4 cyl Turbo", "2.4L", GAS, "8-Speed Automatic", 20, 24),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "Highlander",
                "Sport Utility",
                ("5TD",),
                (("L", 39520), ("LE", 41320), ("XLE", 44870), ("Limited", 49670), ("Platinum", 52870)),
                (
                    _pt("2.4L I-4 cyl Turbo", "2.4L", GAS, "8-Speed Automatic", 22, 29),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 36, 35),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Corolla",
                "Sedan",
                ("5YF", "JTD"),
                (("L", 20425), ("LE", 21900), ("SE", 24600), ("XSE", 27000)),
                (_pt("2.0L I-4 cyl", "2.0L", GAS, "CVT", 32, 41),),
                ("FWD",),
            ),
        ),
        (
            "Midnight Black Metallic",
            "Super White",
            "Celestial Silver Metallic",
            "Blueprint",
            "Supersonic Red",
            "Magnetic Gray Metallic",
            "Wind Chill Pearl",
        ),
        ("Black", "Ash", "Macadamia", "Boulder"),
    ),
    Make(
        "Honda",
        (
            Model(
                "Accord",
                "Sedan",
                ("1HG",),
                (("LX", 27295), ("EX", 29610), ("Sport", 31450), ("EX-L", 33760), ("Touring", 38990)),
                (
                    _pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "CVT", 29, 37),
                    _pt("2.0L I-4 cyl Hybrid", "2.0L", HYBRID, "CVT", 51, 44),
                ),
                ("FWD",),
            ),
            Model(
                "Civic",
                "Sedan",
                ("2HG", "19X"),
                (("LX", 23950), ("Sport", 25350), ("EX", 26950), ("Touring", 30550)),
                (
                    _pt("2.0L I-4 cyl", "2.0L", GAS, "CVT", 31, 40),
                    _pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "CVT", 33, 42),
                ),
                ("FWD",),
            ),
            Model(
                "CR-V",
                "Sport Utility",
                ("2HK", "5J6", "7FA"),
                (("LX", 30100), ("EX", 32350), ("EX-L", 34850), ("Sport Touring Hybrid", 40500)),
                (
                    _pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "CVT", 28, 34),
                    _pt("2.0L I-4 cyl Hybrid", "2.0L", HYBRID, "CVT", 43, 36),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Pilot",
                "Sport Utility",
                ("5FN",),
                (("Sport", 39900), ("EX-L", 44300), ("TrailSport", 48600), ("Elite", 52380)),
                (_pt("3.5L V-6 cyl", "3.5L", GAS, "10-Speed Automatic", 19, 27),),
                ("FWD", "AWD"),
            ),
            Model(
                "Odyssey",
                "Minivan",
                ("5FN",),
                (("EX", 39310), ("EX-L", 42310), ("Touring", 47010), ("Elite", 51410)),
                (_pt("3.5L V-6 cyl", "3.5L", GAS, "10-Speed Automatic", 19, 28),),
                ("FWD",),
            ),
        ),
        (
            "Crystal Black Pearl",
            "Platinum White Pearl",
            "Lunar Silver Metallic",
            "Radiant Red Metallic",
            "Meteorite Gray Metallic",
            "Canyon River Blue Metallic",
        ),
        ("Black", "Gray", "Ivory"),
    ),
    Make(
        "Ford",
        (
            Model(
                "F-150",
                "Crew Cab Pickup",
                ("1FT",),
                (
                    ("XL", 38810),
                    ("XLT", 47330),
                    ("Lariat", 62260),
                    ("King Ranch", 70000),
                    ("Platinum", 72600),
                ),
                (
                    _pt("2.7L V-6 cyl Twin Turbo", "2.7L", GAS, "10-Speed Automatic", 19, 25),
                    _pt("3.5L V-6 cyl Twin Turbo", "3.5L", GAS, "10-Speed Automatic", 18, 24),
                    _pt("5.0L V-8 cyl", "5.0L", GAS, "10-Speed Automatic", 17, 24),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "Explorer",
                "Sport Utility",
                ("1FM",),
                (("Active", 40170), ("ST-Line", 44540), ("Platinum", 54820), ("ST", 56360)),
                (
                    _pt("2.3L I-4 cyl Turbo", "2.3L", GAS, "10-Speed Automatic", 21, 28),
                    _pt("3.0L V-6 cyl Twin Turbo", "3.0L", GAS, "10-Speed Automatic", 18, 24),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "Escape",
                "Sport Utility",
                ("1FM",),
                (("Active", 29495), ("ST-Line", 31995), ("Platinum", 37995), ("ST-Line Elite", 38995)),
                (
                    _pt("1.5L I-3 cyl Turbo", "1.5L", GAS, "8-Speed Automatic", 27, 34),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 42, 36),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Mustang",
                "Coupe",
                ("1FA",),
                (("EcoBoost", 31920), ("EcoBoost Premium", 37920), ("GT", 43495), ("Dark Horse", 60650)),
                (
                    _pt("2.3L I-4 cyl Turbo", "2.3L", GAS, "10-Speed Automatic", 21, 32),
                    _pt("5.0L V-8 cyl", "5.0L", GAS, "6-Speed Manual", 15, 24),
                ),
                ("RWD",),
            ),
            Model(
                "Bronco Sport",
                "Sport Utility",
                ("3FM",),
                (("Big Bend", 32095), ("Outer Banks", 36095), ("Badlands", 40095)),
                (_pt("1.5L I-3 cyl Turbo", "1.5L", GAS, "8-Speed Automatic", 25, 28),),
                ("4WD",),
                first_year=2021,
            ),
            Model(
                "Mustang Mach-E",
                "Sport Utility",
                ("3FM",),
                (("Select", 39995), ("Premium", 48995), ("GT", 54995)),
                (_ev(105, 93),),
                ("RWD", "AWD"),
                first_year=2021,
            ),
        ),
        (
            "Oxford White",
            "Agate Black Metallic",
            "Iconic Silver Metallic",
            "Rapid Red Metallic Tinted Clearcoat",
            "Carbonized Gray Metallic",
            "Atlas Blue Metallic",
            "Star White Metallic Tri-Coat",
        ),
        ("Ebony", "Medium Dark Slate", "Sandstone"),
    ),
    Make(
        "Chevrolet",
        (
            Model(
                "Silverado 1500",
                "Crew Cab Pickup",
                ("1GC", "3GC", "2GC"),
                (
                    ("WT", 38000),
                    ("Custom", 42700),
                    ("LT", 48700),
                    ("RST", 55600),
                    ("LTZ", 59400),
                    ("High Country", 66200),
                ),
                (
                    _pt("5.3L V-8 cyl", "5.3L", GAS, "10-Speed Automatic", 16, 21),
                    _pt("2.7L I-4 cyl Turbo", "2.7L", GAS, "8-Speed Automatic", 18, 22),
                    _pt("3.0L I-6 cyl Turbodiesel", "3.0L", DIESEL, "10-Speed Automatic", 23, 29),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "Equinox",
                "Sport Utility",
                ("3GN", "2GN"),
                (("LS", 26600), ("LT", 28700), ("RS", 31400), ("Premier", 33400)),
                (_pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "6-Speed Automatic", 26, 31),),
                ("FWD", "AWD"),
            ),
            Model(
                "Malibu",
                "Sedan",
                ("1G1",),
                (("LS", 25100), ("RS", 26200), ("LT", 27100), ("2LT", 31000)),
                (_pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "CVT", 28, 36),),
                ("FWD",),
                last_year=2025,
            ),
            Model(
                "Tahoe",
                "Sport Utility",
                ("1GN",),
                (("LS", 58200), ("LT", 63700), ("Z71", 68300), ("Premier", 73000), ("High Country", 78000)),
                (_pt("5.3L V-8 cyl", "5.3L", GAS, "10-Speed Automatic", 15, 20),),
                ("RWD", "4WD"),
            ),
            Model(
                "Trax",
                "Sport Utility",
                ("KL7",),
                (("LS", 21495), ("1RS", 23195), ("LT", 23395), ("ACTIV", 24995)),
                (_pt("1.2L I-3 cyl Turbo", "1.2L", GAS, "6-Speed Automatic", 28, 32),),
                ("FWD",),
            ),
            Model(
                "Bolt EV",
                "Hatchback",
                ("1G1",),
                (("1LT", 26500), ("2LT", 29800)),
                (_ev(131, 109),),
                ("FWD",),
                first_year=2017,
                last_year=2023,
            ),
        ),
        (
            "Summit White",
            "Black",
            "Silver Ice Metallic",
            "Red Hot",
            "Mosaic Black Metallic",
            "Northsky Blue Metallic",
            "Sterling Gray Metallic",
        ),
        ("Jet Black", "Jet Black/Gray", "Maple Sugar/Jet Black"),
    ),
    Make(
        "Nissan",
        (
            Model(
                "Altima",
                "Sedan",
                ("1N4",),
                (("S", 26370), ("SV", 28030), ("SR", 29500), ("SL", 32140)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "CVT", 27, 39),),
                ("FWD", "AWD"),
            ),
            Model(
                "Rogue",
                "Sport Utility",
                ("5N1", "JN8"),
                (("S", 28850), ("SV", 30660), ("SL", 35410), ("Platinum", 38790)),
                (
                    _pt("1.5L I-3 cyl Turbo", "1.5L", GAS, "CVT", 30, 37),
                    _pt("2.5L I-4 cyl", "2.5L", GAS, "CVT", 26, 33),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Sentra",
                "Sedan",
                ("3N1",),
                (("S", 20980), ("SV", 21830), ("SR", 23750)),
                (_pt("2.0L I-4 cyl", "2.0L", GAS, "CVT", 30, 40),),
                ("FWD",),
            ),
            Model(
                "Frontier",
                "Crew Cab Pickup",
                ("1N6",),
                (("S", 30990), ("SV", 34150), ("PRO-4X", 38800)),
                (_pt("3.8L V-6 cyl", "3.8L", GAS, "9-Speed Automatic", 18, 24),),
                ("RWD", "4WD"),
            ),
            Model(
                "Pathfinder",
                "Sport Utility",
                ("5N1",),
                (("S", 36650), ("SV", 39860), ("SL", 44290), ("Platinum", 50750)),
                (_pt("3.5L V-6 cyl", "3.5L", GAS, "9-Speed Automatic", 21, 27),),
                ("FWD", "4WD"),
            ),
        ),
        (
            "Super Black",
            "Glacier White",
            "Brilliant Silver Metallic",
            "Gun Metallic",
            "Scarlet Ember Tintcoat",
            "Deep Blue Pearl",
        ),
        ("Charcoal", "Gray", "Almond"),
    ),
    Make(
        "Hyundai",
        (
            Model(
                "Elantra",
                "Sedan",
                ("5NP", "KMH"),
                (("SE", 21475), ("SEL", 22825), ("Limited", 27075), ("N Line", 27975)),
                (_pt("2.0L I-4 cyl", "2.0L", GAS, "IVT", 32, 41),),
                ("FWD",),
            ),
            Model(
                "Tucson",
                "Sport Utility",
                ("KM8", "5NM"),
                (("SE", 27500), ("SEL", 29200), ("N Line", 32500), ("Limited", 36200)),
                (
                    _pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 25, 32),
                    _pt("1.6L I-4 cyl Turbo Hybrid", "1.6L", HYBRID, "6-Speed Automatic", 38, 38),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "Santa Fe",
                "Sport Utility",
                ("5NM",),
                (("SE", 29560), ("SEL", 31510), ("Limited", 38960), ("Calligraphy", 42960)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 25, 28),),
                ("FWD", "AWD"),
            ),
            Model(
                "Palisade",
                "Sport Utility",
                ("KM8",),
                (("SE", 36600), ("SEL", 39000), ("Limited", 47800), ("Calligraphy", 51500)),
                (_pt("3.8L V-6 cyl", "3.8L", GAS, "8-Speed Automatic", 19, 26),),
                ("FWD", "AWD"),
                first_year=2020,
            ),
            Model(
                "Ioniq 5",
                "Sport Utility",
                ("KM8",),
                (("SE", 42600), ("SEL", 46850), ("Limited", 52600)),
                (_ev(131, 103),),
                ("RWD", "AWD"),
                first_year=2022,
            ),
        ),
        (
            "Phantom Black",
            "Quartz White",
            "Shimmering Silver",
            "Portofino Gray",
            "Intense Blue",
            "Calypso Red",
        ),
        ("Black", "Gray", "Beige"),
    ),
    Make(
        "Kia",
        (
            Model(
                "Forte",
                "Sedan",
                ("3KP",),
                (("LXS", 20815), ("GT-Line", 23315), ("GT", 25215)),
                (_pt("2.0L I-4 cyl", "2.0L", GAS, "IVT", 30, 41),),
                ("FWD",),
                last_year=2024,
            ),
            Model(
                "Sportage",
                "Sport Utility",
                ("KND", "5XY"),
                (("LX", 27690), ("EX", 29990), ("X-Line", 33090), ("SX", 33490)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 25, 32),),
                ("FWD", "AWD"),
            ),
            Model(
                "Sorento",
                "Sport Utility",
                ("5XY",),
                (("LX", 31690), ("S", 34490), ("EX", 37590), ("SX", 41190)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 24, 29),),
                ("FWD", "AWD"),
            ),
            Model(
                "Telluride",
                "Sport Utility",
                ("5XY",),
                (("LX", 36190), ("S", 38490), ("EX", 42290), ("SX", 46290)),
                (_pt("3.8L V-6 cyl", "3.8L", GAS, "8-Speed Automatic", 20, 26),),
                ("FWD", "AWD"),
                first_year=2020,
            ),
            Model(
                "Soul",
                "Hatchback",
                ("KND",),
                (("LX", 20190), ("S", 22590), ("GT-Line", 23490)),
                (_pt("2.0L I-4 cyl", "2.0L", GAS, "IVT", 28, 33),),
                ("FWD",),
            ),
        ),
        ("Ebony Black", "Snow White Pearl", "Gravity Gray", "Runway Red", "Glacial White Pearl", "Wolf Gray"),
        ("Black", "Gray", "Saddle Brown"),
    ),
    Make(
        "Subaru",
        (
            Model(
                "Outback",
                "Wagon",
                ("4S4",),
                (("Base", 28895), ("Premium", 31190), ("Limited", 38790), ("Wilderness", 41290)),
                (
                    _pt("2.5L H-4 cyl", "2.5L", GAS, "CVT", 26, 32),
                    _pt("2.4L H-4 cyl Turbo", "2.4L", GAS, "CVT", 23, 29),
                ),
                ("AWD",),
            ),
            Model(
                "Forester",
                "Sport Utility",
                ("JF2",),
                (
                    ("Base", 27495),
                    ("Premium", 30195),
                    ("Sport", 32195),
                    ("Limited", 34755),
                    ("Touring", 37655),
                ),
                (_pt("2.5L H-4 cyl", "2.5L", GAS, "CVT", 26, 33),),
                ("AWD",),
            ),
            Model(
                "Crosstrek",
                "Sport Utility",
                ("JF2", "4S4"),
                (("Base", 24995), ("Premium", 26195), ("Sport", 29795), ("Limited", 31795)),
                (
                    _pt("2.0L H-4 cyl", "2.0L", GAS, "CVT", 27, 34),
                    _pt("2.5L H-4 cyl", "2.5L", GAS, "CVT", 26, 33),
                ),
                ("AWD",),
            ),
            Model(
                "Ascent",
                "Sport Utility",
                ("4S4",),
                (("Base", 34995), ("Premium", 37795), ("Limited", 44345), ("Touring", 48445)),
                (_pt("2.4L H-4 cyl Turbo", "2.4L", GAS, "CVT", 20, 26),),
                ("AWD",),
                first_year=2019,
            ),
            Model(
                "WRX",
                "Sedan",
                ("JF1",),
                (("Base", 32735), ("Premium", 35235), ("Limited", 39855), ("GT", 44765)),
                (_pt("2.4L H-4 cyl Turbo", "2.4L", GAS, "6-Speed Manual", 19, 26),),
                ("AWD",),
            ),
        ),
        (
            "Crystal Black Silica",
            "Crystal White Pearl",
            "Ice Silver Metallic",
            "Magnetite Gray Metallic",
            "Autumn Green Metallic",
            "Abyss Blue Pearl",
        ),
        ("Black", "Gray", "Warm Ivory"),
    ),
    Make(
        "Mazda",
        (
            Model(
                "Mazda3",
                "Sedan",
                ("JM1", "3MZ"),
                (("2.5 S", 24170), ("Select", 25720), ("Preferred", 27670), ("Premium", 30270)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "6-Speed Automatic", 27, 36),),
                ("FWD", "AWD"),
            ),
            Model(
                "CX-5",
                "Sport Utility",
                ("JM3",),
                (
                    ("2.5 S", 29990),
                    ("Select", 31300),
                    ("Preferred", 32700),
                    ("Premium", 35350),
                    ("Turbo Signature", 40850),
                ),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "6-Speed Automatic", 24, 30),),
                ("FWD", "AWD"),
            ),
            Model(
                "CX-30",
                "Sport Utility",
                ("3MV",),
                (("2.5 S", 24995), ("Select", 27395), ("Preferred", 29295), ("Turbo Premium Plus", 36595)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "6-Speed Automatic", 26, 33),),
                ("AWD",),
                first_year=2020,
            ),
            Model(
                "CX-50",
                "Sport Utility",
                ("7MM",),
                (
                    ("2.5 S Select", 30300),
                    ("Preferred", 33350),
                    ("Premium", 37350),
                    ("Turbo Premium Plus", 43300),
                ),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "6-Speed Automatic", 24, 30),),
                ("AWD",),
                first_year=2023,
            ),
            Model(
                "CX-9",
                "Sport Utility",
                ("JM3",),
                (("Sport", 37280), ("Touring", 39000), ("Grand Touring", 44000), ("Signature", 47000)),
                (_pt("2.5L I-4 cyl Turbo", "2.5L", GAS, "6-Speed Automatic", 20, 26),),
                ("AWD",),
                first_year=2016,
                last_year=2023,
            ),
        ),
        (
            "Jet Black Mica",
            "Snowflake White Pearl Mica",
            "Soul Red Crystal Metallic",
            "Machine Gray Metallic",
            "Deep Crystal Blue Mica",
            "Polymetal Gray Metallic",
        ),
        ("Black", "Parchment", "Greige"),
    ),
    Make(
        "BMW",
        (
            Model(
                "3 Series",
                "Sedan",
                ("WBA", "3MW"),
                (("330i", 44900), ("330i xDrive", 46900), ("M340i", 56700), ("M340i xDrive", 58700)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 26, 36),),
                ("RWD", "AWD"),
            ),
            Model(
                "X3",
                "Sport Utility",
                ("5UX", "WBX"),
                (("sDrive30i", 47500), ("xDrive30i", 49500), ("M40i", 62000)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 23, 29),),
                ("RWD", "AWD"),
            ),
            Model(
                "X5",
                "Sport Utility",
                ("5UX",),
                (("sDrive40i", 65200), ("xDrive40i", 67500), ("xDrive50e", 72500), ("M60i", 87100)),
                (_pt("3.0L I-6 cyl Turbo", "3.0L", GAS, "8-Speed Automatic", 21, 26),),
                ("RWD", "AWD"),
            ),
            Model(
                "5 Series",
                "Sedan",
                ("WBA",),
                (("530i", 57900), ("530i xDrive", 60200), ("540i xDrive", 65400)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 25, 33),),
                ("RWD", "AWD"),
            ),
        ),
        (
            "Alpine White",
            "Black Sapphire Metallic",
            "Mineral White Metallic",
            "Phytonic Blue Metallic",
            "Brooklyn Grey Metallic",
            "Carbon Black Metallic",
        ),
        ("Black SensaTec", "Cognac Vernasca Leather", "Oyster Vernasca Leather"),
    ),
    Make(
        "Volkswagen",
        (
            Model(
                "Jetta",
                "Sedan",
                ("3VW",),
                (("S", 21995), ("Sport", 23595), ("SE", 25995), ("SEL", 29975)),
                (_pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "8-Speed Automatic", 29, 40),),
                ("FWD",),
            ),
            Model(
                "Tiguan",
                "Sport Utility",
                ("3VV", "WVG"),
                (("S", 28800), ("SE", 32090), ("SE R-Line Black", 35855), ("SEL R-Line", 39385)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 23, 30),),
                ("FWD", "AWD"),
            ),
            Model(
                "Atlas",
                "Sport Utility",
                ("1V2",),
                (("SE", 38800), ("SE with Technology", 42400), ("SEL", 48800), ("SEL Premium R-Line", 53800)),
                (
                    _pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 20, 25),
                    _pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 17, 23),
                ),
                ("FWD", "AWD"),
                first_year=2018,
            ),
            Model(
                "Golf GTI",
                "Hatchback",
                ("3VW", "WVW"),
                (("S", 31965), ("SE", 36305), ("Autobahn", 40445)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "7-Speed DSG Automatic", 24, 34),),
                ("FWD",),
            ),
            Model(
                "ID.4",
                "Sport Utility",
                ("1V2", "WVG"),
                (("Standard", 39735), ("Pro", 43735), ("Pro S", 48735)),
                (_ev(116, 104),),
                ("RWD", "AWD"),
                first_year=2021,
            ),
        ),
        (
            "Deep Black Pearl",
            "Pure White",
            "Pyrite Silver Metallic",
            "Kings Red Metallic",
            "Platinum Gray Metallic",
            "Atlantic Blue Metallic",
        ),
        ("Titan Black", "Storm Gray", "Mauro Brown"),
    ),
    Make(
        "Jeep",
        (
            Model(
                "Grand Cherokee",
                "Sport Utility",
                ("1C4",),
                (
                    ("Laredo", 39745),
                    ("Altitude", 42000),
                    ("Limited", 47575),
                    ("Overland", 56500),
                    ("Summit", 64000),
                ),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 19, 26),),
                ("RWD", "4WD"),
            ),
            Model(
                "Wrangler",
                "Sport Utility",
                ("1C4",),
                (("Sport", 32895), ("Sport S", 36000), ("Sahara", 45000), ("Rubicon", 49000)),
                (
                    _pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 17, 23),
                    _pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 20, 24),
                ),
                ("4WD",),
            ),
            Model(
                "Cherokee",
                "Sport Utility",
                ("1C4",),
                (("Latitude", 28000), ("Latitude Lux", 33000), ("Limited", 36000), ("Trailhawk", 37000)),
                (_pt("2.4L I-4 cyl", "2.4L", GAS, "9-Speed Automatic", 22, 31),),
                ("FWD", "4WD"),
                last_year=2023,
            ),
            Model(
                "Compass",
                "Sport Utility",
                ("3C4",),
                (("Sport", 27000), ("Latitude", 30000), ("Limited", 33500), ("Trailhawk", 34000)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "8-Speed Automatic", 24, 32),),
                ("4WD",),
            ),
            Model(
                "Gladiator",
                "Crew Cab Pickup",
                ("1C6",),
                (("Sport", 38000), ("Willys", 43000), ("Mojave", 51000), ("Rubicon", 53000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 17, 22),),
                ("4WD",),
                first_year=2020,
            ),
        ),
        (
            "Bright White Clearcoat",
            "Diamond Black Crystal Pearl",
            "Billet Silver Metallic",
            "Granite Crystal Metallic",
            "Firecracker Red",
            "Hydro Blue Pearl",
            "Sting-Gray",
        ),
        ("Black", "Global Black", "Steel Gray"),
    ),
    Make(
        "Ram",
        (
            Model(
                "1500",
                "Crew Cab Pickup",
                ("1C6", "3C6"),
                (
                    ("Tradesman", 40000),
                    ("Big Horn", 45000),
                    ("Laramie", 55000),
                    ("Rebel", 57000),
                    ("Limited", 68000),
                ),
                (
                    _pt("5.7L V-8 cyl HEMI", "5.7L", GAS, "8-Speed Automatic", 15, 22),
                    _pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 20, 25),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "2500",
                "Crew Cab Pickup",
                ("3C6",),
                (("Tradesman", 47000), ("Big Horn", 51000), ("Laramie", 60000), ("Power Wagon", 65000)),
                (
                    _pt("6.4L V-8 cyl", "6.4L", GAS, "8-Speed Automatic", 0, 0),
                    _pt("6.7L I-6 cyl Turbodiesel", "6.7L", DIESEL, "6-Speed Automatic", 0, 0),
                ),
                ("4WD",),
            ),
        ),
        (
            "Bright White Clearcoat",
            "Diamond Black Crystal Pearl",
            "Billet Silver Metallic",
            "Granite Crystal Metallic",
            "Delmonico Red Pearl",
            "Patriot Blue Pearl",
        ),
        ("Black", "Diesel Gray/Black", "Mountain Brown/Light Frost Beige"),
    ),
    Make(
        "Dodge",
        (
            Model(
                "Charger",
                "Sedan",
                ("2C3",),
                (("SXT", 33000), ("GT", 36000), ("R/T", 42000), ("Scat Pack", 50000)),
                (
                    _pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 19, 30),
                    _pt("5.7L V-8 cyl HEMI", "5.7L", GAS, "8-Speed Automatic", 16, 25),
                ),
                ("RWD", "AWD"),
                last_year=2023,
            ),
            Model(
                "Durango",
                "Sport Utility",
                ("1C4",),
                (("SXT", 39000), ("GT", 44000), ("Citadel", 50000), ("R/T", 52000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 19, 26),),
                ("RWD", "AWD"),
            ),
            Model(
                "Challenger",
                "Coupe",
                ("2C3",),
                (("SXT", 32000), ("GT", 35000), ("R/T", 40000), ("Scat Pack", 48000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 19, 30),),
                ("RWD",),
                last_year=2023,
            ),
        ),
        ("Pitch Black", "White Knuckle", "Destroyer Grey", "Go Mango", "Octane Red Pearl", "Frostbite"),
        ("Black", "Black/Ruby Red"),
    ),
    Make(
        "GMC",
        (
            Model(
                "Sierra 1500",
                "Crew Cab Pickup",
                ("1GT", "3GT"),
                (
                    ("Pro", 40000),
                    ("SLE", 50000),
                    ("Elevation", 52000),
                    ("SLT", 58000),
                    ("AT4", 65000),
                    ("Denali", 70000),
                ),
                (
                    _pt("5.3L V-8 cyl", "5.3L", GAS, "10-Speed Automatic", 16, 21),
                    _pt("2.7L I-4 cyl Turbo", "2.7L", GAS, "8-Speed Automatic", 18, 22),
                ),
                ("RWD", "4WD"),
            ),
            Model(
                "Terrain",
                "Sport Utility",
                ("3GK", "2GK"),
                (("SLE", 29000), ("SLT", 34000), ("AT4", 37000), ("Denali", 38000)),
                (_pt("1.5L I-4 cyl Turbo", "1.5L", GAS, "9-Speed Automatic", 26, 30),),
                ("FWD", "AWD"),
            ),
            Model(
                "Acadia",
                "Sport Utility",
                ("1GK",),
                (("SLE", 38000), ("SLT", 44000), ("AT4", 46000), ("Denali", 52000)),
                (_pt("2.5L I-4 cyl Turbo", "2.5L", GAS, "9-Speed Automatic", 21, 26),),
                ("FWD", "AWD"),
            ),
            Model(
                "Yukon",
                "Sport Utility",
                ("1GK",),
                (("SLE", 60000), ("SLT", 66000), ("AT4", 70000), ("Denali", 75000)),
                (_pt("5.3L V-8 cyl", "5.3L", GAS, "10-Speed Automatic", 15, 20),),
                ("RWD", "4WD"),
            ),
        ),
        (
            "Summit White",
            "Onyx Black",
            "Quicksilver Metallic",
            "Cayenne Red Tintcoat",
            "Thunderstorm Gray",
            "Dark Sky Metallic",
        ),
        ("Jet Black", "Jet Black/Dark Walnut", "Dark Ash Gray"),
    ),
    Make(
        "Buick",
        (
            Model(
                "Encore GX",
                "Sport Utility",
                ("KL4",),
                (("Preferred", 26000), ("Sport Touring", 28000), ("Avenir", 32000)),
                (_pt("1.3L I-3 cyl Turbo", "1.3L", GAS, "CVT", 30, 32),),
                ("FWD", "AWD"),
                first_year=2020,
            ),
            Model(
                "Envision",
                "Sport Utility",
                ("LRB",),
                (("Preferred", 34000), ("Essence", 38000), ("Avenir", 42000)),
                (_pt("2.0L I-4 cyl Turbo", "2.0L", GAS, "9-Speed Automatic", 22, 29),),
                ("AWD",),
                first_year=2016,
            ),
            Model(
                "Enclave",
                "Sport Utility",
                ("5GA",),
                (("Preferred", 42000), ("Essence", 46000), ("Avenir", 55000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "9-Speed Automatic", 18, 26),),
                ("FWD", "AWD"),
            ),
        ),
        (
            "Summit White",
            "Ebony Twilight Metallic",
            "Satin Steel Metallic",
            "Rich Garnet Metallic",
            "Deep Azure Metallic",
        ),
        ("Ebony", "Whisper Beige", "Shale"),
    ),
    Make(
        "Lexus",
        (
            Model(
                "RX",
                "Sport Utility",
                ("2T2", "JTJ"),
                (
                    ("RX 350", 48550),
                    ("RX 350h", 51000),
                    ("RX 350 F SPORT Handling", 56000),
                    ("RX 500h", 63000),
                ),
                (
                    _pt("3.5L V-6 cyl", "3.5L", GAS, "8-Speed Automatic", 20, 27),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 37, 34),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "ES",
                "Sedan",
                ("58A", "JTH"),
                (("ES 250", 42000), ("ES 350", 43000), ("ES 300h", 44000), ("ES 350 F SPORT", 48000)),
                (
                    _pt("3.5L V-6 cyl", "3.5L", GAS, "8-Speed Automatic", 22, 32),
                    _pt("2.5L I-4 cyl Hybrid", "2.5L", HYBRID, "CVT", 43, 44),
                ),
                ("FWD", "AWD"),
            ),
            Model(
                "NX",
                "Sport Utility",
                ("2T2", "JTJ"),
                (("NX 250", 40000), ("NX 350", 44000), ("NX 350h", 45000), ("NX 450h+", 57000)),
                (_pt("2.5L I-4 cyl", "2.5L", GAS, "8-Speed Automatic", 25, 33),),
                ("FWD", "AWD"),
            ),
            Model(
                "GX",
                "Sport Utility",
                ("JTJ",),
                (("GX 460 Premium", 57000), ("GX 550 Overtrail", 70000), ("GX 550 Luxury", 75000)),
                (_pt("4.6L V-8 cyl", "4.6L", GAS, "6-Speed Automatic", 15, 19),),
                ("4WD",),
            ),
        ),
        (
            "Caviar",
            "Eminent White Pearl",
            "Atomic Silver",
            "Nebula Gray Pearl",
            "Matador Red Mica",
            "Nightfall Mica",
        ),
        ("Black", "Chateau", "Palomino", "Rioja Red"),
    ),
    Make(
        "Chrysler",
        (
            Model(
                "Pacifica",
                "Minivan",
                ("2C4",),
                (("Touring", 40000), ("Touring L", 44000), ("Limited", 50000), ("Pinnacle", 56000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "9-Speed Automatic", 19, 28),),
                ("FWD", "AWD"),
                first_year=2017,
            ),
            Model(
                "300",
                "Sedan",
                ("2C3",),
                (("Touring", 34000), ("Touring L", 37000), ("300S", 40000), ("300C", 55000)),
                (_pt("3.6L V-6 cyl", "3.6L", GAS, "8-Speed Automatic", 19, 30),),
                ("RWD", "AWD"),
                last_year=2023,
            ),
        ),
        (
            "Bright White Clearcoat",
            "Brilliant Black Crystal Pearl",
            "Granite Crystal Metallic",
            "Velvet Red Pearl",
            "Ceramic Grey",
        ),
        ("Black", "Black/Alloy", "Deep Mocha"),
    ),
    Make(
        "Tesla",
        (
            Model(
                "Model 3",
                "Sedan",
                ("5YJ",),
                (("Standard Range Plus", 39990), ("Long Range", 47990), ("Performance", 53990)),
                (_ev(138, 126),),
                ("RWD", "AWD"),
                first_year=2018,
            ),
            Model(
                "Model Y",
                "Sport Utility",
                ("5YJ", "7SA"),
                (("Long Range", 49990), ("Performance", 54990)),
                (_ev(127, 117),),
                ("AWD",),
                first_year=2020,
            ),
        ),
        (
            "Pearl White Multi-Coat",
            "Solid Black",
            "Midnight Silver Metallic",
            "Deep Blue Metallic",
            "Red Multi-Coat",
        ),
        ("All Black", "Black and White"),
    ),
)

MAKES_BY_NAME: dict[str, Make] = {make.name: make for make in MAKES}
