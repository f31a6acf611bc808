//! A real OCI registry for end-to-end tests: the CNCF distribution server (`docker-registry`
//! Debian package) started on a free loopback port with its own storage in a temporary folder,
//! and plain-HTTP helpers to look at what it holds.
//!
//! The registry runs behind a tiny `sh` wrapper whose standard input is a pipe held by the test
//! process: when that process exits, however it exits, the pipe closes and the wrapper kills the
//! registry. That is what stops [`Registry::shared`], a static that is never dropped.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderMap, LINK};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Where the Debian package installs the registry.
const BINARY: &str = "/usr/bin/docker-registry";

/// The media type of the manifests we push and read.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How long a registry may take to print its port and answer `/v2/`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `sh -c WRAPPER registry-wrapper BINARY CONFIG DIR` starts the registry in the background,
/// and when its standard input closes kills it and deletes its folder (a static's `TempDir` is
/// never dropped). The wrapper closes its own standard error so that end-of-file on the pipe
/// means "the registry exited"; waiting for the wrapper is waiting for the registry.
/// A line `keep` on the pipe stops the registry and keeps its folder ([`Registry::stop`]).
const WRAPPER: &str =
    r#""$1" serve "$2" </dev/null & exec 2>&-; read -r line; kill $!; wait $!; [ "$line" = keep ] || rm -rf "$3""#;

/// How to start a private registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Require HTTP basic auth with this `(user, password)`.
    pub htpasswd: Option<(String, String)>,
}

/// A running CNCF distribution registry, stopped on drop.
pub struct Registry {
    addr: SocketAddr,
    dir: TempDir,
    credentials: Option<(String, String)>,
    options: RegistryOptions,
    /// The `sh` wrapper; `None` once killed.
    process: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Registry {
    /// One registry for the whole test binary, started on first use. Tests sharing it should
    /// use repository names of their own.
    pub fn shared() -> &'static Registry {
        static SHARED: OnceLock<Registry> = OnceLock::new();
        SHARED.get_or_init(|| Registry::start(RegistryOptions::default()))
    }

    /// A private registry, killed on drop. Panics with what went wrong when it cannot start.
    pub fn start(options: RegistryOptions) -> Registry {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: install it with scripts/setup.sh (Debian package docker-registry)"
        );
        let dir = temp_dir();
        let unknown = SocketAddr::from(([127, 0, 0, 1], 0));
        let log = Arc::new(Mutex::new(String::new()));
        let mut registry =
            Registry { addr: unknown, dir, credentials: options.htpasswd.clone(), options, process: None, log };
        registry.spawn();
        registry
    }

    /// Starts the registry process on `self.addr` (port 0: any free port) with `self.dir`.
    fn spawn(&mut self) {
        let config = self.dir.path().join("config.yml");
        std::fs::write(&config, config_yaml(self.dir.path(), self.options.htpasswd.as_ref(), self.addr))
            .expect("writing the registry config");

        let mut command = Command::new("sh");
        // `REGISTRY_*` variables override the config file.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        let mut process = command
            .args(["-c", WRAPPER, "registry-wrapper", BINARY])
            .arg(&config)
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sh to run the registry");
        let port = read_port(process.stderr.take().expect("stderr is piped"), self.log.clone());
        // From here on, a panic drops the registry, which kills the process.
        self.process = Some(process);
        // A registry that exits (a bad config) closes the channel at once.
        match port.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => self.addr = addr,
            Err(_) => panic!("the registry did not print its port; its log:\n{}", self.log()),
        }
        if let Err(e) = self.wait_ready() {
            panic!("the registry on {} is not ready: {e}; its log:\n{}", self.addr, self.log());
        }
    }

    /// Stops the registry and keeps what it stores, so that [`Registry::restart`] brings it back
    /// as it was: a registry that is down for a while. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            use std::io::Write;
            if let Some(mut stdin) = process.stdin.take() {
                let _ = stdin.write_all(b"keep\n");
            }
            let _ = process.wait();
        }
    }

    /// Starts a stopped registry again, on the same port with the same storage.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the registry is running");
        self.spawn();
    }

    /// `127.0.0.1:PORT`, the host part of references to this registry.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The folder holding the registry's blobs and repositories.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `(user, password)` the registry requires, if any; the helpers below send them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// What the registry printed so far (one line per request at info level).
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Stops the registry, to simulate a registry that is down, and deletes its storage.
    /// Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Closing the wrapper's standard input makes it kill the registry and wait for it.
            drop(process.stdin.take());
            let _ = process.wait();
        }
    }

    /// The manifest at `reference` (tag or digest) with its computed digest, or `None` when the
    /// registry answers 404.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(Vec<u8>, String)> {
        let (status, _, body) = self.get(&format!("/v2/{repo}/manifests/{reference}"));
        match status {
            StatusCode::OK => {
                let digest = sha256_digest(&body);
                Some((body, digest))
            }
            StatusCode::NOT_FOUND => None,
            _ => panic!("GET manifest {repo}:{reference}: {status} {}", String::from_utf8_lossy(&body)),
        }
    }

    /// The bytes of a blob; panics unless the registry answers 200.
    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let (status, _, body) = self.get(&format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(status, StatusCode::OK, "GET blob {repo}@{digest}: {}", String::from_utf8_lossy(&body));
        body
    }

    /// The tags of a repository, sorted; empty when the repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let (status, _, body) = self.get(&format!("/v2/{repo}/tags/list"));
        if status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert_eq!(status, StatusCode::OK, "GET tags of {repo}: {}", String::from_utf8_lossy(&body));
        let mut tags = string_list(&body, "tags");
        tags.sort();
        tags
    }

    /// Every repository, following the `Link` header across pages.
    pub fn catalog(&self) -> Vec<String> {
        let mut repositories = BTreeSet::new();
        let mut next = Some("/v2/_catalog".to_string());
        while let Some(path) = next {
            let (status, headers, body) = self.get(&path);
            assert_eq!(status, StatusCode::OK, "GET {path}: {}", String::from_utf8_lossy(&body));
            repositories.extend(string_list(&body, "repositories"));
            next = headers.get(LINK).and_then(|link| next_link(link.to_str().ok()?));
        }
        repositories.into_iter().collect()
    }

    /// GET `path_and_query` with the registry's credentials and an OCI manifest `Accept`.
    fn get(&self, path_and_query: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let url = format!("{}{path_and_query}", self.url());
        let credentials = self.credentials();
        block_on(async {
            let mut request = http_client().get(&url).header(ACCEPT, OCI_MANIFEST);
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password));
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.bytes().await.unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
            (status, headers, body.to_vec())
        })
    }

    /// Polls `GET /v2/` until the registry answers 200, or 401 when it requires auth.
    fn wait_ready(&self) -> Result<(), String> {
        let url = format!("{}/v2/", self.url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        block_on(async {
            let client = http_client();
            loop {
                let last = match client.get(&url).send().await {
                    Ok(r) if matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED) => return Ok(()),
                    Ok(r) => format!("GET /v2/ answered {}", r.status()),
                    Err(e) => format!("GET /v2/ failed: {e}"),
                };
                if Instant::now() > deadline {
                    return Err(last);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A folder for the registry's config and storage: in memory when possible, because the
/// registry syncs every file it writes and a disk makes each push request take tens of
/// milliseconds.
fn temp_dir() -> TempDir {
    let builder = || {
        let mut builder = tempfile::Builder::new();
        builder.prefix("registry-");
        builder
    };
    builder().tempdir_in("/dev/shm").or_else(|_| builder().tempdir()).expect("creating the registry's temp dir")
}

/// The registry config (JSON is YAML, and serde quotes the paths for us).
fn config_yaml(dir: &Path, htpasswd: Option<&(String, String)>, addr: SocketAddr) -> String {
    let secret = format!(
        "tests-{}-{}",
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    );
    let mut config = serde_json::json!({
        "version": "0.1",
        // The port is only printed at info level.
        "log": { "level": "info" },
        "storage": {
            "filesystem": { "rootdirectory": dir.join("data") },
            "delete": { "enabled": true },
        },
        // Upload `Location`s stay absolute, as most registries send them: the fault proxy
        // rewrites them, and clients must cope with both forms anyway.
        "http": { "addr": addr.to_string(), "secret": secret },
    });
    if let Some((user, password)) = htpasswd {
        let path = dir.join("htpasswd");
        std::fs::write(&path, bcrypt_entry(user, password)).expect("writing htpasswd");
        config["auth"] = serde_json::json!({ "htpasswd": { "realm": "tests", "path": path } });
    }
    serde_json::to_string_pretty(&config).expect("config serializes")
}

/// `user:<bcrypt hash>`: the registry silently ignores MD5 entries, `htpasswd`'s default.
fn bcrypt_entry(user: &str, password: &str) -> Vec<u8> {
    let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().unwrap_or_else(|e| {
        panic!("running htpasswd: {e}: install it with scripts/setup.sh (Debian package apache2-utils)")
    });
    assert!(out.status.success(), "htpasswd -Bbn failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Reads the registry's standard error on a thread of its own until it closes: every line goes
/// to `log` (the pipe must be drained or the registry blocks), and the first
/// `msg="listening on ADDR"` is sent on the returned channel.
fn read_port(stderr: std::process::ChildStderr, log: Arc<Mutex<String>>) -> mpsc::Receiver<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = listening_addr(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            let mut log = log.lock().expect("log lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
    rx
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("msg=\"listening on ")? + "msg=\"listening on ".len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// A field of a JSON object that is a list of strings (`null` or absent is empty).
fn string_list(body: &[u8], field: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(body).expect("the registry answers JSON");
    match &value[field] {
        serde_json::Value::Null => Vec::new(),
        list => serde_json::from_value(list.clone()).unwrap_or_else(|e| panic!("{field}: {e} in {value}")),
    }
}

/// The target of a `Link: <URL>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    params.contains("rel=\"next\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A plain-HTTP client for loopback servers: no proxy from the environment, no redirects.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building an HTTP client")
}

/// Runs `future` on a fresh single-threaded runtime in a thread of its own, so that the helpers
/// work from plain `#[test]`s and from inside `#[tokio::test]`s alike (a runtime can neither be
/// nested nor dropped inside another).
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a tokio runtime")
                .block_on(future)
        });
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
