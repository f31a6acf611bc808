//! Publishes packed artifacts to an OCI registry (SPEC §5), incrementally and index last.
//!
//! For each artifact: a HEAD on its tag; when the registry already has exactly this manifest,
//! nothing else happens. Otherwise each blob is checked with a HEAD and uploaded only when
//! missing, then the manifest bytes are pushed as they are (byte-exact, so digests match the
//! reference's). The index document is pushed only after every artifact is in place, and its
//! `latest` tag moves last of all: a reader never sees an index that points at a missing artifact.
//!
//! Every registry operation here is idempotent (blobs are content-addressed, a manifest PUT of
//! the same bytes is a no-op), so transient failures (connection errors, 5xx) are retried.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use schemas::oci;

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
        let scheme = if self.plain_http { "http" } else { "https" };
        write!(f, "{scheme}://{}", self.registry)?;
        if !self.namespace.is_empty() {
            write!(f, "/{}", self.namespace)?;
        }
        Ok(())
    }
}

impl Target {
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
        if matches!(self, Credentials::Basic { .. }) {
            return self.auth();
        }
        let scheme = if target.plain_http { "http" } else { "https" };
        let probe = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
        let open = match probe {
            Ok(client) => match client.get(format!("{scheme}://{}/v2/", target.registry)).send().await {
                Ok(response) => {
                    response.status().is_success() && !response.headers().contains_key(http::header::WWW_AUTHENTICATE)
                }
                Err(_) => false,
            },
            Err(_) => false,
        };
        if open { RegistryAuth::Bearer("anonymous".to_string()) } else { RegistryAuth::Anonymous }
    }
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
}

/// What a publish knows of one repository.
#[derive(Default)]
struct RepositoryState {
    /// Its tags, when listed; `None`: look each tag up.
    tags: Option<HashSet<String>>,
    /// Blobs known to be in it.
    blobs: HashSet<String>,
    /// Tags this publish pointed at a new manifest.
    moved: HashSet<String>,
    /// The registry does not know the repository: none of its blobs can be there, so they are
    /// uploaded without a lookup each.
    unknown: bool,
}

#[derive(Default)]
struct Counters {
    manifests_pushed: AtomicUsize,
    manifests_unchanged: AtomicUsize,
    blobs_uploaded: AtomicUsize,
    blobs_present: AtomicUsize,
    bytes_uploaded: AtomicU64,
}

impl Publisher {
    /// A publisher for `target`; asks the registry once whether it needs authentication.
    pub async fn connect(target: Target, credentials: Credentials, concurrency: usize) -> Publisher {
        Publisher {
            client: client(&target),
            auth: credentials.auth_for(&target).await,
            target,
            concurrency: concurrency.max(1),
            retry_delay: Duration::from_millis(200),
            verify: false,
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
        let index = index_upload(commit_hash, index_json, true);
        progress.start(uploads.len() as u64 + 1);
        // First request: checks the credentials and that the registry answers, before any upload.
        if let Some(summary) = self.unchanged(commit_hash, index_json, uploads.len()).await? {
            progress.artifact_done(&index.name(), 0);
            return Ok(summary);
        }
        let mut summary = self.push_artifacts_with(uploads, progress).await?;
        let pushed = self.push_index(commit_hash, index_json, true).await?;
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
        tracing::info!(digest = %index.artifact.manifest_digest, "the registry already has this index");
        Ok(Some(Summary {
            registry: self.target.to_string(),
            commit_hash: commit_hash.to_string(),
            index_digest: index.artifact.manifest_digest.clone(),
            artifacts,
            manifests_unchanged: artifacts + index.tags.len(),
            duration_ms: started.elapsed().as_millis() as u64,
            ..Summary::default()
        }))
    }

    /// Pushes every upload (not the index): what [`Publisher::publish`] does before the index,
    /// for callers that decide themselves whether `devfile-index:latest` may move.
    pub async fn push_artifacts(
        self: &Arc<Self>,
        uploads: Vec<Upload>,
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        progress.start(uploads.len() as u64);
        self.push_artifacts_with(uploads, progress).await
    }

    async fn push_artifacts_with(
        self: &Arc<Self>,
        uploads: Vec<Upload>,
        progress: &dyn PublishProgress,
    ) -> Result<Summary, PublishError> {
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let total = uploads.len();
        // One task per repository, its artifacts one after the other: two uploads of the same
        // blob into the same repository at once can leave the registry without it.
        let mut by_repository: Vec<(String, Vec<Upload>)> = Vec::new();
        for upload in uploads {
            match by_repository.iter_mut().find(|(r, _)| *r == upload.repository) {
                Some((_, list)) => list.push(upload),
                None => by_repository.push((upload.repository.clone(), vec![upload])),
            }
        }
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = tokio::task::JoinSet::new();
        for (_, list) in by_repository {
            let this = Arc::clone(self);
            let counters = Arc::clone(&counters);
            let semaphore = Arc::clone(&semaphore);
            let done = done_tx.clone();
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("the semaphore is never closed");
                let mut repository = this.repository_state(&list[0].repository).await;
                for upload in list {
                    let result = this.push(&upload, &mut repository, &counters).await;
                    let failed = result.is_err();
                    let _ = done.send((upload.name(), result));
                    if failed {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut failures = Vec::new();
        while let Some((name, result)) = done_rx.recv().await {
            match result {
                Ok(bytes) => progress.artifact_done(&name, bytes),
                Err(e) => {
                    tracing::error!(artifact = %name, error = %e, "artifact not published");
                    failures.push(e);
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a publish task does not panic");
        }
        if !failures.is_empty() {
            let failed = failures.len();
            let first = failures.swap_remove(0);
            // An authentication failure is the whole story; no need to wrap it.
            if matches!(first, PublishError::Unauthorized { .. }) {
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
        let index = index_upload(commit_hash, index_json, move_latest);
        let counters = Counters::default();
        let mut state = RepositoryState::default();
        let bytes_uploaded = self.push(&index, &mut state, &counters).await?;
        let latest_moved = move_latest && state.moved.contains("latest");
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
            bytes_uploaded,
        })
    }

    /// Pushes one artifact to each of its tags, in order. `present` holds the blobs known to be
    /// in the repository already. Returns the bytes uploaded.
    async fn push(
        &self,
        upload: &Upload,
        repository: &mut RepositoryState,
        counters: &Counters,
    ) -> Result<u64, PublishError> {
        let artifact = &upload.artifact;
        let present = &mut repository.blobs;
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
                    if present.contains(&blob.digest) {
                        continue;
                    }
                    uploaded += self.push_blob(&upload.repository, blob, repository.unknown, counters).await?;
                    present.insert(blob.digest.clone());
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
            repository.moved.insert(tag.clone());
            counters.manifests_pushed.fetch_add(1, Ordering::Relaxed);
            uploaded += artifact.manifest.len() as u64;
        }
        counters.bytes_uploaded.fetch_add(uploaded, Ordering::Relaxed);
        Ok(uploaded)
    }

    /// What is known of a repository before its artifacts are pushed: its tags (one request,
    /// which spares a lookup per new tag), or nothing when the registry will not list them.
    async fn repository_state(&self, repository: &str) -> RepositoryState {
        let reference = self.target.reference(repository, "latest");
        let (tags, unknown) = match self.client.list_tags(&reference, &self.auth, None, None).await {
            Ok(response) => (Some(response.tags.into_iter().collect()), false),
            Err(e) if is_not_found(&e) => (Some(HashSet::new()), true),
            Err(e) => {
                tracing::debug!(repository, error = %e, "cannot list tags; looking each one up");
                (None, false)
            }
        };
        RepositoryState { tags, unknown, ..RepositoryState::default() }
    }

    /// Uploads a blob unless the repository has it (not looked up when `absent`). Returns the
    /// bytes uploaded.
    async fn push_blob(
        &self,
        repository: &str,
        blob: &Blob,
        absent: bool,
        counters: &Counters,
    ) -> Result<u64, PublishError> {
        // A blob is looked up and uploaded through the repository; the tag is not used.
        let reference = self.target.reference(repository, "latest");
        let exists = !absent
            && self
                .retry(&format!("checking blob {} in {repository}", blob.digest), || {
                    self.client.blob_exists(&reference, &blob.digest)
                })
                .await?;
        if exists {
            counters.blobs_present.fetch_add(1, Ordering::Relaxed);
            return Ok(0);
        }
        self.retry(&format!("uploading blob {} ({} bytes) to {repository}", blob.digest, blob.bytes.len()), || {
            self.client.push_blob(&reference, blob.bytes.clone(), &blob.digest)
        })
        .await?;
        tracing::debug!(repository, digest = %blob.digest, size_bytes = blob.bytes.len(), "blob uploaded");
        counters.blobs_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok(blob.bytes.len() as u64)
    }

    /// The digest of the manifest at `repository:tag`, or `None` when there is none (HEAD).
    pub async fn manifest_digest(&self, repository: &str, tag: &str) -> Result<Option<String>, PublishError> {
        let reference = self.target.reference(repository, tag);
        self.retry(&format!("looking up {repository}:{tag}"), || async {
            match self.client.fetch_manifest_digest(&reference, &self.auth).await {
                Err(e) if is_not_found(&e) => Ok(None),
                other => other.map(Some),
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

/// Packs every stack version of `sources` (folders under `root`) and wraps every sample
/// devfile, in that order: what [`Publisher::publish`] pushes before the index.
pub fn uploads(root: &Path, sources: &[VersionSource], samples: &[SampleDevfile]) -> Result<Vec<Upload>, PackError> {
    let mut uploads = Vec::with_capacity(sources.len() + samples.len());
    for source in sources {
        uploads.push(Upload {
            repository: oci::stack_repository(&source.stack),
            tags: vec![source.version.clone()],
            artifact: pack::pack_version(&root.join(&source.folder), source.devfile_name)?,
        });
    }
    for sample in samples {
        let file_name = sample.path.rsplit('/').next().unwrap_or(&sample.path).to_string();
        let layer = Blob::new(oci::DEVFILE_MEDIA_TYPE, sample.bytes.clone());
        uploads.push(Upload {
            repository: format!("{}{}", oci::SAMPLE_REPOSITORY_PREFIX, sample.name),
            tags: vec![sample.tag.clone()],
            artifact: Artifact::new(vec![(file_name, layer)]),
        });
    }
    Ok(uploads)
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
    fn credentials_never_show_the_password() {
        let c = Credentials::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
