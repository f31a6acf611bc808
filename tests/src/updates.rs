//! Dynamic updates as a test sees them: a monitored Git repository in a temporary folder whose
//! first commit is published to a real registry ([`World`]), `index-server` processes on it, and
//! an HTTP client that sends triggers as a post-merge workflow does and polls jobs ([`Client`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use schemas::updates::UpdateJob;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{GitRepo, Registry, RegistryOptions, ServerProcess, copy_tree, workspace};

/// The webhook secret servers of a [`World`] check signatures with.
pub const SECRET: &str = "merge-secret-for-tests";
/// The bearer token servers of a [`World`] accept.
pub const TOKEN: &str = "token-for-tests";

/// A monitored repository (a copy of a registry folder, on branch `main`) whose first commit is
/// published to a private registry, and the server binary to run on it.
pub struct World {
    pub registry: Registry,
    pub dir: TempDir,
    pub repo: GitRepo,
    binary: PathBuf,
    commits: usize,
}

impl World {
    /// The default registry (`stacks/`) with `binary` (`env!("CARGO_BIN_EXE_index-server")`).
    pub fn new(binary: &Path) -> World {
        World::of(&workspace().join("stacks"), binary)
    }

    /// A copy of the registry folder `source`, committed and published.
    pub fn of(source: &Path, binary: &Path) -> World {
        let registry = Registry::start(RegistryOptions::default());
        let dir = tempfile::tempdir().unwrap();
        copy_tree(source, dir.path()).unwrap();
        let repo = GitRepo::init(dir.path()).unwrap();
        repo.commit_all("2025-03-01T10:00:00+00:00", "the registry").unwrap();
        let world = World { registry, dir, repo, binary: binary.to_path_buf(), commits: 1 };
        world.publish_head();
        world
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Publishes the head of the repository as `index-generator publish` does.
    pub fn publish_head(&self) {
        crate::publish(self.dir.path(), &self.registry.url());
    }

    /// Edits files with `change` (given the registry root), commits everything, returns the commit.
    pub fn commit(&mut self, message: &str, change: impl FnOnce(&Path)) -> String {
        change(self.dir.path());
        self.commits += 1;
        let date = format!("2025-03-{:02}T10:{:02}:00+00:00", 1 + self.commits / 60, self.commits % 60);
        self.repo.commit_all(&date, message).unwrap()
    }

    pub fn head(&self) -> String {
        self.repo.git(&["rev-parse", "HEAD"], None).unwrap()
    }

    /// The commit of the index at `devfile-index:latest`.
    pub fn published_commit(&self) -> String {
        let (manifest, _) = self.registry.manifest("devfile-index", "latest").expect("an index is published");
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let index: Value = serde_json::from_slice(&self.registry.blob("devfile-index", layer)).unwrap();
        index["commit_hash"].as_str().unwrap_or_default().to_string()
    }

    /// A server in OCI mode on this registry; monitoring the repository when `monitored`.
    pub fn server(&self, monitored: bool, refresh: &str) -> ServerProcess {
        let url = self.registry.url();
        let mut env = vec![("OCI_REGISTRY_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
        if monitored {
            env.extend([("REGISTRY_REPO_URL", self.path()), ("REGISTRY_REPO_BRANCH", "main")]);
        }
        self.start(refresh, &env)
    }

    /// A server in OCI mode on this registry monitoring `repo_url` at branch `main` (say, the
    /// repository as a `FakeGitHub` serves it), with `env` added.
    pub fn server_monitoring(&self, repo_url: &str, refresh: &str, env: &[(&str, &str)]) -> ServerProcess {
        let url = self.registry.url();
        let mut all = vec![
            ("OCI_REGISTRY_URL", url.as_str()),
            ("UPDATE_WEBHOOK_SECRET", SECRET),
            ("REGISTRY_REPO_URL", repo_url),
            ("REGISTRY_REPO_BRANCH", "main"),
        ];
        all.extend_from_slice(env);
        self.start(refresh, &all)
    }

    /// A server in the embedded mode (no registry) monitoring the repository, taking triggers
    /// with the bearer token.
    pub fn embedded_server(&self) -> ServerProcess {
        self.start("30s", &[("REGISTRY_REPO_URL", self.path()), ("REGISTRY_REPO_BRANCH", "main")])
    }

    /// Starts the server with `env`, the bearer token and `refresh`, and waits for the
    /// reconciler's first round.
    fn start(&self, refresh: &str, env: &[(&str, &str)]) -> ServerProcess {
        let mut all = vec![("UPDATE_TOKEN", TOKEN), ("REFRESH_INTERVAL", refresh)];
        all.extend_from_slice(env);
        let server = ServerProcess::start(&self.binary, &[], &all);
        // The reconciler looks at the registry and the branch once at startup: a commit made
        // before that look would be picked up by it rather than by the test's trigger.
        crate::registry::block_on(Client::of(&server).wait_for_reconciler_round());
        server
    }
}

/// Adds a copy of the `go` stack named `name`.
pub fn add_stack(root: &Path, name: &str) {
    let folder = root.join("stacks").join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let devfile = std::fs::read_to_string(root.join("stacks/go/devfile.yaml")).unwrap();
    std::fs::write(folder.join("devfile.yaml"), devfile.replace("name: go\n", &format!("name: {name}\n"))).unwrap();
}

/// Replaces `from` with `to` in a file of the registry.
pub fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// HTTP against one server.
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn of(server: &ServerProcess) -> Client {
        Client { base: server.url(), http: reqwest::Client::builder().no_proxy().build().unwrap() }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The stack and sample names of `/v2index/all`.
    pub async fn names(&self) -> Vec<String> {
        let index = self.json("/v2index/all").await;
        index.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    }

    /// The commit of the index being served (from `/metrics`).
    pub async fn served_commit(&self) -> String {
        let (_, metrics) = self.get("/metrics").await;
        let line = metrics.lines().find(|l| l.starts_with("registry_snapshot_info{")).expect("snapshot info");
        let start = line.find("commit_hash=\"").unwrap() + "commit_hash=\"".len();
        line[start..start + line[start..].find('"').unwrap()].to_string()
    }

    pub async fn post(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
        let mut request = self.http.post(format!("{}/api/updates", self.base)).body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        (status, location, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }

    /// A trigger with the bearer token; returns the job.
    pub async fn trigger(&self, commit: &str, stacks: &[&str]) -> UpdateJob {
        let body = json!({ "commit": commit, "stacks": stacks }).to_string();
        let (status, location, job) = self
            .post(&body, &[("authorization", &format!("Bearer {TOKEN}")), ("content-type", "application/json")])
            .await;
        assert!(status == 202 || status == 200, "{status}: {job}");
        let job: UpdateJob = serde_json::from_value(job).unwrap();
        assert_eq!(location.as_deref(), Some(format!("/api/updates/{}", job.id).as_str()));
        job
    }

    /// A trigger signed with the webhook secret.
    pub async fn trigger_signed(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let signature = sign(body);
        let mut all = vec![("x-hub-signature-256", signature.as_str())];
        all.extend_from_slice(headers);
        let (status, _, value) = self.post(body, &all).await;
        (status, value)
    }

    /// Polls a job until it is final.
    pub async fn wait(&self, id: &str) -> UpdateJob {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let job: UpdateJob = serde_json::from_value(self.json(&format!("/api/updates/{id}")).await).unwrap();
            if job.status.is_final() {
                return job;
            }
            assert!(Instant::now() < deadline, "update {id} did not finish: {job:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/metrics` until the reconciler has completed a round.
    pub async fn wait_for_reconciler_round(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, metrics) = self.get("/metrics").await;
            let rounds = metrics
                .lines()
                .find_map(|l| l.strip_prefix("registry_reconciler_rounds_total "))
                .expect("a server with updates reports its reconciler rounds");
            if rounds != "0" {
                return;
            }
            assert!(Instant::now() < deadline, "{}: the reconciler never completed a round", self.base);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the server serves `commit`.
    pub async fn wait_for_commit(&self, commit: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.served_commit().await != commit {
            assert!(
                Instant::now() < deadline,
                "{} still serves {} instead of {commit}",
                self.base,
                self.served_commit().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `X-Hub-Signature-256` header value of `body` with [`SECRET`].
pub fn sign(body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}
