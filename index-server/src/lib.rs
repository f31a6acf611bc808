//! The index server: the devfile registry REST API (SPEC §6), served from an in-memory snapshot.
//!
//! It owns the snapshot and how it is swapped ([`snapshot`]), the index query parameters
//! ([`filter`]), the artifact store ([`store`]), the routes, and the embedded mode that builds
//! everything from a registry repository at startup ([`embedded`]). It owns no wire type (the
//! `schemas` crate does) and no scanning or validation (the `index-generator` crate does).
//!
//! [`app`] is the whole HTTP surface; tests drive it with `tower::ServiceExt::oneshot`.

pub mod catalog;
pub mod config;
mod devfiles;
mod distribution;
mod download;
pub mod embedded;
mod error;
pub mod events;
mod files;
pub mod filter;
pub mod icons;
mod listing;
mod metrics;
pub mod oci;
pub mod prebuilt;
pub mod reuse;
mod routing;
pub mod serve;
pub mod snapshot;
mod starter_projects;
pub mod store;
pub mod updates;

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use tower_http::cors::{self, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

pub use error::ApiError;
pub use events::EventHub;
pub use metrics::Metrics;
pub use routing::MAX_BODY_BYTES;
pub use snapshot::{Snapshot, SnapshotCell};
pub use store::{LocalStore, Store, StoreError};

use routing::get;

/// How the server behaves, independently of what it serves.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// No viewer: `/viewer` answers 400 (`REGISTRY_HEADLESS`).
    pub headless: bool,
    /// The registry's name, as the viewer shows it (`REGISTRY_NAME`).
    pub registry_name: String,
}

/// What every handler gets: the current snapshot, the artifact store, metrics and options.
/// One `Arc`, so cheap to clone: axum clones the state of a route on every request (several
/// times through the middleware layers), and cloning six `Arc`s each time was a measurable part
/// of serving a request. Fields are read through `Deref` (`state.snapshots`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub snapshots: Arc<SnapshotCell>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub options: Arc<ServeOptions>,
    /// Notices for `/api/events` besides index swaps (update jobs).
    pub events: Arc<EventHub>,
    /// Update jobs and the reconciler, when the server takes updates.
    pub updates: Option<Arc<updates::Updates>>,
}

/// A state of these fields (tests build variants with `Shared { store, ..Shared::clone(&state) }`).
impl From<Shared> for AppState {
    fn from(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(snapshot: Snapshot, store: Arc<dyn Store>, options: ServeOptions) -> AppState {
        AppState::with_cell(SnapshotCell::new(snapshot), store, options)
    }

    /// A state around a cell built by the caller (its own icon fetching options, say).
    pub fn with_cell(snapshots: SnapshotCell, store: Arc<dyn Store>, options: ServeOptions) -> AppState {
        AppState(Arc::new(Shared {
            snapshots: Arc::new(snapshots),
            store,
            metrics: Arc::new(Metrics::default()),
            options: Arc::new(options),
            events: Arc::new(EventHub::default()),
            updates: None,
        }))
    }

    /// The same state, taking updates from `updates`.
    pub fn with_updates(self, updates: Arc<updates::Updates>) -> AppState {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.updates = Some(updates);
        AppState(Arc::new(shared))
    }
}

/// The HTTP API as served: [`app`] behind the answers reused per snapshot ([`reuse`]).
pub fn service(state: AppState) -> reuse::Reuse<Router> {
    reuse::Reuse::new(app(state.clone()), state)
}

/// The HTTP API. Routes are GET only (other methods: 405); unknown paths are 404, and a GET
/// with a trailing slash is redirected to the path without it.
pub fn app(state: AppState) -> Router {
    // Index bodies may be read by pages of any origin (SPEC §6); preflights are answered too,
    // since the telemetry headers make a request non-simple.
    let cors = CorsLayer::new()
        .allow_origin(cors::Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers(cors::Any)
        .expose_headers([axum::http::header::ETAG]);
    let index = Router::new()
        .route("/index", get(listing::v1_stacks))
        .route("/index/{type}", get(listing::v1_typed))
        .route("/v2index", get(listing::v2_stacks))
        .route("/v2index/{type}", get(listing::v2_typed))
        .route_layer(cors);
    let viewer = if state.options.headless {
        Router::new().route("/viewer", get(routing::headless)).route("/viewer/{*path}", get(routing::headless))
    } else {
        // The viewer's pages answer other methods as every route does.
        let pages = viewer::router(Arc::new(catalog::Catalog::new(state.clone())))
            .method_not_allowed_fallback(routing::method_not_allowed);
        Router::new().nest("/viewer", pages)
    };
    Router::new()
        .route("/", get(routing::root))
        .route("/health", get(routing::health))
        .merge(index)
        .route("/devfiles/{name}", get(devfiles::default_version))
        .route("/devfiles/{name}/{version}", get(devfiles::with_version))
        .route("/devfiles/{name}/starter-projects/{project}", get(starter_projects::default_version))
        .route("/devfiles/{name}/{version}/starter-projects/{project}", get(starter_projects::with_version))
        .route("/stacks/{*path}", get(files::stack_file))
        .merge(viewer)
        .route("/metrics", get(metrics::exposition))
        .route("/api/events", get(events::stream))
        .merge(updates::routes())
        .route("/v2", get(distribution::base))
        .route("/v2/", get(distribution::base))
        .route("/v2/_catalog", get(distribution::catalog))
        .route("/v2/{*rest}", get(distribution::route))
        .fallback(routing::fallback)
        .layer(RequestBodyLimitLayer::new(routing::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state.metrics), routing::around))
        .with_state(state)
}
