//! Responses reused for the life of a snapshot: what nginx's open file cache is to static files.
//!
//! Most requests a registry gets are the same few GETs (`/index`, `/v2index/all`, a filtered
//! query an IDE repeats, `/devfiles/<stack>/<version>`), and their answers only change when the
//! snapshot does. A handler whose answer is such marks it [`reusable`]; [`Reuse`], in front of
//! the router, keeps each marked answer (status, headers, body) under the request's path and
//! query, in a cache held by the snapshot, and answers the next identical request from there
//! without routing it, extracting its parameters or running the handler. A new snapshot starts
//! with an empty cache, so nothing outlives the index it came from.
//!
//! Only plain GETs are answered from the cache: a HEAD, a GET with a body, a conditional request
//! (`If-None-Match`) or a cross-origin one (`Origin`, whose CORS answer could depend on it) goes
//! through the router, as does anything not cached yet. An answer is only reused by a state that
//! reads the same store. A reused answer is counted in the metrics and logged as the router's
//! would be, under the route template it was first answered by.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tower::{Service, ServiceExt};

use crate::routing::{Answered, Telemetry};
use crate::{AppState, Store};

/// Answers kept per snapshot, bounded so that arbitrary query strings cannot grow memory without
/// limit (the bodies themselves are shared with the snapshot and the store).
const MAX_ENTRIES: usize = 1024;

/// Marks a response as the answer to every identical GET for the life of the snapshot; `body` is
/// its body (a shared `Bytes`: keeping it copies nothing).
pub(crate) fn reusable(response: &mut Response, body: Bytes) {
    response.extensions_mut().insert(Reusable { body, route: None });
}

/// The mark left on a response by [`reusable`]; the request middleware adds the route template.
#[derive(Clone)]
pub(crate) struct Reusable {
    body: Bytes,
    route: Option<MatchedPath>,
}

impl Reusable {
    pub(crate) fn set_route(&mut self, route: Option<MatchedPath>) {
        self.route = route;
    }
}

/// One kept answer.
struct Kept {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    route: Option<MatchedPath>,
    /// The store the answer was read from: a state serving the same snapshot from another store
    /// (tests build such variants) does not reuse it.
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").field("status", &self.status).field("route", &self.route).finish_non_exhaustive()
    }
}

/// The answers of one snapshot, by path and query.
#[derive(Debug, Default)]
pub struct Responses {
    kept: RwLock<HashMap<String, Arc<Kept>>>,
}

impl Responses {
    fn get(&self, path_and_query: &str) -> Option<Arc<Kept>> {
        // Only complete entries are ever inserted: a poisoned lock still holds valid ones.
        self.kept.read().unwrap_or_else(|e| e.into_inner()).get(path_and_query).cloned()
    }

    fn keep(&self, path_and_query: &str, kept: Kept) {
        let mut map = self.kept.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            // Starting over is simpler than an LRU and keeps whatever requests come next fast.
            map.clear();
        }
        map.insert(path_and_query.to_string(), Arc::new(kept));
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.kept.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The service in front of the router (see the module documentation). It is a tower service
/// (tests call it with `oneshot`) and a hyper one, which [`crate::serve`] calls by reference: a
/// kept answer then costs no clone of the router or the state.
#[derive(Clone)]
pub struct Reuse<S> {
    inner: S,
    state: AppState,
}

impl<S> Reuse<S> {
    pub fn new(inner: S, state: AppState) -> Reuse<S> {
        Reuse { inner, state }
    }
}

/// The telemetry headers of `request` when it may be answered from the cache: a GET with no
/// body (the router checks the size of one), not conditional, not cross-origin. One pass over
/// the headers.
fn plain_get<B>(request: &axum::http::Request<B>) -> Option<Telemetry> {
    if request.method() != Method::GET {
        return None;
    }
    let mut telemetry = Telemetry::default();
    for (name, value) in request.headers() {
        if name == header::IF_NONE_MATCH
            || name == header::ORIGIN
            || name == header::TRANSFER_ENCODING
            || (name == header::CONTENT_LENGTH && value != "0")
        {
            return None;
        }
        telemetry.note(name, value);
    }
    Some(telemetry)
}

/// The answer to `request`: a kept one, or `route`'s (then kept when it is marked reusable).
fn answer<B, F>(
    state: &AppState,
    request: axum::http::Request<B>,
    route: impl FnOnce(axum::http::Request<B>) -> F,
) -> ReuseFuture
where
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let Some(telemetry) = plain_get(&request) else {
        return ReuseFuture::Routed(Box::pin(route(request)));
    };
    let started = Instant::now();
    let path_and_query = request.uri().path_and_query().map_or("", |pq| pq.as_str());
    let snapshot = state.snapshots.current();
    let store = &state.store;
    let kept = snapshot.responses().get(path_and_query).filter(|kept| Arc::ptr_eq(&kept.store, store));
    if let Some(kept) = kept {
        let route = kept.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        Answered { method: request.method(), uri: request.uri(), route, status: kept.status, started }
            .record(&state.metrics, &telemetry);
        let mut response = Response::new(Body::from(kept.body.clone()));
        *response.status_mut() = kept.status;
        *response.headers_mut() = kept.headers.clone();
        return ReuseFuture::Kept(Some(response));
    }
    // Reference-counted: only an answer that is kept costs a key.
    let uri = request.uri().clone();
    let store = Arc::clone(store);
    let routed = route(request);
    ReuseFuture::Routed(Box::pin(async move {
        let mut response = routed.await?;
        if let Some(reusable) = response.extensions_mut().remove::<Reusable>() {
            if response.status() == StatusCode::OK {
                let kept = Kept {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: reusable.body,
                    route: reusable.route,
                    store,
                };
                snapshot.responses().keep(uri.path_and_query().map_or("", |pq| pq.as_str()), kept);
            }
        }
        Ok(response)
    }))
}

impl<S, B> Service<axum::http::Request<B>> for Reuse<S>
where
    S: Service<axum::http::Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ReuseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> ReuseFuture {
        answer(&self.state, request, |request| self.inner.call(request))
    }
}

impl<S, B> hyper::service::Service<axum::http::Request<B>> for Reuse<S>
where
    S: Service<axum::http::Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ReuseFuture;

    fn call(&self, request: axum::http::Request<B>) -> ReuseFuture {
        answer(&self.state, request, |request| self.inner.clone().oneshot(request))
    }
}

/// The answer of [`Reuse`]: a kept one, ready at once, or the router's.
pub enum ReuseFuture {
    Kept(Option<Response>),
    Routed(Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>),
}

impl Future for ReuseFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ReuseFuture::Kept(response) => Poll::Ready(Ok(response.take().expect("polled after completion"))),
            ReuseFuture::Routed(routed) => routed.as_mut().poll(cx),
        }
    }
}
