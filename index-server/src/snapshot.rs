//! The immutable snapshot every response is computed from, and the cell that holds the current one.
//!
//! A snapshot is built once (parse, convert to v1, serialize the unfiltered bodies, hash them) and
//! then only read, apart from a bounded cache of filtered bodies (a pure function of the snapshot
//! and the query, so dropped with it). Handlers clone the `Arc` of the current snapshot and work on it; an update builds
//! a new snapshot and [`SnapshotCell::swap`]s it in. No lock is held across an `.await`: the lock
//! only guards the pointer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::HeaderValue;
use bytes::Bytes;
use index_generator::Checkout;
use index_generator::scan::VersionSource;
use schemas::index::{DevfileType, IndexDocument, IndexEntry};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::filter::{self, Family};
use crate::icons::Icons;
use crate::reuse::Responses;

/// Which entries an index route lists: `/index/{all,stack,sample}` (and `/index` = stacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    All,
    Stacks,
    Samples,
}

impl Listing {
    /// The `{type}` path segment; `None` for anything but `all`, `stack` and `sample`.
    pub fn from_segment(segment: &str) -> Option<Listing> {
        match segment {
            "all" => Some(Listing::All),
            "stack" => Some(Listing::Stacks),
            "sample" => Some(Listing::Samples),
            _ => None,
        }
    }

    pub fn includes(self, entry: &IndexEntry) -> bool {
        let sample = entry.kind == Some(DevfileType::Sample);
        match self {
            Listing::All => true,
            Listing::Stacks => !sample,
            Listing::Samples => sample,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A response body ready to send, with its strong entity tag.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    /// `"<sha256 hex of bytes>"`, quotes included, as it goes in the `ETag` header.
    pub etag: String,
    /// The same, ready to send: cloning it shares the bytes.
    pub etag_header: HeaderValue,
}

impl Body {
    pub fn new(bytes: Vec<u8>) -> Body {
        let etag = format!("\"{}\"", sha256_hex(&bytes));
        let etag_header = HeaderValue::from_maybe_shared(Bytes::from(etag.clone())).expect("an ETag is quoted hex");
        Body { bytes: Bytes::from(bytes), etag, etag_header }
    }

    /// Two-space indented JSON, as the reference serves index bodies.
    pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> Body {
        // The index types only have string map keys: serializing them cannot fail.
        Body::new(serde_json::to_vec_pretty(value).expect("index types serialize to JSON"))
    }
}

/// Filtered bodies kept per snapshot: enough for the handful of queries clients repeat (odo, IDE
/// plugins), bounded so that arbitrary query strings cannot grow memory without limit.
const FILTERED_CACHE_ENTRIES: usize = 256;
const FILTERED_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Filtered bodies by route (family, then listing) and raw query string (two spellings of one
/// query are two entries). Keyed by the raw string so that a cached query is found without
/// parsing it or allocating a key; shared, so that a hit copies nothing.
#[derive(Debug, Default)]
struct FilteredCache {
    bodies: [[HashMap<String, Arc<Body>>; 3]; 2],
    entries: usize,
    bytes: usize,
}

impl FilteredCache {
    fn route(&mut self, family: Family, listing: Listing) -> &mut HashMap<String, Arc<Body>> {
        &mut self.bodies[family as usize][listing.slot()]
    }
}

/// One immutable view of the registry: the index document, both families of entries, the
/// pre-serialized unfiltered bodies and lookup tables.
#[derive(Debug)]
pub struct Snapshot {
    document: IndexDocument,
    /// The v1 form of every entry that has one (SPEC §6 "v1 conversion"), in index order.
    v1_entries: Vec<IndexEntry>,
    /// Unfiltered bodies by family and listing.
    bodies: [[Body; 3]; 2],
    /// Entry name → position in `document.stacks` (the first entry of that name wins).
    by_name: HashMap<String, usize>,
    /// The sha256 of the index document as `to_pretty_json` writes it (`sha256:<hex>`).
    digest: String,
    /// The registry repository the index was generated from (embedded mode). Holding it keeps a
    /// cloned or extracted Git tree alive.
    source: Option<Arc<Checkout>>,
    /// The local `stacks/` folder, for `/stacks/<path>` and relative icons: the source's, or the
    /// prebuilt mode's `DEVFILE_STACKS`.
    stacks_dir: Option<PathBuf>,
    /// (stack folder, version) → the version's folder on disk (`<root>/stacks/go`,
    /// `<root>/stacks/java-maven/1.3.0`), for the files a devfile refers to.
    version_dirs: HashMap<(String, String), PathBuf>,
    /// The digest of the `devfile-index` manifest this snapshot was loaded from or published as
    /// (OCI mode), which the reconciler compares with the registry's `devfile-index:latest`.
    published_digest: Option<String>,
    loaded_at: SystemTime,
    filtered: Mutex<FilteredCache>,
    /// Whole answers reused while this snapshot is served ([`crate::reuse`]).
    responses: Responses,
}

impl Snapshot {
    /// Builds a snapshot of `document`; `source` serves `/stacks/<path>` when present.
    pub fn new(document: IndexDocument, source: Option<Arc<Checkout>>) -> Snapshot {
        let v1_entries: Vec<IndexEntry> = document.stacks.iter().filter_map(filter::to_v1).collect();
        let bodies = [Family::V1, Family::V2].map(|family| {
            let entries = match family {
                Family::V1 => &v1_entries,
                Family::V2 => &document.stacks,
            };
            [Listing::All, Listing::Stacks, Listing::Samples].map(|listing| {
                let listed: Vec<&IndexEntry> = entries.iter().filter(|e| listing.includes(e)).collect();
                Body::json_pretty(&listed)
            })
        });
        let mut by_name = HashMap::new();
        for (i, entry) in document.stacks.iter().enumerate() {
            by_name.entry(entry.name.clone()).or_insert(i);
        }
        let digest = format!("sha256:{}", sha256_hex(document.to_pretty_json().as_bytes()));
        Snapshot {
            document,
            v1_entries,
            bodies,
            by_name,
            digest,
            stacks_dir: source.as_ref().map(|s| s.root.join("stacks")),
            source,
            version_dirs: HashMap::new(),
            published_digest: None,
            loaded_at: SystemTime::now(),
            filtered: Mutex::default(),
            responses: Responses::default(),
        }
    }

    /// Records where each stack version's folder is in the source (as the generator found them),
    /// so that [`Snapshot::version_dir`] can find the files its devfile refers to.
    pub fn with_version_folders(mut self, sources: &[VersionSource]) -> Snapshot {
        if let Some(root) = self.source.as_ref().map(|s| s.root.clone()) {
            self.version_dirs = version_dirs(&root, sources);
        }
        self
    }

    /// Serves local files from `stacks_dir` (the prebuilt mode's stacks folder), where the
    /// `folder` of each of `sources` is relative to `stacks_dir`.
    pub fn with_stacks_dir(mut self, stacks_dir: PathBuf, sources: &[VersionSource]) -> Snapshot {
        self.version_dirs = version_dirs(&stacks_dir, sources);
        self.stacks_dir = Some(stacks_dir);
        self
    }

    /// Records the digest of the `devfile-index` manifest the document was read from or pushed as.
    pub fn with_published_digest(mut self, digest: impl Into<String>) -> Snapshot {
        self.published_digest = Some(digest.into());
        self
    }

    /// The digest of the `devfile-index` manifest of this index, when it came from a registry.
    pub fn published_digest(&self) -> Option<&str> {
        self.published_digest.as_deref()
    }

    pub fn document(&self) -> &IndexDocument {
        &self.document
    }

    /// The Git commit the index was built from; empty for a plain folder.
    pub fn commit_hash(&self) -> &str {
        &self.document.commit_hash
    }

    /// `sha256:<hex>` of the index document.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The entries of a family, in index order: the document's for v2, their v1 form for v1.
    pub fn entries(&self, family: Family) -> &[IndexEntry] {
        match family {
            Family::V1 => &self.v1_entries,
            Family::V2 => &self.document.stacks,
        }
    }

    /// The unfiltered body of `/index/<listing>` (v1) or `/v2index/<listing>` (v2).
    pub fn body(&self, family: Family, listing: Listing) -> &Body {
        &self.bodies[family as usize][listing.slot()]
    }

    /// The filtered body of `/index/<listing>` or `/v2index/<listing>` for the raw query string
    /// `query`, from the cache or made by `filter` (outside the lock) and then cached.
    /// Filtering and serializing cost far more than sending: clients repeat the same queries.
    pub fn filtered_body(
        &self,
        family: Family,
        listing: Listing,
        query: &str,
        filter: impl FnOnce() -> Body,
    ) -> Arc<Body> {
        if let Some(body) = self.cached_filtered_body(family, listing, query) {
            return body;
        }
        let body = Arc::new(filter());
        let mut cache = self.filtered.lock().unwrap_or_else(|e| e.into_inner());
        if cache.entries >= FILTERED_CACHE_ENTRIES || cache.bytes + body.bytes.len() > FILTERED_CACHE_BYTES {
            // Starting over is simpler than an LRU and keeps whatever queries come next fast.
            *cache = FilteredCache::default();
        }
        if body.bytes.len() <= FILTERED_CACHE_BYTES && !cache.route(family, listing).contains_key(query) {
            cache.bytes += body.bytes.len();
            cache.entries += 1;
            cache.route(family, listing).insert(query.to_string(), Arc::clone(&body));
        }
        body
    }

    /// The filtered body cached for the raw query string `query`, if any: only a query that
    /// parsed and filters is ever cached, so a hit needs no parsing.
    pub fn cached_filtered_body(&self, family: Family, listing: Listing, query: &str) -> Option<Arc<Body>> {
        // The cache only holds complete bodies: a poisoned lock still holds valid ones.
        let mut cache = self.filtered.lock().unwrap_or_else(|e| e.into_inner());
        cache.route(family, listing).get(query).cloned()
    }

    /// The answers reused while this snapshot is served.
    pub fn responses(&self) -> &Responses {
        &self.responses
    }

    /// The entry (stack or sample) named `name`.
    pub fn entry(&self, name: &str) -> Option<&IndexEntry> {
        self.by_name.get(name).map(|&i| &self.document.stacks[i])
    }

    /// The registry's `stacks/` folder, when the snapshot was built from local files.
    pub fn stacks_dir(&self) -> Option<PathBuf> {
        self.stacks_dir.clone()
    }

    /// The folder of a stack version (`devfile-catalog/<stack_folder>:<version>`) on disk, when
    /// the snapshot was built from local files.
    pub fn version_dir(&self, stack_folder: &str, version: &str) -> Option<PathBuf> {
        self.version_dirs.get(&(stack_folder.to_string(), version.to_string())).cloned()
    }
}

/// (stack folder, version) → `root` joined with the version's folder.
fn version_dirs(root: &std::path::Path, sources: &[VersionSource]) -> HashMap<(String, String), PathBuf> {
    sources.iter().map(|s| ((s.stack.clone(), s.version.clone()), root.join(&s.folder))).collect()
}

/// Holds the current snapshot; readers get an `Arc` and never block a swap for longer than a
/// pointer copy. Installing a snapshot (here and in [`SnapshotCell::swap`]) starts fetching its
/// icons in the background, into a cache that outlives snapshots.
#[derive(Debug)]
pub struct SnapshotCell {
    current: watch::Sender<Arc<Snapshot>>,
    icons: Arc<Icons>,
}

impl SnapshotCell {
    /// A cell whose icons are fetched from wherever they are (see [`Icons::new`]).
    pub fn new(snapshot: Snapshot) -> SnapshotCell {
        SnapshotCell::with_icons(snapshot, Icons::new(Default::default()))
    }

    /// A cell with its own icon cache and fetching options.
    pub fn with_icons(snapshot: Snapshot, icons: Icons) -> SnapshotCell {
        let snapshot = Arc::new(snapshot);
        let icons = Arc::new(icons);
        icons.prefetch(&snapshot);
        SnapshotCell { current: watch::Sender::new(snapshot), icons }
    }

    /// The icons fetched so far, for `icon=base64`.
    pub fn icons(&self) -> &Icons {
        &self.icons
    }

    /// The snapshot to answer one request from.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.borrow().clone()
    }

    /// Makes `snapshot` the current one and returns the previous one. Requests already running
    /// finish on the snapshot they started with; subscribers are told.
    pub fn swap(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let new = Arc::new(snapshot);
        self.icons.prefetch(&new);
        tracing::info!(
            digest = %new.digest(),
            commit = %new.commit_hash(),
            entries = new.document().stacks.len(),
            "serving a new index"
        );
        self.current.send_replace(new)
    }

    /// A receiver that sees the current snapshot and every later swap (intermediate ones may be
    /// skipped when several swaps happen before it looks: it always ends on the newest).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.current.subscribe()
    }
}

/// Lowercase hex of the sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in hash {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn filtered_bodies_are_made_once_per_query_and_bounded() {
        let snapshot = Snapshot::new(IndexDocument::default(), None);
        let made = Cell::new(0);
        let make = |text: &str| {
            made.set(made.get() + 1);
            Body::new(text.as_bytes().to_vec())
        };
        let first = snapshot.filtered_body(Family::V2, Listing::All, "tags=Java", || make("[1]"));
        let again = snapshot.filtered_body(Family::V2, Listing::All, "tags=Java", || make("[2]"));
        assert_eq!((made.get(), &again.bytes, &again.etag), (1, &first.bytes, &first.etag));
        // Another route or family with the same query is another body.
        snapshot.filtered_body(Family::V1, Listing::All, "tags=Java", || make("[3]"));
        snapshot.filtered_body(Family::V2, Listing::Stacks, "tags=Java", || make("[4]"));
        assert_eq!(made.get(), 3);
        // Past the bound the cache starts over: memory stays bounded, later queries are cached.
        for i in 0..FILTERED_CACHE_ENTRIES + 1 {
            snapshot.filtered_body(Family::V2, Listing::All, &format!("name={i}"), || make("[]"));
        }
        assert!(snapshot.filtered.lock().unwrap().entries <= FILTERED_CACHE_ENTRIES);
        let before = made.get();
        snapshot.filtered_body(Family::V2, Listing::All, &format!("name={FILTERED_CACHE_ENTRIES}"), || make("[]"));
        assert_eq!(made.get(), before);
    }
}
