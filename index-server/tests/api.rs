//! The REST API (SPEC §6) through `app(state)` with `tower::ServiceExt::oneshot`: every route,
//! every query parameter, and the rules shared by all routes (405, 301, 304, CORS, headless,
//! limits, path traversal), with exact bodies and headers.
//!
//! States are built from real registries: the default registry in `stacks/`, copies of it in
//! temporary folders, the community registry snapshot, and the hand-written index of
//! `fixtures/filter-index.json` for the query parameters.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use index_server::icons::{IconOptions, Icons};
use index_server::snapshot::Snapshot;
use index_server::store::{StoreFuture, StoredManifest};
use index_server::{AppState, LocalStore, ServeOptions, Shared, SnapshotCell, Store, StoreError, app, embedded};
use schemas::index::IndexDocument;
use serde_json::{Value, json};
use tests::Reply;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------
// Helpers

/// What the tests read of an index body.
trait Names {
    /// `name` or `name[versions]` of every entry of an index body.
    fn names(&self) -> Vec<String>;
}

impl Names for Reply {
    fn names(&self) -> Vec<String> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        self.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let name = e["name"].as_str().unwrap().to_string();
                match e.get("versions").and_then(Value::as_array) {
                    Some(versions) => {
                        let v: Vec<&str> = versions.iter().map(|v| v["version"].as_str().unwrap()).collect();
                        format!("{name}[{}]", v.join(","))
                    }
                    None => name,
                }
            })
            .collect()
    }
}

/// The router's answer to `request`. A GET (other than `/metrics` and `/api/...`, whose answers
/// change from one request to the next) is also sent twice through the service as it is served
/// (`index_server::service`, which reuses answers per snapshot): both answers must be the
/// router's, to the byte, so every test here also checks the reused answers.
async fn send(state: &AppState, request: Request<Body>) -> Reply {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let copy = || {
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        request
    };
    let reply = Reply::of(app(state.clone()).oneshot(copy()).await.unwrap()).await;
    let path = parts.uri.path();
    if parts.method == Method::GET && path != "/metrics" && !path.starts_with("/api/") {
        for attempt in ["first", "second"] {
            let served = Reply::of(index_server::service(state.clone()).oneshot(copy()).await.unwrap()).await;
            assert_eq!(
                (served.status, &served.headers, &served.body),
                (reply.status, &reply.headers, &reply.body),
                "{} {}: the {attempt} answer of the served service differs from the router's",
                parts.method,
                parts.uri
            );
        }
    }
    reply
}

async fn get(state: &AppState, uri: &str) -> Reply {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// The router's answer only: for the tests that count requests in the metrics.
async fn get_once(state: &AppState, uri: &str) -> Reply {
    Reply::of(app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()).await
}

async fn get_with(state: &AppState, uri: &str, name: &str, value: &str) -> Reply {
    send(state, Request::get(uri).header(name, value).body(Body::empty()).unwrap()).await
}

fn workspace() -> PathBuf {
    tests::workspace()
}

/// The state of `snapshot`, with icons read from local files only: the registries here name
/// icons on the internet, which tests must not reach (`tests/fetched.rs` tests fetching).
fn state(snapshot: Snapshot, store: Arc<dyn Store>, options: ServeOptions) -> AppState {
    AppState::with_cell(SnapshotCell::with_icons(snapshot, Icons::new(IconOptions::offline())), store, options)
}

fn load(source: &Path, options: ServeOptions) -> AppState {
    let loaded = embedded::load(source.to_str().unwrap(), None).expect("the registry loads");
    state(loaded.snapshot, loaded.store, options)
}

/// The default registry (`stacks/`), loaded once.
fn default_registry() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| load(&workspace().join("stacks"), ServeOptions::default()))
}

/// The hand-written index of the filter tests, with no devfiles.
fn filter_fixture() -> AppState {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/filter-index.json"))
        .unwrap();
    let document: IndexDocument = serde_json::from_str(&text).unwrap();
    state(Snapshot::new(document, None), Arc::new(LocalStore::default()), ServeOptions::default())
}

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(workspace().join("stacks").join(rel)).unwrap()
}

const JSON: &str = "application/json";
const YAML: &str = "text/plain; charset=utf-8";

// ---------------------------------------------------------------------------------------------
// Small routes

#[tokio::test]
async fn health() {
    let reply = get(default_registry(), "/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
    assert_eq!(reply.text(), r#"{"message":"the server is up and running"}"#);
}

#[tokio::test]
async fn root_redirects_browsers_to_the_viewer_and_others_to_the_index() {
    let state = default_registry();
    let reply = get(state, "/").await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header(header::LOCATION), "/index");
    let reply = get_with(state, "/", "accept", "application/json").await;
    assert_eq!(reply.header(header::LOCATION), "/index");
    let reply = get_with(state, "/", "accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8").await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header(header::LOCATION), "/viewer");
}

#[tokio::test]
async fn viewer_is_400_in_headless_mode() {
    let headless = AppState::from(Shared {
        options: Arc::new(ServeOptions { headless: true, ..ServeOptions::default() }),
        ..Shared::clone(default_registry())
    });
    for uri in ["/viewer", "/viewer/devfiles/community/go"] {
        let reply = get(&headless, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.text(), "registry viewer is not available in headless mode");
        assert_eq!(reply.header(header::CONTENT_TYPE), "text/plain; charset=utf-8");
        let reply = get(default_registry(), uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    for uri in ["/nope", "/index/stack/extra", "/devfiles", "/v3", "/stacks"] {
        let reply = get(default_registry(), uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
        assert!(reply.json()["status"].is_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Rules shared by every route

#[tokio::test]
async fn other_methods_are_405() {
    let state = default_registry();
    let routes = [
        "/",
        "/health",
        "/index",
        "/index/all",
        "/v2index",
        "/v2index/sample",
        "/devfiles/go",
        "/devfiles/go/1.0.0",
        "/devfiles/go/starter-projects/go-starter",
        "/devfiles/go/1.0.0/starter-projects/go-starter",
        "/stacks/go/devfile.yaml",
        "/viewer",
        "/metrics",
    ];
    for uri in routes {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let reply =
                send(state, Request::builder().method(method.clone()).uri(uri).body(Body::empty()).unwrap()).await;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(reply.text(), r#"{"message":"Only GET requests are supported."}"#);
            assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
            assert_eq!(reply.header(header::ALLOW), "GET, HEAD");
        }
    }
    // Unknown paths stay 404 whatever the method.
    let reply = send(state, Request::post("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let state = default_registry();
    let reply = send(state, Request::head("/index").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header(header::ETAG), get(state, "/index").await.header(header::ETAG));
}

#[tokio::test]
async fn trailing_slash_redirects_to_the_path_without_it() {
    let state = default_registry();
    for (uri, location) in [
        ("/index/", "/index"),
        ("/v2index/all/", "/v2index/all"),
        ("/devfiles/go/", "/devfiles/go"),
        ("/health/", "/health"),
        ("/v2index/?tags=Go&arch=amd64", "/v2index?tags=Go&arch=amd64"),
        ("/index//", "/index"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::MOVED_PERMANENTLY, "{uri}");
        assert_eq!(reply.header(header::LOCATION), location, "{uri}");
    }
    // Never to another host (`//host` is protocol-relative), and only for GET.
    let reply = get(state, "//evil.example/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = send(state, Request::post("/index/").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn long_urls_and_large_bodies_are_refused() {
    let state = default_registry();
    let reply = get(state, &format!("/v2index?name={}", "a".repeat(9000))).await;
    assert_eq!(reply.status, StatusCode::URI_TOO_LONG);
    assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
    // Over the server's limit on request bodies (update triggers are the only bodies it reads).
    let big = vec![b'x'; index_server::MAX_BODY_BYTES + 1];
    let request = Request::get("/index").header(header::CONTENT_LENGTH, big.len()).body(Body::from(big)).unwrap();
    let reply = send(state, request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn telemetry_headers_are_accepted_and_counted() {
    let state = load(&workspace().join("stacks"), ServeOptions::default());
    let request = Request::get("/index")
        .header("Client", "odo")
        .header("User", "someone")
        .header("Locale", "en_US")
        .body(Body::empty())
        .unwrap();
    let reply = Reply::of(app(state.clone()).oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let metrics = get(&state, "/metrics").await;
    assert!(metrics.text().contains("registry_client_requests_total{client=\"odo\"} 1\n"), "{}", metrics.text());
    // Only the client name is a label: users and locales are never exposed.
    assert!(!metrics.text().contains("someone") && !metrics.text().contains("en_US"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_describe_the_snapshot() {
    let state = load(&workspace().join("stacks"), ServeOptions::default());
    get_once(&state, "/index").await;
    get_once(&state, "/index").await;
    get_once(&state, "/devfiles/go").await;
    get_once(&state, "/devfiles/nope").await;
    get_once(&state, "/nope").await;
    let reply = get_once(&state, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), "text/plain; version=0.0.4; charset=utf-8");
    let text = reply.text();
    for line in [
        "# TYPE registry_http_requests_total counter",
        "registry_http_requests_total{route=\"/index\",status=\"200\"} 2",
        "registry_http_requests_total{route=\"/devfiles/{name}\",status=\"200\"} 1",
        "registry_http_requests_total{route=\"/devfiles/{name}\",status=\"404\"} 1",
        "registry_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "registry_index_entries{type=\"stack\"} 5",
        "registry_index_entries{type=\"sample\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let commit = state.snapshots.current().commit_hash().to_string();
    assert!(text.contains(&format!("registry_snapshot_info{{commit_hash=\"{commit}\",digest=\"sha256:")), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Index routes

#[tokio::test]
async fn v1_index_lists_stacks_in_v1_form() {
    let state = default_registry();
    let reply = get(state, "/index").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    assert_eq!(reply.names(), ["go", "java-maven", "nodejs", "python", "rust"]);
    let maven = &reply.json()[1];
    assert_eq!(maven["version"], "1.3.0");
    assert_eq!(maven["links"], json!({"self": "devfile-catalog/java-maven:1.3.0"}));
    assert_eq!(maven["resources"], json!(["devfile.yaml"]));
    assert_eq!(maven["starterProjects"], json!(["springbootproject"]));
    assert!(maven.get("versions").is_none());
    // Pretty-printed with two spaces, as the reference serves it.
    assert!(reply.text().starts_with("[\n  {\n    \"name\": \"go\",\n    \"version\": \"1.0.0\","), "{}", reply.text());
    assert_eq!(get(state, "/index/stack").await.body, reply.body);
}

#[tokio::test]
async fn v1_index_by_type() {
    let state = default_registry();
    let all = get(state, "/index/all").await;
    assert_eq!(all.names(), ["go", "java-maven", "nodejs", "python", "rust", "nodejs-basic", "python-basic"]);
    assert_eq!(get(state, "/index/sample").await.names(), ["nodejs-basic", "python-basic"]);
    // A sample with versions takes its default version's git in v1.
    let python_basic = &all.json()[6];
    assert_eq!(python_basic["git"]["revision"], "main");
    assert!(python_basic.get("versions").is_none());
}

#[tokio::test]
async fn v2_index_keeps_versions() {
    let state = default_registry();
    let reply = get(state, "/v2index").await;
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
    assert_eq!(
        reply.names(),
        ["go[1.0.0]", "java-maven[2.0.0,1.3.0,1.2.0]", "nodejs[1.0.0]", "python[1.0.0]", "rust[1.0.0]"]
    );
    assert_eq!(get(state, "/v2index/stack").await.body, reply.body);
    assert_eq!(get(state, "/v2index/sample").await.names(), ["nodejs-basic", "python-basic[1.0.0,2.0.0]"]);
    let all = get(state, "/v2index/all").await;
    assert_eq!(all.names().len(), 7);
    // The v2 body is the document's entries exactly.
    let document = state.snapshots.current().document().clone();
    assert_eq!(all.json(), serde_json::to_value(&document.stacks).unwrap());
}

#[tokio::test]
async fn unknown_index_type_is_404() {
    let state = default_registry();
    for (uri, kind) in [("/index/foo", "foo"), ("/v2index/Stack", "Stack"), ("/v2index/samples", "samples")] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.json(), json!({ "status": format!("the devfile with {kind} type doesn't exist") }));
    }
}

#[tokio::test]
async fn etag_and_if_none_match() {
    let state = default_registry();
    let reply = get(state, "/v2index/all").await;
    let etag = reply.header(header::ETAG).to_string();
    assert!(etag.len() == 66 && etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    for matching in [etag.clone(), format!("W/{etag}"), "*".to_string(), format!("\"other\", {etag}")] {
        let reply = get_with(state, "/v2index/all", "if-none-match", &matching).await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{matching}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header(header::ETAG), etag);
        assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    }
    let reply = get_with(state, "/v2index/all", "if-none-match", "\"other\"").await;
    assert_eq!(reply.status, StatusCode::OK);
    // Each body has its own tag; a filtered body too, and it is honoured the same way.
    let stacks = get(state, "/v2index").await.header(header::ETAG).to_string();
    assert_ne!(stacks, etag);
    let filtered = get(state, "/v2index?tags=maven").await;
    let filtered_etag = filtered.header(header::ETAG).to_string();
    assert_ne!(filtered_etag, stacks);
    let again = get_with(state, "/v2index?tags=maven", "if-none-match", &filtered_etag).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    // The same bytes give the same tag whether pre-serialized or filtered.
    let unfiltered_by_filter = get(state, "/v2index?linkNames=self").await;
    assert_eq!(unfiltered_by_filter.body, get(state, "/v2index").await.body);
    assert_eq!(unfiltered_by_filter.header(header::ETAG), stacks);
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let request = Request::options("/v2index")
        .header("origin", "https://viewer.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "client")
        .body(Body::empty())
        .unwrap();
    let reply = send(default_registry(), request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
}

#[tokio::test]
async fn invalid_parameters_are_one_400_json_object() {
    let state = default_registry();
    for (uri, message) in [
        ("/v2index?arch=x86", "arch x86 is not valid, should be one of amd64, arm64, ppc64le, s390x"),
        ("/index/all?deprecated=maybe", "deprecated maybe is not valid, should be true or false"),
        ("/v2index/all?minVersion=1", "minVersion 1 is not valid, should be a version like 1.2 or 1.2.3"),
        (
            "/v2index?maxSchemaVersion=2.2.x",
            "maxSchemaVersion 2.2.x is not valid, should be a schema version like 2.2 or 2.2.0",
        ),
        (
            "/v2index?minLastModified=2024-02-30",
            "minLastModified 2024-02-30 is not valid, should be a date like 2024-01-31 (YYYY-MM-DD)",
        ),
        (
            "/v2index?commandGroups=compile",
            "commandGroups compile is not valid, should be one of build, debug, deploy, run, test",
        ),
        ("/v2index?deploymentScopes=both", "deploymentScopes both is not valid, should be one of innerloop, outerloop"),
        ("/index?icon=png", "icon png is not valid, the only icon type is base64"),
        ("/index?name=", "name  is not valid, a value is required"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
        assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
        assert_eq!(reply.json(), json!({ "status": message }), "{uri}");
    }
}

#[tokio::test]
async fn empty_results_are_an_empty_array() {
    let state = default_registry();
    for uri in ["/index?name=nothing-like-this", "/v2index/all?tags=cobol", "/v2index/sample?minVersion=9.0"] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.text(), "[]", "{uri}");
    }
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let state = default_registry();
    let plain = get(state, "/v2index").await;
    assert_eq!(get(state, "/v2index?foo=bar&page=2").await.body, plain.body);
    // v2-only parameters are unknown to v1, even with values v2 would refuse.
    assert_eq!(get(state, "/index?minVersion=x&default=maybe").await.body, get(state, "/index").await.body);
}

#[tokio::test]
async fn icon_base64_leaves_icons_not_fetched_as_urls() {
    // Remote icons are off here: every icon stays its URL (SPEC: an icon that cannot be
    // fetched stays a URL). `tests/fetched.rs` checks the data URIs.
    let state = default_registry();
    let reply = get(state, "/index?icon=base64").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.names().len(), 5);
    assert_eq!(reply.body, get(state, "/index").await.body);
    let reply = get(state, "/v2index/all?icon=base64").await;
    assert_eq!(reply.body, get(state, "/v2index/all").await.body);
}

/// Every query parameter of both families over HTTP, on the hand-written index
/// (`fixtures/filter-index.json`; the unit tests of `filter` go through each rule in detail).
#[tokio::test]
async fn every_parameter_filters() {
    let state = filter_fixture();
    let cases: &[(&str, &[&str])] = &[
        ("/v2index/all?name=alp", &["alpha[2.1.0,2.0.0,1.0.0]"]),
        ("/v2index/all?displayName=alpha%20%20runtime", &["alpha[2.1.0,2.0.0,1.0.0]"]),
        ("/v2index/all?description=quarkus", &["alpha[2.1.0]", "sample-two[1.0.0,2.0.0]"]),
        ("/v2index/all?attributeNames=alpha.attr", &["alpha[2.1.0,2.0.0,1.0.0]"]),
        ("/v2index/all?tags=Java&tags=Quarkus", &["alpha[2.1.0]", "sample-two[1.0.0,2.0.0]"]),
        ("/v2index/all?arch=s390x", &["beta[1.0.0]", "gamma[1.0.0]"]),
        ("/v2index/all?arch=amd64&arch=ppc64le", &["beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]),
        ("/v2index/all?icon=base64&name=beta", &["beta[1.0.0]"]),
        ("/v2index/all?iconUri=beta.png", &["beta[1.0.0]"]),
        ("/v2index/all?projectType=maven", &["alpha[2.1.0,2.0.0,1.0.0]"]),
        ("/v2index/all?language=javascript", &["sample-one"]),
        ("/v2index/all?deprecated=true", &["beta[1.0.0]"]),
        ("/v2index/all?resources=archive.tar", &["alpha[2.1.0]"]),
        ("/v2index/all?starterProjects=maven-starter", &["alpha[2.0.0]"]),
        ("/v2index/all?linkNames=self&name=beta", &["beta[1.0.0]"]),
        ("/v2index/all?links=beta-folder", &["beta[1.0.0]"]),
        ("/v2index/all?gitRemoteNames=upstream", &["sample-two[2.0.0]"]),
        ("/v2index/all?gitRemotes=github.com/example/one", &["sample-one"]),
        ("/v2index/all?gitUrl=one.git", &["sample-one"]),
        ("/v2index/all?gitRemoteName=origin", &["sample-one"]),
        ("/v2index/all?gitSubDir=app", &["sample-two[1.0.0]"]),
        ("/v2index/all?gitRevision=v1", &["sample-two[1.0.0]"]),
        ("/v2index/all?provider=example%20inc", &["beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]),
        ("/v2index/all?supportUrl=beta.example", &["beta[1.0.0]"]),
        ("/v2index/all?minVersion=2.0.1", &["alpha[2.1.0]"]),
        ("/v2index/all?maxVersion=1.0", &["alpha[1.0.0]", "beta[1.0.0]", "gamma[1.0.0]", "sample-two[1.0.0]"]),
        ("/v2index/all?minSchemaVersion=2.3", &["gamma[1.0.0]"]),
        ("/v2index/all?maxSchemaVersion=2.0", &["alpha[1.0.0]", "sample-two[1.0.0]"]),
        ("/v2index/all?default=true", &["alpha[2.0.0]", "beta[1.0.0]", "sample-two[2.0.0]"]),
        ("/v2index/all?commandGroups=deploy", &["alpha[2.1.0]"]),
        ("/v2index/all?deploymentScopes=outerloop", &["sample-two[2.0.0]"]),
        ("/v2index/all?minLastModified=2024-03-06", &["alpha[2.1.0]"]),
        ("/v2index/all?maxLastModified=2024-01-31", &["alpha[1.0.0]", "sample-one"]),
        // Combined: a true intersection, in index order.
        ("/v2index/all?tags=java&minVersion=2.0&arch=amd64", &["alpha[2.1.0,2.0.0]", "sample-two[2.0.0]"]),
        ("/v2index/all?tags=quarkus&starterProjects=maven-starter", &[]),
        // The type restricts first.
        ("/v2index?language=java", &["alpha[2.1.0,2.0.0,1.0.0]"]),
        ("/v2index/sample?language=java", &["sample-one", "sample-two[1.0.0,2.0.0]"]),
        // v1: the converted entries, matched at entry level (gamma has no default: not in v1).
        ("/index/all?tags=quarkus", &["sample-two"]),
        ("/index/all?starterProjects=maven", &["alpha"]),
        ("/index/all?resources=archive.tar", &[]),
        ("/index/all?arch=arm64", &["alpha", "beta"]),
        ("/index/all?gitRemoteNames=upstream", &["sample-two"]),
        ("/index/all?links=alpha:2.0.0", &["alpha"]),
        ("/index/all?deprecated=0", &["alpha", "sample-one", "sample-two"]),
        ("/index?name=a", &["alpha", "beta"]),
    ];
    for (uri, expected) in cases {
        assert_eq!(get(&state, uri).await.names(), *expected, "{uri}");
    }
}

#[tokio::test]
async fn a_swapped_snapshot_is_served_by_the_next_request() {
    let state = filter_fixture();
    let before = get(&state, "/v2index/all").await;
    let mut document = state.snapshots.current().document().clone();
    document.stacks.retain(|e| e.name == "beta");
    let previous = state.snapshots.swap(Snapshot::new(document, None));
    assert_eq!(previous.document().stacks.len(), 5);
    let after = get(&state, "/v2index/all").await;
    assert_eq!(after.names(), ["beta[1.0.0]"]);
    assert_ne!(after.header(header::ETAG), before.header(header::ETAG));
    let reply = get(&state, "/devfiles/alpha").await;
    assert_eq!(reply.json(), json!({"status": "the devfile of alpha didn't exist"}));
}

// ---------------------------------------------------------------------------------------------
// Devfiles

#[tokio::test]
async fn devfile_of_the_default_version() {
    let state = default_registry();
    for (uri, path) in [
        ("/devfiles/go", "stacks/go/devfile.yaml"),
        ("/devfiles/go/default", "stacks/go/devfile.yaml"),
        ("/devfiles/go/1.0.0", "stacks/go/devfile.yaml"),
        ("/devfiles/java-maven", "stacks/java-maven/1.3.0/devfile.yaml"),
        ("/devfiles/java-maven/default", "stacks/java-maven/1.3.0/devfile.yaml"),
        ("/devfiles/java-maven/1.2.0", "stacks/java-maven/1.2.0/devfile.yaml"),
        ("/devfiles/java-maven/latest", "stacks/java-maven/2.0.0/devfile.yaml"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        assert_eq!(reply.header(header::CONTENT_TYPE), YAML, "{uri}");
        assert_eq!(reply.body, file(path), "{uri}");
    }
}

#[tokio::test]
async fn latest_honours_schema_version_bounds() {
    let state = default_registry();
    // java-maven: 2.0.0 and 1.3.0 are schema 2.2.2, 1.2.0 is 2.2.0.
    let reply = get(state, "/devfiles/java-maven/latest?maxSchemaVersion=2.2.0").await;
    assert_eq!(reply.body, file("stacks/java-maven/1.2.0/devfile.yaml"));
    let reply = get(state, "/devfiles/java-maven/latest?minSchemaVersion=2.2&maxSchemaVersion=2.2").await;
    assert_eq!(reply.body, file("stacks/java-maven/2.0.0/devfile.yaml"));
    let reply = get(state, "/devfiles/java-maven/latest?maxSchemaVersion=2.1").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), json!({"status": "version: latest not found in stack java-maven"}));
    let reply = get(state, "/devfiles/java-maven/latest?minSchemaVersion=two").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"status": "minSchemaVersion two is not valid, should be a schema version like 2.2 or 2.2.0"})
    );
    // Only `latest` looks at them.
    let reply = get(state, "/devfiles/java-maven/1.3.0?maxSchemaVersion=2.0").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = get(state, "/devfiles/java-maven?minSchemaVersion=bad").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn devfile_not_found_bodies() {
    let state = default_registry();
    for (uri, status) in [
        ("/devfiles/nope", "the devfile of nope didn't exist"),
        ("/devfiles/nope/1.0.0", "the devfile of nope didn't exist"),
        ("/devfiles/nope/latest", "the devfile of nope didn't exist"),
        ("/devfiles/java-maven/9.9.9", "version: 9.9.9 not found in stack java-maven"),
        ("/devfiles/go/2.0.0", "version: 2.0.0 not found in stack go"),
        ("/devfiles/python-basic/3.0.0", "version: 3.0.0 not found in stack python-basic"),
        // Samples: their devfiles come from their Git remotes, which these tests never fetch.
        ("/devfiles/nodejs-basic", "the devfile of nodejs-basic is not available"),
        ("/devfiles/nodejs-basic/latest", "the devfile of nodejs-basic is not available"),
        ("/devfiles/python-basic", "the devfile of python-basic is not available"),
        ("/devfiles/python-basic/2.0.0", "the devfile of python-basic is not available"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.header(header::CONTENT_TYPE), JSON, "{uri}");
        assert_eq!(reply.json(), json!({ "status": status }), "{uri}");
    }
}

#[tokio::test]
async fn starter_project_not_found_bodies() {
    // Resolved like the devfile routes, with their 404s; then the project by name. Nothing here
    // reaches a remote: the answer is known before.
    let state = default_registry();
    let nope = "the starter project named nope does not exist in the go devfile";
    for (uri, status) in [
        ("/devfiles/go/starter-projects/nope", nope),
        ("/devfiles/go/1.0.0/starter-projects/nope", nope),
        ("/devfiles/go/default/starter-projects/nope", nope),
        ("/devfiles/go/latest/starter-projects/nope", nope),
        (
            "/devfiles/java-maven/1.2.0/starter-projects/go-starter",
            "the starter project named go-starter does not exist in the java-maven devfile",
        ),
        (
            "/devfiles/go/starter-projects/..%2f..%2fetc%2fpasswd",
            "the starter project named ../../etc/passwd does not exist in the go devfile",
        ),
        ("/devfiles/nope/starter-projects/go-starter", "the devfile of nope didn't exist"),
        ("/devfiles/nope/1.0.0/starter-projects/go-starter", "the devfile of nope didn't exist"),
        ("/devfiles/go/2.0.0/starter-projects/go-starter", "version: 2.0.0 not found in stack go"),
        (
            "/devfiles/java-maven/latest/starter-projects/springbootproject?maxSchemaVersion=2.1",
            "version: latest not found in stack java-maven",
        ),
        ("/devfiles/nodejs-basic/starter-projects/x", "the devfile of nodejs-basic is not available"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.header(header::CONTENT_TYPE), JSON, "{uri}");
        assert_eq!(reply.json(), json!({ "status": status }), "{uri}");
    }
}

/// A store that always fails, to check the 5xx path.
struct BrokenStore;

fn broken<'a, T: 'a>() -> StoreFuture<'a, T> {
    Box::pin(async {
        Err(StoreError::Read { path: "/secret/place".into(), source: std::io::Error::other("disk on fire") })
    })
}

impl Store for BrokenStore {
    fn manifest<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Option<StoredManifest>> {
        broken()
    }
    fn blob<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        broken()
    }
    fn catalog(&self) -> StoreFuture<'_, Vec<String>> {
        broken()
    }
    fn tags<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        broken()
    }
}

#[tokio::test]
async fn store_failures_are_a_generic_500() {
    let state = AppState::from(Shared { store: Arc::new(BrokenStore), ..Shared::clone(default_registry()) });
    let reply = get(&state, "/devfiles/go").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The cause is logged, not sent.
    assert_eq!(reply.json(), json!({"status": "failed to pull the devfile of go"}));
}

#[tokio::test]
async fn entry_name_and_folder_name_may_differ() {
    // tests/fixtures/generate/single-version: the entry `nodejs` lives in the folder `node-app`.
    let registry = tests::fixtures("generate/single-version/registry");
    let state = load(&registry, ServeOptions::default());
    let v2 = get(&state, "/v2index").await.json();
    let node = v2.as_array().unwrap().iter().find(|e| e["name"] == "nodejs").expect("nodejs is listed");
    assert_eq!(node["versions"][0]["links"]["self"], "devfile-catalog/node-app:2.1.1");
    for uri in ["/devfiles/nodejs", "/devfiles/nodejs/2.1.1"] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        assert_eq!(reply.body, std::fs::read(registry.join("stacks/node-app/devfile.yaml")).unwrap());
    }
    assert_eq!(get(&state, "/devfiles/node-app").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_devfile_of_the_community_registry_is_served() {
    let root = tests::community_registry();
    let state = load(&root, ServeOptions::default());
    let v2 = get(&state, "/v2index").await.json();
    let stacks = v2.as_array().unwrap();
    assert_eq!(stacks.len(), 31);
    let mut served = 0;
    for entry in stacks {
        let name = entry["name"].as_str().unwrap();
        for version in entry["versions"].as_array().unwrap() {
            let v = version["version"].as_str().unwrap();
            let link = version["links"]["self"].as_str().unwrap();
            let folder = link.strip_prefix("devfile-catalog/").unwrap().rsplit_once(':').unwrap().0;
            let dir = root.join("stacks").join(folder);
            let dir = if dir.join(v).is_dir() { dir.join(v) } else { dir };
            let path = [dir.join("devfile.yaml"), dir.join(".devfile.yaml")].into_iter().find(|p| p.is_file()).unwrap();
            let reply = get(&state, &format!("/devfiles/{name}/{v}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{name} {v}");
            assert_eq!(reply.body, std::fs::read(&path).unwrap(), "{name} {v}");
            served += 1;
        }
    }
    assert_eq!(served, 90);
    assert_eq!(get(&state, "/v2index/sample").await.names().len(), 5);
}

#[tokio::test]
async fn devfile_names_cannot_escape() {
    let state = default_registry();
    for uri in [
        "/devfiles/..%2f..%2fetc%2fpasswd",
        "/devfiles/%2e%2e",
        "/devfiles/%2e%2e/%2e%2e",
        "/devfiles/go%00",
        "/devfiles/go/..%2f1.0.0",
        "/devfiles/../../etc/passwd",
        "/devfiles/%2Fetc%2Fpasswd",
        "/devfiles/go/%00",
    ] {
        let reply = get(state, uri).await;
        assert!(reply.status.is_client_error(), "{uri}: {}", reply.status);
        assert_ne!(reply.status, StatusCode::OK, "{uri}");
    }
}

// ---------------------------------------------------------------------------------------------
// Static files of the source's stacks/ folder

/// A copy of the default registry with a file outside its `stacks/` folder and symbolic links
/// to it, to `/etc/passwd`, and to a file inside the tree.
fn registry_with_links() -> (tempfile::TempDir, AppState) {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("registry");
    tests::copy_tree(&workspace().join("stacks"), &root).unwrap();
    std::fs::write(temp.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(temp.path().join("secret.txt"), root.join("stacks/leak.txt")).unwrap();
    std::os::unix::fs::symlink("../../../secret.txt", root.join("stacks/go/relative-leak.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("stacks/go/passwd")).unwrap();
    std::os::unix::fs::symlink("devfile.yaml", root.join("stacks/go/alias.yaml")).unwrap();
    let state = load(&root, ServeOptions::default());
    (temp, state)
}

#[tokio::test]
async fn stack_files_are_served() {
    let (_temp, state) = registry_with_links();
    let reply = get(&state, "/stacks/go/devfile.yaml").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), "text/yaml; charset=utf-8");
    assert_eq!(reply.body, file("stacks/go/devfile.yaml"));
    let reply = get(&state, "/stacks/java-maven/2.0.0/docker/Dockerfile").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, file("stacks/java-maven/2.0.0/docker/Dockerfile"));
    // A link that stays inside the tree is fine.
    let reply = get(&state, "/stacks/go/alias.yaml").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, file("stacks/go/devfile.yaml"));
}

#[tokio::test]
async fn stack_folders_are_not_listed() {
    let (_temp, state) = registry_with_links();
    for uri in ["/stacks/go", "/stacks/java-maven/2.0.0"] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
    assert_eq!(get(&state, "/stacks/go/").await.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(get(&state, "/stacks/go/missing.yaml").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stack_paths_cannot_escape_the_tree() {
    let (_temp, state) = registry_with_links();
    for uri in [
        "/stacks/../secret.txt",
        "/stacks/go/../../../secret.txt",
        "/stacks/%2e%2e/secret.txt",
        "/stacks/%2E%2E/%2E%2E/secret.txt",
        "/stacks/go/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/stacks/..%2f..%2fsecret.txt",
        "/stacks/go%2f..%2f..%2f..%2fsecret.txt",
        "/stacks//etc/passwd",
        "/stacks/%2fetc%2fpasswd",
        "/stacks/go/devfile.yaml%00",
        "/stacks/go/%00/devfile.yaml",
        "/stacks/..%5c..%5csecret.txt",
        "/stacks/./go/devfile.yaml",
        "/stacks/%ff",
    ] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}: {}", reply.text());
        assert_eq!(reply.header(header::CONTENT_TYPE), JSON);
    }
    // Links out of the tree resolve to files that exist, but outside: not found.
    for uri in ["/stacks/leak.txt", "/stacks/go/relative-leak.txt", "/stacks/go/passwd"] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!reply.text().contains("secret") && !reply.text().contains("root:"), "{uri}");
    }
}

#[tokio::test]
async fn stack_files_need_a_local_source() {
    // A snapshot built from a document alone (as OCI mode will be) has no files to serve.
    let reply = get(&filter_fixture(), "/stacks/alpha/devfile.yaml").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// The read-only OCI routes over the embedded store: the artifacts `index-generator publish`
/// would push, byte for byte.
#[tokio::test]
async fn v2_routes_serve_the_packed_artifacts() {
    let state = default_registry();
    let base = get(state, "/v2/").await;
    assert_eq!((base.status, base.json()), (StatusCode::OK, json!({})));
    assert_eq!(base.header("docker-distribution-api-version"), "registry/2.0");
    let catalog = get(state, "/v2/_catalog").await.json();
    assert_eq!(
        catalog["repositories"],
        json!([
            "devfile-catalog/go",
            "devfile-catalog/java-maven",
            "devfile-catalog/nodejs",
            "devfile-catalog/python",
            "devfile-catalog/rust"
        ])
    );
    let tags = get(state, "/v2/devfile-catalog/java-maven/tags/list").await.json();
    assert_eq!(tags, json!({"name": "devfile-catalog/java-maven", "tags": ["1.2.0", "1.3.0", "2.0.0"]}));

    let artifact =
        index_generator::pack::pack_version(&workspace().join("stacks/stacks/java-maven/2.0.0"), "devfile.yaml")
            .unwrap();
    let manifest = get(state, "/v2/devfile-catalog/java-maven/manifests/2.0.0").await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.body, artifact.manifest);
    assert_eq!(manifest.header(header::CONTENT_TYPE), "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest.header("docker-content-digest"), artifact.manifest_digest);
    let head =
        send(state, Request::head("/v2/devfile-catalog/java-maven/manifests/2.0.0").body(Body::empty()).unwrap()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header(header::CONTENT_LENGTH), artifact.manifest.len().to_string());
    assert_eq!(head.header("docker-content-digest"), artifact.manifest_digest);
    let by_digest = get(state, &format!("/v2/devfile-catalog/java-maven/manifests/{}", artifact.manifest_digest)).await;
    assert_eq!(by_digest.body, artifact.manifest);
    for blob in artifact.blobs() {
        let reply = get(state, &format!("/v2/devfile-catalog/java-maven/blobs/{}", blob.digest)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body == blob.bytes, "blob {}", blob.digest);
    }
    // A blob of another repository is not served through this one.
    let go = index_generator::pack::pack_version(&workspace().join("stacks/stacks/go"), "devfile.yaml").unwrap();
    let devfile = &go.layers.iter().find(|(n, _)| n == "devfile.yaml").unwrap().1;
    let reply = get(state, &format!("/v2/devfile-catalog/java-maven/blobs/{}", devfile.digest)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["errors"][0]["code"], "BLOB_UNKNOWN");

    for (uri, code) in [
        ("/v2/devfile-catalog/java-maven/manifests/9.9.9", "MANIFEST_UNKNOWN"),
        ("/v2/devfile-catalog/nope/manifests/1.0.0", "MANIFEST_UNKNOWN"),
        ("/v2/devfile-catalog/nope/tags/list", "NAME_UNKNOWN"),
        ("/v2/devfile-catalog/../etc/manifests/1.0.0", "NAME_UNKNOWN"),
        ("/v2/devfile-catalog/%2e%2e/manifests/1.0.0", "NAME_UNKNOWN"),
        ("/v2/devfile-catalog/go/blobs/sha256:..", "NAME_UNKNOWN"),
        ("/v2/devfile-catalog/go/other", "NAME_UNKNOWN"),
    ] {
        let reply = get(state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.json()["errors"][0]["code"], code, "{uri}");
    }
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = send(
            state,
            Request::builder()
                .method(method.clone())
                .uri("/v2/devfile-catalog/go/manifests/1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

// ---------------------------------------------------------------------------------------------
// /api/events

/// Reads Server-Sent Events from a response body until `count` events have arrived.
async fn read_events(body: &mut axum::body::BodyDataStream, count: usize) -> Vec<(String, Value)> {
    use tokio_stream::StreamExt;
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !name.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn events_announce_the_current_index_then_every_swap_and_notices() {
    let state = load(&workspace().join("stacks"), ServeOptions::default());
    let first = state.snapshots.current();
    let response = app(state.clone()).oneshot(Request::get("/api/events").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body().into_data_stream();

    let events = read_events(&mut body, 1).await;
    assert_eq!(events[0].0, "index");
    assert_eq!(events[0].1["digest"], first.digest());
    assert_eq!(events[0].1["commit_hash"], first.commit_hash());
    assert_eq!(events[0].1["entries"], first.document().stacks.len());

    // A new index with one entry less.
    let mut document = first.document().clone();
    document.stacks.pop();
    document.commit_hash = "0123456789abcdef0123456789abcdef01234567".to_string();
    state.snapshots.swap(Snapshot::new(document.clone(), None).with_published_digest("sha256:feed"));
    let events = read_events(&mut body, 1).await;
    assert_eq!(events[0].0, "index");
    assert_eq!(events[0].1["commit_hash"], document.commit_hash);
    assert_eq!(events[0].1["entries"], document.stacks.len());
    assert_eq!(events[0].1["published_digest"], "sha256:feed");
    assert_ne!(events[0].1["digest"], first.digest());

    state.events.publish("update", &json!({"id": "7", "status": "queued"}));
    let events = read_events(&mut body, 1).await;
    assert_eq!(events[0], ("update".to_string(), json!({"id": "7", "status": "queued"})));

    // At shutdown every stream ends.
    state.events.close();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), tokio_stream::StreamExt::next(&mut body))
        .await
        .expect("the stream ends at once");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn a_server_of_a_folder_takes_no_updates() {
    let state = default_registry();
    for request in [
        Request::get("/api/updates").body(Body::empty()).unwrap(),
        Request::get("/api/updates/1").body(Body::empty()).unwrap(),
        Request::post("/api/updates").header("authorization", "Bearer x").body(Body::from("{}")).unwrap(),
    ] {
        let reply = send(state, request).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(reply.json()["message"].as_str().unwrap().contains("takes no updates"));
    }
    let reply = send(state, Request::delete("/api/updates").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
