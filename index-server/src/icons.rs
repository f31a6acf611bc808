//! `icon=base64` (SPEC §6): the top-level icons of index entries as `data:` URIs.
//!
//! Icons are fetched in the background when a snapshot is installed, never on a request's path:
//! a request gets the `data:` URI of every icon fetched so far and the URL of the others, which
//! is also what an icon that cannot be fetched stays. Remote icons are cached by URL for the life
//! of the process, so a new snapshot fetches only the icons it is the first to name; one that
//! failed is tried again with the next snapshot. Local icons (a path relative to the stack's
//! folder, inside the source's `stacks/` folder) are read again with every snapshot, since the
//! files may have changed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use schemas::index::{DevfileType, IndexEntry};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::devfiles;
use crate::download;
use crate::snapshot::Snapshot;

/// How icons are fetched.
#[derive(Debug, Clone)]
pub struct IconOptions {
    /// Fetch `http(s)` icons. Without it only local icons are read (air-gapped registries, and
    /// tests, which must not reach the internet).
    pub remote: bool,
    /// Icons fetched at once.
    pub concurrency: usize,
    /// Per icon, connecting included.
    pub timeout: Duration,
    /// Larger icons stay URLs.
    pub max_bytes: usize,
}

impl Default for IconOptions {
    fn default() -> IconOptions {
        IconOptions { remote: true, concurrency: 8, timeout: Duration::from_secs(10), max_bytes: 1024 * 1024 }
    }
}

impl IconOptions {
    /// Local icons only: nothing is fetched over the network.
    pub fn offline() -> IconOptions {
        IconOptions { remote: false, ..IconOptions::default() }
    }
}

/// The icon cache and its fetcher. Shared by every snapshot of a [`crate::SnapshotCell`].
pub struct Icons {
    options: IconOptions,
    /// `None` when remote icons are off, or no HTTP client could be made (logged).
    client: Option<reqwest::Client>,
    /// Cache key (the URL, or the path of a local icon) → `data:` URI.
    cache: RwLock<HashMap<String, Arc<str>>>,
    /// Remote icons being fetched, so that snapshots installed close together fetch each once.
    in_flight: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Icons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icons")
            .field("options", &self.options)
            .field("cached", &self.cache.read().map_or(0, |c| c.len()))
            .finish_non_exhaustive()
    }
}

/// Where an icon comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Remote(String),
    /// A file that must resolve inside `root` (the source's `stacks/` folder).
    Local {
        path: PathBuf,
        root: PathBuf,
    },
}

impl Icons {
    pub fn new(options: IconOptions) -> Icons {
        let client = if options.remote {
            download::client(options.timeout)
                .inspect_err(|e| tracing::warn!(error = %e, "remote icons will not be fetched"))
                .ok()
        } else {
            None
        };
        Icons { options, client, cache: RwLock::default(), in_flight: Mutex::default() }
    }

    /// Starts fetching, in the background, the icons of `snapshot` that are not cached yet.
    /// Needs a Tokio runtime: without one nothing is fetched, and icons stay URLs.
    pub fn prefetch(self: &Arc<Self>, snapshot: &Snapshot) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no async runtime: icons are not fetched");
            return;
        };
        let mut jobs = Vec::new();
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = HashSet::new();
            for entry in &snapshot.document().stacks {
                let Some((key, source)) = source(snapshot, &entry.name, &entry.icon) else { continue };
                if !seen.insert(key.clone()) {
                    continue;
                }
                if let Source::Remote(_) = source {
                    if self.client.is_none() || cache.contains_key(&key) || !in_flight.insert(key.clone()) {
                        continue;
                    }
                }
                jobs.push((key, source));
            }
        }
        if !jobs.is_empty() {
            runtime.spawn(Arc::clone(self).fetch_all(jobs));
        }
    }

    /// Replaces the top-level icon of every entry whose icon is cached by its `data:` URI.
    /// `entries` are entries of `snapshot` (v1 or v2 form).
    pub fn inline(&self, snapshot: &Snapshot, entries: &mut [IndexEntry]) {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        if cache.is_empty() {
            return;
        }
        for entry in entries {
            let data = source(snapshot, &entry.name, &entry.icon).and_then(|(key, _)| cache.get(&key));
            if let Some(data) = data {
                entry.icon = data.to_string();
            }
        }
    }

    /// The `data:` URI of the top-level icon of the entry `name` of `snapshot`, when it is cached.
    pub fn cached(&self, snapshot: &Snapshot, name: &str) -> Option<Arc<str>> {
        let entry = snapshot.entry(name)?;
        let (key, _) = source(snapshot, name, &entry.icon)?;
        self.cache.read().unwrap_or_else(|e| e.into_inner()).get(&key).cloned()
    }

    async fn fetch_all(self: Arc<Self>, jobs: Vec<(String, Source)>) {
        let started = Instant::now();
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (key, source) in jobs {
            let icons = Arc::clone(&self);
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                // Removes a remote key from `in_flight` however the task ends.
                let _in_flight = matches!(source, Source::Remote(_)).then(|| InFlight(&icons, key.clone()));
                let _permit = permits.acquire().await;
                let loaded = icons.load(&source).await;
                let mut cache = icons.cache.write().unwrap_or_else(|e| e.into_inner());
                match loaded {
                    Ok(bytes) => {
                        cache.insert(key, data_uri(&bytes).into());
                        true
                    }
                    Err(why) => {
                        tracing::debug!(icon = %key, error = %why, "icon not fetched; it stays a URL");
                        cache.remove(&key);
                        false
                    }
                }
            });
        }
        let (mut fetched, mut failed) = (0usize, 0usize);
        while let Some(done) = tasks.join_next().await {
            if done.unwrap_or(false) {
                fetched += 1;
            } else {
                failed += 1;
            }
        }
        tracing::info!(
            fetched,
            failed,
            duration_ms = started.elapsed().as_millis() as u64,
            "fetched icons for icon=base64; the others stay URLs"
        );
    }

    async fn load(&self, source: &Source) -> Result<bytes::Bytes, String> {
        match source {
            Source::Remote(url) => {
                let client = self.client.as_ref().ok_or("remote icons are off")?;
                download::get(client, url, self.options.max_bytes).await.map_err(|e| e.to_string())
            }
            Source::Local { path, root } => read_local(path, root, self.options.max_bytes).await,
        }
    }
}

/// Marks a remote icon as being fetched until dropped.
struct InFlight<'a>(&'a Icons, String);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// The cache key and source of the icon `icon` of the entry `name` of `snapshot`: an `http(s)`
/// URL is its own key; a relative path is a file of the stack's folder, keyed by its path.
/// `None` for no icon, other URL schemes (a `data:` URI is already inline), absolute paths,
/// and paths when the snapshot has no local files or the entry is a sample (no folder).
fn source(snapshot: &Snapshot, name: &str, icon: &str) -> Option<(String, Source)> {
    let icon = icon.trim();
    let lower = icon.get(..8).unwrap_or(icon).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some((icon.to_string(), Source::Remote(icon.to_string())));
    }
    if icon.is_empty() || icon.contains(':') || Path::new(icon).is_absolute() {
        return None;
    }
    let entry = snapshot.entry(name).filter(|e| e.kind != Some(DevfileType::Sample))?;
    let root = snapshot.stacks_dir()?;
    let path = root.join(devfiles::entry_folder(entry)).join(icon);
    Some((path.to_string_lossy().into_owned(), Source::Local { path, root }))
}

/// A local icon, when it resolves (links included) inside `root` and is a small enough file.
async fn read_local(path: &Path, root: &Path, max_bytes: usize) -> Result<bytes::Bytes, String> {
    let root = tokio::fs::canonicalize(root).await.map_err(|e| format!("{}: {e}", root.display()))?;
    let target = tokio::fs::canonicalize(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    if !target.starts_with(&root) {
        return Err(format!("{} is outside the stacks folder", path.display()));
    }
    let meta = tokio::fs::metadata(&target).await.map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.len() > max_bytes as u64 {
        return Err(format!("{} is not a file of at most {max_bytes} bytes", path.display()));
    }
    tokio::fs::read(&target).await.map(bytes::Bytes::from).map_err(|e| e.to_string())
}

/// `data:<mime>;base64,<bytes>`: PNG and JPEG are recognized by their magic bytes, anything
/// else is taken for SVG, as the reference does.
fn data_uri(bytes: &[u8]) -> String {
    let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        "image/svg+xml"
    };
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::data_uri;

    #[test]
    fn media_types_are_sniffed() {
        assert_eq!(data_uri(b"\x89PNG\r\n\x1a\nrest"), "data:image/png;base64,iVBORw0KGgpyZXN0");
        assert_eq!(data_uri(&[0xFF, 0xD8, 0xFF, 0xE0]), "data:image/jpeg;base64,/9j/4A==");
        assert_eq!(data_uri(b"<svg/>"), "data:image/svg+xml;base64,PHN2Zy8+");
        assert_eq!(data_uri(b""), "data:image/svg+xml;base64,");
    }
}
