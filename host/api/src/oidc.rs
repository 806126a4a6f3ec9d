//! Optional OIDC: bearer JWTs validated against a JWKS (a file, or a URL
//! fetched at start and every ten minutes), with the issuer and audience
//! checked, and the role and project taken from claims.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::auth::{Principal, Role};

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
    /// The claim with the project (absent: all projects).
    pub project_claim: String,
    /// The role of a token without the role claim.
    pub default_role: Role,
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
        let claims = data.claims;
        let sub = claims["sub"].as_str().unwrap_or_default();
        let role = match claims.get(&self.config.role_claim) {
            None => self.config.default_role,
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                format!("the `{}` claim is not a role: {v}", self.config.role_claim)
            })?,
        };
        let project = claims
            .get(&self.config.project_claim)
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Principal {
            key: format!("oidc:{sub}"),
            role,
            project,
        })
    }
}
