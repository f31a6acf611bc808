//! The prebuilt mode (SPEC §9 `DEVFILE_INDEX`, `DEVFILE_STACKS`, `DEVFILE_SAMPLES`): an index.json
//! built elsewhere, served as it is, with the files the reference's registry image holds next to
//! it. Nothing is generated or validated, and nothing is fetched: no network is needed.
//!
//! Layout, as the reference index server reads it:
//! - stack versions: `<stacks>/<name>/<version>/`, else `<stacks>/<name>/` (a single-version
//!   stack), each packed into memory as the embedded mode packs it, so `/devfiles` and `/v2`
//!   serve the very artifacts `index-generator publish` would push;
//! - sample devfiles: `<samples>/<name>/devfile.yaml` for a sample without versions,
//!   `<samples>/<name>/<version>/devfile.yaml` otherwise.
//!
//! A stack version or sample whose files are missing stays in the index and answers 404, with
//! one warning each at startup (the reference would not start).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use index_generator::samples::{SampleDevfile, UNVERSIONED_TAG};
use index_generator::scan::VersionSource;
use schemas::index::{DevfileType, IndexDocument, IndexEntry};

use crate::config::Prebuilt;
use crate::devfiles::stack_folder;
use crate::snapshot::Snapshot;
use crate::store::{LocalStore, StoreError};

/// The devfile names a stack version folder may hold, in the order they are looked for.
const DEVFILE_NAMES: [&str; 2] = ["devfile.yaml", ".devfile.yaml"];

#[derive(Debug, thiserror::Error)]
pub enum PrebuiltError {
    #[error("cannot read the index {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{} is not a devfile registry index: {reason} (expected the reference's array of entries, or {{\"commit_hash\": \"...\", \"stacks\": [...]}})",
        path.display()
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A prebuilt index, loaded.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub store: Arc<LocalStore>,
    /// Stack versions and sample versions whose files were not found (they answer 404).
    pub missing: usize,
}

/// Reads the index, packs every stack version found in the stacks folder and reads every sample
/// devfile found in the samples folder. Blocking: file I/O.
pub fn load(prebuilt: &Prebuilt) -> Result<Loaded, PrebuiltError> {
    let started = Instant::now();
    let bytes = std::fs::read(&prebuilt.index)
        .map_err(|source| PrebuiltError::Read { path: prebuilt.index.clone(), source })?;
    let document = parse(&bytes).map_err(|reason| PrebuiltError::Invalid { path: prebuilt.index.clone(), reason })?;
    let mut missing = 0;
    let mut sources = Vec::new();
    if let Some(stacks) = &prebuilt.stacks {
        for entry in document.stacks.iter().filter(|e| e.kind != Some(DevfileType::Sample)) {
            for version in &entry.versions {
                match find_version(stacks, entry, &version.version, stack_folder(entry, version)) {
                    Some(source) => sources.push(source),
                    None => {
                        missing += 1;
                        tracing::warn!(
                            stack.name = %entry.name,
                            stack.version = %version.version,
                            stacks = %stacks.display(),
                            "no folder with a devfile for this stack version: its devfile answers 404"
                        );
                    }
                }
            }
        }
    }
    let mut samples = Vec::new();
    if let Some(folder) = &prebuilt.samples {
        for entry in document.stacks.iter().filter(|e| e.kind == Some(DevfileType::Sample)) {
            let tags: Vec<&str> = if entry.versions.is_empty() {
                vec![UNVERSIONED_TAG]
            } else {
                entry.versions.iter().map(|v| v.version.as_str()).collect()
            };
            for tag in tags {
                match read_sample(folder, &entry.name, tag) {
                    Some(sample) => samples.push(sample),
                    None => {
                        missing += 1;
                        tracing::warn!(
                            sample.name = %entry.name,
                            sample.version = tag,
                            samples = %folder.display(),
                            "no devfile for this sample: it answers 404"
                        );
                    }
                }
            }
        }
    }
    let root = prebuilt.stacks.clone().unwrap_or_default();
    let uploads = index_generator::publish::uploads(&root, &sources, &samples)
        .map_err(|source| StoreError::Pack { folder: root.display().to_string(), source })?;
    let store = Arc::new(LocalStore::new(uploads));
    tracing::info!(
        index = %prebuilt.index.display(),
        stacks = prebuilt.stacks.as_ref().map(|p| p.display().to_string()),
        samples = prebuilt.samples.as_ref().map(|p| p.display().to_string()),
        commit = %document.commit_hash,
        entries = document.stacks.len(),
        stack_versions = sources.len(),
        sample_devfiles = samples.len(),
        missing,
        duration_ms = started.elapsed().as_millis() as u64,
        "loaded the prebuilt index"
    );
    let snapshot = match &prebuilt.stacks {
        Some(stacks) => Snapshot::new(document, None).with_stacks_dir(stacks.clone(), &sources),
        None => Snapshot::new(document, None),
    };
    Ok(Loaded { snapshot, store, missing })
}

/// The index document in `bytes`: the reference's bare array of entries (no commit), or our
/// `{"commit_hash", "stacks"}` document. Every entry must have a name.
pub fn parse(bytes: &[u8]) -> Result<IndexDocument, String> {
    /// Our document, with `stacks` required (an object without it is not an index).
    #[derive(serde::Deserialize)]
    struct Document {
        #[serde(default)]
        commit_hash: String,
        stacks: Vec<IndexEntry>,
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let document = match first {
        Some(b'[') => IndexDocument {
            commit_hash: String::new(),
            stacks: serde_json::from_slice(bytes).map_err(|e| e.to_string())?,
        },
        Some(b'{') => {
            let document: Document = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            IndexDocument { commit_hash: document.commit_hash, stacks: document.stacks }
        }
        _ => return Err("it is neither a JSON array nor a JSON object".to_string()),
    };
    if let Some(i) = document.stacks.iter().position(|e| e.name.is_empty()) {
        return Err(format!("entry {} has no name", i + 1));
    }
    Ok(document)
}

/// The folder of a stack version: `<stacks>/<folder>/<version>/`, else `<stacks>/<folder>/`, for
/// `folder` (the one `links.self` names, which the devfile routes look up) and then the entry's
/// name, the first that holds a devfile.
fn find_version(stacks: &Path, entry: &IndexEntry, version: &str, folder: &str) -> Option<VersionSource> {
    if !is_plain_name(version) {
        return None;
    }
    let mut candidates = vec![folder];
    if entry.name != folder {
        candidates.push(&entry.name);
    }
    for candidate in candidates.into_iter().filter(|f| is_plain_name(f)) {
        for relative in [format!("{candidate}/{version}"), candidate.to_string()] {
            let dir = stacks.join(&relative);
            if let Some(devfile_name) = DEVFILE_NAMES.into_iter().find(|n| dir.join(n).is_file()) {
                return Some(VersionSource {
                    stack: folder.to_string(),
                    version: version.to_string(),
                    folder: relative,
                    devfile_name,
                });
            }
        }
    }
    None
}

/// The devfile of a sample version: `<samples>/<name>/devfile.yaml` (no versions) or
/// `<samples>/<name>/<version>/devfile.yaml`.
fn read_sample(samples: &Path, name: &str, tag: &str) -> Option<SampleDevfile> {
    if !is_plain_name(name) || !is_plain_name(tag) {
        return None;
    }
    let dir = if tag == UNVERSIONED_TAG { samples.join(name) } else { samples.join(name).join(tag) };
    DEVFILE_NAMES.into_iter().find_map(|file| {
        let bytes = std::fs::read(dir.join(file)).ok()?;
        Some(SampleDevfile { name: name.to_string(), tag: tag.to_string(), path: file.to_string(), bytes })
    })
}

/// A name that is one path segment: not empty, not `.` or `..`, no separator. The index is the
/// operator's file, but a name in it must still not reach outside the folders.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_index_formats() {
        let legacy = parse(br#"[{"name": "go", "type": "stack"}]"#).unwrap();
        assert_eq!((legacy.commit_hash.as_str(), legacy.stacks.len()), ("", 1));
        let ours = parse(br#" {"commit_hash": "abc", "stacks": [{"name": "go"}]}"#).unwrap();
        assert_eq!((ours.commit_hash.as_str(), ours.stacks[0].name.as_str()), ("abc", "go"));
        assert_eq!(parse(b"[]").unwrap().stacks.len(), 0);
    }

    #[test]
    fn refuses_what_is_not_an_index() {
        for (bytes, reason) in [
            (&b""[..], "neither a JSON array nor a JSON object"),
            (b"stacks: []", "neither a JSON array nor a JSON object"),
            (b"{}", "missing field `stacks`"),
            (b"[{\"name\": 1}]", "invalid type: integer `1`, expected a string at line 1 column 11"),
            (b"[{\"displayName\": \"Go\"}]", "entry 1 has no name"),
            (b"[{\"name\": \"go\"},", "EOF while parsing"),
        ] {
            let error = parse(bytes).unwrap_err();
            assert!(error.contains(reason), "{}: {error}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("go") && is_plain_name("1.0.0") && is_plain_name("..go"));
        for bad in ["", ".", "..", "a/b", "a\\b", "/etc"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}
