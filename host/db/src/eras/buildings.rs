//! Properties (`Objekte`), their units (`Nutzeinheiten`), the metering
//! devices in them (`Geraete`) and the devices' readings (`Ablesungen`).

use rusqlite::{CachedStatement, Transaction, params};

use super::calendar::Day;
use super::customers::{self, Building, Customer, OwnerKind, PropertyPlan};
use super::devices::{self, Device, NewDevice};
use super::names::{self, CITIES};
use super::random::Rand;

/// Rows written so far per table (also the last key used in each).
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub properties: i64,
    pub units: i64,
    pub devices: i64,
    pub readings: i64,
}

/// The insert statements, prepared once.
pub(crate) struct Inserts<'t> {
    property: CachedStatement<'t>,
    unit: CachedStatement<'t>,
    pub device: CachedStatement<'t>,
    pub reading: CachedStatement<'t>,
}

/// Where rows go: the prepared inserts, the running counts and the years
/// to write readings for.
pub(crate) struct Sink<'t> {
    pub ins: Inserts<'t>,
    pub written: Written,
    pub years: ReadingYears,
}

/// What a building's devices have in common: the billing contract equipped
/// the whole building at once, with one maker per device type.
struct Equipment {
    installed: Day,
    heat_meter_per_unit: bool,
    water_meters: bool,
    smoke_alarms: bool,
    radio: bool,
    hkv_maker: &'static str,
    wmz_maker: &'static str,
    water_maker: &'static str,
    rwm_maker: &'static str,
    /// Heating demand in kWh per m² and year.
    kwh_per_m2: i64,
}

/// The years readings are kept for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadingYears {
    pub first: i64,
    pub last: i64,
}

/// Writes every planned property with its units, devices and readings.
pub(crate) fn write(
    tx: &Transaction<'_>,
    rng: &mut Rand,
    owners: &[Customer],
    plans: &[PropertyPlan],
    years: ReadingYears,
) -> rusqlite::Result<Written> {
    let ins = Inserts {
        property: tx.prepare_cached(
            "INSERT INTO Objekte (ObjektNr, KundenNr, Bezeichnung, Strasse, Hausnummer, PLZ, Ort, \
             Baujahr, Heizungsart, Wohnflaeche) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?,
        unit: tx.prepare_cached(
            "INSERT INTO Nutzeinheiten (NutzeinheitNr, ObjektNr, Lage, Nutzer, Flaeche, Personen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?,
        device: tx.prepare_cached(
            "INSERT INTO Geraete (GeraetNr, NutzeinheitNr, Typ, Seriennummer, Hersteller, Raum, \
             Einbaudatum, Eichdatum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?,
        reading: tx.prepare_cached(
            "INSERT INTO Ablesungen (AblesungNr, GeraetNr, Datum, Wert, Einheit, Ableseart) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?,
    };
    let mut sink = Sink {
        ins,
        written: Written::default(),
        years,
    };
    let mut owns_one = vec![false; owners.len()];
    for plan in plans {
        let owner = &owners[plan.owner];
        let first_of_owner = !std::mem::replace(&mut owns_one[plan.owner], true);
        property(&mut sink, rng, owner, first_of_owner, plan.units)?;
    }
    Ok(sink.written)
}

fn property(
    sink: &mut Sink<'_>,
    rng: &mut Rand,
    owner: &Customer,
    first_of_owner: bool,
    units: u32,
) -> rusqlite::Result<()> {
    sink.written.properties += 1;
    let nr = sink.written.properties;
    let building = Building::for_units(units);
    let owner_lives_here =
        owner.kind == OwnerKind::Private && first_of_owner && units <= 2 && rng.chance(600);
    let (city, street, house_number) = if owner_lives_here {
        (owner.city, owner.street, owner.house_number.clone())
    } else {
        let local = if owner.kind == OwnerKind::Private {
            600
        } else {
            800
        };
        let city = if rng.chance(local) {
            owner.city
        } else {
            rng.index(CITIES.len())
        };
        (city, rng.pick(names::STREETS), customers::house_number(rng))
    };
    let baujahr = rng.choose(&[
        (80, (1890, 1918)),
        (100, (1919, 1948)),
        (350, (1949, 1978)),
        (200, (1979, 1994)),
        (170, (1995, 2009)),
        (100, (2010, 2023)),
    ]);
    let baujahr = rng.int(baujahr.0, baujahr.1);
    let heating = if baujahr >= 2015 {
        rng.choose(&[
            (300, "Gas"),
            (300, "Fernwärme"),
            (330, "Wärmepumpe"),
            (70, "Pellets"),
        ])
    } else {
        rng.choose(&[
            (460, "Gas"),
            (250, "Fernwärme"),
            (160, "Öl"),
            (80, "Wärmepumpe"),
            (50, "Pellets"),
        ])
    };
    let (lo, hi) = match building {
        Building::Einfamilienhaus => (11_000, 18_000),
        Building::Zweifamilienhaus => (7_000, 12_000),
        Building::Mehrfamilienhaus => (4_000, 11_000),
        Building::Wohnanlage => (3_500, 9_500),
    };
    // Areas in hundredths of a square metre, so the building's total is
    // exactly the sum of its units.
    let areas: Vec<i64> = (0..units).map(|_| rng.int(lo, hi)).collect();
    sink.ins.property.execute(params![
        nr,
        owner.nr,
        format!("{} {street} {house_number}", building.label()),
        street,
        house_number,
        CITIES[city].plz,
        CITIES[city].name,
        baujahr,
        heating,
        areas.iter().sum::<i64>() as f64 / 100.0,
    ])?;

    let install_year = rng.int(baujahr.clamp(2008, 2024), 2024);
    let installed = Day(rng.int(
        Day::ymd(install_year, 1, 1).0,
        Day::ymd(install_year, 12, 31).0,
    ));
    let equipment = Equipment {
        installed,
        heat_meter_per_unit: rng.chance(match (units, heating) {
            (1, _) => 500,
            (_, "Fernwärme") => 600,
            _ => 250,
        }),
        water_meters: rng.chance(500),
        smoke_alarms: rng.chance(200),
        radio: rng.chance(if install_year >= 2016 { 850 } else { 400 }),
        hkv_maker: rng.pick(names::HKV_MAKERS),
        wmz_maker: rng.pick(names::WMZ_MAKERS),
        water_maker: rng.pick(names::WATER_MAKERS),
        rwm_maker: rng.pick(names::RWM_MAKERS),
        kwh_per_m2: match baujahr {
            ..=1948 => rng.int(140, 190),
            1949..=1978 => rng.int(120, 170),
            1979..=1994 => rng.int(95, 135),
            1995..=2009 => rng.int(70, 100),
            _ => rng.int(35, 60),
        },
    };
    for (i, (label, area)) in unit_labels(units).iter().zip(areas).enumerate() {
        let tenant = (owner_lives_here && i == 0).then(|| owner.person.clone());
        unit(sink, rng, nr, label, tenant, area, &equipment)?;
    }
    Ok(())
}

/// Where each unit of a building with `units` units lies.
fn unit_labels(units: u32) -> Vec<String> {
    match units {
        0 | 1 => vec!["gesamtes Haus".to_owned()],
        2 => vec!["EG".to_owned(), "OG".to_owned()],
        n => {
            let sides: &[&str] = match n {
                ..=8 => &["links", "rechts"],
                9..=18 => &["links", "Mitte", "rechts"],
                _ => &["links", "Mitte links", "Mitte rechts", "rechts"],
            };
            let per_floor = sides.len() as u32;
            // Large estates are several houses of up to five floors.
            let per_house = per_floor * 5;
            (0..n)
                .map(|i| {
                    let floor = (i % per_house) / per_floor;
                    let side = sides[(i % per_floor) as usize];
                    let level = if floor == 0 {
                        "EG".to_owned()
                    } else {
                        format!("{floor}. OG")
                    };
                    if n > per_house {
                        let house = char::from(b'A' + (i / per_house).min(25) as u8);
                        format!("Haus {house}, {level} {side}")
                    } else {
                        format!("{level} {side}")
                    }
                })
                .collect()
        }
    }
}

fn unit(
    sink: &mut Sink<'_>,
    rng: &mut Rand,
    property: i64,
    label: &str,
    tenant: Option<String>,
    area: i64,
    eq: &Equipment,
) -> rusqlite::Result<()> {
    sink.written.units += 1;
    let nr = sink.written.units;
    let vacant = tenant.is_none() && rng.chance(30);
    let persons = match (vacant, area) {
        (true, _) => 0,
        (false, ..5_000) => rng.int(1, 2),
        (false, 5_000..8_000) => rng.int(1, 3),
        (false, _) => rng.int(2, 5),
    };
    let tenant = match tenant {
        Some(t) => t,
        None if vacant => "Leerstand".to_owned(),
        None => {
            let last = rng.pick(names::SURNAMES);
            if persons >= 3 && rng.chance(400) {
                format!("Familie {last}")
            } else {
                let female = rng.chance(500);
                let first = rng.pick(if female { names::FEMALE } else { names::MALE });
                format!("{first} {last}")
            }
        }
    };
    sink.ins.unit.execute(params![
        nr,
        property,
        label,
        tenant,
        area as f64 / 100.0,
        persons
    ])?;

    // Units renovated later got their devices later.
    let installed = if rng.chance(100) {
        Day(rng.int(eq.installed.0, Day::ymd(2025, 6, 30).0.max(eq.installed.0)))
    } else {
        eq.installed
    };
    let usage = if vacant { 200 } else { 1000 };
    let sqm = area / 100;
    let base = NewDevice {
        unit: nr,
        kind: Device::Heizkostenverteiler,
        maker: eq.hkv_maker,
        room: "",
        installed,
        radio: eq.radio,
        annual: 0,
    };
    if eq.heat_meter_per_unit {
        let annual = sqm * eq.kwh_per_m2 * usage / 1000;
        let room = rng.pick(names::METER_ROOMS);
        let d = NewDevice {
            kind: Device::Waermezaehler,
            maker: eq.wmz_maker,
            room,
            annual,
            ..base
        };
        devices::write(sink, rng, &d)?;
    } else {
        let radiators = (sqm / 30).clamp(1, 5) as usize;
        for &room in &names::HEATED_ROOMS[..radiators] {
            let (lo, hi) = match room {
                "Wohnzimmer" => (900, 1_600),
                "Bad" => (500, 1_000),
                "Flur" | "Gästezimmer" => (150, 450),
                _ => (300, 850),
            };
            let annual = rng.int(lo, hi) * usage / 1000;
            devices::write(
                sink,
                rng,
                &NewDevice {
                    room,
                    annual,
                    ..base
                },
            )?;
        }
    }
    if eq.water_meters {
        let room = if rng.chance(800) { "Bad" } else { "Küche" };
        let hot = if vacant {
            rng.int(200, 900)
        } else {
            persons * rng.int(8_000, 15_000)
        };
        let cold = if vacant {
            rng.int(500, 2_000)
        } else {
            persons * rng.int(20_000, 35_000)
        };
        let water = NewDevice {
            maker: eq.water_maker,
            room,
            ..base
        };
        let hot = NewDevice {
            kind: Device::Warmwasserzaehler,
            annual: hot,
            ..water
        };
        let cold = NewDevice {
            kind: Device::Kaltwasserzaehler,
            annual: cold,
            ..water
        };
        devices::write(sink, rng, &hot)?;
        devices::write(sink, rng, &cold)?;
    }
    if eq.smoke_alarms {
        let alarms = match sqm {
            ..50 => 1,
            50..90 => 2,
            _ => 3,
        };
        for &room in &names::ALARM_ROOMS[..alarms] {
            let d = NewDevice {
                kind: Device::Rauchwarnmelder,
                maker: eq.rwm_maker,
                room,
                radio: false,
                ..base
            };
            devices::write(sink, rng, &d)?;
        }
    }
    Ok(())
}
