//! The server in OCI mode, end to end: the community registry snapshot is published to a real
//! CNCF distribution registry (with the generator's publishing code), the `index-server` binary
//! is started on it as a process, and the API is checked over TCP; then the Python `oras` client
//! and `skopeo` pull a stack through the server's own `/v2` routes, as odo and the devfile
//! library do, and get the published bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::registry::Registry;
use tests::{GitRepo, community_registry, copy_tree, oras};

/// Publishes the community snapshot (in a Git repository of its own) under `namespace`;
/// returns the generated index document and the checkout folder.
fn publish_community(registry: &Registry, namespace: &str) -> (tempfile::TempDir, schemas::index::IndexDocument) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&community_registry(), dir.path()).unwrap();
    GitRepo::init(dir.path()).unwrap().commit_all("2025-01-10T09:00:00+00:00", "community").unwrap();
    let document = tests::publish(dir.path(), &format!("{}/{namespace}", registry.url()));
    (dir, document)
}

/// The server process, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `index-server` on a free port and waits for `/health`.
    fn start(args: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_index-server"))
            .args(["--listen", &addr])
            .args(args)
            .env_remove("OCI_REGISTRY_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the index-server binary runs");
        let mut server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut stderr = String::new();
                server.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
                panic!("index-server exited with {status}: {stderr}");
            }
            if server.get("/health").0 == 200 {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("index-server did not answer /health in time");
    }

    /// A GET over a plain TCP connection: `(status, headers (lowercase names), body)`.
    fn request(&self, method: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let Ok(mut stream) = TcpStream::connect(&self.addr) else { return (0, Vec::new(), Vec::new()) };
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(": ") else { break };
            headers.push((name.to_ascii_lowercase(), value.to_string()));
        }
        let mut body = Vec::new();
        reader.read_to_end(&mut body).unwrap();
        if headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked") {
            body = dechunk(&body);
        }
        (status, headers, body)
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = self.request("GET", path);
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 4 + size..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn oci_mode_serves_the_published_community_registry() {
    let registry = Registry::shared();
    let (dir, document) = publish_community(registry, "served");
    let server = Server::start(&["--oci-registry", &format!("{}/served", registry.url())]);

    // The index is the published one, in both families.
    let v2 = server.json("/v2index/all");
    assert_eq!(v2, serde_json::to_value(&document.stacks).unwrap());
    let v1 = server.json("/index");
    assert_eq!(v1.as_array().unwrap().len(), 31, "the 31 stacks");
    let filtered = server.json("/v2index/all?arch=amd64&tags=Java");
    assert!(!filtered.as_array().unwrap().is_empty());
    assert!(filtered.as_array().unwrap().len() < v2.as_array().unwrap().len());

    // Every stack version's devfile comes from the registry, byte for byte.
    let (checkout, generated) = tests::generate(dir.path());
    let mut served = 0;
    for entry in document.stacks.iter().filter(|e| e.kind == Some(schemas::index::DevfileType::Stack)) {
        for version in &entry.versions {
            let source = generated
                .sources
                .iter()
                .find(|s| version.links["self"] == format!("devfile-catalog/{}:{}", s.stack, s.version))
                .unwrap();
            let expected = std::fs::read(checkout.root.join(&source.folder).join(source.devfile_name)).unwrap();
            let (status, body) = server.get(&format!("/devfiles/{}/{}", entry.name, version.version));
            assert_eq!(status, 200, "{} {}", entry.name, version.version);
            assert!(body == expected, "devfile of {} {}", entry.name, version.version);
            served += 1;
        }
    }
    assert_eq!(served, 90);
    let (status, body) = server.get("/devfiles/go/9.9.9");
    assert_eq!(
        (status, String::from_utf8(body).unwrap()),
        (404, r#"{"status":"version: 9.9.9 not found in stack go"}"#.to_string())
    );
    // The samples' remotes were not published (unreachable here): their devfiles are unavailable.
    let (status, _) = server.get("/devfiles/nodejs-basic");
    assert_eq!(status, 404);

    // /v2 over the registry's content, without the namespace.
    let catalog = server.json("/v2/_catalog");
    assert!(catalog["repositories"].as_array().unwrap().iter().any(|r| r == "devfile-catalog/java-maven"));
    let tags = server.json("/v2/devfile-catalog/java-maven/tags/list");
    assert_eq!(tags["tags"], serde_json::json!(registry.tags("served/devfile-catalog/java-maven")));
    let (published, digest) = registry.manifest("served/devfile-catalog/java-maven", "1.3.0").unwrap();
    let (status, headers, body) = server.request("HEAD", "/v2/devfile-catalog/java-maven/manifests/1.3.0");
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "docker-content-digest"), Some(digest.as_str()));
    assert_eq!(header(&headers, "content-length"), Some(published.len().to_string().as_str()));
    assert_eq!(header(&headers, "content-type"), Some("application/vnd.oci.image.manifest.v1+json"));
    let (status, body) = server.get(&format!("/v2/devfile-catalog/java-maven/manifests/{digest}"));
    assert_eq!(status, 200);
    assert_eq!(body, published);
    let (status, _) = server.get("/v2/devfile-catalog/java-maven/manifests/9.9.9");
    assert_eq!(status, 404);
}

#[test]
fn oras_and_skopeo_pull_through_the_server() {
    let registry = Registry::shared();
    let (dir, _) = publish_community(registry, "pulled");
    let server = Server::start(&["--oci-registry", &format!("{}/pulled", registry.url())]);
    // go 2.4.0 has a devfile and other files (docker/, kubernetes/), packed into archive.tar.
    let (manifest, _) = registry.manifest("pulled/devfile-catalog/go", "2.4.0").unwrap();
    let layers: Value = serde_json::from_slice(&manifest).unwrap();
    let out = tempfile::tempdir().unwrap();
    let files = oras::oras_pull(&server.addr, "devfile-catalog/go:2.4.0", out.path(), None).unwrap();
    assert_eq!(files.len(), 2, "devfile.yaml and archive.tar: {files:?}");
    for layer in layers["layers"].as_array().unwrap() {
        let title = layer["annotations"]["org.opencontainers.image.title"].as_str().unwrap();
        let pulled = std::fs::read(out.path().join(title)).unwrap();
        assert!(pulled == registry.blob("pulled/devfile-catalog/go", layer["digest"].as_str().unwrap()), "{title}");
    }
    let devfile = dir.path().join("stacks/go/2.4.0/devfile.yaml");
    assert_eq!(std::fs::read(out.path().join("devfile.yaml")).unwrap(), std::fs::read(devfile).unwrap());
    let raw = oras::skopeo_inspect_raw(&server.addr, "devfile-catalog/go:2.4.0", None).unwrap();
    assert_eq!(raw, manifest);
}

#[test]
fn oci_mode_without_a_published_index_says_what_to_do() {
    let registry = Registry::shared();
    let out = Command::new(env!("CARGO_BIN_EXE_index-server"))
        .args(["--listen", "127.0.0.1:0", "--oci-registry", &format!("{}/empty", registry.url())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no devfile-index:latest: publish it first"), "{stderr}");
}
