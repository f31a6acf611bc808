//! The prebuilt mode (`--index`, `--stacks`, `--samples`; `DEVFILE_INDEX`, `DEVFILE_STACKS`,
//! `DEVFILE_SAMPLES`): an index.json built elsewhere, served as it is, with devfiles and `/v2`
//! artifacts from the reference's folder layout. Through `app(state)` with `oneshot`, and once as
//! a process configured by the environment, as the reference's image is.
//!
//! The prebuilt registry is made at test time from the default registry (`stacks/`): its index
//! in the reference's format (the bare array), its `stacks/` folder as it is (`<name>/` and
//! `<name>/<version>/`), and a samples folder with a sample without versions
//! (`<name>/devfile.yaml`) and one with versions (`<name>/<version>/devfile.yaml`).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use index_server::config::Prebuilt;
use index_server::icons::{IconOptions, Icons};
use index_server::prebuilt::{self, PrebuiltError};
use index_server::{AppState, ServeOptions, SnapshotCell, app, embedded};
use serde_json::Value;
use tests::{ServerProcess, copy_tree, workspace};
use tower::ServiceExt;

const BIN: &str = env!("CARGO_BIN_EXE_index-server");
const NODEJS_SAMPLE: &str = "schemaVersion: 2.2.0\nmetadata:\n  name: nodejs-basic\n";
const PYTHON_SAMPLE: &str = "schemaVersion: 2.2.0\nmetadata:\n  name: python-basic\n";
const PYTHON_SAMPLE_2: &str = "schemaVersion: 2.2.0\nmetadata:\n  name: python-basic\n  version: 2.0.0\n";

/// The default registry as a reference registry image lays it out, in a temporary folder.
struct Image {
    dir: tempfile::TempDir,
}

impl Image {
    fn new() -> Image {
        let dir = tempfile::tempdir().unwrap();
        let loaded = embedded::load(workspace().join("stacks").to_str().unwrap(), None).unwrap();
        std::fs::write(dir.path().join("index.json"), loaded.snapshot.document().to_legacy_json()).unwrap();
        copy_tree(&workspace().join("stacks/stacks"), &dir.path().join("stacks")).unwrap();
        let samples = dir.path().join("samples");
        std::fs::create_dir_all(samples.join("nodejs-basic")).unwrap();
        std::fs::write(samples.join("nodejs-basic/devfile.yaml"), NODEJS_SAMPLE).unwrap();
        std::fs::create_dir_all(samples.join("python-basic/1.0.0")).unwrap();
        std::fs::write(samples.join("python-basic/1.0.0/devfile.yaml"), PYTHON_SAMPLE).unwrap();
        std::fs::create_dir_all(samples.join("python-basic/2.0.0")).unwrap();
        std::fs::write(samples.join("python-basic/2.0.0/devfile.yaml"), PYTHON_SAMPLE_2).unwrap();
        Image { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn prebuilt(&self) -> Prebuilt {
        Prebuilt {
            index: self.path("index.json"),
            stacks: Some(self.path("stacks")),
            samples: Some(self.path("samples")),
        }
    }

    fn state(&self) -> AppState {
        state(prebuilt::load(&self.prebuilt()).expect("the prebuilt registry loads"))
    }
}

fn state(loaded: prebuilt::Loaded) -> AppState {
    // The default registry names icons on the internet, which tests must not reach.
    let cell = SnapshotCell::with_icons(loaded.snapshot, Icons::new(IconOptions::offline()));
    AppState::with_cell(cell, loaded.store, ServeOptions::default())
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String, Bytes) {
    let response = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap())
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn the_index_is_served_as_it_is() {
    let image = Image::new();
    let state = image.state();
    let (status, content_type, body) = get(&state, "/v2index/all").await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    // The very entries of the file, in its order.
    assert_eq!(json(&body), json(&std::fs::read(image.path("index.json")).unwrap()));
    let names: Vec<String> =
        json(&get(&state, "/index").await.2).as_array().unwrap().iter().map(|e| e["name"].to_string()).collect();
    assert_eq!(names, ["\"go\"", "\"java-maven\"", "\"nodejs\"", "\"python\"", "\"rust\""]);
    let (status, _, body) = get(&state, "/v2index/sample?name=python").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)[0]["name"], "python-basic");
}

#[tokio::test]
async fn our_index_document_is_accepted_too() {
    let image = Image::new();
    let document = r#"{"commit_hash": "0123456789abcdef0123456789abcdef01234567", "stacks": [{"name": "go", "type": "stack", "versions": [{"version": "1.0.0", "schemaVersion": "2.2.0", "default": true, "links": {"self": "devfile-catalog/go:1.0.0"}}]}]}"#;
    std::fs::write(image.path("index.json"), document).unwrap();
    let loaded = prebuilt::load(&image.prebuilt()).unwrap();
    assert_eq!(loaded.snapshot.commit_hash(), "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(loaded.missing, 0, "go's single version is found in stacks/go");
    let (status, _, body) = get(&state(loaded), "/devfiles/go").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, std::fs::read(image.path("stacks/go/devfile.yaml")).unwrap());
}

#[tokio::test]
async fn devfiles_and_v2_artifacts_come_from_the_stacks_folder_packed_as_in_the_embedded_mode() {
    let image = Image::new();
    let state = image.state();
    for (uri, file) in [
        ("/devfiles/go", "stacks/go/devfile.yaml"),
        ("/devfiles/java-maven", "stacks/java-maven/1.3.0/devfile.yaml"),
        ("/devfiles/java-maven/1.2.0", "stacks/java-maven/1.2.0/devfile.yaml"),
        ("/devfiles/java-maven/latest", "stacks/java-maven/2.0.0/devfile.yaml"),
    ] {
        let (status, content_type, body) = get(&state, uri).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/plain; charset=utf-8"), "{uri}");
        assert!(body == std::fs::read(image.path(file)).unwrap(), "{uri} is not {file}");
    }
    // The same artifacts, byte for byte, as the embedded mode packs from the source.
    let embedded = embedded::load(workspace().join("stacks").to_str().unwrap(), None).unwrap();
    let embedded = state_of_embedded(embedded);
    for uri in [
        "/v2/devfile-catalog/java-maven/manifests/1.3.0",
        "/v2/devfile-catalog/go/manifests/1.0.0",
        "/v2/_catalog",
        "/v2/devfile-catalog/java-maven/tags/list",
    ] {
        let (status, _, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
        let (_, _, expected) = get(&embedded, uri).await;
        if uri.ends_with("_catalog") {
            // The embedded mode also holds the samples it fetched: none here (no network).
            let repositories = json(&body)["repositories"].clone();
            assert!(repositories.as_array().unwrap().contains(&Value::from("devfile-samples/nodejs-basic")));
            continue;
        }
        assert_eq!(body, expected, "{uri}");
    }
    // A blob of a manifest.
    let (_, _, manifest) = get(&state, "/v2/devfile-catalog/go/manifests/1.0.0").await;
    let digest = json(&manifest)["layers"][0]["digest"].as_str().unwrap().to_string();
    let (status, _, _) = get(&state, &format!("/v2/devfile-catalog/go/blobs/{digest}")).await;
    assert_eq!(status, StatusCode::OK);
    // Files of the stacks folder, and nothing outside it.
    let (status, _, body) = get(&state, "/stacks/go/devfile.yaml").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from(std::fs::read(image.path("stacks/go/devfile.yaml")).unwrap()))
    );
    assert_eq!(get(&state, "/stacks/..%2Findex.json").await.0, StatusCode::BAD_REQUEST);
}

fn state_of_embedded(loaded: embedded::Loaded) -> AppState {
    let cell = SnapshotCell::with_icons(loaded.snapshot, Icons::new(IconOptions::offline()));
    AppState::with_cell(cell, loaded.store, ServeOptions::default())
}

#[tokio::test]
async fn sample_devfiles_come_from_the_samples_folder() {
    let image = Image::new();
    let state = image.state();
    for (uri, expected) in [
        ("/devfiles/nodejs-basic", NODEJS_SAMPLE),
        ("/devfiles/nodejs-basic/latest", NODEJS_SAMPLE),
        ("/devfiles/python-basic", PYTHON_SAMPLE),
        ("/devfiles/python-basic/1.0.0", PYTHON_SAMPLE),
        ("/devfiles/python-basic/2.0.0", PYTHON_SAMPLE_2),
    ] {
        let (status, _, body) = get(&state, uri).await;
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (StatusCode::OK, expected), "{uri}");
    }
    let (status, _, manifest) = get(&state, "/v2/devfile-samples/python-basic/manifests/1.0.0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&manifest)["layers"][0]["annotations"]["org.opencontainers.image.title"], "devfile.yaml");
}

#[tokio::test]
async fn missing_files_answer_404_and_the_rest_is_served() {
    let image = Image::new();
    std::fs::remove_dir_all(image.path("stacks/rust")).unwrap();
    std::fs::remove_dir_all(image.path("stacks/java-maven/1.2.0")).unwrap();
    std::fs::remove_dir_all(image.path("samples/python-basic")).unwrap();
    let loaded = prebuilt::load(&image.prebuilt()).unwrap();
    // java-maven 1.2.0, rust, python-basic 1.0.0 and 2.0.0.
    assert_eq!(loaded.missing, 4);
    let state = state(loaded);
    assert_eq!(get(&state, "/devfiles/rust").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&state, "/devfiles/java-maven/1.2.0").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&state, "/devfiles/python-basic").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&state, "/devfiles/java-maven/1.3.0").await.0, StatusCode::OK);
    assert_eq!(get(&state, "/devfiles/go").await.0, StatusCode::OK);
    // Still listed: the index is served as it is.
    let (_, _, body) = get(&state, "/v2index").await;
    assert!(json(&body).as_array().unwrap().iter().any(|e| e["name"] == "rust"));
    // Without folders at all: only the index.
    let loaded = prebuilt::load(&Prebuilt { index: image.path("index.json"), stacks: None, samples: None }).unwrap();
    let state = self::state(loaded);
    assert_eq!(get(&state, "/v2index/all").await.0, StatusCode::OK);
    assert_eq!(get(&state, "/devfiles/go").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&state, "/stacks/go/devfile.yaml").await.0, StatusCode::NOT_FOUND);
}

#[test]
fn an_index_that_is_not_an_index_is_refused_naming_the_file() {
    let image = Image::new();
    let index = image.path("index.json");
    for (content, reason) in [
        ("{\"stacks\": {}}", "invalid type: map, expected a sequence"),
        ("<html></html>", "neither a JSON array nor a JSON object"),
        ("[{\"description\": \"no name\"}]", "entry 1 has no name"),
    ] {
        std::fs::write(&index, content).unwrap();
        let error = prebuilt::load(&image.prebuilt()).unwrap_err();
        assert!(matches!(error, PrebuiltError::Invalid { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("{} is not a devfile registry index: ", index.display())), "{message}");
        assert!(message.contains(reason), "{message}");
    }
    let error = prebuilt::load(&Prebuilt { index: image.path("nowhere.json"), stacks: None, samples: None })
        .unwrap_err()
        .to_string();
    assert!(error.starts_with(&format!("cannot read the index {}: ", image.path("nowhere.json").display())), "{error}");
}

/// The reference's image is configured by the environment: the same variables start the
/// prebuilt mode here, over TCP, with no network; settings the mode does not use are logged.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_configured_like_the_reference_image_serves_the_prebuilt_registry() {
    let image = Image::new();
    let (index, stacks, samples) = (image.path("index.json"), image.path("stacks"), image.path("samples"));
    let env = [
        ("DEVFILE_INDEX", index.to_str().unwrap()),
        ("DEVFILE_STACKS", stacks.to_str().unwrap()),
        ("DEVFILE_SAMPLES", samples.to_str().unwrap()),
        ("REGISTRY_REPO_BRANCH", "main"),
        // Nothing may be fetched: not even local repositories.
        ("GIT_ALLOW_PROTOCOL", ""),
    ];
    let server = ServerProcess::start(Path::new(BIN), &[], &env);
    let client = tests::updates::Client::of(&server);
    let index = client.json("/v2index/all").await;
    assert_eq!(index, json(&std::fs::read(image.path("index.json")).unwrap()));
    let (status, devfile) = client.get("/devfiles/java-maven/1.2.0").await;
    assert_eq!(
        (status, devfile),
        (200, std::fs::read_to_string(image.path("stacks/java-maven/1.2.0/devfile.yaml")).unwrap())
    );
    assert_eq!(client.get("/devfiles/nodejs-basic").await, (200, NODEJS_SAMPLE.to_string()));
    let log = server.log();
    assert!(log.contains("loaded the prebuilt index"), "{log}");
    assert!(log.contains("mode=\"prebuilt\""), "{log}");
    assert!(log.contains("--ref (REGISTRY_REPO_BRANCH) is ignored: a prebuilt index is not read from Git"), "{log}");
    // Successful requests are not logged at the default level; client errors are.
    assert!(!log.contains("path=/devfiles/nodejs-basic"), "{log}");
    assert_eq!(client.get("/devfiles/nope").await.0, 404);
    let log = server.wait_for_log("path=/devfiles/nope", std::time::Duration::from_secs(5));
    assert!(log.lines().any(|l| l.contains("INFO") && l.contains("status=404") && l.contains("answered")), "{log}");
}

#[test]
fn a_server_given_a_broken_index_stops_and_names_the_file() {
    let image = Image::new();
    std::fs::write(image.path("index.json"), "{\"stacks\": [").unwrap();
    let index = image.path("index.json");
    let (code, log) = ServerProcess::run_to_failure(Path::new(BIN), &["--index", index.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains(&format!("error: {} is not a devfile registry index: ", index.display())), "{log}");
}

#[test]
fn precedence_is_logged_when_a_source_and_a_prebuilt_index_are_both_given() {
    let image = Image::new();
    let source = workspace().join("stacks");
    let server = ServerProcess::start(
        Path::new(BIN),
        &["--source", source.to_str().unwrap()],
        &[("DEVFILE_INDEX", image.path("index.json").to_str().unwrap())],
    );
    let log = server.log();
    assert!(log.contains("mode=\"embedded\""), "{log}");
    assert!(
        log.contains("--index (DEVFILE_INDEX) is ignored: the index is generated from the registry repository"),
        "{log}"
    );
}
