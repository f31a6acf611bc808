//! The small routes (`/`, `/health`, `/viewer` in headless mode) and the rules every route shares: GET only,
//! unknown paths, trailing slashes, URL length, and the request log with telemetry headers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, routing};
use serde_json::json;
use tracing::{Instrument, Level};

use crate::error::ApiError;
use crate::reuse::Reusable;
use crate::{AppState, Metrics};

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

/// Middleware around every route, in one layer (each `from_fn` layer boxes the rest of the stack
/// and its future on every request, and axum clones a route's whole stack per request): refuses
/// URLs longer than [`MAX_URI_BYTES`], counts the answer in `metrics` under its route template
/// (`/devfiles/{name}`, not the concrete path, or `unmatched`), and writes the request log.
///
/// The request log: one line per answered request, at a level chosen by its status: 2xx and 3xx
/// at DEBUG (the bulk of the traffic: at INFO, writing them was the largest single cost per
/// request), 4xx at INFO (clients getting something wrong is worth seeing), 5xx at WARN. Each
/// line has the method, path, status, duration and the telemetry headers `Client`, `User` and
/// `Locale`, which are only ever recorded here and in metrics. Events logged while the request is
/// handled are in a `request` span with the same fields, at DEBUG (free unless enabled).
pub async fn around(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    // All reference-counted: cloning them allocates nothing.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let telemetry = Telemetry::of(request.headers());
    let len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    let mut response = if len > MAX_URI_BYTES {
        ApiError::UriTooLong(MAX_URI_BYTES).into_response()
    } else if tracing::enabled!(Level::DEBUG) {
        let span = tracing::debug_span!(
            "request",
            method = %method,
            path = %uri.path(),
            client = tracing::field::Empty,
            user = tracing::field::Empty,
            locale = tracing::field::Empty,
        );
        if !span.is_disabled() {
            for (name, value) in telemetry.fields() {
                if let Some(value) = value {
                    span.record(name, value);
                }
            }
        }
        next.run(request).instrument(span).await
    } else {
        next.run(request).await
    };
    if let Some(reusable) = response.extensions_mut().get_mut::<Reusable>() {
        reusable.set_route(route.clone());
    }
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    Answered { method: &method, uri: &uri, route, status: response.status(), started }.record(&metrics, &telemetry);
    response
}

/// The telemetry headers of a request (`Client`, `User`, `Locale`), which are only ever recorded
/// in the request log and the metrics. Reference-counted: taking them allocates nothing.
#[derive(Default)]
pub(crate) struct Telemetry {
    client: Option<HeaderValue>,
    user: Option<HeaderValue>,
    locale: Option<HeaderValue>,
}

impl Telemetry {
    pub(crate) fn of(headers: &HeaderMap) -> Telemetry {
        let mut telemetry = Telemetry::default();
        for (name, value) in headers {
            telemetry.note(name, value);
        }
        telemetry
    }

    /// Takes the header `name: value` when it is a telemetry header not seen yet (the first of
    /// repeated ones counts, as `HeaderMap::get` would give). One pass over a request's few
    /// headers costs less than looking each name up by its hash.
    pub(crate) fn note(&mut self, name: &HeaderName, value: &HeaderValue) {
        // Names made once: making one from a string would parse it on every request.
        const CLIENT: HeaderName = HeaderName::from_static("client");
        const USER: HeaderName = HeaderName::from_static("user");
        const LOCALE: HeaderName = HeaderName::from_static("locale");
        let slot = if name == CLIENT {
            &mut self.client
        } else if name == USER {
            &mut self.user
        } else if name == LOCALE {
            &mut self.locale
        } else {
            return;
        };
        if slot.is_none() {
            *slot = Some(value.clone());
        }
    }

    fn text(value: &Option<HeaderValue>) -> Option<&str> {
        value.as_ref().and_then(|v| v.to_str().ok())
    }

    fn fields(&self) -> [(&'static str, Option<&str>); 3] {
        [("client", Self::text(&self.client)), ("user", Self::text(&self.user)), ("locale", Self::text(&self.locale))]
    }
}

/// A request answered, as it is counted in the metrics and written to the request log.
pub(crate) struct Answered<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    /// The route template (`/devfiles/{name}`), or `unmatched`.
    pub route: &'a str,
    pub status: StatusCode,
    pub started: Instant,
}

impl Answered<'_> {
    pub(crate) fn record(&self, metrics: &Metrics, telemetry: &Telemetry) {
        let status = self.status.as_u16();
        metrics.record(self.route, status, Telemetry::text(&telemetry.client));
        macro_rules! answered {
            ($level:expr) => {
                if tracing::enabled!($level) {
                    let [(_, client), (_, user), (_, locale)] = telemetry.fields();
                    tracing::event!(
                        $level,
                        method = %self.method,
                        path = %self.uri.path(),
                        status,
                        duration_us = self.started.elapsed().as_micros() as u64,
                        client,
                        user,
                        locale,
                        "answered"
                    );
                }
            };
        }
        match status {
            500.. => answered!(Level::WARN),
            400..=499 => answered!(Level::INFO),
            _ => answered!(Level::DEBUG),
        }
    }
}

/// A redirect with exactly the status the contract names (axum's `Redirect` offers 303, 307
/// and 308, while the reference answers 302 and 301).
fn redirect(status: StatusCode, location: &str) -> Response {
    (status, [(header::LOCATION, location.to_string())]).into_response()
}
