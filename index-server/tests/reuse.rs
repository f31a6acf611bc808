//! Answers reused per snapshot (`index_server::service`, module `reuse`): a repeated GET is
//! answered without running its handler, counted as the router would count it, never outlives
//! its snapshot, and requests whose answer could differ go through the router.
//! (`tests/api.rs` checks, for every GET it sends, that the reused answer is the router's to the
//! byte.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use index_server::icons::{IconOptions, Icons};
use index_server::store::{StoreFuture, StoredManifest};
use index_server::{AppState, LocalStore, ServeOptions, SnapshotCell, Store, embedded};
use tests::Reply;
use tower::ServiceExt;

/// The embedded store of the default registry, counting the devfiles read from it, and saying
/// whether its answers may be reused as told.
struct Counting {
    inner: Arc<LocalStore>,
    fixed: bool,
    devfiles: AtomicUsize,
}

impl Store for Counting {
    fn manifest<'a>(&'a self, repository: &'a str, reference: &'a str) -> StoreFuture<'a, Option<StoredManifest>> {
        self.inner.manifest(repository, reference)
    }

    fn blob<'a>(&'a self, repository: &'a str, digest: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        self.inner.blob(repository, digest)
    }

    fn catalog(&self) -> StoreFuture<'_, Vec<String>> {
        self.inner.catalog()
    }

    fn tags<'a>(&'a self, repository: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        self.inner.tags(repository)
    }

    fn fixed_per_snapshot(&self) -> bool {
        self.fixed
    }

    fn devfile<'a>(&'a self, stack_folder: &'a str, version: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        self.devfiles.fetch_add(1, Ordering::SeqCst);
        self.inner.devfile(stack_folder, version)
    }
}

/// A state serving `source` (a registry folder) from a counting store.
fn state_of(source: &std::path::Path, fixed: bool) -> (AppState, Arc<Counting>) {
    let loaded = embedded::load(source.to_str().unwrap(), None).expect("the registry loads");
    let store = Arc::new(Counting { inner: loaded.store, fixed, devfiles: AtomicUsize::new(0) });
    let cell = SnapshotCell::with_icons(loaded.snapshot, Icons::new(IconOptions::offline()));
    let state = AppState::with_cell(cell, Arc::clone(&store) as Arc<dyn Store>, ServeOptions::default());
    (state, store)
}

fn default_registry(fixed: bool) -> (AppState, Arc<Counting>) {
    state_of(&tests::workspace().join("stacks"), fixed)
}

/// `request` through the service as it is served.
async fn served(state: &AppState, request: Request<Body>) -> Reply {
    Reply::of(index_server::service(state.clone()).oneshot(request).await.unwrap()).await
}

async fn get(state: &AppState, uri: &str) -> Reply {
    served(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(prefix)).map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_repeated_get_skips_the_handler_and_is_counted_under_its_route() {
    let (state, store) = default_registry(true);
    let first = get(&state, "/devfiles/go").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(store.devfiles.load(Ordering::SeqCst), 1);
    assert_eq!(state.snapshots.current().responses().len(), 1);
    for _ in 0..2 {
        let request = Request::get("/devfiles/go").header("Client", "odo").body(Body::empty()).unwrap();
        let again = served(&state, request).await;
        assert_eq!((again.status, &again.headers, &again.body), (first.status, &first.headers, &first.body));
    }
    // The store was not asked again: the handler did not run.
    assert_eq!(store.devfiles.load(Ordering::SeqCst), 1);
    let metrics = get(&state, "/metrics").await;
    let text = std::str::from_utf8(&metrics.body).unwrap();
    assert_eq!(
        metric(text, "registry_http_requests_total{route=\"/devfiles/{name}\",status=\"200\"}"),
        Some(3),
        "{text}"
    );
    assert_eq!(metric(text, "registry_client_requests_total{client=\"odo\"}"), Some(2), "{text}");
}

#[tokio::test]
async fn answers_from_a_registry_store_are_not_reused() {
    let (state, store) = default_registry(false);
    for _ in 0..3 {
        assert_eq!(get(&state, "/devfiles/go").await.status, StatusCode::OK);
    }
    assert_eq!(store.devfiles.load(Ordering::SeqCst), 3);
    assert!(state.snapshots.current().responses().is_empty());
    // Index bodies come from the snapshot, whatever the store.
    get(&state, "/index").await;
    assert_eq!(state.snapshots.current().responses().len(), 1);
}

#[tokio::test]
async fn a_new_snapshot_is_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("registry");
    tests::copy_tree(&tests::workspace().join("stacks"), &source).unwrap();
    let (state, _) = state_of(&source, true);
    let before = get(&state, "/v2index").await;
    assert_eq!(before.status, StatusCode::OK);
    get(&state, "/v2index").await;
    assert_eq!(state.snapshots.current().responses().len(), 1);

    // The same registry with one stack described differently, swapped in as an update does.
    let devfile = std::fs::read_dir(source.join("stacks"))
        .unwrap()
        .map(|e| e.unwrap().path().join("devfile.yaml"))
        .find(|p| p.is_file())
        .expect("a stack with a devfile.yaml");
    let text = std::fs::read_to_string(&devfile).unwrap();
    assert!(text.contains("description:"), "{}", devfile.display());
    std::fs::write(&devfile, text.replacen("description:", "description: Swapped.", 1)).unwrap();
    let loaded = embedded::load(source.to_str().unwrap(), None).unwrap();
    state.snapshots.swap(loaded.snapshot);

    let after = get(&state, "/v2index").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_ne!(after.body, before.body);
    assert!(std::str::from_utf8(&after.body).unwrap().contains("Swapped."));
    assert_ne!(after.headers[header::ETAG], before.headers[header::ETAG]);
}

#[tokio::test]
async fn conditional_head_cross_origin_and_bodied_requests_go_through_the_router() {
    let (state, _) = default_registry(true);
    let plain = get(&state, "/index").await;
    assert_eq!(plain.status, StatusCode::OK);
    get(&state, "/index").await;
    let etag = plain.headers[header::ETAG].to_str().unwrap().to_string();

    let request = Request::get("/index").header(header::IF_NONE_MATCH, &etag).body(Body::empty()).unwrap();
    let reply = served(&state, request).await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(reply.body.is_empty());

    let request = Request::builder().method(Method::HEAD).uri("/index").body(Body::empty()).unwrap();
    let reply = served(&state, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty(), "a HEAD answer has no body");

    let request = Request::get("/index").header(header::ORIGIN, "https://example.com").body(Body::empty()).unwrap();
    let reply = served(&state, request).await;
    assert_eq!((reply.status, &reply.body), (StatusCode::OK, &plain.body));
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

    let big = vec![b'x'; index_server::MAX_BODY_BYTES + 1];
    let request = Request::get("/index").header(header::CONTENT_LENGTH, big.len()).body(Body::from(big)).unwrap();
    assert_eq!(served(&state, request).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Only the plain GET was kept.
    assert_eq!(state.snapshots.current().responses().len(), 1);
}

#[tokio::test]
async fn reused_answers_are_bounded() {
    let (state, _) = default_registry(true);
    // Each a distinct query with an answer (an empty list): each is kept, up to the bound.
    for n in 0..1100 {
        let reply = get(&state, &format!("/v2index?tags=Tag{n}")).await;
        assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"[]"[..]), "query {n}");
    }
    let kept = state.snapshots.current().responses().len();
    assert!(kept > 0 && kept <= 1024, "{kept} answers kept");
}

#[tokio::test]
async fn a_state_reading_another_store_does_not_reuse_the_answer() {
    let (state, first) = default_registry(true);
    assert_eq!(get(&state, "/devfiles/go").await.status, StatusCode::OK);
    get(&state, "/devfiles/go").await;
    assert_eq!(first.devfiles.load(Ordering::SeqCst), 1);
    // The same snapshot cell, another store (as tests build variants of a state).
    let (_, other) = default_registry(true);
    let variant = AppState::from(index_server::Shared {
        store: Arc::clone(&other) as Arc<dyn Store>,
        ..index_server::Shared::clone(&state)
    });
    assert_eq!(get(&variant, "/devfiles/go").await.status, StatusCode::OK);
    assert_eq!(other.devfiles.load(Ordering::SeqCst), 1, "the other store was read");
    assert_eq!(first.devfiles.load(Ordering::SeqCst), 1);
}
