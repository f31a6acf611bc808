//! The registry viewer (SPEC §8): server-rendered pages and their assets, which the index server
//! mounts under `/viewer`.
//!
//! It owns the gallery (search, facets, sorting: [`gallery`]), the detail page of a stack or
//! sample ([`detail`], with a small YAML highlighter in [`highlight`]), the templates and the
//! CSS and JavaScript they use (embedded in the binary: pages work air-gapped), and the page
//! fragments the JavaScript fetches to update open pages when the index changes.
//!
//! It reads the registry only through [`Catalog`] and [`Index`], which the server implements
//! over its current snapshot; it knows nothing of snapshots, stores or updates. Live updates
//! come from the server's `/api/events` stream, which the pages subscribe to themselves.

mod assets;
pub mod detail;
pub mod gallery;
pub mod highlight;
mod pages;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use schemas::index::IndexEntry;

/// What [`Index::devfile`] returns: boxed so that the index is held as `Arc<dyn Index>`.
pub type DevfileFuture<'a> = Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

/// The registry as the viewer sees it: its name and the index being served now.
pub trait Catalog: Send + Sync + 'static {
    /// The registry's name (`REGISTRY_NAME`), shown in titles and used in detail URLs
    /// (`/viewer/devfiles/<registry>/<name>`).
    fn registry_name(&self) -> &str;

    /// The index being served now. A page is rendered from one index from start to end.
    fn index(&self) -> Arc<dyn Index>;
}

/// One index: its entries and what belongs to them.
pub trait Index: Send + Sync {
    /// Stacks then samples, in index order, with their versions.
    fn entries(&self) -> &[IndexEntry];

    /// An identifier of this index (`sha256:...`); the `index` events of `/api/events` carry it,
    /// so a page knows whether the registry changed since it was rendered.
    fn digest(&self) -> &str;

    /// The devfile YAML of `name` at `version` (an exact version, or `default` for an entry
    /// without versions), `None` when it is not available.
    fn devfile<'a>(&'a self, name: &'a str, version: &'a str) -> DevfileFuture<'a>;

    /// The icon of the entry `name`, when there is one to show.
    fn icon(&self, name: &str) -> Option<Icon>;
}

/// Where an entry's icon comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icon {
    /// The image itself (fetched and cached by the server).
    Bytes { content_type: String, bytes: Vec<u8> },
    /// Only known by its URL: the browser is sent there.
    Url(String),
}

/// The viewer's routes, to be nested under `/viewer`:
///
/// | route | page |
/// |---|---|
/// | `/` | the gallery (query string: `search`, `types`, `tags`, `providers`, `languages`, `architectures`, `deprecated`, `sort`) |
/// | `/devfiles/{registry}/{name}` | the detail page (`?devfile-version=<v>`) |
/// | `/fragments/gallery` | the facets and cards of a gallery query (for live updates) |
/// | `/fragments/devfiles/{registry}/{name}` | the version picker of a detail page (for live updates) |
/// | `/icons/{name}` | an entry's icon |
/// | `/assets/{file}` | CSS and JavaScript |
pub fn router<S: Clone + Send + Sync + 'static>(catalog: Arc<dyn Catalog>) -> Router<S> {
    let viewer = pages::Viewer::new(catalog);
    Router::new()
        .route("/", get(pages::gallery))
        .route("/devfiles/{registry}/{name}", get(pages::detail))
        .route("/fragments/gallery", get(pages::gallery_fragment))
        .route("/fragments/devfiles/{registry}/{name}", get(pages::versions_fragment))
        .route("/icons/{name}", get(pages::icon))
        .route("/assets/{file}", get(assets::serve))
        .fallback(pages::fallback)
        .with_state(viewer)
}
