//! The OCI registry as the artifact store (SPEC §1, §7): the index is read from
//! `devfile-index:latest`, devfiles and `/v2` content from the stack repositories, through one
//! reused oci-client `Client`. What is addressed by digest never changes and is cached in memory
//! (moka, bounded by bytes); tags are looked up again after a short time.

use std::time::Duration;

use bytes::Bytes;
use index_generator::publish::is_not_found;
use index_generator::publish::{Credentials, Target};
use moka::future::Cache;
use oci_client::Client;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use schemas::index::IndexDocument;
use schemas::oci;

use crate::store::{Store, StoreError, StoreFuture, StoredManifest};

/// Memory for cached blobs and manifests.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// How long a tag → manifest lookup is trusted.
const TAG_TTL: Duration = Duration::from_secs(10);

pub struct OciStore {
    client: Client,
    auth: RegistryAuth,
    target: Target,
    /// `(repository, digest)` → manifest or blob bytes.
    by_digest: Cache<(String, String), Bytes>,
    /// `(repository, tag)` → manifest.
    by_tag: Cache<(String, String), StoredManifest>,
}

/// The index document at `devfile-index:latest`, with the digest of its manifest.
#[derive(Debug)]
pub struct PublishedIndex {
    pub document: IndexDocument,
    pub manifest_digest: String,
}

impl OciStore {
    /// A store reading from `target`; asks the registry once whether it needs authentication.
    pub async fn connect(target: Target, credentials: &Credentials) -> OciStore {
        OciStore {
            client: index_generator::publish::client(&target),
            auth: credentials.auth_for(&target).await,
            target,
            by_digest: Cache::builder()
                .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
                .max_capacity(CACHE_BYTES)
                .build(),
            by_tag: Cache::builder().max_capacity(10_000).time_to_live(TAG_TTL).build(),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Forgets every tag → manifest lookup, so that the next request for a tag asks the registry:
    /// called when a new index is served, whose stack versions may have moved.
    pub fn forget_tags(&self) {
        self.by_tag.invalidate_all();
    }

    /// The digest of the manifest at `devfile-index:latest` (a HEAD request), `None` when the
    /// registry has no index yet.
    pub async fn index_digest(&self) -> Result<Option<String>, StoreError> {
        let reference = self.target.reference(oci::INDEX_REPOSITORY, "latest");
        match self.client.fetch_manifest_digest(&reference, &self.auth).await {
            Ok(digest) => Ok(Some(digest)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(registry_error(&self.target, e)),
        }
    }

    /// Reads and parses the index document at `devfile-index:latest`; `None` when there is none.
    pub async fn index(&self) -> Result<Option<PublishedIndex>, StoreError> {
        self.index_at("latest").await
    }

    /// Reads and parses the index document at `devfile-index:<reference>` (a tag or a digest);
    /// `None` when there is none.
    pub async fn index_at(&self, reference: &str) -> Result<Option<PublishedIndex>, StoreError> {
        let Some(manifest) = self.fetch_manifest(oci::INDEX_REPOSITORY, reference).await? else { return Ok(None) };
        let what = format!("{}:{reference}", oci::INDEX_REPOSITORY);
        let parsed: oci::Manifest = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| StoreError::BadManifest(what.clone(), e.to_string()))?;
        let layer = parsed
            .layers
            .iter()
            .find(|l| l.media_type == oci::INDEX_MEDIA_TYPE)
            .ok_or_else(|| StoreError::BadManifest(what.clone(), "it has no index.json layer".to_string()))?;
        let bytes = self
            .blob(oci::INDEX_REPOSITORY, &layer.digest)
            .await?
            .ok_or_else(|| StoreError::BadManifest(what.clone(), format!("its layer {} is missing", layer.digest)))?;
        let document: IndexDocument =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::BadManifest(what, format!("index.json: {e}")))?;
        Ok(Some(PublishedIndex { document, manifest_digest: manifest.digest }))
    }

    async fn fetch_manifest(&self, repository: &str, reference: &str) -> Result<Option<StoredManifest>, StoreError> {
        let by_digest = reference.starts_with("sha256:");
        let key = (repository.to_string(), reference.to_string());
        if by_digest {
            if let Some(bytes) = self.by_digest.get(&key).await {
                return Ok(Some(StoredManifest { bytes, digest: reference.to_string() }));
            }
        } else if let Some(manifest) = self.by_tag.get(&key).await {
            return Ok(Some(manifest));
        }
        let image = self.target.reference(repository, reference);
        let (bytes, digest) = match self.client.pull_manifest_raw(&image, &self.auth, &[oci::MANIFEST_MEDIA_TYPE]).await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(registry_error(&self.target, e)),
        };
        let manifest = StoredManifest { bytes, digest };
        self.by_digest.insert((repository.to_string(), manifest.digest.clone()), manifest.bytes.clone()).await;
        if !by_digest {
            self.by_tag.insert(key, manifest.clone()).await;
        }
        Ok(Some(manifest))
    }

    async fn fetch_blob(&self, repository: &str, digest: &str) -> Result<Option<Bytes>, StoreError> {
        let key = (repository.to_string(), digest.to_string());
        if let Some(bytes) = self.by_digest.get(&key).await {
            return Ok(Some(bytes));
        }
        let image = self.target.reference(repository, digest);
        let mut out = Vec::new();
        match self.client.pull_blob(&image, digest, &mut out).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(registry_error(&self.target, e)),
        }
        let bytes = Bytes::from(out);
        self.by_digest.insert(key, bytes.clone()).await;
        Ok(Some(bytes))
    }

    async fn list_repositories(&self) -> Result<Vec<String>, StoreError> {
        let image = self.target.reference(oci::INDEX_REPOSITORY, "latest");
        let prefix =
            if self.target.namespace.is_empty() { String::new() } else { format!("{}/", self.target.namespace) };
        let mut repositories = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self
                .client
                .catalog(&image, &self.auth, Some(1000), last.as_deref())
                .await
                .map_err(|e| registry_error(&self.target, e))?;
            let done = page.repositories.is_empty();
            last = page.repositories.last().cloned();
            repositories
                .extend(page.repositories.into_iter().filter_map(|r| r.strip_prefix(&prefix).map(str::to_string)));
            if done || last.is_none() {
                break;
            }
            // A registry that ignores `last` would send the same page again.
            if repositories.len() > 100_000 || repositories.windows(2).any(|w| w[0] == w[1]) {
                break;
            }
        }
        repositories.sort();
        repositories.dedup();
        Ok(repositories)
    }

    async fn list_tags(&self, repository: &str) -> Result<Option<Vec<String>>, StoreError> {
        let image = self.target.reference(repository, "latest");
        match self.client.list_tags(&image, &self.auth, None, None).await {
            Ok(response) => {
                let mut tags = response.tags;
                tags.sort();
                Ok(Some(tags))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(registry_error(&self.target, e)),
        }
    }
}

impl Store for OciStore {
    fn manifest<'a>(&'a self, repository: &'a str, reference: &'a str) -> StoreFuture<'a, Option<StoredManifest>> {
        Box::pin(self.fetch_manifest(repository, reference))
    }

    fn blob<'a>(&'a self, repository: &'a str, digest: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(self.fetch_blob(repository, digest))
    }

    fn catalog(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(self.list_repositories())
    }

    fn tags<'a>(&'a self, repository: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(self.list_tags(repository))
    }
}

fn registry_error(target: &Target, e: OciDistributionError) -> StoreError {
    StoreError::Registry(format!("{target}: {e}"))
}
