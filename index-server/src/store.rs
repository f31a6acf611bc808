//! Where the files of stack versions come from: the artifact store.
//!
//! Two implementations: [`LocalStore`], the embedded store filled from a registry repository at
//! startup, and (in a later step) the OCI registry the generator publishes to.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use index_generator::scan::VersionSource;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// What a store method returns. Boxed so that the store is chosen at startup and held as
/// `Arc<dyn Store>` (an `async fn` in a trait cannot be called through `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The artifact store, addressed as the OCI artifacts are: `devfile-catalog/<stack folder>:<version>`.
pub trait Store: Send + Sync + 'static {
    /// The devfile of a stack version, `None` when the store does not have it.
    fn devfile<'a>(&'a self, stack_folder: &'a str, version: &'a str) -> StoreFuture<'a, Option<Bytes>>;
}

/// The embedded store: every stack version's devfile, read into memory when the server starts.
#[derive(Debug, Default)]
pub struct LocalStore {
    devfiles: HashMap<(String, String), Bytes>,
}

impl LocalStore {
    /// Reads `<root>/<folder>/<devfile name>` of every stack version in `sources`.
    pub fn read(root: &std::path::Path, sources: &[VersionSource]) -> Result<LocalStore, StoreError> {
        let mut devfiles = HashMap::with_capacity(sources.len());
        for source in sources {
            let path = root.join(&source.folder).join(source.devfile_name);
            let bytes = std::fs::read(&path).map_err(|e| StoreError::Read { path, source: e })?;
            devfiles.insert((source.stack.clone(), source.version.clone()), Bytes::from(bytes));
        }
        Ok(LocalStore { devfiles })
    }

    /// How many devfiles the store holds.
    pub fn len(&self) -> usize {
        self.devfiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devfiles.is_empty()
    }
}

impl Store for LocalStore {
    fn devfile<'a>(&'a self, stack_folder: &'a str, version: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        let found = self.devfiles.get(&(stack_folder.to_string(), version.to_string())).cloned();
        Box::pin(async move { Ok(found) })
    }
}
