//! `tools:`: the MCP servers whose tools graphs may grant to nodes (the
//! `tools` capability, contract 0.4.0).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// `tools:`: MCP servers, each reached over Streamable HTTP (`url`) or
/// started as a child process speaking MCP on its standard input and
/// output (`command`). A graph grants a node tools of these servers by
/// name (`tools: {<server>: [<tool>, ..]}` on the node).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsSection {
    /// The servers, by the name graphs use (letters, digits, `-` and `_`;
    /// at most 64 bytes).
    pub servers: BTreeMap<String, McpServerConfig>,
    /// Serve weft's own date and arithmetic tools as server `local` (this
    /// binary's `weft tools-server`, started at its first use) unless
    /// `servers` names a `local` of its own (default true).
    pub builtin: bool,
}

impl Default for ToolsSection {
    fn default() -> Self {
        Self {
            servers: BTreeMap::new(),
            builtin: true,
        }
    }
}

/// The name of the built-in server.
pub const BUILTIN_SERVER: &str = "local";

/// One MCP server: exactly one of `url` and `command`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's Streamable HTTP endpoint, e.g.
    /// `http://127.0.0.1:9000/mcp`.
    #[serde(default)]
    pub url: Option<String>,
    /// Extra HTTP headers sent with every request to `url`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The environment variable holding a bearer token for `url` (sent as
    /// `Authorization: Bearer …`); it must be set when the host starts.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// The program to start (found on `PATH` unless it has a `/`); the
    /// server speaks MCP on its standard input and output. It is started
    /// at the first call and started again after it exits.
    #[serde(default)]
    pub command: Option<String>,
    /// The program's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for the program (beside the host's own).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The program's working folder (default: the host's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Milliseconds one call (or connecting, or listing the tools) may
    /// take before it fails with `unavailable` (100 to 600000; default
    /// 30000). A node's own deadline still applies.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 100, max = 600_000))]
    pub timeout_ms: u64,
    /// The largest answer of one call, in KiB (1 to 4096; default 256):
    /// a larger one fails with `limit-exceeded`.
    #[serde(default = "default_max_result_kb")]
    #[schemars(range(min = 1, max = 4096))]
    pub max_result_kb: usize,
    /// Seconds the server's tool list is kept before it is asked again (0
    /// to 3600; default 60).
    #[serde(default = "default_list_ttl_s")]
    #[schemars(range(max = 3600))]
    pub list_ttl_s: u64,
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_max_result_kb() -> usize {
    256
}

fn default_list_ttl_s() -> u64 {
    60
}

/// How a server is reached, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (the bearer token among them).
        headers: BTreeMap<String, String>,
    },
    /// A child process on standard input and output.
    Command {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment.
        env: BTreeMap<String, String>,
        /// Its working folder.
        cwd: Option<PathBuf>,
    },
}

/// One server's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Its name in graphs.
    pub name: String,
    /// How it is reached.
    pub transport: Transport,
    /// The time limit of one call.
    pub timeout: Duration,
    /// The largest answer, in bytes.
    pub max_result: usize,
    /// How long a tool list is kept.
    pub list_ttl: Duration,
}

/// The longest server name.
const MAX_SERVER_NAME: usize = 64;

impl ToolsSection {
    /// Every server's settings, or what is wrong (naming the key). Reads
    /// the bearer token variables.
    pub fn settings(&self) -> Result<Vec<ServerSettings>, String> {
        let mut servers: Vec<ServerSettings> = self
            .servers
            .iter()
            .map(|(name, server)| server.settings(name))
            .collect::<Result<_, _>>()?;
        if self.builtin && !self.servers.contains_key(BUILTIN_SERVER) {
            let program = std::env::current_exe()
                .map_err(|e| format!("tools.builtin: this program's path is unknown: {e}"))?;
            servers.push(ServerSettings {
                name: BUILTIN_SERVER.to_owned(),
                transport: Transport::Command {
                    program: program.display().to_string(),
                    args: vec!["tools-server".to_owned()],
                    env: BTreeMap::new(),
                    cwd: None,
                },
                timeout: Duration::from_millis(default_timeout_ms()),
                max_result: default_max_result_kb() * 1024,
                list_ttl: Duration::from_secs(default_list_ttl_s()),
            });
        }
        Ok(servers)
    }
}

impl McpServerConfig {
    fn settings(&self, name: &str) -> Result<ServerSettings, String> {
        let at = format!("tools.servers.{name}");
        if name.is_empty()
            || name.len() > MAX_SERVER_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(format!(
                "{at}: a server name has 1 to {MAX_SERVER_NAME} letters, digits, `-` or `_`"
            ));
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            return Err(format!(
                "{at}.timeout_ms is 100 to 600000, not {}",
                self.timeout_ms
            ));
        }
        if !(1..=4096).contains(&self.max_result_kb) {
            return Err(format!(
                "{at}.max_result_kb is 1 to 4096, not {}",
                self.max_result_kb
            ));
        }
        if self.list_ttl_s > 3600 {
            return Err(format!(
                "{at}.list_ttl_s is 0 to 3600, not {}",
                self.list_ttl_s
            ));
        }
        let transport = match (&self.url, &self.command) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: give `url` or `command`, not both"));
            }
            (None, None) => {
                return Err(format!(
                    "{at}: give `url` (Streamable HTTP) or `command` (a program speaking MCP on stdio)"
                ));
            }
            (Some(url), None) => {
                if !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    return Err(format!(
                        "{at}: `args`, `env` and `cwd` belong to a `command` server, not a `url` one"
                    ));
                }
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| format!("{at}.url `{url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("{at}.url must be http or https, not `{url}`"));
                }
                let mut headers = self.headers.clone();
                for (k, v) in &headers {
                    if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                        || reqwest::header::HeaderValue::from_str(v).is_err()
                    {
                        return Err(format!("{at}.headers: `{k}` is not a valid HTTP header"));
                    }
                }
                if let Some(var) = &self.bearer_token_env {
                    let token = std::env::var(var).map_err(|_| {
                        format!("{at}.bearer_token_env: the variable `{var}` is not set")
                    })?;
                    headers.insert("Authorization".to_owned(), format!("Bearer {token}"));
                }
                Transport::Http {
                    url: url.clone(),
                    headers,
                }
            }
            (None, Some(program)) => {
                if !self.headers.is_empty() || self.bearer_token_env.is_some() {
                    return Err(format!(
                        "{at}: `headers` and `bearer_token_env` belong to a `url` server, not a `command` one"
                    ));
                }
                if program.trim().is_empty() {
                    return Err(format!("{at}.command is empty"));
                }
                Transport::Command {
                    program: program.clone(),
                    args: self.args.clone(),
                    env: self.env.clone(),
                    cwd: self.cwd.clone(),
                }
            }
        };
        Ok(ServerSettings {
            name: name.to_owned(),
            transport,
            timeout: Duration::from_millis(self.timeout_ms),
            max_result: self.max_result_kb * 1024,
            list_ttl: Duration::from_secs(self.list_ttl_s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<ServerSettings>, String> {
        let section: ToolsSection = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        section.settings()
    }

    #[test]
    fn servers_are_a_url_or_a_command() {
        let s = parse(
            "servers:\n  web: { url: \"http://127.0.0.1:9/mcp\", headers: { X-Key: abc } }\n  \
             local: { command: python3, args: [srv.py], timeout_ms: 500 }\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2, "a server `local` replaces the built-in one");
        assert_eq!(s[0].name, "local");
        assert_eq!(s[0].timeout, Duration::from_millis(500));
        assert!(
            matches!(&s[1].transport, Transport::Http { headers, .. } if headers["X-Key"] == "abc")
        );
        assert_eq!(s[1].max_result, 256 * 1024);
    }

    #[test]
    fn the_builtin_server_is_local_unless_turned_off() {
        let s = parse("servers:\n  web: { url: \"http://127.0.0.1:9/mcp\" }\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "local");
        assert!(
            matches!(&s[1].transport, Transport::Command { args, .. } if args == &["tools-server"])
        );
        assert!(parse("builtin: false\n").unwrap().is_empty());
    }

    #[test]
    fn mistakes_name_the_key() {
        for (yaml, says) in [
            ("servers:\n  a: {}\n", "tools.servers.a: give `url`"),
            (
                "servers:\n  a: { url: \"http://x/mcp\", command: y }\n",
                "not both",
            ),
            ("servers:\n  a: { url: \"ftp://x/mcp\" }\n", "http or https"),
            ("servers:\n  a: { url: \"nope\" }\n", "is not a URL"),
            (
                "servers:\n  a: { command: y, timeout_ms: 5 }\n",
                "tools.servers.a.timeout_ms",
            ),
            (
                "servers:\n  a: { command: y, headers: { k: v } }\n",
                "belong to a `url`",
            ),
            (
                "servers:\n  a: { url: \"http://x\", args: [z] }\n",
                "belong to a `command`",
            ),
            ("servers:\n  \"a b\": { command: y }\n", "a server name"),
            (
                "servers:\n  a: { url: \"http://x\", bearer_token_env: WEFT_TEST_UNSET_TOKEN_VAR }\n",
                "is not set",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}
