//! The one error type of the HTTP adapter and its mapping from engine and catalog errors.
//!
//! Every error becomes a JSON body `{"message": "..."}` (as Terracotta answers) with a status
//! that says whose fault it is: 400 the request, 404 an unknown dataset, 502 a source in the
//! catalog that cannot be read (logged with its reason), 503 a saturated server (with
//! `Retry-After`), 500 a bug or a broken catalog.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_catalog::CatalogError;
use kiln_engine::EngineError;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_s: None,
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
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadRequest { what, reason } => Self::bad_param(&what, reason),
            EngineError::TooLarge { reason } => {
                Self::new(StatusCode::BAD_REQUEST, format!("too large: {reason}"))
            }
            EngineError::Internal { reason } => {
                tracing::error!(%reason, "internal engine error");
                Self::internal(format!("internal error: {reason}"))
            }
            // A dataset in the catalog whose file is gone, cut, or unsupported: the upstream
            // (the file) is at fault, not the request.
            other => {
                tracing::warn!(error = %other, "source unreadable");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the dataset's source cannot be read: {other}"),
                )
            }
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { what, .. } => Self::not_found(format!("not found: {what}")),
            CatalogError::BadRequest { field, reason } => Self::bad_param(field, reason),
            CatalogError::Conflict { .. } => Self::new(StatusCode::CONFLICT, e.to_string()),
            other => {
                tracing::error!(error = %other, "catalog failure");
                Self::internal(format!("catalog failure: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
