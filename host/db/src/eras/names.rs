//! Word lists the sample is drawn from: German names, streets, cities with
//! their postcodes and dialling codes, and metering-device makers.

/// A city with one of its postcodes and its dialling code.
pub(crate) struct City {
    pub plz: &'static str,
    pub name: &'static str,
    pub vorwahl: &'static str,
}

const fn city(plz: &'static str, name: &'static str, vorwahl: &'static str) -> City {
    City { plz, name, vorwahl }
}

pub(crate) const CITIES: &[City] = &[
    city("10115", "Berlin", "030"),
    city("10247", "Berlin", "030"),
    city("20095", "Hamburg", "040"),
    city("22767", "Hamburg", "040"),
    city("80331", "München", "089"),
    city("81541", "München", "089"),
    city("50667", "Köln", "0221"),
    city("50823", "Köln", "0221"),
    city("60311", "Frankfurt am Main", "069"),
    city("70173", "Stuttgart", "0711"),
    city("40210", "Düsseldorf", "0211"),
    city("44135", "Dortmund", "0231"),
    city("45127", "Essen", "0201"),
    city("04109", "Leipzig", "0341"),
    city("28195", "Bremen", "0421"),
    city("01067", "Dresden", "0351"),
    city("30159", "Hannover", "0511"),
    city("90402", "Nürnberg", "0911"),
    city("47051", "Duisburg", "0203"),
    city("44787", "Bochum", "0234"),
    city("42103", "Wuppertal", "0202"),
    city("33602", "Bielefeld", "0521"),
    city("53111", "Bonn", "0228"),
    city("48143", "Münster", "0251"),
    city("76133", "Karlsruhe", "0721"),
    city("68159", "Mannheim", "0621"),
    city("86150", "Augsburg", "0821"),
    city("65183", "Wiesbaden", "0611"),
    city("41061", "Mönchengladbach", "02161"),
    city("45879", "Gelsenkirchen", "0209"),
    city("38100", "Braunschweig", "0531"),
    city("24103", "Kiel", "0431"),
    city("52062", "Aachen", "0241"),
    city("09111", "Chemnitz", "0371"),
    city("06108", "Halle (Saale)", "0345"),
    city("39104", "Magdeburg", "0391"),
    city("79098", "Freiburg im Breisgau", "0761"),
    city("47798", "Krefeld", "02151"),
    city("23552", "Lübeck", "0451"),
    city("99084", "Erfurt", "0361"),
    city("55116", "Mainz", "06131"),
    city("18055", "Rostock", "0381"),
    city("34117", "Kassel", "0561"),
    city("66111", "Saarbrücken", "0681"),
    city("14467", "Potsdam", "0331"),
    city("93047", "Regensburg", "0941"),
    city("97070", "Würzburg", "0931"),
    city("26122", "Oldenburg", "0441"),
    city("49074", "Osnabrück", "0541"),
    city("37073", "Göttingen", "0551"),
];

pub(crate) const MALE: &[&str] = &[
    "Thomas",
    "Michael",
    "Andreas",
    "Stefan",
    "Christian",
    "Peter",
    "Klaus",
    "Wolfgang",
    "Jürgen",
    "Frank",
    "Markus",
    "Matthias",
    "Alexander",
    "Martin",
    "Uwe",
    "Jörg",
    "Dieter",
    "Bernd",
    "Ralf",
    "Sven",
    "Jan",
    "Tobias",
    "Daniel",
    "Sebastian",
    "Florian",
    "Lukas",
    "Jonas",
    "Felix",
    "Maximilian",
    "Paul",
    "Hans",
    "Günter",
    "Heinz",
    "Karl-Heinz",
    "Oliver",
    "Dirk",
    "Holger",
    "Torsten",
    "Kai",
    "Niklas",
    "Mehmet",
    "Piotr",
];

pub(crate) const FEMALE: &[&str] = &[
    "Sabine",
    "Petra",
    "Andrea",
    "Claudia",
    "Susanne",
    "Monika",
    "Birgit",
    "Gabriele",
    "Karin",
    "Ursula",
    "Heike",
    "Stefanie",
    "Nicole",
    "Julia",
    "Katrin",
    "Anja",
    "Christina",
    "Melanie",
    "Sandra",
    "Martina",
    "Anna",
    "Laura",
    "Lea",
    "Sophie",
    "Marie",
    "Hannah",
    "Lena",
    "Johanna",
    "Emma",
    "Renate",
    "Ingrid",
    "Brigitte",
    "Elke",
    "Silke",
    "Jutta",
    "Doris",
    "Tanja",
    "Kerstin",
    "Nadine",
    "Jessica",
    "Ayşe",
    "Agnieszka",
];

pub(crate) const SURNAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Schmid",
    "Schulze",
    "Maier",
    "Köhler",
    "Herrmann",
    "König",
    "Walter",
    "Mayer",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Schubert",
    "Vogel",
    "Friedrich",
    "Keller",
    "Günther",
    "Frank",
    "Berger",
    "Winkler",
    "Roth",
    "Beck",
    "Lorenz",
    "Baumann",
    "Franke",
    "Albrecht",
    "Schuster",
    "Simon",
    "Ludwig",
    "Böhm",
    "Winter",
    "Kraus",
    "Martin",
    "Schumacher",
    "Krämer",
    "Vogt",
    "Stein",
    "Jäger",
    "Otto",
    "Sommer",
    "Groß",
    "Seidel",
    "Heinrich",
    "Brandt",
    "Haas",
    "Schreiber",
    "Graf",
    "Schulte",
    "Dietrich",
    "Ziegler",
    "Kuhn",
    "Kühn",
    "Pohl",
    "Engel",
    "Horn",
    "Busch",
    "Bergmann",
    "Voigt",
    "Sauer",
    "Arnold",
    "Wolff",
    "Pfeiffer",
    "Yılmaz",
    "Kaya",
    "Nowak",
    "Kowalski",
    "Demir",
    "Popović",
    "Rossi",
    "Nguyen",
];

pub(crate) const STREETS: &[&str] = &[
    "Hauptstraße",
    "Bahnhofstraße",
    "Gartenstraße",
    "Schulstraße",
    "Dorfstraße",
    "Bergstraße",
    "Birkenweg",
    "Lindenstraße",
    "Kirchstraße",
    "Waldstraße",
    "Ringstraße",
    "Schillerstraße",
    "Goethestraße",
    "Mühlenweg",
    "Jahnstraße",
    "Am Sportplatz",
    "Rosenweg",
    "Wiesenweg",
    "Feldstraße",
    "Buchenweg",
    "Beethovenstraße",
    "Mozartstraße",
    "Eichendorffstraße",
    "Amselweg",
    "Blumenstraße",
    "Parkstraße",
    "Poststraße",
    "Kastanienallee",
    "Ahornweg",
    "Uhlandstraße",
    "Lessingstraße",
    "Friedrich-Ebert-Straße",
    "Kantstraße",
    "Marktplatz",
    "Am Anger",
    "Talstraße",
    "Lerchenweg",
    "Tulpenweg",
    "Heinrich-Heine-Straße",
    "Wilhelmstraße",
    "Kaiserstraße",
    "Rathausstraße",
    "Brunnenstraße",
    "Sonnenstraße",
    "Hochstraße",
    "Luisenstraße",
    "Auf der Höhe",
    "Im Winkel",
    "Karl-Marx-Straße",
    "Bismarckstraße",
    "Am Stadtpark",
    "Hafenstraße",
    "Theodor-Heuss-Ring",
    "Gutenbergstraße",
];

/// Districts used to tell housing cooperatives of one city apart.
pub(crate) const DISTRICTS: &[&str] = &["Nord", "Süd", "Ost", "West", "Mitte", "Altstadt"];

pub(crate) const MAIL_PROVIDERS: &[&str] = &[
    "web.de",
    "gmx.de",
    "t-online.de",
    "gmail.com",
    "posteo.de",
    "outlook.de",
];

pub(crate) const MOBILE_PREFIXES: &[&str] = &[
    "0151", "0152", "0160", "0162", "0170", "0171", "0172", "0176", "0177",
];

/// Makers of heat cost allocators.
pub(crate) const HKV_MAKERS: &[&str] = &["Techem", "ista", "Brunata", "Qundis", "Sontex", "Kundo"];
/// Makers of heat meters.
pub(crate) const WMZ_MAKERS: &[&str] = &[
    "Engelmann",
    "Kamstrup",
    "Diehl Metering",
    "Zenner",
    "Sensus",
    "Landis+Gyr",
];
/// Makers of water meters.
pub(crate) const WATER_MAKERS: &[&str] =
    &["Zenner", "Diehl Metering", "Sensus", "Elster", "Maddalena"];
/// Makers of smoke alarms.
pub(crate) const RWM_MAKERS: &[&str] = &["Hekatron", "Ei Electronics", "ista", "Techem", "Brunata"];

/// Rooms with radiators, roughly in the order a flat has them.
pub(crate) const HEATED_ROOMS: &[&str] = &[
    "Wohnzimmer",
    "Schlafzimmer",
    "Küche",
    "Bad",
    "Kinderzimmer",
    "Arbeitszimmer",
    "Flur",
    "Gästezimmer",
];
/// Where meters are mounted.
pub(crate) const METER_ROOMS: &[&str] = &[
    "Bad",
    "Küche",
    "Flur",
    "Abstellraum",
    "Keller",
    "Hauswirtschaftsraum",
];
/// Where smoke alarms hang.
pub(crate) const ALARM_ROOMS: &[&str] = &["Schlafzimmer", "Kinderzimmer", "Flur", "Wohnzimmer"];

/// ASCII form of `s` for e-mail addresses and domains: umlauts
/// transliterated, letters lowercased, anything else turned into `sep`
/// (runs collapsed, none at the ends).
pub(crate) fn ascii_slug(s: &str, sep: char) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars().flat_map(char::to_lowercase) {
        let mapped: &str = match ch {
            'ä' => "ae",
            'ö' => "oe",
            'ü' => "ue",
            'ß' => "ss",
            'é' | 'è' => "e",
            'ı' => "i",
            'ş' => "s",
            'ć' => "c",
            'a'..='z' | '0'..='9' => {
                out.push(ch);
                continue;
            }
            _ => {
                if !out.is_empty() && !out.ends_with(sep) {
                    out.push(sep);
                }
                continue;
            }
        };
        out.push_str(mapped);
    }
    while out.ends_with(sep) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(ascii_slug("Jürgen", '.'), "juergen");
        assert_eq!(ascii_slug("Karl-Heinz", '.'), "karl.heinz");
        assert_eq!(
            ascii_slug("Hausverwaltung Weiß & Groß GmbH", '-'),
            "hausverwaltung-weiss-gross-gmbh"
        );
        assert_eq!(ascii_slug("Yılmaz", '.'), "yilmaz");
        assert_eq!(ascii_slug("Halle (Saale)", '-'), "halle-saale");
    }

    #[test]
    fn lists_are_clean() {
        for list in [MALE, FEMALE, SURNAMES, STREETS] {
            assert!(list.iter().all(|s| !s.is_empty() && s.trim() == *s));
        }
        assert!(
            CITIES
                .iter()
                .all(|c| c.plz.len() == 5 && c.vorwahl.starts_with('0'))
        );
    }
}
