//! The one error type of the routes, and how each error is answered.
//!
//! 4xx bodies say what the client got wrong, in the words the reference uses (clients match on
//! them); 5xx bodies are generic and their cause is logged once, here.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::filter::InvalidParameter;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error("the devfile with {0} type doesn't exist")]
    UnknownType(String),
    #[error("the devfile of {0} didn't exist")]
    UnknownDevfile(String),
    #[error("version: {version} not found in stack {name}")]
    UnknownVersion { name: String, version: String },
    /// The entry exists but the store has no devfile for it (samples, for now).
    #[error("the devfile of {0} is not available")]
    DevfileUnavailable(String),
    #[error("the path {0} is not valid")]
    InvalidPath(String),
    #[error("the file {0} does not exist")]
    FileNotFound(String),
    #[error("the page {0} does not exist")]
    NotFound(String),
    #[error("Only GET requests are supported.")]
    MethodNotAllowed,
    #[error("registry viewer is not available in headless mode")]
    Headless,
    #[error("the URL is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("failed to pull the devfile of {name}")]
    Store {
        name: String,
        #[source]
        source: StoreError,
    },
    /// The devfile in the store cannot be parsed (it was valid when the index was generated).
    #[error("failed to read the devfile of {name}")]
    DevfileUnreadable { name: String, cause: String },
    #[error("the starter project named {project} does not exist in the {name} devfile")]
    UnknownStarterProject { name: String, project: String },
    /// The devfile defines the starter project, but the registry has nothing to serve for it:
    /// a local file that is missing or refused (outside the version's folder), no source at all.
    #[error("the starter project named {project} of the {name} devfile is not available")]
    StarterProjectUnavailable { name: String, project: String, cause: String },
    /// The starter project's remote (zip URL or Git repository) cannot be fetched.
    #[error("cannot fetch the starter project named {project} of the {name} devfile")]
    StarterProjectFetch { name: String, project: String, cause: String },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter(_) | ApiError::InvalidPath(_) | ApiError::Headless => StatusCode::BAD_REQUEST,
            ApiError::UnknownType(_)
            | ApiError::UnknownDevfile(_)
            | ApiError::UnknownVersion { .. }
            | ApiError::DevfileUnavailable(_)
            | ApiError::UnknownStarterProject { .. }
            | ApiError::StarterProjectUnavailable { .. }
            | ApiError::FileNotFound(_)
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::Store { .. } | ApiError::DevfileUnreadable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::StarterProjectFetch { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::MethodNotAllowed => {
                (status, [(header::ALLOW, "GET, HEAD")], Json(json!({ "message": self.to_string() }))).into_response()
            }
            // The reference answers this one in plain text.
            ApiError::Headless => {
                (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.to_string()).into_response()
            }
            ApiError::Store { name, source } => {
                tracing::error!(stack.name = %name, error = %source, "cannot read a devfile from the store");
                (status, Json(json!({ "status": self.to_string() }))).into_response()
            }
            ApiError::DevfileUnreadable { name, cause } => {
                tracing::error!(stack.name = %name, error = %cause, "cannot parse a devfile from the store");
                (status, Json(json!({ "status": self.to_string() }))).into_response()
            }
            ApiError::StarterProjectUnavailable { name, project, cause }
            | ApiError::StarterProjectFetch { name, project, cause } => {
                tracing::warn!(stack.name = %name, starter_project = %project, error = %cause, "{self}");
                (status, Json(json!({ "status": self.to_string() }))).into_response()
            }
            _ => (status, Json(json!({ "status": self.to_string() }))).into_response(),
        }
    }
}
