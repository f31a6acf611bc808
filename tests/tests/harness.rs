//! Tests of the end-to-end harness itself: the real registry, the fault proxy in front of it and
//! the third-party clients, driven by a tiny artifact pushed by hand with plain HTTP.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use serde_json::json;
use tests::faults::Method;
use tests::registry::{OCI_MANIFEST, sha256_digest};
use tests::{Fault, FaultyProxy, Registry, RegistryOptions, Seen, oras_pull, skopeo_inspect_raw};

const CONFIG_TYPE: &str = "application/vnd.devfileio.devfile.config.v2+json";
const DEVFILE_TYPE: &str = "application/vnd.devfileio.devfile.layer.v1";

/// A config blob `{}` and one layer titled `devfile.yaml`.
struct Artifact {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Artifact {
    fn new(layer: &[u8]) -> Artifact {
        let config = b"{}".to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": CONFIG_TYPE, "digest": sha256_digest(&config), "size": config.len() },
            "layers": [{
                "mediaType": DEVFILE_TYPE,
                "digest": sha256_digest(layer),
                "size": layer.len(),
                "annotations": { "org.opencontainers.image.title": "devfile.yaml" },
            }],
        }))
        .unwrap();
        Artifact { config, layer: layer.to_vec(), manifest }
    }
}

/// Pushes by hand, the way the distribution spec describes it: POST an upload, PUT the blob
/// with its digest, PUT the manifest.
struct Pusher {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
}

impl Pusher {
    fn new(base: &str, auth: Option<(&str, &str)>) -> Pusher {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        Pusher { http, base: base.to_string(), auth: auth.map(|(u, p)| (u.to_string(), p.to_string())) }
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// The status of the first step that did not succeed, or of the final PUT (201).
    async fn push_blob(&self, repo: &str, bytes: &[u8]) -> reqwest::Result<StatusCode> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let started = self.request(Method::POST, &url).send().await?;
        if started.status() != StatusCode::ACCEPTED {
            return Ok(started.status());
        }
        let location = started.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(location.starts_with(&self.base), "the upload Location {location} does not point at {}", self.base);
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", sha256_digest(bytes));
        let put = self
            .request(Method::PUT, &url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await?;
        Ok(put.status())
    }

    async fn push_manifest(&self, repo: &str, tag: &str, manifest: &[u8]) -> reqwest::Result<StatusCode> {
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.base);
        let put = self.request(Method::PUT, &url).header(CONTENT_TYPE, OCI_MANIFEST).body(manifest.to_vec()).send();
        Ok(put.await?.status())
    }

    async fn push(&self, repo: &str, tag: &str, artifact: &Artifact) {
        assert_eq!(self.push_blob(repo, &artifact.config).await.unwrap(), StatusCode::CREATED);
        assert_eq!(self.push_blob(repo, &artifact.layer).await.unwrap(), StatusCode::CREATED);
        assert_eq!(self.push_manifest(repo, tag, &artifact.manifest).await.unwrap(), StatusCode::CREATED);
    }

    async fn get_status(&self, path: &str) -> reqwest::Result<StatusCode> {
        Ok(self.request(Method::GET, &format!("{}{path}", self.base)).send().await?.status())
    }
}

fn seen(method: Method, path: &str, status: Option<u16>, injected: bool) -> Seen {
    Seen { method, path: path.to_string(), status, injected }
}

#[tokio::test]
async fn shared_registry_answers_v2() {
    let registry = Registry::shared();
    assert_eq!(registry.addr(), Registry::shared().addr(), "one registry per test binary");
    let response = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{}/v2/", registry.url()));
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "{}");
    // The registry creates its storage with the first upload: it is the folder `storage` names.
    let pusher = Pusher::new(&registry.url(), None);
    assert_eq!(pusher.push_blob("harness/storage", b"stored").await.unwrap(), StatusCode::CREATED);
    assert!(registry.storage().join("docker/registry/v2/repositories/harness/storage").is_dir());
}

#[tokio::test]
async fn auth_registry_requires_the_credentials() {
    let registry = Registry::start(RegistryOptions { htpasswd: Some(("alice".into(), "s3cret".into())) });
    let anonymous = Pusher::new(&registry.url(), None);
    let alice = Pusher::new(&registry.url(), Some(("alice", "s3cret")));
    let mallory = Pusher::new(&registry.url(), Some(("alice", "guess")));
    assert_eq!(anonymous.get_status("/v2/").await.unwrap(), StatusCode::UNAUTHORIZED);
    assert_eq!(mallory.get_status("/v2/").await.unwrap(), StatusCode::UNAUTHORIZED);
    assert_eq!(alice.get_status("/v2/").await.unwrap(), StatusCode::OK);

    // The helpers and the third-party clients authenticate too.
    let artifact = Artifact::new(b"schemaVersion: 2.2.0\n");
    alice.push("devfile-catalog/private", "1.0.0", &artifact).await;
    assert_eq!(registry.tags("devfile-catalog/private"), ["1.0.0"]);
    assert_eq!(registry.manifest("devfile-catalog/private", "1.0.0").unwrap().0, artifact.manifest);
    let out = tempfile::tempdir().unwrap();
    let creds = Some(("alice", "s3cret"));
    oras_pull(&registry.addr(), "devfile-catalog/private:1.0.0", out.path(), creds).unwrap();
    assert_eq!(std::fs::read(out.path().join("devfile.yaml")).unwrap(), artifact.layer);
    let raw = skopeo_inspect_raw(&registry.addr(), "devfile-catalog/private:1.0.0", creds).unwrap();
    assert_eq!(raw, artifact.manifest);

    let anonymous_pull = oras_pull(&registry.addr(), "devfile-catalog/private:1.0.0", out.path(), None);
    assert!(anonymous_pull.is_err(), "oras pulled without credentials");
    assert!(skopeo_inspect_raw(&registry.addr(), "devfile-catalog/private:1.0.0", None).is_err());
}

#[tokio::test]
async fn hand_push_through_the_proxy_is_forwarded_and_recorded() {
    let registry = Registry::shared();
    let proxy = FaultyProxy::start(registry);
    let pusher = Pusher::new(&proxy.url(), None);
    let artifact = Artifact::new(b"schemaVersion: 2.2.0\nmetadata:\n  name: proxied\n");
    let repo = "devfile-catalog/proxied";
    pusher.push(repo, "1.0.0", &artifact).await;

    let (manifest, digest) = registry.manifest(repo, "1.0.0").expect("the manifest was pushed");
    assert_eq!(manifest, artifact.manifest);
    assert_eq!(registry.manifest(repo, &digest).unwrap().0, artifact.manifest);
    assert_eq!(registry.blob(repo, &sha256_digest(&artifact.layer)), artifact.layer);
    assert_eq!(registry.tags(repo), ["1.0.0"]);
    assert!(registry.catalog().contains(&repo.to_string()));
    assert_eq!(registry.manifest(repo, "2.0.0"), None);

    let requests = proxy.requests();
    let summary: Vec<_> = requests.iter().map(|s| (s.method.as_str(), s.status)).collect();
    let expected = [("POST", 202), ("PUT", 201), ("POST", 202), ("PUT", 201), ("PUT", 201)];
    assert_eq!(summary, expected.map(|(m, s)| (m, Some(s))));
    assert!(requests[1].path.starts_with(&format!("/v2/{repo}/blobs/uploads/")), "{:?}", requests[1]);
    assert_eq!(requests[4], seen(Method::PUT, &format!("/v2/{repo}/manifests/1.0.0"), Some(201), false));

    // A HEAD answer keeps the registry's Content-Length.
    proxy.clear();
    let url = format!("{}/v2/{repo}/blobs/{}", proxy.url(), sha256_digest(&artifact.layer));
    let head = pusher.request(Method::HEAD, &url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[CONTENT_LENGTH], artifact.layer.len().to_string().as_str());
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn injected_status_is_answered_once() {
    let proxy = FaultyProxy::start(Registry::shared());
    let pusher = Pusher::new(&proxy.url(), None);
    let artifact = Artifact::new(b"schemaVersion: 2.2.0\n");
    let repo = "devfile-catalog/status-fault";
    assert_eq!(pusher.push_blob(repo, &artifact.config).await.unwrap(), StatusCode::CREATED);
    assert_eq!(pusher.push_blob(repo, &artifact.layer).await.unwrap(), StatusCode::CREATED);

    let body = r#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#;
    proxy.inject(Fault::status(500, body).on(Method::PUT).path_ends_with("/manifests/1.0.0"));
    // Not matching: another method, another path.
    assert_eq!(pusher.get_status(&format!("/v2/{repo}/manifests/1.0.0")).await.unwrap(), StatusCode::NOT_FOUND);
    assert_eq!(proxy.faults_left(), 1);

    proxy.clear();
    let url = format!("{}/v2/{repo}/manifests/1.0.0", proxy.url());
    let put = pusher.request(Method::PUT, &url).header(CONTENT_TYPE, OCI_MANIFEST).body(artifact.manifest.clone());
    let answer = put.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(answer.text().await.unwrap(), body);
    assert_eq!(proxy.faults_left(), 0);
    assert_eq!(Registry::shared().manifest(repo, "1.0.0"), None, "an injected answer is not forwarded");

    assert_eq!(pusher.push_manifest(repo, "1.0.0", &artifact.manifest).await.unwrap(), StatusCode::CREATED);
    let path = format!("/v2/{repo}/manifests/1.0.0");
    assert_eq!(
        proxy.requests(),
        [seen(Method::PUT, &path, Some(500), true), seen(Method::PUT, &path, Some(201), false)]
    );
}

#[tokio::test]
async fn injected_reset_is_a_connection_error() {
    let proxy = FaultyProxy::start(Registry::shared());
    let pusher = Pusher::new(&proxy.url(), None);
    let repo = "devfile-catalog/reset-fault";
    // Big enough that the client is still sending when the connection goes.
    let layer: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    proxy.inject(Fault::reset(1024).on(Method::PUT).path_contains("/blobs/uploads/"));

    let error = pusher.push_blob(repo, &layer).await.expect_err("the upload should fail without an answer");
    assert!(error.is_request() && error.status().is_none(), "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].status, None);
    assert!(requests[1].injected);

    // The fault is used up: the next upload goes through.
    assert_eq!(pusher.push_blob(repo, &layer).await.unwrap(), StatusCode::CREATED);
    assert_eq!(Registry::shared().blob(repo, &sha256_digest(&layer)), layer);

    // Also before any byte of the body is read, on a small request.
    proxy.inject(Fault::reset(0).on(Method::POST));
    let error = pusher.push_blob(repo, b"tiny").await.expect_err("no answer");
    assert!(error.is_request() && error.status().is_none(), "{error:?}");
}

#[tokio::test]
async fn injected_delay_then_forwards() {
    let proxy = FaultyProxy::start(Registry::shared());
    let pusher = Pusher::new(&proxy.url(), None);
    proxy.inject(Fault::delay(Duration::from_millis(300)).times(2));
    let start = Instant::now();
    assert_eq!(pusher.get_status("/v2/").await.unwrap(), StatusCode::OK);
    assert_eq!(pusher.get_status("/v2/").await.unwrap(), StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(600), "{:?}", start.elapsed());
    assert_eq!(
        proxy.requests(),
        [seen(Method::GET, "/v2/", Some(200), true), seen(Method::GET, "/v2/", Some(200), true)]
    );
}

#[tokio::test]
async fn killed_registry_is_down_and_the_proxy_answers_502() {
    let mut registry = Registry::start(RegistryOptions::default());
    let proxy = FaultyProxy::start(&registry);
    let direct = Pusher::new(&registry.url(), None);
    let proxied = Pusher::new(&proxy.url(), None);
    assert_eq!(proxied.get_status("/v2/").await.unwrap(), StatusCode::OK);
    registry.kill();
    let error = direct.get_status("/v2/").await.expect_err("the registry is down");
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(proxied.get_status("/v2/").await.unwrap(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn catalog_follows_the_link_pages() {
    let registry = Registry::start(RegistryOptions::default());
    let pusher = Pusher::new(&registry.url(), None);
    let artifact = Artifact::new(b"schemaVersion: 2.2.0\n");
    // The registry pages its catalog at 100.
    let mut repos: Vec<String> = (0..105).map(|i| format!("devfile-catalog/stack-{i:03}")).collect();
    for repo in &repos {
        pusher.push(repo, "1.0.0", &artifact).await;
    }
    repos.sort();
    assert_eq!(registry.catalog(), repos);
}

#[tokio::test]
async fn oras_and_skopeo_read_a_hand_pushed_artifact() {
    let registry = Registry::shared();
    let artifact = Artifact::new(b"schemaVersion: 2.2.0\nmetadata:\n  name: go\n");
    Pusher::new(&registry.url(), None).push("devfile-catalog/go", "1.0.2", &artifact).await;

    let out = tempfile::tempdir().unwrap();
    let files = oras_pull(&registry.addr(), "devfile-catalog/go:1.0.2", out.path(), None).unwrap();
    assert_eq!(files, [out.path().join("devfile.yaml")]);
    assert_eq!(std::fs::read(out.path().join("devfile.yaml")).unwrap(), artifact.layer);

    let raw = skopeo_inspect_raw(&registry.addr(), "devfile-catalog/go:1.0.2", None).unwrap();
    assert_eq!(raw, artifact.manifest, "skopeo reads the exact manifest bytes");
    let missing = oras_pull(&registry.addr(), "devfile-catalog/go:9.9.9", out.path(), None);
    assert!(missing.is_err(), "oras pulled a tag that does not exist");
}

/// The shared registry is a static, never dropped: it must still stop when the test process
/// exits. This test runs itself again in a child process that starts the shared registry and
/// exits, then checks that the registry stops listening.
#[test]
fn shared_registry_stops_when_the_test_process_exits() {
    const CHILD: &str = "HARNESS_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        println!("shared registry at {}", Registry::shared().addr());
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "shared_registry_stops_when_the_test_process_exits", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // libtest prints `test NAME ... ` before running it, so the line does not start with ours.
    let addr = stdout.lines().find_map(|l| Some(l.split_once("shared registry at ")?.1)).expect(&stdout);

    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "the registry at {addr} outlived the test process");
        std::thread::sleep(Duration::from_millis(20));
    }
}
