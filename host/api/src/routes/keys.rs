//! API keys (admins): list, create (the secret is shown once) and revoke.
//! An admin key limited to a project manages that project's keys only: it
//! lists and revokes them, and creates keys of its project (never keys
//! without a project, which would reach the whole host); other projects'
//! keys and the host's are not there for it (404).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Api;
use crate::auth::{KeyInfo, Principal, Role};
use crate::error::{ApiError, ApiResult, Json, Path};

/// Routes without a key: how to sign in.
pub(crate) fn open() -> Router<Arc<Api>> {
    Router::new().route("/api/v1/auth", get(sign_in_methods))
}

/// How a person signs in to this host: with an API key always, and with
/// the OIDC provider when the host is set up for it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInMethods {
    /// API keys are accepted (always `true`).
    pub api_keys: bool,
    /// The OIDC provider's sign-in (authorization code with PKCE), when
    /// configured (`api.oidc.sign_in`).
    pub oidc: Option<OidcSignIn>,
}

/// The OIDC provider the dashboard signs in with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcSignIn {
    /// The provider (the tokens' `iss`).
    pub issuer: String,
    /// The client and endpoints.
    #[serde(flatten)]
    pub sign_in: crate::oidc::SignIn,
}

/// How to sign in (no key needed): what the dashboard asks before it
/// shows its sign-in page.
#[utoipa::path(get, path = "/api/v1/auth", tag = "keys",
    responses((status = 200, body = SignInMethods)))]
pub(crate) async fn sign_in_methods(State(api): State<Arc<Api>>) -> Json<SignInMethods> {
    let oidc = api.config.oidc.as_ref().and_then(|o| {
        o.config().sign_in.clone().map(|sign_in| OidcSignIn {
            issuer: o.config().issuer.clone(),
            sign_in,
        })
    });
    Json(SignInMethods {
        api_keys: true,
        oidc,
    })
}

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/api/v1/keys", get(keys).post(create_key))
        .route("/api/v1/keys/{id}", delete(revoke_key))
        .route("/api/v1/whoami", get(whoami))
}

/// The calling key: what the dashboard asks after sign-in, to offer only
/// what the key's role and project may do.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// Key id (`oidc:SUB` for a token).
    pub key: String,
    /// Its role.
    pub role: Role,
    /// The project it is limited to; all projects (and the host) when absent.
    pub project: Option<String>,
    /// When the credential stops being valid (Unix seconds; an OIDC
    /// token's `exp`); absent for API keys, which last until revoked.
    pub expires: Option<u64>,
}

/// The calling key's id, role and project (any role).
#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", security(("key" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn whoami(Extension(who): Extension<Principal>) -> Json<WhoAmI> {
    Json(WhoAmI {
        key: who.key.clone(),
        role: who.role,
        project: who.project().map(str::to_owned),
        expires: who.expires,
    })
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// A name for people (1 to 100 characters, not only spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The project it is limited to (1 to 64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub project: Option<String>,
}

/// A created key: the secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The key's record.
    pub key: KeyInfo,
    /// The key itself.
    pub secret: String,
}

/// Whether `who` manages `key`: host admins every key, project admins
/// their project's.
fn manages(who: &Principal, key: &KeyInfo) -> bool {
    match who.project() {
        None => true,
        Some(mine) => key.project.as_deref() == Some(mine),
    }
}

/// API keys (admins; a project's admin sees its project's keys only).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("key" = [])),
    responses((status = 200, body = Vec<KeyInfo>), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn keys(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    who.require(Role::Admin)?;
    Ok(Json(
        api.keys
            .list()
            .into_iter()
            .filter(|k| manages(&who, k))
            .collect(),
    ))
}

/// Creates a key; its secret is in this answer only. A project's admin
/// creates keys of its project only (`project` must name it: 403
/// otherwise).
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("key" = [])),
    request_body = KeyRequest,
    responses((status = 201, body = KeyCreated), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn create_key(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Json(req): Json<KeyRequest>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    who.require(Role::Admin)?;
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        return Err(ApiError::field(
            "name",
            "a key name has 1 to 100 characters",
        ));
    }
    if let Some(p) = &req.project
        && (p.is_empty() || p.chars().count() > 64)
    {
        return Err(ApiError::field(
            "project",
            "a project name has 1 to 64 characters",
        ));
    }
    if let Some(mine) = who.project()
        && req.project.as_deref() != Some(mine)
    {
        return Err(ApiError::forbidden(format!(
            "this key is limited to project `{mine}`: it creates keys of that project only (send \"project\": \"{mine}\")"
        )));
    }
    let (key, secret) = api
        .keys
        .create(&req.name, req.role, req.project)
        .map_err(|e| ApiError::unavailable("keys_unavailable", e))?;
    Ok((StatusCode::CREATED, Json(KeyCreated { key, secret })))
}

/// Revokes a key (a project's admin: a key of its project; others are
/// 404 to it).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("key" = [])),
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`own_key`: a key cannot revoke itself", body = crate::error::ErrorBody)))]
pub(crate) async fn revoke_key(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    if id == who.key {
        return Err(ApiError::conflict(
            "own_key",
            "a key cannot revoke itself; use another admin key",
        ));
    }
    if !api
        .keys
        .list()
        .iter()
        .any(|k| k.id == id && manages(&who, k))
    {
        return Err(ApiError::not_found(format!("no key `{id}`")));
    }
    match api.keys.revoke(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found(format!("no key `{id}`"))),
        Err(e) => Err(ApiError::unavailable("keys_unavailable", e)),
    }
}
