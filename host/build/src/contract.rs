//! The WIT contract plugins are built against, embedded so that a `weft`
//! binary builds Python and JavaScript plugins without a source checkout.

use std::path::{Path, PathBuf};

use crate::BuildError;

/// The contract version the embedded files declare.
pub const VERSION: &str = "0.4.0";

/// The world every plugin targets.
pub const WORLD: &str = "node";

/// The contract's files: name and content.
pub const FILES: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    (
        "capabilities.wit",
        include_str!("../../../wit/capabilities.wit"),
    ),
    ("node.wit", include_str!("../../../wit/node.wit")),
];

/// Writes the contract into `dir/wit/<version>/` (unless it is there
/// already, byte for byte) and returns that folder.
pub fn write_into(dir: &Path) -> Result<PathBuf, BuildError> {
    let wit = dir.join("wit").join(VERSION);
    std::fs::create_dir_all(&wit).map_err(|e| BuildError::io(&wit, e))?;
    for (name, content) in FILES {
        let path = wit.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
            continue;
        }
        crate::write_atomically(&path, content.as_bytes())?;
    }
    Ok(wit)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_contract_declares_its_version() {
        let types = super::FILES[0].1;
        assert!(
            types.contains(&format!("package weft:node@{};", super::VERSION)),
            "wit/types.wit declares another version than contract::VERSION"
        );
        assert!(
            super::FILES[2]
                .1
                .contains(&format!("world {}", super::WORLD))
        );
    }
}
