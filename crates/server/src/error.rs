//! The one error type of the HTTP adapter and its mapping from engine and catalog errors.
//!
//! Every error becomes a JSON body `{"message": "..."}` (as Terracotta answers) with a status
//! that says whose fault it is:
//!
//! | status | when |
//! |---|---|
//! | 400 | the request is wrong (the message names the parameter) |
//! | 404 | an unknown dataset or route |
//! | 422 | a well-formed request whose output would be too large to render |
//! | 500 | a bug or a broken catalog |
//! | 501 | the dataset's source uses something Kiln does not implement (a file without a CRS, an unsupported projection or codec); the message says what |
//! | 502 | the dataset's source cannot be read (gone, cut short, corrupt, a failed read) |
//! | 503 | the server is saturated (`Retry-After`) |
//!
//! A 5xx body carries no file path, database path or internal reason: those go to the log,
//! in one line with a request id that the body (`request_id`) and the `X-Request-Id` header
//! repeat, so an operator finds one from the other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_catalog::CatalogError;
use kiln_engine::EngineError;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u32>,
    request_id: Option<String>,
}

/// A request id unique to this process and unlikely to repeat across restarts: the process
/// start (seconds since the epoch) and a counter, both in hex.
fn next_request_id() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{start:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_s: None,
            request_id: None,
        }
    }

    /// A server-side failure: `public` goes to the client with a fresh request id, `detail`
    /// (paths, reasons) only to the log, under the same id.
    pub fn server_side(
        status: StatusCode,
        public: impl Into<String>,
        detail: &dyn std::fmt::Display,
    ) -> Self {
        let id = next_request_id();
        let public = public.into();
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(request_id = %id, status = status.as_u16(), %public, %detail, "request failed");
        } else {
            tracing::warn!(request_id = %id, status = status.as_u16(), %public, %detail, "request failed");
        }
        Self {
            status,
            message: public,
            retry_after_s: None,
            request_id: Some(id),
        }
    }

    /// A parameter is wrong: the message names it and says what is wrong.
    pub fn bad_param(param: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("invalid {param}: {reason}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The server is saturated: the client should retry after `seconds`.
    pub fn busy(seconds: u32) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "server busy: too many tile requests queued, retry later".into(),
            retry_after_s: Some(seconds),
            request_id: None,
        }
    }

    /// A bug: the client sees "internal error" and a request id, the log the detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::server_side(StatusCode::INTERNAL_SERVER_ERROR, "internal error", &detail)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id of a 5xx answer (also in the log line).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let detail = with_causes(&e);
        match e {
            EngineError::BadRequest { what, reason } => Self::bad_param(&what, reason),
            EngineError::TooLarge { reason } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("too large to render: {reason}"),
            ),
            // What the file needs is the user's business (no path in `reason`: the URI is
            // kept apart and logged).
            EngineError::Unsupported { ref reason, .. } => Self::server_side(
                StatusCode::NOT_IMPLEMENTED,
                format!("the dataset's source uses something Kiln does not support: {reason}"),
                &detail,
            ),
            EngineError::Internal { .. } => Self::internal(&detail),
            // A dataset in the catalog whose file is gone, cut or corrupt: the upstream (the
            // file) is at fault, not the request.
            EngineError::NotFound { .. }
            | EngineError::BadSource { .. }
            | EngineError::Upstream { .. } => Self::server_side(
                StatusCode::BAD_GATEWAY,
                "the dataset's source cannot be read",
                &detail,
            ),
        }
    }
}

/// An error and the causes behind it whose text it does not already carry, for the log.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": caused by: ");
            text.push_str(&c);
        }
        next = cause.source();
    }
    text
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { what, .. } => Self::not_found(format!("not found: {what}")),
            CatalogError::BadRequest { field, reason } => Self::bad_param(field, reason),
            CatalogError::Conflict { .. } => Self::new(StatusCode::CONFLICT, e.to_string()),
            other => {
                Self::server_side(StatusCode::INTERNAL_SERVER_ERROR, "catalog failure", &other)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.request_id {
            Some(id) => serde_json::json!({ "message": self.message, "request_id": id }),
            None => serde_json::json!({ "message": self.message }),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(v) = self
            .request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            resp.headers_mut().insert("x-request-id", v);
        }
        if let Some(s) = self.retry_after_s {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
