//! The `api` section: the operators' API of `weft serve` and its OIDC
//! sign-in.

use schemars::JsonSchema;
use serde::Deserialize;

/// The operators' API of `weft serve`: rate limits, request limits and
/// timeouts, CORS, the event history and OIDC sign-in.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Requests per minute per key.
    pub rate_per_minute: u32,
    /// Requests at once above the rate.
    pub burst: u32,
    /// Largest request body in KiB.
    pub body_limit_kb: usize,
    /// Origins allowed by CORS (`*`: any).
    pub cors: Vec<String>,
    /// Events kept for clients that resume with `Last-Event-ID`.
    pub event_history: usize,
    /// Event streams and sockets one key may have open at once.
    pub streams_per_key: usize,
    /// Bearer JWTs from an OIDC provider, besides API keys.
    pub oidc: Option<OidcSection>,
    /// Largest plugin upload (`PUT /api/v1/plugins/{name}`) in KiB; the
    /// upload streams to a temporary file, never into memory.
    pub upload_limit_kb: usize,
    /// Milliseconds a connection has to send a complete request head, from
    /// its opening or from the end of its previous response (so an idle
    /// keep-alive connection is closed after this too).
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request body may stay silent (no bytes) before the
    /// request fails.
    pub body_read_timeout_ms: u64,
    /// Connections served at once; more wait, unaccepted, until one closes.
    pub max_connections: usize,
    /// What a message for a thread with a run in flight does when its
    /// request names no policy (`multitask`): `reject` (409
    /// `thread_busy`), `enqueue`, `interrupt` or `rollback`.
    pub multitask: weft_engine::Multitask,
}

/// Bearer JWTs from an OIDC provider, accepted beside API keys; the
/// token's claims give its role and project.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The `iss` tokens must have.
    pub issuer: String,
    /// The `aud` tokens must have.
    pub audience: String,
    /// A JWKS file …
    pub jwks_file: Option<std::path::PathBuf>,
    /// … or the provider's JWKS URL.
    pub jwks_url: Option<String>,
    /// The claim with the role (default `weft_role`).
    #[serde(default = "role_claim")]
    pub role_claim: String,
    /// The claim with the project (default `weft_project`).
    #[serde(default = "project_claim")]
    pub project_claim: String,
    /// The role of tokens without the role claim (default `viewer`).
    #[serde(default)]
    pub default_role: Option<weft_api::Role>,
    /// Sign-in from the dashboard with the provider (authorization code
    /// with PKCE); without it, tokens are accepted but the page offers
    /// only API keys.
    #[serde(default)]
    pub sign_in: Option<SignInSection>,
}

/// The dashboard's client at the OIDC provider: a public client (no
/// secret) whose redirect URI is the host's `/` (for example
/// `https://weft.example/`), allowed to call the token endpoint from the
/// host's origin (CORS).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInSection {
    /// The client id registered at the provider.
    pub client_id: String,
    /// The provider's authorization endpoint (its discovery document's
    /// `authorization_endpoint`).
    pub authorization_endpoint: String,
    /// The provider's token endpoint (its discovery document's
    /// `token_endpoint`).
    pub token_endpoint: String,
    /// Scopes to ask for, space-separated (default `openid`).
    #[serde(default = "sign_in_scopes")]
    pub scopes: String,
    /// Which token of the provider's answer the page sends: `access_token`
    /// (default) or `id_token`; its `aud` must be `audience`.
    #[serde(default = "sign_in_token")]
    pub token: String,
}

fn sign_in_scopes() -> String {
    "openid".into()
}

fn sign_in_token() -> String {
    "access_token".into()
}

fn role_claim() -> String {
    "weft_role".into()
}

fn project_claim() -> String {
    "weft_project".into()
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            rate_per_minute: 600,
            burst: 100,
            body_limit_kb: 1024,
            cors: Vec::new(),
            event_history: 1024,
            streams_per_key: 16,
            oidc: None,
            upload_limit_kb: 64 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_connections: 1024,
            multitask: weft_engine::Multitask::Reject,
        }
    }
}
