//! Plugin components for the tests: variants of a built component (the
//! same code, another content hash) and where a thread's frames say each
//! node's plugin came from.

use std::path::{Path, PathBuf};

use super::client::Client;
use super::root;

/// The component with a custom section appended: the same plugin, another
/// content hash (a new "version" for swapping).
pub fn variant(component: &[u8], n: u32) -> Vec<u8> {
    with_section(component, &n.to_le_bytes())
}

/// The component with a custom section of `payload` appended.
pub fn with_section(component: &[u8], payload: &[u8]) -> Vec<u8> {
    let name = b"weft-test-variant";
    let mut section = Vec::new();
    leb(&mut section, name.len() as u32);
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0); // custom section id
    leb(&mut out, section.len() as u32);
    out.extend_from_slice(&section);
    out
}

pub fn leb(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn hex_hash(bytes: &[u8]) -> String {
    weft_runtime::ContentHash::of(bytes).to_hex()
}

pub async fn plugin_hash(client: &Client, name: &str) -> String {
    let (_, plugins) = client.get("/api/v1/plugins").await;
    plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name}: {plugins}"))["hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The plugin hash each node ran in the thread's frames.
pub async fn hashes_in(client: &Client, thread: &str, node: &str) -> Vec<String> {
    let (_, frames) = client
        .get(&format!("/api/v1/threads/{thread}/frames?limit=100"))
        .await;
    frames["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["records"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["node"] == node)
        .map(|r| r["pluginHash"].as_str().unwrap().to_owned())
        .collect()
}

/// A copy of the built plugins that a test may change.
pub fn plugin_copy(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for entry in std::fs::read_dir(root().join("artifacts/plugins")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, plugins.join(path.file_name().unwrap())).unwrap();
        }
    }
    plugins
}

/// A folder with the assistant graph, and with a copy of it under another
/// name when `second` is set.
pub fn graph_copy(dir: &Path, second: bool) -> PathBuf {
    let graphs = dir.join("graphs");
    std::fs::create_dir_all(&graphs).unwrap();
    let text = std::fs::read_to_string(root().join("graphs/assistant.yaml")).unwrap();
    std::fs::write(graphs.join("assistant.yaml"), &text).unwrap();
    if second {
        let b = text.replacen("name: assistant", "name: assistant-b", 1);
        std::fs::write(graphs.join("assistant-b.yaml"), b).unwrap();
    }
    graphs
}
