//! Metering devices (`Geraete`) and their readings (`Ablesungen`).

use rusqlite::params;

use super::buildings::Sink;
use super::calendar::Day;
use super::names;
use super::random::Rand;

/// The device types and their reading unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Device {
    Heizkostenverteiler,
    Waermezaehler,
    Warmwasserzaehler,
    Kaltwasserzaehler,
    Rauchwarnmelder,
}

impl Device {
    fn label(self) -> &'static str {
        match self {
            Self::Heizkostenverteiler => "Heizkostenverteiler",
            Self::Waermezaehler => "Wärmezähler",
            Self::Warmwasserzaehler => "Warmwasserzähler",
            Self::Kaltwasserzaehler => "Kaltwasserzähler",
            Self::Rauchwarnmelder => "Rauchwarnmelder",
        }
    }

    /// The reading unit, and the divisor from the integer counter to it.
    fn unit(self) -> (&'static str, f64) {
        match self {
            Self::Heizkostenverteiler => ("Einheiten", 1.0),
            Self::Waermezaehler => ("kWh", 1.0),
            _ => ("m³", 1000.0),
        }
    }

    /// Calibrated meters have a calibration date; allocators and alarms
    /// do not.
    fn calibrated(self) -> bool {
        matches!(
            self,
            Self::Waermezaehler | Self::Warmwasserzaehler | Self::Kaltwasserzaehler
        )
    }
}

/// One device to write, in a unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewDevice {
    /// The unit (`NutzeinheitNr`).
    pub unit: i64,
    pub kind: Device,
    pub maker: &'static str,
    pub room: &'static str,
    pub installed: Day,
    /// Read by radio rather than on site.
    pub radio: bool,
    /// Consumption in an average year, in the counter's integer unit
    /// (allocator units, kWh, litres).
    pub annual: i64,
}

/// Writes a device and, unless it is a smoke alarm, its readings.
pub(crate) fn write(sink: &mut Sink<'_>, rng: &mut Rand, d: &NewDevice) -> rusqlite::Result<()> {
    sink.written.devices += 1;
    let nr = sink.written.devices;
    // Multiplying by a number coprime to 10⁸ permutes 0..10⁸, so serials
    // look random yet never repeat.
    let serial = format!(
        "{}-{:08}",
        maker_code(d.maker),
        (nr * 7_919_777) % 100_000_000
    );
    let calibrated = calibration(rng, d.kind, d.installed, sink.years.last);
    sink.ins.device.execute(params![
        nr,
        d.unit,
        d.kind.label(),
        serial,
        d.maker,
        d.room,
        d.installed.iso(),
        calibrated,
    ])?;
    if d.kind != Device::Rauchwarnmelder {
        readings(sink, rng, nr, d)?;
    }
    Ok(())
}

fn calibration(rng: &mut Rand, kind: Device, installed: Day, last_year: i64) -> Option<String> {
    if !kind.calibrated() {
        return None;
    }
    let valid_years = if kind == Device::Kaltwasserzaehler {
        6
    } else {
        5
    };
    let horizon = Day::ymd(last_year, 12, 31);
    let mut calibrated = installed.plus(-rng.int(30, 365));
    loop {
        let swap = Day::ymd(calibrated.year() + valid_years, 1, 1).plus(-rng.int(1, 120));
        if swap > horizon || rng.chance(60) {
            break;
        }
        calibrated = swap.plus(-rng.int(30, 365));
    }
    Some(calibrated.iso())
}

fn maker_code(maker: &str) -> String {
    names::ascii_slug(maker, '-')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Heating demand of a year relative to an average one, in per mille.
fn weather(year: i64) -> i64 {
    match year {
        2018 => 930,
        2019 => 950,
        2020 => 920,
        2021 => 1_030,
        2022 => 880,
        2023 => 910,
        2024 => 900,
        2025 => 960,
        _ => 1_000,
    }
}

/// The device's counter, from installation to the last year's year-end
/// reading: cumulative, so it only ever grows.
fn readings(
    sink: &mut Sink<'_>,
    rng: &mut Rand,
    device: i64,
    d: &NewDevice,
) -> rusqlite::Result<()> {
    let NewDevice {
        kind,
        installed,
        radio,
        annual,
        ..
    } = *d;
    let years = sink.years;
    let (unit, scale) = kind.unit();
    let heating = matches!(kind, Device::Heizkostenverteiler | Device::Waermezaehler);
    let mut value = match kind {
        Device::Heizkostenverteiler => 0,
        Device::Waermezaehler => rng.int(0, 15),
        _ => rng.int(0, 40),
    };
    let mut emit = |day: Day, value: i64, how: &str| {
        sink.written.readings += 1;
        sink.ins
            .reading
            .execute(params![
                sink.written.readings,
                device,
                day.iso(),
                value as f64 / scale,
                unit,
                how
            ])
            .map(|_| ())
    };
    if (years.first..=years.last).contains(&installed.year()) {
        emit(installed, value, "vor Ort")?;
    }
    let mut previous = installed;
    for year in installed.year()..=years.last {
        let year_end = Day::ymd(year, 12, 31);
        let mut day = if radio {
            year_end
        } else {
            Day(rng.int(Day::ymd(year, 12, 1).0, year_end.0))
        };
        if day <= previous {
            day = year_end;
        }
        if day <= previous {
            continue;
        }
        let mut used = annual * rng.int(850, 1_150) / 1_000 * (day.0 - previous.0) / 365;
        if heating {
            used = used * weather(year) / 1_000;
        }
        value += used;
        previous = day;
        if year >= years.first {
            let how = match (rng.chance(40), radio) {
                (true, _) => "Schätzung",
                (false, true) => "Funk",
                (false, false) => "vor Ort",
            };
            emit(day, value, how)?;
        }
    }
    Ok(())
}
