//! The one error shape: `{"error": {"code", "message", "field"?}}`, and the
//! extractors that turn every kind of bad request into it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use weft_engine::{CatalogError, EngineError, InstanceError, StoreError};

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `not_found`, `invalid_request`, `thread_busy`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    /// 404 (also what a key sees for another project's ids).
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 409.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 503.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The error rides along in the response's extensions, so that a
        // surface with another error shape (the OpenAI-compatible `/v1`)
        // can render the same error its own way.
        let kept = self.clone();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        response.extensions_mut().insert(kept);
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match &e {
            EngineError::UnknownThread(_) | EngineError::UnknownRun(_) => Self::not_found(message),
            EngineError::ThreadBusy { .. } => Self::conflict("thread_busy", message),
            EngineError::NotInterrupted { .. } => Self::conflict("run_not_interrupted", message),
            EngineError::UnknownInterrupt { .. } => Self {
                code: "unknown_interrupt".into(),
                ..Self::not_found(message)
            },
            EngineError::InvalidAnswer { .. } => Self {
                field: Some("value".into()),
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_answer", message)
            },
            EngineError::UnknownNode { .. } => Self::field("to", message),
            EngineError::InvalidPayload { .. } => Self {
                code: "invalid_payload".into(),
                ..Self::field("body", message)
            },
            EngineError::InvalidBudget(_) => Self::field("amount", message),
            EngineError::BudgetOverflow(_) => Self::conflict("budget_overflow", message),
            EngineError::ShuttingDown => Self::unavailable("shutting_down", message),
            EngineError::PolicyUnavailable(_) => Self {
                code: "policy_unavailable".into(),
                ..Self::field("multitask", message)
            },
            EngineError::PluginRejected(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "plugin_rejected", message)
            }
            EngineError::GraphVersion { .. } => Self::conflict("graph_version", message),
            EngineError::Store(StoreError::NotFound(_)) => Self::not_found(message),
            EngineError::Store(StoreError::Conflict(_)) => Self::conflict(e.code(), message),
            EngineError::Store(_) => Self::unavailable(e.code(), message),
            EngineError::Internal { .. } => {
                tracing::error!(error = %message, "engine failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e).into()
    }
}

impl From<InstanceError> for ApiError {
    fn from(e: InstanceError) -> Self {
        let message = e.to_string();
        match e {
            InstanceError::Unknown(_) => Self::not_found(message),
            InstanceError::UnknownPlugin(_) => Self::field("plugin", message),
            InstanceError::NotInGraph(_) => Self {
                code: "not_in_graph".into(),
                ..Self::field("node", message)
            },
            InstanceError::Transition { .. } => Self::conflict("invalid_transition", message),
            InstanceError::SystemOwned(_) => Self {
                code: "system_owned_state".into(),
                ..Self::field("status", message)
            },
            InstanceError::Engine(e) => e.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let (code, message) = (e.code(), e.to_string());
        match e {
            CatalogError::Engine(e) => e.into(),
            CatalogError::UnknownGraph(_) | CatalogError::UnknownPlugin(_) => {
                Self::not_found(message)
            }
            CatalogError::GraphExists(_) => Self::conflict(code, message),
            CatalogError::PluginUnwritable { .. } => Self::unavailable(code, message),
            CatalogError::GraphInvalid(_)
            | CatalogError::PluginUnreadable { .. }
            | CatalogError::PluginInvalid(_)
            | CatalogError::PluginMismatch { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_request",
        };
        // Serde names the field in its message ("unknown field `x`", "at line …").
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(status, code, r.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            _ => "invalid_request",
        };
        Self::new(r.status(), code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s, for request bodies
/// that are JSON objects: another JSON value (an array, a string …) is
/// refused with 400 `invalid_request` even where serde would read it as
/// the struct's fields in order.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let v = v.split(';').next().unwrap_or_default().trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
        if !json {
            // axum's own answer (415), in the error shape.
            let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
            return Ok(Self(value));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be a JSON object",
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A raw request body whose rejections (too large, cut off) are
/// [`ApiError`]s.
#[derive(Debug)]
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(Into::into)
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
