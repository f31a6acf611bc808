//! Where the files of stack versions and samples come from: the artifact store, addressed as an
//! OCI registry is (repository, tag or digest), since that is what it holds.
//!
//! Two implementations: [`LocalStore`], the embedded store holding the artifacts packed from a
//! registry repository at startup (the very bytes `index-generator publish` would push), and
//! [`crate::oci::OciStore`], the OCI registry the generator publishes to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::RwLock;

use bytes::Bytes;
use index_generator::publish::Upload;
use schemas::oci;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot pack {folder}: {source}")]
    Pack { folder: String, source: index_generator::pack::PackError },
    #[error("the registry failed: {0}")]
    Registry(String),
    #[error("the manifest of {0} is not a devfile artifact: {1}")]
    BadManifest(String, String),
}

/// What a store method returns. Boxed so that the store is chosen at startup and held as
/// `Arc<dyn Store>` (an `async fn` in a trait cannot be called through `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A manifest as stored: its exact bytes and their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub bytes: Bytes,
    pub digest: String,
}

/// The artifact store. Repository names are the published ones (`devfile-catalog/go`), without
/// any namespace the registry may put them under.
pub trait Store: Send + Sync + 'static {
    /// The manifest at `reference` (a tag or a `sha256:` digest), `None` when there is none.
    fn manifest<'a>(&'a self, repository: &'a str, reference: &'a str) -> StoreFuture<'a, Option<StoredManifest>>;

    /// A blob of `repository`, `None` when the repository has no such blob.
    fn blob<'a>(&'a self, repository: &'a str, digest: &'a str) -> StoreFuture<'a, Option<Bytes>>;

    /// Every repository, sorted.
    fn catalog(&self) -> StoreFuture<'_, Vec<String>>;

    /// The tags of a repository, sorted; `None` when the repository does not exist.
    fn tags<'a>(&'a self, repository: &'a str) -> StoreFuture<'a, Option<Vec<String>>>;

    /// Whether what it holds at a tag only changes together with the snapshot being served
    /// (the embedded store, filled before each swap), so that an answer read from it may be
    /// reused for the life of the snapshot ([`crate::reuse`]). Not so for a registry, where
    /// anyone may push.
    fn fixed_per_snapshot(&self) -> bool {
        false
    }

    /// The devfile of a stack version: the devfile layer of `devfile-catalog/<folder>:<version>`.
    fn devfile<'a>(&'a self, stack_folder: &'a str, version: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { devfile_in(self, &oci::stack_repository(stack_folder), version).await })
    }

    /// The devfile of a sample version (`latest` for a sample without versions).
    fn sample_devfile<'a>(&'a self, name: &'a str, tag: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { devfile_in(self, &format!("{}{name}", oci::SAMPLE_REPOSITORY_PREFIX), tag).await })
    }
}

/// The devfile layer of `repository:tag`.
async fn devfile_in<S: Store + ?Sized>(store: &S, repository: &str, tag: &str) -> Result<Option<Bytes>, StoreError> {
    let Some(manifest) = store.manifest(repository, tag).await? else { return Ok(None) };
    let parsed: oci::Manifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| StoreError::BadManifest(format!("{repository}:{tag}"), e.to_string()))?;
    let Some(layer) = parsed.layers.iter().find(|l| l.media_type == oci::DEVFILE_MEDIA_TYPE) else {
        return Err(StoreError::BadManifest(format!("{repository}:{tag}"), "it has no devfile layer".to_string()));
    };
    store.blob(repository, &layer.digest).await
}

/// The embedded store: artifacts held in memory, filled when the server starts (stack versions)
/// and shortly after (sample devfiles, fetched from their Git remotes in the background).
#[derive(Debug, Default)]
pub struct LocalStore {
    contents: RwLock<Contents>,
}

#[derive(Debug, Default)]
struct Contents {
    /// Repository → tag → manifest digest.
    tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Repository → the digests (manifests and blobs) it holds.
    members: HashMap<String, HashSet<String>>,
    /// Digest → bytes, shared by all repositories (content-addressed).
    manifests: HashMap<String, Bytes>,
    blobs: HashMap<String, Bytes>,
    /// The devfile layer of every tag, by the repository's name without its prefix (stack
    /// folder or sample name), then tag: the devfile routes find it with two lookups and no
    /// allocation, instead of reading the manifest on every request.
    stack_devfiles: HashMap<String, HashMap<String, Bytes>>,
    sample_devfiles: HashMap<String, HashMap<String, Bytes>>,
}

impl LocalStore {
    pub fn new(uploads: Vec<Upload>) -> LocalStore {
        let store = LocalStore::default();
        store.add(uploads);
        store
    }

    /// Adds artifacts (replacing what their tags pointed at).
    pub fn add(&self, uploads: Vec<Upload>) {
        let mut guard = self.contents.write().expect("the store lock is never poisoned");
        let contents = &mut *guard;
        for upload in uploads {
            let artifact = upload.artifact;
            let members = contents.members.entry(upload.repository.clone()).or_default();
            members.insert(artifact.manifest_digest.clone());
            members.extend(artifact.blobs().map(|b| b.digest.clone()));
            let tags = contents.tags.entry(upload.repository.clone()).or_default();
            for tag in &upload.tags {
                tags.insert(tag.clone(), artifact.manifest_digest.clone());
            }
            for blob in artifact.blobs() {
                contents.blobs.entry(blob.digest.clone()).or_insert_with(|| Bytes::from(blob.bytes.clone()));
            }
            // The blob stored above: the same bytes, shared.
            let devfile = artifact
                .layers
                .iter()
                .find(|(_, b)| b.media_type == oci::DEVFILE_MEDIA_TYPE)
                .map(|(_, b)| contents.blobs[&b.digest].clone());
            let by_name = if let Some(folder) = upload.repository.strip_prefix(oci::STACK_REPOSITORY_PREFIX) {
                Some((&mut contents.stack_devfiles, folder))
            } else {
                upload
                    .repository
                    .strip_prefix(oci::SAMPLE_REPOSITORY_PREFIX)
                    .map(|n| (&mut contents.sample_devfiles, n))
            };
            if let Some((devfiles, name)) = by_name {
                let tags = devfiles.entry(name.to_string()).or_default();
                for tag in &upload.tags {
                    match &devfile {
                        Some(bytes) => tags.insert(tag.clone(), bytes.clone()),
                        None => tags.remove(tag),
                    };
                }
            }
            contents.manifests.insert(artifact.manifest_digest, Bytes::from(artifact.manifest));
        }
    }

    /// How many tags the store holds, over all repositories.
    pub fn len(&self) -> usize {
        self.contents.read().expect("the store lock is never poisoned").tags.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&Contents) -> T) -> T {
        f(&self.contents.read().expect("the store lock is never poisoned"))
    }
}

impl Store for LocalStore {
    fn fixed_per_snapshot(&self) -> bool {
        true
    }

    fn manifest<'a>(&'a self, repository: &'a str, reference: &'a str) -> StoreFuture<'a, Option<StoredManifest>> {
        let found = self.read(|c| {
            let digest = if reference.starts_with("sha256:") {
                c.members.get(repository)?.get(reference)?.clone()
            } else {
                c.tags.get(repository)?.get(reference)?.clone()
            };
            Some(StoredManifest { bytes: c.manifests.get(&digest)?.clone(), digest })
        });
        Box::pin(async move { Ok(found) })
    }

    fn blob<'a>(&'a self, repository: &'a str, digest: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        let found = self.read(|c| {
            c.members.get(repository)?.get(digest)?;
            c.blobs.get(digest).cloned()
        });
        Box::pin(async move { Ok(found) })
    }

    fn catalog(&self) -> StoreFuture<'_, Vec<String>> {
        let repositories = self.read(|c| c.tags.keys().cloned().collect());
        Box::pin(async move { Ok(repositories) })
    }

    fn tags<'a>(&'a self, repository: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        let tags = self.read(|c| c.tags.get(repository).map(|t| t.keys().cloned().collect()));
        Box::pin(async move { Ok(tags) })
    }

    fn devfile<'a>(&'a self, stack_folder: &'a str, version: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        let found = self.read(|c| c.stack_devfiles.get(stack_folder)?.get(version).cloned());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn sample_devfile<'a>(&'a self, name: &'a str, tag: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        let found = self.read(|c| c.sample_devfiles.get(name)?.get(tag).cloned());
        Box::pin(std::future::ready(Ok(found)))
    }
}
