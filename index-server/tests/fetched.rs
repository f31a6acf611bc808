//! What the server fetches, through `app(state)`: starter projects (zips in the version folder,
//! remote zips, Git remotes at branches and tags with `subDir`) and `icon=base64`.
//!
//! Every remote is on this machine: a small HTTP server on 127.0.0.1 started by each test, and
//! Git repositories built in temporary folders. The registries are written at test time, since
//! their devfiles name the server's port and the repositories' paths.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use index_server::{AppState, ServeOptions, app, embedded};
use serde_json::json;
use tests::GitRepo;
use tests::Reply;
use tokio::sync::Semaphore;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------
// Helpers

async fn get(state: &AppState, uri: &str) -> Reply {
    Reply::of(app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()).await
}

/// A tiny HTTP server: `GET /<file>` answers the file's bytes (404 when unknown) and counts the
/// requests per file; files named `slow*` wait until [`FileServer::release`].
struct FileServer {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    gate: Arc<Semaphore>,
}

struct Served {
    files: HashMap<String, Bytes>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    gate: Arc<Semaphore>,
}

impl FileServer {
    async fn start(files: &[(&str, &[u8])]) -> FileServer {
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let gate = Arc::new(Semaphore::new(0));
        let served = Arc::new(Served {
            files: files.iter().map(|(n, b)| (n.to_string(), Bytes::copy_from_slice(b))).collect(),
            hits: hits.clone(),
            gate: gate.clone(),
        });
        let router = axum::Router::new().route("/{file}", axum::routing::get(serve_file)).with_state(served);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FileServer { base, hits, gate }
    }

    fn hits(&self, file: &str) -> usize {
        self.hits.lock().unwrap().get(file).copied().unwrap_or(0)
    }

    fn release(&self) {
        self.gate.add_permits(1000);
    }
}

async fn serve_file(State(served): State<Arc<Served>>, UrlPath(file): UrlPath<String>) -> Response {
    *served.hits.lock().unwrap().entry(file.clone()).or_default() += 1;
    if file.starts_with("slow") {
        let _permit = served.gate.acquire().await.unwrap();
    }
    match served.files.get(&file) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A zip holding `files` (name, contents), built with the zip crate.
fn make_zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, contents) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(contents.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Every entry of a zip: name → contents (empty for folders).
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut contents = String::new();
            file.read_to_string(&mut contents).unwrap();
            (file.name().to_string(), contents)
        })
        .collect()
}

const DATE: &str = "2024-01-02T03:04:05Z";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const SVG: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"/>";

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A devfile that passes validation, with `starter_projects` as YAML list items.
fn devfile(name: &str, version: &str, icon: &str, starter_projects: &str) -> String {
    format!(
        "schemaVersion: 2.2.0
metadata:
  name: {name}
  version: {version}
  displayName: {name} stack
  description: a stack of the tests
  icon: {icon}
  language: Go
  projectType: Go
  provider: Tests
  supportUrl: https://example.invalid/support
  architectures: [amd64]
starterProjects:
{starter_projects}components:
  - name: runtime
    container:
      image: example.invalid/runtime:1
"
    )
}

/// A Git repository with `README.md` and `app/` (a file, a script, a sub-folder): tag `v1` (an
/// annotated tag) on the first commit, branch `main` one commit later. Returns the first commit.
fn project_repo(path: &Path) -> String {
    let repo = GitRepo::init(path).unwrap();
    write(&path.join("README.md"), "version 1\n");
    write(&path.join("app/main.go"), "package main\n");
    write(&path.join("app/sub/notes.txt"), "notes\n");
    write(&path.join("app/run.sh"), "#!/bin/sh\necho run\n");
    std::fs::set_permissions(path.join("app/run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let first = repo.commit_all(DATE, "first").unwrap();
    repo.git(&["tag", "-a", "v1", "-m", "version 1"], Some(DATE)).unwrap();
    write(&path.join("README.md"), "version 2\n");
    write(&path.join("app/main.go"), "package main // 2\n");
    repo.commit_all("2024-02-03T04:05:06Z", "second").unwrap();
    first
}

/// A registry in `temp/registry` whose starter projects and icons point at `server`, at the
/// Git repository `repo`, and at `temp/secret.zip` (outside the registry):
/// - `demo` (one version): every kind of starter project, icon `<server>/logo.png`;
/// - `multi` (1.0.0 default, 2.0.0): a starter project with an offline zip per version, icon
///   `logo.svg` (a file of the stack's folder);
/// - `vector`, `gone`, `slow`: icons `<server>/logo.svg`, an unreachable URL, `<server>/slow.png`.
fn registry(temp: &Path, server: &str, repo: &Path, first_commit: &str) -> PathBuf {
    let root = temp.join("registry");
    let stacks = root.join("stacks");
    let repo = format!("file://{}", repo.display());
    let secret = temp.join("secret.zip");
    write(&secret, make_zip(&[("secret.txt", "secret")]));
    let git = |name: &str, revision: &str, sub_dir: &str| {
        let revision = if revision.is_empty() {
            String::new()
        } else {
            format!("      checkoutFrom:\n        revision: {revision}\n")
        };
        let sub_dir = if sub_dir.is_empty() { String::new() } else { format!("    subDir: {sub_dir}\n") };
        format!("  - name: {name}\n{sub_dir}    git:\n{revision}      remotes:\n        origin: {repo}\n")
    };
    let zip = |name: &str, location: &str| format!("  - name: {name}\n    zip:\n      location: {location}\n");
    let projects = [
        zip("local-zip", "files/local.zip"),
        // Its remote is unreachable, but the offline zip in the version folder comes first.
        "  - name: offline\n    git:\n      remotes:\n        origin: http://127.0.0.1:1/unreachable.git\n".to_string(),
        zip("remote-zip", &format!("{server}/project.zip")),
        zip("remote-missing", &format!("{server}/missing.zip")),
        git("git-branch", "main", ""),
        git("git-tag", "v1", ""),
        git("git-subdir", "v1", "app"),
        git("git-default", "", "/app/"),
        git("git-commit", first_commit, ""),
        git("git-missing-subdir", "main", "nope"),
        git("git-missing-revision", "v9", ""),
        "  - name: git-unreachable\n    git:\n      remotes:\n        origin: file:///nonexistent/project.git\n"
            .to_string(),
        zip("escape-dotdot", "../../../secret.zip"),
        zip("escape-absolute", &secret.display().to_string()),
        zip("escape-link", "link.zip"),
        zip("escape-file-url", &format!("file://{}", secret.display())),
        zip("missing-local", "nope.zip"),
    ]
    .concat();
    write(&stacks.join("demo/devfile.yaml"), devfile("demo", "1.0.0", &format!("{server}/logo.png"), &projects));
    write(&stacks.join("demo/files/local.zip"), make_zip(&[("local.txt", "local")]));
    write(&stacks.join("demo/offline-offline.zip"), make_zip(&[("offline.txt", "offline")]));
    std::os::unix::fs::symlink(&secret, stacks.join("demo/link.zip")).unwrap();

    write(
        &stacks.join("multi/stack.yaml"),
        "name: multi\ndisplayName: Multi\ndescription: two versions\nicon: logo.svg\nversions:\n  - version: 1.0.0\n    default: true\n  - version: 2.0.0\n",
    );
    write(&stacks.join("multi/logo.svg"), SVG);
    for (version, contents) in [("1.0.0", "one"), ("2.0.0", "two")] {
        let starter =
            "  - name: starter\n    git:\n      remotes:\n        origin: http://127.0.0.1:1/unreachable.git\n";
        write(&stacks.join(format!("multi/{version}/devfile.yaml")), devfile("multi", version, "logo.svg", starter));
        write(&stacks.join(format!("multi/{version}/starter-offline.zip")), make_zip(&[("version.txt", contents)]));
    }
    for (name, icon) in [
        ("vector", format!("{server}/logo.svg")),
        ("gone", "http://127.0.0.1:1/gone.png".into()),
        ("slow", format!("{server}/slow.png")),
    ] {
        write(
            &stacks.join(format!("{name}/devfile.yaml")),
            devfile(name, "1.0.0", &icon, &zip("unused", "unused.zip")),
        );
    }
    root
}

/// A loaded registry with its file server and repository, which live as long as it does.
struct Fixture {
    _temp: tempfile::TempDir,
    server: FileServer,
    root: PathBuf,
    state: AppState,
}

async fn fixture() -> Fixture {
    let temp = tempfile::tempdir().unwrap();
    let project_zip = make_zip(&[("remote.txt", "remote")]);
    let server =
        FileServer::start(&[("project.zip", &project_zip), ("logo.png", PNG), ("logo.svg", SVG), ("slow.png", PNG)])
            .await;
    let repo = temp.path().join("project");
    let first_commit = project_repo(&repo);
    let root = registry(temp.path(), &server.base, &repo, &first_commit);
    let loaded = embedded::load(root.to_str().unwrap(), None).expect("the registry loads");
    assert_eq!((loaded.errors, loaded.snapshot.document().stacks.len()), (0, 5), "every test stack is valid");
    // Remote icons on: every URL here is on this machine.
    let state = AppState::new(loaded.snapshot, loaded.store, ServeOptions::default());
    Fixture { _temp: temp, server, root, state }
}

// ---------------------------------------------------------------------------------------------
// Starter projects

async fn starter(state: &AppState, uri: &str) -> Vec<(String, String)> {
    let reply = get(state, uri).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{uri}: {}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/zip", "{uri}");
    let project = uri.rsplit('/').next().unwrap();
    assert_eq!(reply.header(header::CONTENT_DISPOSITION), format!("attachment; filename=\"{project}.zip\""));
    unzip(&reply.body)
}

fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect()
}

#[tokio::test]
async fn zips_in_the_version_folder_are_served_as_they_are() {
    let f = fixture().await;
    let demo = f.root.join("stacks/demo");
    for (uri, file) in [
        ("/devfiles/demo/starter-projects/local-zip", "files/local.zip"),
        ("/devfiles/demo/1.0.0/starter-projects/local-zip", "files/local.zip"),
        // The offline zip is served instead of fetching the (unreachable) remote.
        ("/devfiles/demo/starter-projects/offline", "offline-offline.zip"),
        ("/devfiles/demo/latest/starter-projects/offline", "offline-offline.zip"),
    ] {
        let reply = get(&f.state, uri).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{uri}");
        assert_eq!(reply.body, std::fs::read(demo.join(file)).unwrap(), "{uri}");
    }
    // The version is resolved as on the devfile routes, and each version has its folder.
    for (uri, version) in [
        ("/devfiles/multi/starter-projects/starter", "one"),
        ("/devfiles/multi/default/starter-projects/starter", "one"),
        ("/devfiles/multi/1.0.0/starter-projects/starter", "one"),
        ("/devfiles/multi/2.0.0/starter-projects/starter", "two"),
        ("/devfiles/multi/latest/starter-projects/starter", "two"),
    ] {
        assert_eq!(starter(&f.state, uri).await, entries(&[("version.txt", version)]), "{uri}");
    }
    let reply = get(&f.state, "/devfiles/multi/3.0.0/starter-projects/starter").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), json!({"status": "version: 3.0.0 not found in stack multi"}));
}

#[tokio::test]
async fn remote_zips_are_downloaded() {
    let f = fixture().await;
    let uri = "/devfiles/demo/starter-projects/remote-zip";
    assert_eq!(starter(&f.state, uri).await, entries(&[("remote.txt", "remote")]));
    assert_eq!(f.server.hits("project.zip"), 1);
    // Not cached: the remote may change.
    starter(&f.state, uri).await;
    assert_eq!(f.server.hits("project.zip"), 2);
}

#[tokio::test]
async fn git_remotes_are_zipped_at_their_revision() {
    let f = fixture().await;
    let at_v1 = [("README.md", "version 1\n"), ("app/", ""), ("app/main.go", "package main\n")];
    let app_v1 = [
        ("main.go", "package main\n"),
        ("run.sh", "#!/bin/sh\necho run\n"),
        ("sub/", ""),
        ("sub/notes.txt", "notes\n"),
    ];
    for (uri, file, contents) in [
        ("/devfiles/demo/starter-projects/git-branch", "README.md", "version 2\n"),
        ("/devfiles/demo/starter-projects/git-tag", "README.md", "version 1\n"),
        ("/devfiles/demo/starter-projects/git-subdir", "main.go", "package main\n"),
        // No revision: the remote's default branch; `subDir` with slashes around it.
        ("/devfiles/demo/starter-projects/git-default", "main.go", "package main // 2\n"),
        // A commit id, which servers may refuse to fetch shallow (then all heads are fetched).
        ("/devfiles/demo/starter-projects/git-commit", "README.md", "version 1\n"),
    ] {
        let zip = starter(&f.state, uri).await;
        assert!(zip.iter().all(|(name, _)| !name.starts_with(".git") && !name.starts_with('/')), "{uri}: {zip:?}");
        let found = zip.iter().find(|(name, _)| name == file).unwrap_or_else(|| panic!("{uri}: no {file} in {zip:?}"));
        assert_eq!(found.1, contents, "{uri}");
    }
    // The whole tree at the tag, and the sub-tree re-rooted, entry by entry.
    let tag = starter(&f.state, "/devfiles/demo/starter-projects/git-tag").await;
    for (name, contents) in at_v1 {
        assert!(tag.contains(&(name.to_string(), contents.to_string())), "{name} in {tag:?}");
    }
    assert_eq!(tag.len(), 6, "{tag:?}");
    assert_eq!(starter(&f.state, "/devfiles/demo/starter-projects/git-subdir").await, entries(&app_v1));
    // File modes survive.
    let reply = get(&f.state, "/devfiles/demo/starter-projects/git-subdir").await;
    let mut archive = zip::ZipArchive::new(Cursor::new(reply.body.to_vec())).unwrap();
    assert_eq!(archive.by_name("run.sh").unwrap().unix_mode().unwrap() & 0o111, 0o111);
    assert_eq!(archive.by_name("main.go").unwrap().unix_mode().unwrap() & 0o111, 0);
}

#[tokio::test]
async fn remotes_that_cannot_be_fetched_are_502() {
    let f = fixture().await;
    for project in ["remote-missing", "git-unreachable", "git-missing-revision", "git-missing-subdir"] {
        let reply = get(&f.state, &format!("/devfiles/demo/starter-projects/{project}")).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{project}");
        assert_eq!(reply.header(header::CONTENT_TYPE), "application/json");
        assert_eq!(
            reply.json(),
            json!({"status": format!("cannot fetch the starter project named {project} of the demo devfile")}),
        );
    }
}

#[tokio::test]
async fn zip_locations_cannot_leave_the_version_folder() {
    let f = fixture().await;
    for project in ["escape-dotdot", "escape-absolute", "escape-link", "escape-file-url", "missing-local"] {
        let reply = get(&f.state, &format!("/devfiles/demo/starter-projects/{project}")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{project}");
        assert_eq!(
            reply.json(),
            json!({"status": format!("the starter project named {project} of the demo devfile is not available")}),
        );
    }
    let reply = get(&f.state, "/devfiles/demo/starter-projects/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), json!({"status": "the starter project named nope does not exist in the demo devfile"}));
}

// ---------------------------------------------------------------------------------------------
// icon=base64

/// The top-level icon of every entry of an index body, by name.
fn icons(reply: &Reply) -> HashMap<String, String> {
    assert_eq!(reply.status, StatusCode::OK);
    let entries = reply.json();
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["icon"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn data(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Asks `uri` until `done` holds for its icons (the icons are fetched in the background).
async fn until(
    state: &AppState,
    uri: &str,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let started = Instant::now();
    loop {
        let icons = icons(&get(state, uri).await);
        if done(&icons) {
            return icons;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "icons not fetched in time: {icons:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn icons_become_data_uris_once_fetched_in_the_background() {
    let f = fixture().await;
    let server = &f.server.base;
    let png = data("image/png", PNG);
    let svg = data("image/svg+xml", SVG);
    // `slow.png` is held back: the request does not wait for it, it gets the URL.
    let fetched = until(&f.state, "/v2index?icon=base64", |icons| icons["demo"] == png).await;
    let fetched = if fetched["vector"] == svg && fetched["multi"] == svg {
        fetched
    } else {
        until(&f.state, "/v2index?icon=base64", |icons| icons["vector"] == svg && icons["multi"] == svg).await
    };
    assert_eq!(fetched["slow"], format!("{server}/slow.png"));
    assert_eq!(fetched["gone"], "http://127.0.0.1:1/gone.png");
    f.server.release();
    let fetched = until(&f.state, "/v2index?icon=base64", |icons| icons["slow"] == png).await;
    assert_eq!(fetched["gone"], "http://127.0.0.1:1/gone.png");

    // Every family and filter; only top-level icons; without the parameter, URLs.
    assert_eq!(icons(&get(&f.state, "/index?icon=base64").await)["demo"], png);
    assert_eq!(
        icons(&get(&f.state, "/index/all?icon=base64&name=vector").await),
        [("vector".into(), svg.clone())].into()
    );
    let v2 = get(&f.state, "/v2index?icon=base64&name=demo").await.json();
    assert_eq!(v2[0]["icon"], png);
    assert_eq!(v2[0]["versions"][0]["icon"], format!("{server}/logo.png"));
    let plain = get(&f.state, "/v2index").await;
    assert_eq!(icons(&plain)["demo"], format!("{server}/logo.png"));
    assert_ne!(plain.header(header::ETAG), get(&f.state, "/v2index?icon=base64").await.header(header::ETAG));

    // Fetched once: neither requests nor a new snapshot fetch them again.
    let again = embedded::load(f.root.to_str().unwrap(), None).unwrap();
    f.state.snapshots.swap(again.snapshot);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fetched = icons(&get(&f.state, "/v2index?icon=base64").await);
    assert_eq!((fetched["demo"].as_str(), fetched["multi"].as_str()), (png.as_str(), svg.as_str()));
    for file in ["logo.png", "logo.svg", "slow.png"] {
        assert_eq!(f.server.hits(file), 1, "{file}");
    }
}
