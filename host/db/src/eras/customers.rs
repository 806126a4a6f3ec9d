//! Customers (`Kunden`) and how many properties and units each one has.

use std::collections::HashSet;

use rusqlite::{Transaction, params};

use super::calendar::Day;
use super::names::{self, CITIES};
use super::random::{Rand, cumulative};

/// The first customer number; numbers are consecutive from here.
pub(crate) const FIRST_CUSTOMER: i64 = 1000;

/// Who a customer is; it decides how much they own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    /// A private landlord with a house or a few flats.
    Private,
    /// A property management company (Hausverwaltung).
    Management,
    /// A housing cooperative (Wohnungsbaugenossenschaft).
    Cooperative,
}

/// What later tables need to know about a customer.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub nr: i64,
    pub kind: OwnerKind,
    pub city: usize,
    pub street: &'static str,
    pub house_number: String,
    /// "Vorname Nachname", for a unit the owner lives in.
    pub person: String,
}

/// Writes `count` customers.
pub(crate) fn write(
    tx: &Transaction<'_>,
    rng: &mut Rand,
    count: u32,
) -> rusqlite::Result<Vec<Customer>> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO Kunden (KundenNr, Anrede, Vorname, Nachname, Firma, Strasse, Hausnummer, \
         PLZ, Ort, Telefon, Email, KundeSeit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut firms = HashSet::new();
    let mut out = Vec::with_capacity(count as usize);
    for nr in FIRST_CUSTOMER..FIRST_CUSTOMER + i64::from(count) {
        let kind = rng.choose(&[
            (700, OwnerKind::Private),
            (200, OwnerKind::Management),
            (100, OwnerKind::Cooperative),
        ]);
        let female = rng.chance(500);
        let first = rng.pick(if female { names::FEMALE } else { names::MALE });
        let last = rng.pick(names::SURNAMES);
        let city = rng.index(CITIES.len());
        let street = rng.pick(names::STREETS);
        let house_number = house_number(rng);
        let firm = match kind {
            OwnerKind::Private => None,
            _ => Some(unique_firm(
                rng,
                &mut firms,
                kind,
                last,
                CITIES[city].name,
                nr,
            )),
        };
        let phone = phone(rng, kind, CITIES[city].vorwahl);
        let email = email(rng, first, last, firm.as_deref());
        let since = Day(rng.int(Day::ymd(1995, 1, 1).0, Day::ymd(2024, 12, 31).0));
        stmt.execute(params![
            nr,
            if female { "Frau" } else { "Herr" },
            first,
            last,
            firm,
            street,
            house_number,
            CITIES[city].plz,
            CITIES[city].name,
            phone,
            email,
            since.iso(),
        ])?;
        out.push(Customer {
            nr,
            kind,
            city,
            street,
            house_number,
            person: format!("{first} {last}"),
        });
    }
    Ok(out)
}

/// A street number such as `12` or `7a`.
pub(crate) fn house_number(rng: &mut Rand) -> String {
    let n = if rng.chance(700) {
        rng.int(1, 40)
    } else {
        rng.int(41, 180)
    };
    if rng.chance(100) {
        let suffix = rng.pick(&['a', 'b', 'c']);
        format!("{n}{suffix}")
    } else {
        n.to_string()
    }
}

fn unique_firm(
    rng: &mut Rand,
    taken: &mut HashSet<String>,
    kind: OwnerKind,
    surname: &str,
    city: &str,
    nr: i64,
) -> String {
    for _ in 0..20 {
        let other = rng.pick(names::SURNAMES);
        let district = rng.pick(names::DISTRICTS);
        let name = match kind {
            OwnerKind::Management => match rng.int(0, 4) {
                0 => format!("Hausverwaltung {surname} GmbH"),
                1 => format!("{surname} Immobilienverwaltung GmbH"),
                2 => format!("{surname} & {other} Hausverwaltung GbR"),
                3 => format!("Immobilienservice {city} GmbH"),
                _ => format!("{surname} Haus- und Grundbesitz KG"),
            },
            _ => match rng.int(0, 4) {
                0 => format!("Wohnungsbaugenossenschaft {city} eG"),
                1 => format!("Wohnungsgenossenschaft {city}-{district} eG"),
                2 => format!("Bauverein {city}-{district} eG"),
                3 => format!("Gemeinnützige Wohnungsbaugesellschaft {city} mbH"),
                _ => format!("Spar- und Bauverein {city} eG"),
            },
        };
        if taken.insert(name.clone()) {
            return name;
        }
    }
    let name = format!("Hausverwaltung {surname} {nr} GmbH");
    taken.insert(name.clone());
    name
}

fn phone(rng: &mut Rand, kind: OwnerKind, vorwahl: &str) -> String {
    let first_digit = rng.int(2, 9);
    if kind == OwnerKind::Private && rng.chance(450) {
        let prefix = rng.pick(names::MOBILE_PREFIXES);
        let rest = rng.int(0, 999_999);
        return format!("{prefix} {first_digit}{rest:06}");
    }
    // Subscriber numbers are shorter behind longer area codes.
    let digits = 10u32.saturating_sub(vorwahl.len() as u32).clamp(4, 8);
    let rest = rng.int(0, 10i64.pow(digits - 1) - 1);
    let width = (digits - 1) as usize;
    match kind {
        OwnerKind::Private => format!("{vorwahl} {first_digit}{rest:0width$}"),
        _ => format!("{vorwahl} {first_digit}{rest:0width$}-0"),
    }
}

fn email(rng: &mut Rand, first: &str, last: &str, firm: Option<&str>) -> String {
    let f = names::ascii_slug(first, '.');
    let l = names::ascii_slug(last, '-');
    match firm {
        None => {
            let provider = rng.pick(names::MAIL_PROVIDERS);
            match rng.int(0, 3) {
                0 => format!("{f}.{l}@{provider}"),
                1 => format!("{}.{l}@{provider}", f.get(..1).unwrap_or("x")),
                2 => format!("{l}{}@{provider}", rng.int(1, 99)),
                _ => format!("{f}{l}@{provider}"),
            }
        }
        Some(firm) => {
            let bare = ["GmbH", "eG", "GbR", "KG", "mbH"]
                .iter()
                .fold(firm, |s, form| s.strip_suffix(form).unwrap_or(s).trim_end());
            let domain = names::ascii_slug(bare, '-');
            match rng.int(0, 3) {
                0 => format!("info@{domain}.de"),
                1 => format!("verwaltung@{domain}.de"),
                2 => format!("kontakt@{domain}.de"),
                _ => format!("{f}.{l}@{domain}.de"),
            }
        }
    }
}

/// The kinds of building, which set a property's base size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Building {
    Einfamilienhaus,
    Zweifamilienhaus,
    Mehrfamilienhaus,
    Wohnanlage,
}

impl Building {
    /// The kind a building with `units` units is called.
    pub(crate) fn for_units(units: u32) -> Self {
        match units {
            0 | 1 => Self::Einfamilienhaus,
            2 => Self::Zweifamilienhaus,
            3..=12 => Self::Mehrfamilienhaus,
            _ => Self::Wohnanlage,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Einfamilienhaus => "Einfamilienhaus",
            Self::Zweifamilienhaus => "Zweifamilienhaus",
            Self::Mehrfamilienhaus => "Mehrfamilienhaus",
            Self::Wohnanlage => "Wohnanlage",
        }
    }
}

/// One property to generate: its owner (index into the customers) and its
/// number of units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PropertyPlan {
    pub owner: usize,
    pub units: u32,
}

/// Spreads exactly `properties` properties over the customers (each has at
/// least one; companies get more) and exactly `units` units over the
/// properties (at least one each; houses of one or two families stay small).
pub(crate) fn plan(
    rng: &mut Rand,
    customers: &[Customer],
    properties: u32,
    units: u32,
) -> Vec<PropertyPlan> {
    let owner_weight = |c: &Customer| match c.kind {
        OwnerKind::Private => 1,
        OwnerKind::Management => 8,
        OwnerKind::Cooperative => 14,
    };
    let owner_cum = cumulative(customers.iter().map(owner_weight));
    let extra = properties as usize - customers.len();
    let owners: Vec<usize> = (0..customers.len())
        .chain((0..extra).map(|_| rng.weighted(&owner_cum)))
        .collect();

    // (base units, weight for further units) per property.
    let mut sizes: Vec<(u32, u64)> = owners
        .iter()
        .map(|&o| {
            let building = match customers[o].kind {
                OwnerKind::Private => rng.choose(&[
                    (450, Building::Einfamilienhaus),
                    (250, Building::Zweifamilienhaus),
                    (300, Building::Mehrfamilienhaus),
                ]),
                OwnerKind::Management => rng.choose(&[
                    (100, Building::Zweifamilienhaus),
                    (800, Building::Mehrfamilienhaus),
                    (100, Building::Wohnanlage),
                ]),
                OwnerKind::Cooperative => rng.choose(&[
                    (700, Building::Mehrfamilienhaus),
                    (300, Building::Wohnanlage),
                ]),
            };
            match (building, customers[o].kind) {
                (Building::Einfamilienhaus, _) => (1, 0),
                (Building::Zweifamilienhaus, _) => (2, 0),
                (Building::Mehrfamilienhaus, OwnerKind::Private) => (3, 1),
                (Building::Mehrfamilienhaus, OwnerKind::Management) => (3, 2),
                (Building::Mehrfamilienhaus, OwnerKind::Cooperative) => (3, 3),
                (Building::Wohnanlage, _) => (8, 6),
            }
        })
        .collect();

    let mut total: u64 = sizes.iter().map(|s| u64::from(s.0)).sum();
    let target = u64::from(units);
    // Too many base units for a small spec: shrink the largest first.
    while total > target {
        let Some(largest) = sizes.iter_mut().filter(|s| s.0 > 1).max_by_key(|s| s.0) else {
            break;
        };
        largest.0 -= 1;
        total -= 1;
    }
    if total < target {
        let mut weights: Vec<u64> = sizes.iter().map(|s| s.1).collect();
        if weights.iter().all(|&w| w == 0) {
            weights.iter_mut().for_each(|w| *w = 1);
        }
        let cum = cumulative(weights);
        for _ in total..target {
            let i = rng.weighted(&cum);
            sizes[i].0 += 1;
        }
    }
    owners
        .into_iter()
        .zip(sizes)
        .map(|(owner, (units, _))| PropertyPlan { owner, units })
        .collect()
}
