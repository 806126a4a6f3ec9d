//! Optional OIDC: bearer JWTs validated against a JWKS (a file, or a URL
//! fetched at start and every ten minutes), with the issuer and audience
//! checked, and the role and project taken from claims.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::auth::{Principal, Role, Scope};

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file.
    File(PathBuf),
    /// A JWKS URL (the provider's `jwks_uri`).
    Url(String),
}

/// OIDC settings.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The `iss` tokens must have.
    pub issuer: String,
    /// The `aud` tokens must have.
    pub audience: String,
    /// The keys.
    pub jwks: JwksSource,
    /// The claim with the role (`viewer`, `operator`, `admin`).
    pub role_claim: String,
    /// The claim with the project: a project name, or `*` for every
    /// project. A token without it, or with anything but a non-empty
    /// string, is refused.
    pub project_claim: String,
    /// The role of a token without the role claim.
    pub default_role: Role,
    /// How the dashboard signs people in with the provider (authorization
    /// code with PKCE); `None`: tokens are only accepted, not obtained.
    pub sign_in: Option<SignIn>,
}

/// The provider's endpoints and the dashboard's client registration, for
/// the authorization-code flow with PKCE (a public client: no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    /// The client id the dashboard is registered under (its redirect URI
    /// is the host's `/`).
    pub client_id: String,
    /// The provider's authorization endpoint.
    pub authorization_endpoint: String,
    /// The provider's token endpoint (the page posts the code there: the
    /// provider must allow the host's origin by CORS).
    pub token_endpoint: String,
    /// The scopes asked for, space-separated (with `openid`).
    pub scopes: String,
    /// Which token of the answer the page sends as its bearer token:
    /// `access_token` or `id_token` (the one whose `aud` is the configured
    /// audience).
    #[schema(pattern = "^(access_token|id_token)$")]
    pub token: String,
}

impl SignIn {
    /// Checks the settings: http(s) endpoints, a client id, a known token.
    pub fn check(&self) -> Result<(), String> {
        if self.client_id.trim().is_empty() {
            return Err("sign_in.client_id is empty".into());
        }
        for (name, url) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
        ] {
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(format!("sign_in.{name} is not an http(s) URL: `{url}`"));
            }
        }
        if !matches!(self.token.as_str(), "access_token" | "id_token") {
            return Err(format!(
                "sign_in.token is `{}`: access_token or id_token",
                self.token
            ));
        }
        Ok(())
    }

    /// The token endpoint's origin (`scheme://host[:port]`): the page may
    /// connect to it (its Content-Security-Policy says so).
    pub fn token_origin(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.token_endpoint).ok()?;
        Some(url.origin().ascii_serialization())
    }
}

/// A validator with its current keys.
pub struct Oidc {
    config: OidcConfig,
    keys: RwLock<JwkSet>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

async fn fetch(source: &JwksSource) -> Result<JwkSet, String> {
    let text = match source {
        JwksSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("cannot read the JWKS {}: {e}", path.display()))?,
        JwksSource::Url(url) => reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("cannot fetch the JWKS {url}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("cannot read the JWKS {url}: {e}"))?,
    };
    serde_json::from_str(&text).map_err(|e| format!("the JWKS is not valid: {e}"))
}

impl Oidc {
    /// Loads the keys; a URL is fetched again every ten minutes.
    pub async fn load(config: OidcConfig) -> Result<Arc<Self>, String> {
        let keys = fetch(&config.jwks).await?;
        if keys.keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        let oidc = Arc::new(Self {
            config,
            keys: RwLock::new(keys),
        });
        if let JwksSource::Url(_) = &oidc.config.jwks {
            let weak = Arc::downgrade(&oidc);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(600));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(oidc) = weak.upgrade() else { return };
                    match fetch(&oidc.config.jwks).await {
                        Ok(keys) if !keys.keys.is_empty() => {
                            *oidc
                                .keys
                                .write()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
                        }
                        Ok(_) => {
                            tracing::warn!("the refreshed JWKS has no keys; keeping the old ones")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "JWKS refresh failed; keeping the old keys")
                        }
                    }
                }
            });
        }
        Ok(oidc)
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The caller a token stands for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let header = decode_header(token).map_err(|e| format!("not a valid JWT: {e}"))?;
        let key = {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let jwk = match &header.kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            }
            .ok_or("the token's key id is not in the JWKS")?;
            if let Some(alg) = jwk.common.key_algorithm
                && format!("{alg:?}") != format!("{:?}", header.alg)
            {
                return Err("the token's algorithm is not its key's".into());
            }
            DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key in the JWKS: {e}"))?
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let data = decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "the token's signature is not valid".to_owned()
            }
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                "the token's issuer is not accepted".to_owned()
            }
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                "the token is not for this audience".to_owned()
            }
            _ => format!("the token is not valid: {e}"),
        })?;
        principal_of(&self.config, &data.claims)
    }
}

/// The caller validated `claims` stand for. Claims fail closed: a role
/// claim that is present must be one of the role names (absent: the
/// configured default role); the project claim must be a project name or
/// `*` (every project). Anything else (absent, null, a number, an array,
/// an object, an empty string) refuses the token rather than widen it.
fn principal_of(config: &OidcConfig, claims: &Value) -> Result<Principal, String> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the token's `sub` claim is not a non-empty string")?;
    let role = match claims.get(&config.role_claim) {
        None => config.default_role,
        Some(Value::String(name)) => {
            serde_json::from_value(Value::String(name.clone())).map_err(|_| {
                format!(
                    "the `{}` claim is not a role (viewer, operator or admin): {name:?}",
                    config.role_claim
                )
            })?
        }
        Some(other) => {
            return Err(format!(
                "the `{}` claim must be one role name as a string, not {other}",
                config.role_claim
            ));
        }
    };
    let scope = match claims.get(&config.project_claim) {
        Some(Value::String(p)) if p == "*" => Scope::Host,
        Some(Value::String(p)) if !p.is_empty() && p.len() <= 64 => Scope::Project(p.clone()),
        Some(other) => {
            return Err(format!(
                "the `{}` claim must be a project name (1 to 64 characters) or `*` for every project, not {other}",
                config.project_claim
            ));
        }
        None => {
            return Err(format!(
                "the token has no `{}` claim: it must name a project, or `*` for every project",
                config.project_claim
            ));
        }
    };
    Ok(Principal {
        key: format!("oidc:{sub}"),
        role,
        scope,
        expires: claims.get("exp").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example".into(),
            audience: "weft".into(),
            jwks: JwksSource::File("jwks.json".into()),
            role_claim: "weft_role".into(),
            project_claim: "weft_project".into(),
            default_role: Role::Viewer,
            sign_in: None,
        }
    }

    fn claims(role: Option<Value>, project: Option<Value>) -> Value {
        let mut c = json!({"sub": "ada", "exp": 2_000_000_000u64});
        if let Some(r) = role {
            c["weft_role"] = r;
        }
        if let Some(p) = project {
            c["weft_project"] = p;
        }
        c
    }

    #[test]
    fn a_project_claim_that_is_not_a_name_refuses_the_token() {
        let config = config();
        for bad in [
            None,
            Some(Value::Null),
            Some(json!(7)),
            Some(json!(["acme"])),
            Some(json!({"name": "acme"})),
            Some(json!("")),
            Some(json!(true)),
        ] {
            let shown = format!("{bad:?}");
            let e = principal_of(&config, &claims(Some(json!("admin")), bad)).unwrap_err();
            assert!(e.contains("weft_project"), "{shown}: {e}");
        }
        let p = principal_of(&config, &claims(Some(json!("admin")), Some(json!("acme")))).unwrap();
        assert_eq!(p.scope, Scope::Project("acme".into()));
        assert_eq!(p.expires, Some(2_000_000_000));
        let p = principal_of(&config, &claims(None, Some(json!("*")))).unwrap();
        assert_eq!((p.scope, p.role), (Scope::Host, Role::Viewer));
    }

    #[test]
    fn a_role_claim_that_is_not_one_role_name_refuses_the_token() {
        let config = config();
        for bad in [
            Value::Null,
            json!(3),
            json!(["admin"]),
            json!({"role": "admin"}),
            json!("root"),
            json!(""),
            json!(true),
        ] {
            let shown = bad.to_string();
            let e = principal_of(&config, &claims(Some(bad), Some(json!("acme")))).unwrap_err();
            assert!(e.contains("weft_role"), "{shown}: {e}");
        }
        let p = principal_of(&config, &claims(None, Some(json!("acme")))).unwrap();
        assert_eq!(p.role, Role::Viewer, "absent: the default role");
        let p = principal_of(
            &config,
            &claims(Some(json!("operator")), Some(json!("acme"))),
        )
        .unwrap();
        assert_eq!(p.role, Role::Operator);
        let mut no_sub = claims(None, Some(json!("acme")));
        no_sub["sub"] = json!(12);
        assert!(principal_of(&config, &no_sub).is_err());
    }

    fn sign_in() -> SignIn {
        SignIn {
            client_id: "weft-dashboard".into(),
            authorization_endpoint: "https://id.example/auth".into(),
            token_endpoint: "https://id.example:8443/token".into(),
            scopes: "openid".into(),
            token: "access_token".into(),
        }
    }

    #[test]
    fn sign_in_settings_are_checked_and_name_the_token_origin() {
        assert_eq!(sign_in().check(), Ok(()));
        assert_eq!(
            sign_in().token_origin().as_deref(),
            Some("https://id.example:8443")
        );
        let bad = [
            SignIn {
                client_id: " ".into(),
                ..sign_in()
            },
            SignIn {
                authorization_endpoint: "javascript:alert(1)".into(),
                ..sign_in()
            },
            SignIn {
                token_endpoint: "id.example/token".into(),
                ..sign_in()
            },
            SignIn {
                token: "refresh_token".into(),
                ..sign_in()
            },
        ];
        for (settings, word) in bad.iter().zip([
            "client_id",
            "authorization_endpoint",
            "token_endpoint",
            "sign_in.token",
        ]) {
            let why = settings.check().unwrap_err();
            assert!(why.contains(word), "{why}");
        }
    }
}
