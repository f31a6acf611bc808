//! Publishes packed artifacts to an OCI registry (SPEC §5), incrementally and index last.
//!
//! For each artifact: a lookup of its tag (unless the tag list says it is new); when the registry
//! already has exactly this manifest, nothing else happens. Otherwise each blob is checked with a
//! HEAD (unless the repository is new) and uploaded only when missing, then the manifest bytes
//! are pushed as they are (byte-exact, so digests match the reference's). The index document is
//! pushed only after every artifact is in place, and its `latest` tag moves last of all: a
//! reader never sees an index that points at a missing artifact.
//!
//! Every registry operation here is idempotent (blobs are content-addressed, a manifest PUT of
//! the same bytes is a no-op), so transient failures (connection errors, 5xx) are retried.
//!
//! Requests are what a publish costs (a registry answers a few hundred a second), so a publish
//! of many artifacts first asks for the catalog: a repository the registry does not know needs
//! no tag list and no blob lookups. A blob this publish already put into one repository (the
//! `{}` config of every artifact, for one) is mounted into the next from there: one request
//! instead of two, and no bytes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use schemas::oci;
use tokio::sync::{OnceCell, mpsc};

use crate::pack::{self, Artifact, Blob, PackError};
use crate::samples::SampleDevfile;
use crate::scan::VersionSource;

/// Where artifacts go: `[http://|https://]host[:port][/namespace]`. Without a scheme, HTTPS is
/// used, except for `localhost` and `127.0.0.1`, which get plain HTTP as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub registry: String,
    /// Repository prefix (`team/devfiles`), empty for none.
    pub namespace: String,
    pub plain_http: bool,
}

impl FromStr for Target {
    type Err = PublishError;

    fn from_str(text: &str) -> Result<Target, PublishError> {
        let invalid = |why: &str| PublishError::InvalidTarget { target: text.to_string(), why: why.to_string() };
        let (plain_http, rest) = match text.split_once("://") {
            Some(("http", rest)) => (Some(true), rest),
            Some(("https", rest)) => (Some(false), rest),
            Some(_) => return Err(invalid("the scheme must be http or https")),
            None => (None, text),
        };
        let rest = rest.trim_end_matches('/');
        let (registry, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() || registry.contains(['@', '?', '#']) {
            return Err(invalid("it must be host[:port] with an optional /namespace"));
        }
        if namespace.split('/').any(|part| !valid_path_component(part)) && !namespace.is_empty() {
            return Err(invalid("the namespace must be lowercase letters, digits and . _ - separated by /"));
        }
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        Ok(Target {
            registry: registry.to_string(),
            namespace: namespace.to_string(),
            plain_http: plain_http.unwrap_or(local),
        })
    }
}

fn valid_path_component(part: &str) -> bool {
    !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && part.as_bytes()[0].is_ascii_alphanumeric()
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())?;
        if !self.namespace.is_empty() {
            write!(f, "/{}", self.namespace)?;
        }
        Ok(())
    }
}

impl Target {
    /// `http://host[:port]` or `https://host[:port]`: where the `/v2/` routes are.
    pub fn base_url(&self) -> String {
        format!("{}://{}", if self.plain_http { "http" } else { "https" }, self.registry)
    }

    /// The full repository name of `repository` (`devfile-catalog/go`) under the namespace.
    pub fn repository(&self, repository: &str) -> String {
        if self.namespace.is_empty() { repository.to_string() } else { format!("{}/{repository}", self.namespace) }
    }

    /// A reference to `repository` (unprefixed) at a tag or, for `sha256:...`, a digest.
    pub fn reference(&self, repository: &str, reference: &str) -> Reference {
        if reference.starts_with("sha256:") {
            Reference::with_digest(self.registry.clone(), self.repository(repository), reference.to_string())
        } else {
            Reference::with_tag(self.registry.clone(), self.repository(repository), reference.to_string())
        }
    }
}

/// Registry credentials. `Debug` never shows the secret.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

impl Credentials {
    /// As oci-client takes them.
    pub fn auth(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username.clone(), password.clone()),
        }
    }

    /// As oci-client takes them, for a registry that may need no authentication at all.
    ///
    /// With anonymous credentials, oci-client asks `GET /v2/` for an authentication challenge
    /// before every request, because "no authentication needed" is not something it caches:
    /// that doubles the requests of a publish. When the registry answers `GET /v2/` with 200
    /// and no challenge, it ignores `Authorization`, so a placeholder bearer token, which
    /// oci-client uses without asking, is the same as no authentication at all.
    pub async fn auth_for(&self, target: &Target) -> RegistryAuth {
        match http_client(target) {
            Ok(http) => self.auth_over(target, &http).await,
            Err(_) => self.auth(),
        }
    }

    /// [`Credentials::auth_for`], asking the registry through `http`.
    async fn auth_over(&self, target: &Target, http: &reqwest::Client) -> RegistryAuth {
        if matches!(self, Credentials::Basic { .. }) {
            return self.auth();
        }
        let probe = http.get(format!("{}/v2/", target.base_url())).timeout(Duration::from_secs(10)).send().await;
        let open = match probe {
            Ok(response) => {
                response.status().is_success() && !response.headers().contains_key(http::header::WWW_AUTHENTICATE)
            }
            Err(_) => false,
        };
        if open { RegistryAuth::Bearer("anonymous".to_string()) } else { RegistryAuth::Anonymous }
    }
}

/// A plain HTTP client for `target`, for the requests sent without oci-client (the probe for
/// authentication, the catalog). For a plain-HTTP registry it reads no system certificates,
/// which would only cost time.
fn http_client(target: &Target) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("devfile-registry/", env!("CARGO_PKG_VERSION")));
    if target.plain_http {
        builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
    }
    builder.build()
}

/// An OCI client for `target` (HTTP or HTTPS, timeouts), to reuse for every request.
pub fn client(target: &Target) -> Client {
    Client::new(oci_client::client::ClientConfig {
        protocol: if target.plain_http {
            oci_client::client::ClientProtocol::Http
        } else {
            oci_client::client::ClientProtocol::Https
        },
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("devfile-registry/", env!("CARGO_PKG_VERSION")),
        // One POST and one PUT per blob; devfile blobs are small.
        use_monolithic_push: true,
        ..Default::default()
    })
}

/// One artifact and the tags it goes to in one repository (`devfile-catalog/go`, `["1.0.0"]`).
#[derive(Debug, Clone)]
pub struct Upload {
    pub repository: String,
    pub tags: Vec<String>,
    pub artifact: Artifact,
}

impl Upload {
    fn name(&self) -> String {
        format!("{}:{}", self.repository, self.tags.join(","))
    }
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub registry: String,
    pub commit_hash: String,
    /// Digest of the index manifest now at `devfile-index:latest`.
    pub index_digest: String,
    /// Artifacts published (stack versions and sample devfiles), not counting the index.
    pub artifacts: usize,
    /// Tags whose manifest was pushed, and tags that already had this exact manifest.
    pub manifests_pushed: usize,
    pub manifests_unchanged: usize,
    /// Blobs uploaded, and blobs the registry already had.
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    /// Blobs mounted from another repository this publish had put them in (no bytes sent).
    pub blobs_mounted: usize,
    /// Bytes of the uploaded blobs and pushed manifests.
    pub bytes_uploaded: u64,
    /// Whether `devfile-index:latest` moved.
    pub index_pushed: bool,
    /// Whether each artifact was looked up. Not when `devfile-index:latest` already held this
    /// very index (every artifact it names was in place before it was pushed), unless `--verify`.
    pub artifacts_checked: bool,
    pub duration_ms: u64,
}

/// What [`Publisher::push_index`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexPushed {
    /// Digest of the index manifest.
    pub digest: String,
    /// Whether `devfile-index:latest` now points at it and did not before.
    pub latest_moved: bool,
    pub manifests_pushed: usize,
    pub manifests_unchanged: usize,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
}

impl Summary {
    /// Counts the index push in.
    pub fn add_index(&mut self, pushed: &IndexPushed) {
        self.index_digest = pushed.digest.clone();
        self.index_pushed = pushed.latest_moved;
        self.manifests_pushed += pushed.manifests_pushed;
        self.manifests_unchanged += pushed.manifests_unchanged;
        self.blobs_uploaded += pushed.blobs_uploaded;
        self.blobs_present += pushed.blobs_present;
        self.blobs_mounted += pushed.blobs_mounted;
        self.bytes_uploaded += pushed.bytes_uploaded;
    }
}

/// Something that wants to know how far a publish got.
pub trait PublishProgress: Send + Sync {
    /// Called once with the number of artifacts (the index included).
    fn start(&self, _artifacts: u64) {}
    /// Called after each artifact, with the bytes uploaded for it.
    fn artifact_done(&self, _name: &str, _bytes_uploaded: u64) {}
}

/// Reports nothing.
pub struct NoPublishProgress;
impl PublishProgress for NoPublishProgress {}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{target} is not a registry: {why}")]
    InvalidTarget { target: String, why: String },
    #[error("the registry {registry} refused the credentials{}: {source}", if *anonymous { " (none were given: use --username and --password-stdin)" } else { "" })]
    Unauthorized {
        registry: String,
        anonymous: bool,
        #[source]
        source: OciDistributionError,
    },
    #[error("{operation} failed after {attempts} attempt(s): {source}")]
    Registry {
        operation: String,
        attempts: u32,
        #[source]
        source: OciDistributionError,
    },
    #[error("cannot pack a stack version: {0}")]
    Pack(#[from] PackError),
    #[error(
        "{failed} of {total} artifact(s) could not be published (first: {first}); the index was not pushed, so devfile-index:latest is unchanged"
    )]
    Incomplete { failed: usize, total: usize, first: Box<PublishError> },
}

/// How many times a failed registry operation is tried in all.
const ATTEMPTS: u32 = 4;

/// A connection to one registry, reused for every request of a publish.
pub struct Publisher {
    client: Client,
    auth: RegistryAuth,
    target: Target,
    concurrency: usize,
    /// Pause before the second attempt; doubled for each further one.
    retry_delay: Duration,
    /// Look every artifact up even when the registry already has this very index.
    verify: bool,
    /// How to send a request of our own (the catalog, which oci-client reads without its `Link`
    /// header): to an open registry or with basic credentials; `None` when the registry hands
    /// out tokens, which only oci-client knows how to get.
    plain: Option<PlainRequests>,
}

/// Requests sent with reqwest rather than through oci-client (its client is built when first
/// needed: building one reads the system's root certificates).
struct PlainRequests {
    http: reqwest::Client,
    base: String,
    basic: Option<(String, String)>,
}

/// A publish of more artifacts than this asks for the catalog first (one request that spares a
/// tag list per repository the registry does not know yet).
const CATALOG_FROM_ARTIFACTS: usize = 16;

/// Catalog pages followed at most; a registry with more repositories than that is looked at
/// one repository at a time.
const CATALOG_PAGES: usize = 20;

/// What a publish knows of one repository before pushing to it.
#[derive(Default)]
struct RepositoryState {
    /// Its tags, when listed; `None`: look each tag up.
    tags: Option<HashSet<String>>,
    /// The registry does not know the repository: none of its blobs can be there, so they are
    /// uploaded without a lookup each.
    unknown: bool,
}

/// Values set once each, by key; whoever comes second waits for the first.
type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// What one publish shares between its repositories: counts, and where each blob already is.
struct Counters {
    manifests_pushed: AtomicUsize,
    manifests_unchanged: AtomicUsize,
    blobs_uploaded: AtomicUsize,
    blobs_present: AtomicUsize,
    blobs_mounted: AtomicUsize,
    bytes_uploaded: AtomicU64,
    /// Digest → the repository (unprefixed) this publish found or put it in. A repository
    /// uploading a blob holds its cell until done, so another one that needs the same blob
    /// waits and mounts it rather than uploading it too.
    homes: Cells<String, String>,
    /// `(repository, digest)` → set once the blob is known to be in the repository. Artifacts
    /// of one repository are pushed concurrently; two uploads of the same blob into the same
    /// repository at once can leave the registry without it, so the second one waits.
    placed: Cells<(String, String), ()>,
    /// Repository → its state, read by the first of its artifacts.
    repositories: Cells<String, RepositoryState>,
    /// Cleared when the registry refuses a mount: the rest of the publish uploads.
    mounts: AtomicBool,
    /// The registry's repositories, when the catalog was read.
    known: OnceCell<Option<Arc<HashSet<String>>>>,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            manifests_pushed: AtomicUsize::new(0),
            manifests_unchanged: AtomicUsize::new(0),
            blobs_uploaded: AtomicUsize::new(0),
            blobs_present: AtomicUsize::new(0),
            blobs_mounted: AtomicUsize::new(0),
            bytes_uploaded: AtomicU64::new(0),
            homes: Mutex::new(HashMap::new()),
            placed: Mutex::new(HashMap::new()),
            repositories: Mutex::new(HashMap::new()),
            mounts: AtomicBool::new(true),
            known: OnceCell::new(),
        }
    }
}

impl Counters {
    fn home(&self, digest: &str) -> Arc<OnceCell<String>> {
        let mut homes = self.homes.lock().expect("the homes lock is never poisoned");
        Arc::clone(homes.entry(digest.to_string()).or_default())
    }

    fn placed(&self, repository: &str, digest: &str) -> Arc<OnceCell<()>> {
        let mut placed = self.placed.lock().expect("the placed lock is never poisoned");
        Arc::clone(placed.entry((repository.to_string(), digest.to_string())).or_default())
    }

    fn repository(&self, repository: &str) -> Arc<OnceCell<RepositoryState>> {
        let mut repositories = self.repositories.lock().expect("the repositories lock is never poisoned");
        Arc::clone(repositories.entry(repository.to_string()).or_default())
    }
}

impl Publisher {
    /// A publisher for `target`; asks the registry once whether it needs authentication.
    pub async fn connect(target: Target, credentials: Credentials, concurrency: usize) -> Publisher {
        let http = http_client(&target).ok();
        let auth = match &http {
            Some(http) => credentials.auth_over(&target, http).await,
            None => credentials.auth(),
        };
        let basic = match &credentials {
            Credentials::Basic { username, password } => Some((username.clone(), password.clone())),
            Credentials::Anonymous => None,
        };
        let open = matches!(auth, RegistryAuth::Bearer(_)) || basic.is_some();
        let plain = http.filter(|_| open).map(|http| PlainRequests { http, base: target.base_url(), basic });
        Publisher {
            client: client(&target),
            auth,
            target,
            concurrency: concurrency.max(1),
            retry_delay: Duration::from_millis(200),
            verify: false,
            plain,
        }
    }

    /// Look every artifact up (and repair what is missing) even when the registry already has
    /// this very index.
    pub fn verify(mut self, verify: bool) -> Publisher {
        self.verify = verify;
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Pushes every upload, then the index document (`index.json` of `commit_hash`) to
    /// `devfile-index` tagged `<commit_hash>` and then `latest`. Nothing of the index is pushed
    /// unless every upload succeeded.
    pub async fn publish(
        self: &Arc<Self>,
        uploads: Vec<Upload>,
        commit_hash: &str,
        index_json: &[u8],
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        let started = Instant::now();
        // First request: checks the credentials and that the registry answers, before any upload.
        if let Some(summary) = self.unchanged(commit_hash, index_json, uploads.len()).await? {
            progress.start(uploads.len() as u64 + 1);
            progress.artifact_done(&index_upload(commit_hash, index_json, true).name(), 0);
            return Ok(summary);
        }
        let expected = uploads.len();
        let (sender, receiver) = mpsc::unbounded_channel();
        for upload in uploads {
            let _ = sender.send(Ok(upload));
        }
        drop(sender);
        let mut summary = self.publish_from(receiver, expected, commit_hash, index_json, progress).await?;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Pushes the uploads `uploads` yields (about `expected` of them) as they come, then the
    /// index document as [`Publisher::publish`] does, without looking the index up first (the
    /// caller did). A packing error in `uploads` stops the publish before the index.
    pub async fn publish_from(
        self: &Arc<Self>,
        uploads: mpsc::UnboundedReceiver<Result<Upload, PackError>>,
        expected: usize,
        commit_hash: &str,
        index_json: &[u8],
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        let started = Instant::now();
        let index = index_upload(commit_hash, index_json, true);
        progress.start(expected as u64 + 1);
        let counters = Arc::new(Counters::default());
        let mut summary = self.push_stream(uploads, expected, &counters, progress).await?;
        let pushed = self.push_index_with(commit_hash, index_json, true, &counters).await?;
        progress.artifact_done(&index.name(), pushed.bytes_uploaded);
        summary.add_index(&pushed);
        summary.commit_hash = commit_hash.to_string();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// When `devfile-index:latest` already holds this very index (and `--verify` is off): the
    /// summary of a publish that has nothing to do, since an index is only ever pushed after all
    /// of its `artifacts` (counted for the summary). One HEAD request; callers can skip packing.
    pub async fn unchanged(
        &self,
        commit_hash: &str,
        index_json: &[u8],
        artifacts: usize,
    ) -> Result<Option<Summary>, PublishError> {
        let started = Instant::now();
        let index = index_upload(commit_hash, index_json, true);
        let current = self.manifest_digest(&index.repository, "latest").await?;
        if self.verify || current.as_deref() != Some(index.artifact.manifest_digest.as_str()) {
            return Ok(None);
        }
        Ok(Some(self.unchanged_summary(commit_hash, index_json, artifacts, started)))
    }

    fn unchanged_summary(&self, commit_hash: &str, index_json: &[u8], artifacts: usize, started: Instant) -> Summary {
        let index = index_upload(commit_hash, index_json, true);
        tracing::info!(digest = %index.artifact.manifest_digest, "the registry already has this index");
        Summary {
            registry: self.target.to_string(),
            commit_hash: commit_hash.to_string(),
            index_digest: index.artifact.manifest_digest.clone(),
            artifacts,
            manifests_unchanged: artifacts + index.tags.len(),
            duration_ms: started.elapsed().as_millis() as u64,
            ..Summary::default()
        }
    }

    /// What `devfile-index:latest` holds (one GET of its manifest), and, when it is not this
    /// very index, the commit it was built from (one GET of its `index.json`), for callers that
    /// push only what changed since. `Same` carries the summary of a publish with nothing to
    /// do, as [`Publisher::unchanged`] does; never with `--verify`.
    pub async fn latest_index(
        &self,
        commit_hash: &str,
        index_json: &[u8],
        artifacts: usize,
    ) -> Result<LatestIndex, PublishError> {
        let started = Instant::now();
        let ours = index_upload(commit_hash, index_json, true);
        let reference = self.target.reference(&ours.repository, "latest");
        let accepted = [oci::MANIFEST_MEDIA_TYPE];
        let found = self
            .retry(&format!("looking up {}:latest", ours.repository), || async {
                match self.client.pull_manifest_raw(&reference, &self.auth, &accepted).await {
                    Err(e) if is_not_found(&e) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let Some((manifest, digest)) = found else { return Ok(LatestIndex::None) };
        if digest == ours.artifact.manifest_digest {
            if self.verify {
                return Ok(LatestIndex::Other { commit_hash: None });
            }
            return Ok(LatestIndex::Same(self.unchanged_summary(commit_hash, index_json, artifacts, started)));
        }
        if self.verify {
            return Ok(LatestIndex::Other { commit_hash: None });
        }
        // The index layer names the commit; anything unexpected only means "unknown".
        let layer = serde_json::from_slice::<oci::Manifest>(&manifest).ok().and_then(|m| m.layers.into_iter().next());
        let Some(layer) = layer else { return Ok(LatestIndex::Other { commit_hash: None }) };
        let mut bytes = Vec::new();
        let fetched = self.client.pull_blob(&reference, layer.digest.as_str(), &mut bytes).await;
        let commit = match fetched {
            Ok(()) => serde_json::from_slice::<schemas::index::IndexDocument>(&bytes).ok().map(|d| d.commit_hash),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the published index; everything is looked up");
                None
            }
        };
        Ok(LatestIndex::Other { commit_hash: commit.filter(|c| !c.is_empty()) })
    }

    /// Pushes every upload (not the index): what [`Publisher::publish`] does before the index,
    /// for callers that decide themselves whether `devfile-index:latest` may move.
    pub async fn push_artifacts(
        self: &Arc<Self>,
        uploads: Vec<Upload>,
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        progress.start(uploads.len() as u64);
        let expected = uploads.len();
        let (sender, receiver) = mpsc::unbounded_channel();
        for upload in uploads {
            let _ = sender.send(Ok(upload));
        }
        drop(sender);
        self.push_stream(receiver, expected, &Arc::new(Counters::default()), progress).await
    }

    /// Pushes uploads as they arrive, at most `concurrency` at a time, artifacts of one
    /// repository too (blob by blob, each goes into a repository once: see `Counters::placed`).
    async fn push_stream(
        self: &Arc<Self>,
        mut uploads: mpsc::UnboundedReceiver<Result<Upload, PackError>>,
        expected: usize,
        counters: &Arc<Counters>,
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        let started = Instant::now();
        let known = if expected > CATALOG_FROM_ARTIFACTS { self.catalog().await.map(Arc::new) } else { None };
        let _ = counters.known.set(known.clone());
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        let mut total = 0;
        let mut failures = Vec::new();
        let report =
            |(name, result): (String, Result<u64, PublishError>), failures: &mut Vec<PublishError>| match result {
                Ok(bytes) => progress.artifact_done(&name, bytes),
                Err(e) => {
                    tracing::error!(artifact = %name, error = %e, "artifact not published");
                    failures.push(e);
                }
            };
        loop {
            let upload = tokio::select! {
                upload = uploads.recv() => match upload {
                    None => break,
                    Some(Err(e)) => {
                        failures.insert(0, PublishError::Pack(e));
                        break;
                    }
                    Some(Ok(upload)) => upload,
                },
                Some(done) = done_rx.recv() => {
                    report(done, &mut failures);
                    continue;
                }
            };
            total += 1;
            let this = Arc::clone(self);
            let counters = Arc::clone(counters);
            let semaphore = Arc::clone(&semaphore);
            let known = known.clone();
            let done = done_tx.clone();
            tasks.spawn(async move {
                let _permit = semaphore.acquire().await.expect("the semaphore is never closed");
                let state = counters.repository(&upload.repository);
                let state = state.get_or_init(|| this.repository_state(&upload.repository, known.as_deref())).await;
                let result = this.push(&upload, state, &counters).await.map(|(bytes, _)| bytes);
                let _ = done.send((upload.name(), result));
            });
        }
        drop(done_tx);
        while let Some(done) = done_rx.recv().await {
            report(done, &mut failures);
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a publish task does not panic");
        }
        if !failures.is_empty() {
            let failed = failures.len();
            let first = failures.swap_remove(0);
            // An authentication or packing failure is the whole story; no need to wrap it.
            if matches!(first, PublishError::Unauthorized { .. } | PublishError::Pack(_)) {
                return Err(first);
            }
            return Err(PublishError::Incomplete { failed, total, first: Box::new(first) });
        }
        Ok(Summary {
            registry: self.target.to_string(),
            artifacts: total,
            manifests_pushed: counters.manifests_pushed.load(Ordering::Relaxed),
            manifests_unchanged: counters.manifests_unchanged.load(Ordering::Relaxed),
            blobs_uploaded: counters.blobs_uploaded.load(Ordering::Relaxed),
            blobs_present: counters.blobs_present.load(Ordering::Relaxed),
            blobs_mounted: counters.blobs_mounted.load(Ordering::Relaxed),
            bytes_uploaded: counters.bytes_uploaded.load(Ordering::Relaxed),
            artifacts_checked: true,
            duration_ms: started.elapsed().as_millis() as u64,
            ..Summary::default()
        })
    }

    /// Pushes the index document of `commit_hash` to `devfile-index:<commit_hash>`, and then to
    /// `devfile-index:latest` when `move_latest`. Call it only once every artifact the index
    /// names is in place.
    pub async fn push_index(
        &self,
        commit_hash: &str,
        index_json: &[u8],
        move_latest: bool,
    ) -> Result<IndexPushed, PublishError> {
        self.push_index_with(commit_hash, index_json, move_latest, &Counters::default()).await
    }

    async fn push_index_with(
        &self,
        commit_hash: &str,
        index_json: &[u8],
        move_latest: bool,
        shared: &Counters,
    ) -> Result<IndexPushed, PublishError> {
        let index = index_upload(commit_hash, index_json, move_latest);
        // The counts of the index alone; where blobs are is shared with the artifacts' publish.
        let counters = Counters::default();
        let homes = shared.homes.lock().expect("the homes lock is never poisoned").clone();
        *counters.homes.lock().expect("the homes lock is never poisoned") = homes;
        counters.mounts.store(shared.mounts.load(Ordering::Relaxed), Ordering::Relaxed);
        // A registry whose catalog does not list the index's repository has none of it; else
        // each tag is looked up (one HEAD each, where a tag list would take the same two).
        let known = shared.known.get().cloned().flatten();
        let state = match known {
            Some(known) if !known.contains(&self.target.repository(&index.repository)) => {
                self.repository_state(&index.repository, Some(&known)).await
            }
            _ => RepositoryState::default(),
        };
        let (bytes_uploaded, moved) = self.push(&index, &state, &counters).await?;
        let latest_moved = move_latest && moved.iter().any(|tag| tag == "latest");
        if latest_moved {
            tracing::info!(commit_hash, digest = %index.artifact.manifest_digest, "index pushed");
        }
        Ok(IndexPushed {
            digest: index.artifact.manifest_digest.clone(),
            latest_moved,
            manifests_pushed: counters.manifests_pushed.load(Ordering::Relaxed),
            manifests_unchanged: counters.manifests_unchanged.load(Ordering::Relaxed),
            blobs_uploaded: counters.blobs_uploaded.load(Ordering::Relaxed),
            blobs_present: counters.blobs_present.load(Ordering::Relaxed),
            blobs_mounted: counters.blobs_mounted.load(Ordering::Relaxed),
            bytes_uploaded,
        })
    }

    /// Pushes one artifact to each of its tags, in order. Returns the bytes uploaded and the
    /// tags it moved.
    async fn push(
        &self,
        upload: &Upload,
        repository: &RepositoryState,
        counters: &Counters,
    ) -> Result<(u64, Vec<String>), PublishError> {
        let artifact = &upload.artifact;
        let mut moved = Vec::new();
        let mut uploaded = 0;
        let mut blobs_checked = false;
        for tag in &upload.tags {
            let known_absent = repository.tags.as_ref().is_some_and(|tags| !tags.contains(tag));
            if !known_absent
                && self.manifest_digest(&upload.repository, tag).await?.as_deref()
                    == Some(artifact.manifest_digest.as_str())
            {
                counters.manifests_unchanged.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !blobs_checked {
                for blob in artifact.blobs() {
                    let placed = counters.placed(&upload.repository, &blob.digest);
                    let mut bytes = 0;
                    placed
                        .get_or_try_init(|| async {
                            bytes = self.push_blob(&upload.repository, blob, repository.unknown, counters).await?;
                            Ok::<_, PublishError>(())
                        })
                        .await?;
                    uploaded += bytes;
                }
                blobs_checked = true;
            }
            let reference = self.target.reference(&upload.repository, tag);
            self.retry(&format!("pushing the manifest of {}:{tag}", upload.repository), || {
                self.client.push_manifest_raw(
                    &reference,
                    artifact.manifest.clone(),
                    HeaderValue::from_static(oci::MANIFEST_MEDIA_TYPE),
                )
            })
            .await?;
            tracing::info!(repository = %upload.repository, tag = %tag, digest = %artifact.manifest_digest, "manifest pushed");
            moved.push(tag.clone());
            counters.manifests_pushed.fetch_add(1, Ordering::Relaxed);
            uploaded += artifact.manifest.len() as u64;
        }
        counters.bytes_uploaded.fetch_add(uploaded, Ordering::Relaxed);
        Ok((uploaded, moved))
    }

    /// What is known of a repository before its artifacts are pushed: nothing is there when the
    /// catalog (`known`) does not list it; else its tags (one request, which spares a lookup
    /// per new tag), or nothing when the registry will not list them.
    async fn repository_state(&self, repository: &str, known: Option<&HashSet<String>>) -> RepositoryState {
        if known.is_some_and(|known| !known.contains(&self.target.repository(repository))) {
            return RepositoryState { tags: Some(HashSet::new()), unknown: true };
        }
        let reference = self.target.reference(repository, "latest");
        let (tags, unknown) = match self.client.list_tags(&reference, &self.auth, None, None).await {
            Ok(response) => (Some(response.tags.into_iter().collect()), false),
            Err(e) if is_not_found(&e) => (Some(HashSet::new()), true),
            Err(e) => {
                tracing::debug!(repository, error = %e, "cannot list tags; looking each one up");
                (None, false)
            }
        };
        RepositoryState { tags, unknown }
    }

    /// Every repository of the registry (`GET /v2/_catalog`, following `Link` pages), or `None`
    /// when the registry will not tell (it refuses, needs a token, or has too many pages).
    async fn catalog(&self) -> Option<HashSet<String>> {
        let plain = self.plain.as_ref()?;
        let http = &plain.http;
        let mut repositories = HashSet::new();
        let mut url = format!("{}/v2/_catalog?n=1000", plain.base);
        for _ in 0..CATALOG_PAGES {
            let mut request = http.get(&url);
            if let Some((username, password)) = &plain.basic {
                request = request.basic_auth(username, Some(password));
            }
            let response = match request.send().await {
                Ok(response) if response.status().is_success() => response,
                Ok(response) => {
                    tracing::debug!(status = response.status().as_u16(), "no catalog; looking each repository up");
                    return None;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no catalog; looking each repository up");
                    return None;
                }
            };
            let next = response
                .headers()
                .get(http::header::LINK)
                .and_then(|link| link.to_str().ok())
                .and_then(next_link)
                .map(|next| if next.starts_with('/') { format!("{}{next}", plain.base) } else { next });
            #[derive(serde::Deserialize)]
            struct Page {
                repositories: Option<Vec<String>>,
            }
            let page: Page = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
            repositories.extend(page.repositories.unwrap_or_default());
            match next {
                None => return Some(repositories),
                Some(next) => url = next,
            }
        }
        tracing::debug!("the catalog has too many pages; looking each repository up");
        None
    }

    /// Uploads a blob unless the repository has it (not looked up when `absent`), or mounts it
    /// from a repository this publish found or put it in. Returns the bytes uploaded.
    async fn push_blob(
        &self,
        repository: &str,
        blob: &Blob,
        absent: bool,
        counters: &Counters,
    ) -> Result<u64, PublishError> {
        // A blob is looked up and uploaded through the repository; the tag is not used.
        let reference = self.target.reference(repository, "latest");
        let home = counters.home(&blob.digest);
        let exists = !absent
            && self
                .retry(&format!("checking blob {} in {repository}", blob.digest), || {
                    self.client.blob_exists(&reference, &blob.digest)
                })
                .await?;
        if exists {
            let _ = home.set(repository.to_string());
            counters.blobs_present.fetch_add(1, Ordering::Relaxed);
            return Ok(0);
        }
        // The first repository to need the blob uploads it; the others wait for that, then mount.
        let uploaded_here = AtomicBool::new(false);
        let from = home
            .get_or_try_init(|| async {
                self.upload_blob(repository, &reference, blob).await?;
                uploaded_here.store(true, Ordering::Relaxed);
                Ok::<_, PublishError>(repository.to_string())
            })
            .await?;
        if uploaded_here.load(Ordering::Relaxed) {
            counters.blobs_uploaded.fetch_add(1, Ordering::Relaxed);
            return Ok(blob.bytes.len() as u64);
        }
        if from == repository {
            // Found there by a lookup of another artifact meanwhile.
            return Ok(0);
        }
        if counters.mounts.load(Ordering::Relaxed) {
            let source = self.target.reference(from, "latest");
            match self.client.mount_blob(&reference, &source, &blob.digest).await {
                Ok(()) => {
                    tracing::debug!(repository, from, digest = %blob.digest, "blob mounted");
                    counters.blobs_mounted.fetch_add(1, Ordering::Relaxed);
                    return Ok(0);
                }
                Err(e) => {
                    // Whatever the reason (no mounts across repositories, a token without pull
                    // rights on the other one, a failure), uploading works everywhere.
                    tracing::debug!(repository, from, error = %e, "mount refused; uploading blobs from now on");
                    counters.mounts.store(false, Ordering::Relaxed);
                }
            }
        }
        self.upload_blob(repository, &reference, blob).await?;
        counters.blobs_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok(blob.bytes.len() as u64)
    }

    /// Uploads a blob into a repository: a POST and a PUT.
    async fn upload_blob(&self, repository: &str, reference: &Reference, blob: &Blob) -> Result<(), PublishError> {
        self.retry(&format!("uploading blob {} ({} bytes) to {repository}", blob.digest, blob.bytes.len()), || {
            self.client.push_blob(reference, blob.bytes.clone(), &blob.digest)
        })
        .await?;
        tracing::debug!(repository, digest = %blob.digest, size_bytes = blob.bytes.len(), "blob uploaded");
        Ok(())
    }

    /// The digest of the manifest at `repository:tag`, or `None` when there is none.
    pub async fn manifest_digest(&self, repository: &str, tag: &str) -> Result<Option<String>, PublishError> {
        let reference = self.target.reference(repository, tag);
        // A GET rather than oci-client's HEAD, which follows a 404 with a GET: one request
        // either way, and the manifests are small.
        let accepted = [
            oci::MANIFEST_MEDIA_TYPE,
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ];
        self.retry(&format!("looking up {repository}:{tag}"), || async {
            match self.client.pull_manifest_raw(&reference, &self.auth, &accepted).await {
                Err(e) if is_not_found(&e) => Ok(None),
                other => other.map(|(_, digest)| Some(digest)),
            }
        })
        .await
    }

    /// Runs `operation` until it succeeds, fails for good, or [`ATTEMPTS`] are used up.
    async fn retry<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, PublishError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            // Basic credentials are stored once, before the first request to the registry.
            self.client.store_auth_if_needed(&self.target.registry, &self.auth).await;
            match operation().await {
                Ok(value) => return Ok(value),
                Err(source) if is_unauthorized(&source) => {
                    return Err(PublishError::Unauthorized {
                        registry: self.target.to_string(),
                        anonymous: !matches!(self.auth, RegistryAuth::Basic(..)),
                        source,
                    });
                }
                Err(source) if attempt >= ATTEMPTS || !is_transient(&source) => {
                    return Err(PublishError::Registry { operation: what.to_string(), attempts: attempt, source });
                }
                Err(source) => {
                    tracing::warn!(operation = what, attempt, error = %source, "registry operation failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

/// What [`publish_packing`] packs and fetches.
pub struct Packing<'a, F> {
    /// The registry root the version folders are under.
    pub root: &'a Path,
    pub sources: &'a [&'a VersionSource],
    /// Fetches the sample devfiles (run on a thread of its own while stacks are packed).
    pub samples: F,
    /// How many sample versions the index lists (for the progress).
    pub sample_versions: usize,
}

/// Packs stack versions on every core and fetches the sample devfiles meanwhile, each artifact
/// pushed as soon as it is ready ([`Publisher::publish_from`]), then the index. Blocks on
/// `runtime`; call it from outside any async runtime.
pub fn publish_packing<F>(
    runtime: &tokio::runtime::Runtime,
    publisher: &Arc<Publisher>,
    packing: Packing<'_, F>,
    commit_hash: &str,
    index_json: &[u8],
    progress: &dyn PublishProgress,
) -> Result<Summary, PublishError>
where
    F: FnOnce() -> Vec<SampleDevfile> + Send,
{
    let Packing { root, sources, samples, sample_versions } = packing;
    let (sender, receiver) = mpsc::unbounded_channel();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(sources.len().max(1));
        for _ in 0..workers {
            let (sender, next) = (sender.clone(), &next);
            scope.spawn(move || {
                while let Some(source) = sources.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let upload = pack_upload(root, source);
                    let failed = upload.is_err();
                    // The publish stopped (it failed): nothing more to pack.
                    if sender.send(upload).is_err() || failed {
                        break;
                    }
                }
            });
        }
        let samples_sender = sender.clone();
        scope.spawn(move || {
            for upload in sample_uploads(&samples()) {
                let _ = samples_sender.send(Ok(upload));
            }
        });
        drop(sender);
        let expected = sources.len() + sample_versions;
        runtime.block_on(publisher.publish_from(receiver, expected, commit_hash, index_json, progress))
    })
}

/// Packs every stack version of `sources` (folders under `root`) and wraps every sample
/// devfile, in that order: what [`Publisher::publish`] pushes before the index.
pub fn uploads(root: &Path, sources: &[VersionSource], samples: &[SampleDevfile]) -> Result<Vec<Upload>, PackError> {
    let mut uploads = Vec::with_capacity(sources.len() + samples.len());
    for source in sources {
        uploads.push(pack_upload(root, source)?);
    }
    uploads.extend(sample_uploads(samples));
    Ok(uploads)
}

/// Packs one stack version (its folder under `root`).
pub fn pack_upload(root: &Path, source: &VersionSource) -> Result<Upload, PackError> {
    Ok(Upload {
        repository: oci::stack_repository(&source.stack),
        tags: vec![source.version.clone()],
        artifact: pack::pack_version(&root.join(&source.folder), source.devfile_name)?,
    })
}

/// Wraps sample devfiles as artifacts of one layer each.
pub fn sample_uploads(samples: &[SampleDevfile]) -> Vec<Upload> {
    samples
        .iter()
        .map(|sample| {
            let file_name = sample.path.rsplit('/').next().unwrap_or(&sample.path).to_string();
            let layer = Blob::new(oci::DEVFILE_MEDIA_TYPE, sample.bytes.clone());
            Upload {
                repository: format!("{}{}", oci::SAMPLE_REPOSITORY_PREFIX, sample.name),
                tags: vec![sample.tag.clone()],
                artifact: Artifact::new(vec![(file_name, layer)]),
            }
        })
        .collect()
}

/// What `devfile-index:latest` holds, as [`Publisher::latest_index`] found it.
#[derive(Debug)]
pub enum LatestIndex {
    /// Nothing: a first publish.
    None,
    /// This very index: nothing to do (the summary says so).
    Same(Summary),
    /// Another index, built from this commit when known.
    Other { commit_hash: Option<String> },
}

/// The target of a `Link: <URL>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    params.contains("rel=\"next\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
}

/// The index document as an artifact: one `index.json` layer, tagged with the commit (when
/// there is one) and then `latest`.
fn index_upload(commit_hash: &str, index_json: &[u8], latest: bool) -> Upload {
    let layer = Blob::new(oci::INDEX_MEDIA_TYPE, index_json.to_vec());
    let mut tags = Vec::new();
    if !commit_hash.is_empty() {
        tags.push(commit_hash.to_string());
    }
    if latest {
        tags.push("latest".to_string());
    }
    Upload {
        repository: oci::INDEX_REPOSITORY.to_string(),
        tags,
        artifact: Artifact::new(vec![("index.json".to_string(), layer)]),
    }
}

/// The HTTP status of an error, when it carries one.
fn status(error: &OciDistributionError) -> Option<u16> {
    match error {
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::RequestError(e) => e.status().map(|s| s.as_u16()),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        _ => None,
    }
}

fn envelope_has(error: &OciDistributionError, codes: &[OciErrorCode]) -> bool {
    matches!(error, OciDistributionError::RegistryError { envelope, .. } if envelope.errors.iter().any(|e| codes.contains(&e.code)))
}

fn is_unauthorized(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::AuthenticationFailure(_))
        || matches!(status(error), Some(401 | 403))
        || envelope_has(error, &[OciErrorCode::Unauthorized, OciErrorCode::Denied])
}

/// The registry answered that the manifest, blob or repository does not exist.
pub fn is_not_found(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::ImageManifestNotFoundError(_))
        || status(error) == Some(404)
        || envelope_has(
            error,
            &[
                OciErrorCode::ManifestUnknown,
                OciErrorCode::NameUnknown,
                OciErrorCode::BlobUnknown,
                OciErrorCode::NotFound,
            ],
        )
}

/// Worth another try: the connection failed or the registry had a server-side problem. A 4xx
/// answer (other than timeouts and rate limits) will not change by asking again.
fn is_transient(error: &OciDistributionError) -> bool {
    match status(error) {
        Some(code) => code >= 500 || code == 408 || code == 429,
        None => {
            !matches!(
                error,
                OciDistributionError::RegistryError { .. }
                    | OciDistributionError::DigestError(_)
                    | OciDistributionError::UrlParseError(_)
            ) || envelope_has(error, &[OciErrorCode::BlobUploadUnknown, OciErrorCode::Toomanyrequests])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: Target = "127.0.0.1:5000".parse().unwrap();
        assert_eq!((t.registry.as_str(), t.namespace.as_str(), t.plain_http), ("127.0.0.1:5000", "", true));
        let t: Target = "https://quay.io/team/devfiles/".parse().unwrap();
        assert_eq!((t.registry.as_str(), t.namespace.as_str(), t.plain_http), ("quay.io", "team/devfiles", false));
        assert_eq!(t.repository("devfile-index"), "team/devfiles/devfile-index");
        assert_eq!(t.to_string(), "https://quay.io/team/devfiles");
        let t: Target = "http://registry.local:5000".parse().unwrap();
        assert!(t.plain_http);
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("host/Upper".parse::<Target>().is_err());
        assert!("".parse::<Target>().is_err());
    }

    #[test]
    fn catalog_pages_follow_the_next_link() {
        assert_eq!(next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(next_link(r#"<https://r.example/v2/_catalog?last=b>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
