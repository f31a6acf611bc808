//! The small routes (`/`, `/health`, `/viewer` in headless mode) and the rules every route shares: GET only,
//! unknown paths, trailing slashes, URL length, and the request span with telemetry headers.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, routing};
use serde_json::json;
use tracing::Span;

use crate::AppState;
use crate::error::ApiError;

/// URLs longer than this (path and query) are refused with 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Request bodies larger than this are refused with 413. Only the update trigger takes a body
/// (a GitHub push event lists at most 20 commits).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A GET (and HEAD) route; any other method is 405.
pub fn get<H, T>(handler: H) -> routing::MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    routing::get(handler).fallback(method_not_allowed)
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `GET /`: browsers go to the viewer, everything else to the index.
pub async fn root(headers: HeaderMap) -> Response {
    let html = headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
    redirect(StatusCode::FOUND, if html { "/viewer" } else { "/index" })
}

pub async fn health() -> impl IntoResponse {
    Json(json!({ "message": "the server is up and running" }))
}

/// `GET /viewer...` in headless mode: the reference's 400.
pub async fn headless() -> ApiError {
    ApiError::Headless
}

/// Unknown paths: 404, except that a GET with a trailing slash is sent to the path without it.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        if let Some(redirect) = without_trailing_slash(&uri) {
            return redirect;
        }
    }
    ApiError::NotFound(uri.path().to_string()).into_response()
}

/// The 301 to `uri` without its trailing slash(es), when it has one (and is not `/`).
pub fn without_trailing_slash(uri: &Uri) -> Option<Response> {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    // `//host/` must not become the protocol-relative `//host`.
    if trimmed.len() == path.len() || trimmed.is_empty() || trimmed.starts_with("//") {
        return None;
    }
    let location = match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_string(),
    };
    Some(redirect(StatusCode::MOVED_PERMANENTLY, &location))
}

/// Middleware: refuses URLs longer than [`MAX_URI_BYTES`].
pub async fn limit_uri(request: Request, next: Next) -> Response {
    let len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        return ApiError::UriTooLong(MAX_URI_BYTES).into_response();
    }
    next.run(request).await
}

/// The span of one request: method, path, and the telemetry headers `Client`, `User` and
/// `Locale`, which are only ever recorded here and in metrics.
pub fn request_span(request: &Request) -> Span {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        client = tracing::field::Empty,
        user = tracing::field::Empty,
        locale = tracing::field::Empty,
    );
    for name in ["client", "user", "locale"] {
        if let Some(value) = request.headers().get(name).and_then(|v| v.to_str().ok()) {
            span.record(name, value);
        }
    }
    span
}

/// A redirect with exactly the status the contract names (axum's `Redirect` offers 303, 307
/// and 308, while the reference answers 302 and 301).
fn redirect(status: StatusCode, location: &str) -> Response {
    (status, [(header::LOCATION, location.to_string())]).into_response()
}
