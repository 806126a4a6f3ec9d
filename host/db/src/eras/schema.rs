//! The Eras schema: five tables with German names, keys, foreign keys and
//! an index on every foreign key.

/// `PRAGMA user_version` of a generated Eras database.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The tables in dependency order, with their columns.
pub(crate) const COLUMNS: [(&str, &[&str]); 5] = [
    (
        "Kunden",
        &[
            "KundenNr",
            "Anrede",
            "Vorname",
            "Nachname",
            "Firma",
            "Strasse",
            "Hausnummer",
            "PLZ",
            "Ort",
            "Telefon",
            "Email",
            "KundeSeit",
        ],
    ),
    (
        "Objekte",
        &[
            "ObjektNr",
            "KundenNr",
            "Bezeichnung",
            "Strasse",
            "Hausnummer",
            "PLZ",
            "Ort",
            "Baujahr",
            "Heizungsart",
            "Wohnflaeche",
        ],
    ),
    (
        "Nutzeinheiten",
        &[
            "NutzeinheitNr",
            "ObjektNr",
            "Lage",
            "Nutzer",
            "Flaeche",
            "Personen",
        ],
    ),
    (
        "Geraete",
        &[
            "GeraetNr",
            "NutzeinheitNr",
            "Typ",
            "Seriennummer",
            "Hersteller",
            "Raum",
            "Einbaudatum",
            "Eichdatum",
        ],
    ),
    (
        "Ablesungen",
        &[
            "AblesungNr",
            "GeraetNr",
            "Datum",
            "Wert",
            "Einheit",
            "Ableseart",
        ],
    ),
];

/// Creates the tables and indexes (run inside the generating transaction).
pub(crate) const DDL: &str = "
CREATE TABLE Kunden (
    KundenNr    INTEGER PRIMARY KEY,
    Anrede      TEXT NOT NULL,
    Vorname     TEXT NOT NULL,
    Nachname    TEXT NOT NULL,
    Firma       TEXT,
    Strasse     TEXT NOT NULL,
    Hausnummer  TEXT NOT NULL,
    PLZ         TEXT NOT NULL,
    Ort         TEXT NOT NULL,
    Telefon     TEXT NOT NULL,
    Email       TEXT NOT NULL,
    KundeSeit   TEXT NOT NULL
);
CREATE TABLE Objekte (
    ObjektNr    INTEGER PRIMARY KEY,
    KundenNr    INTEGER NOT NULL REFERENCES Kunden (KundenNr),
    Bezeichnung TEXT NOT NULL,
    Strasse     TEXT NOT NULL,
    Hausnummer  TEXT NOT NULL,
    PLZ         TEXT NOT NULL,
    Ort         TEXT NOT NULL,
    Baujahr     INTEGER NOT NULL,
    Heizungsart TEXT NOT NULL,
    Wohnflaeche REAL NOT NULL
);
CREATE INDEX Objekte_KundenNr ON Objekte (KundenNr);
CREATE TABLE Nutzeinheiten (
    NutzeinheitNr INTEGER PRIMARY KEY,
    ObjektNr      INTEGER NOT NULL REFERENCES Objekte (ObjektNr),
    Lage          TEXT NOT NULL,
    Nutzer        TEXT NOT NULL,
    Flaeche       REAL NOT NULL,
    Personen      INTEGER NOT NULL
);
CREATE INDEX Nutzeinheiten_ObjektNr ON Nutzeinheiten (ObjektNr);
CREATE TABLE Geraete (
    GeraetNr      INTEGER PRIMARY KEY,
    NutzeinheitNr INTEGER NOT NULL REFERENCES Nutzeinheiten (NutzeinheitNr),
    Typ           TEXT NOT NULL,
    Seriennummer  TEXT NOT NULL UNIQUE,
    Hersteller    TEXT NOT NULL,
    Raum          TEXT NOT NULL,
    Einbaudatum   TEXT NOT NULL,
    Eichdatum     TEXT
);
CREATE INDEX Geraete_NutzeinheitNr ON Geraete (NutzeinheitNr);
CREATE TABLE Ablesungen (
    AblesungNr  INTEGER PRIMARY KEY,
    GeraetNr    INTEGER NOT NULL REFERENCES Geraete (GeraetNr),
    Datum       TEXT NOT NULL,
    Wert        REAL NOT NULL,
    Einheit     TEXT NOT NULL,
    Ableseart   TEXT NOT NULL
);
CREATE INDEX Ablesungen_GeraetNr_Datum ON Ablesungen (GeraetNr, Datum);
";
