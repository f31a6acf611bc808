//! The embedded mode: generate the index of a registry repository in process, read its devfiles
//! into a [`LocalStore`], and build the first snapshot. Nothing else needs to run. Sample
//! devfiles come from their Git remotes, fetched in the background ([`fetch_samples`]).

use std::sync::Arc;
use std::time::Instant;

use index_generator::samples::FetchLimits;
use index_generator::{Checkout, DevfileSchemas, NoProgress, Options, ScanError, SourceError, source};

use crate::snapshot::Snapshot;
use crate::store::{LocalStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open the registry repository {source_name}: {error}")]
    Source { source_name: String, error: SourceError },
    #[error("cannot scan the registry repository {source_name}: {error}")]
    Scan { source_name: String, error: ScanError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A registry repository, loaded.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub store: Arc<LocalStore>,
    /// Errors in the source (each left a stack version out of the index) and warnings.
    pub errors: usize,
    pub warnings: usize,
}

/// Opens `source` (a folder or a Git URL, at `reference` when given), generates its index as
/// `index-generator generate` does (a stack version with an error is left out) and reads the
/// devfile of every stack version in it. Blocking: file and Git I/O.
pub fn load(source_name: &str, reference: Option<&str>) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let checkout: Checkout = source::open(source_name, reference)
        .map_err(|error| LoadError::Source { source_name: source_name.to_string(), error })?;
    let schemas = DevfileSchemas::new();
    let generated = index_generator::generate(&checkout, &schemas, Options::default(), &NoProgress)
        .map_err(|error| LoadError::Scan { source_name: source_name.to_string(), error })?;
    for problem in &generated.problems {
        if problem.is_error() {
            tracing::warn!(file = %problem.location(), rule = %problem.rule, "{}; left out of the index", problem.message);
        } else {
            tracing::info!(file = %problem.location(), rule = %problem.rule, "{}", problem.message);
        }
    }
    let uploads = index_generator::publish::uploads(&checkout.root, &generated.sources, &[])
        .map_err(|source| StoreError::Pack { folder: checkout.root.display().to_string(), source })?;
    let store = Arc::new(LocalStore::new(uploads));
    let (stacks, stack_versions, samples, sample_versions) = generated.counts();
    tracing::info!(
        source = source_name,
        commit = %checkout.commit_hash,
        stacks,
        stack_versions,
        samples,
        sample_versions,
        errors = generated.errors(),
        warnings = generated.warnings(),
        duration_ms = started.elapsed().as_millis() as u64,
        "generated the index"
    );
    let (errors, warnings) = (generated.errors(), generated.warnings());
    let snapshot = Snapshot::new(generated.document, Some(Arc::new(checkout))).with_version_folders(&generated.sources);
    Ok(Loaded { snapshot, store, errors, warnings })
}

/// Fetches the devfile of every sample of `snapshot` from its Git remote and adds it to `store`.
/// Blocking (Git); a sample that cannot be fetched within `limits` (its timeout, the shutdown
/// flag) is logged and answers 404.
pub fn fetch_samples(snapshot: &Snapshot, store: &LocalStore, limits: &FetchLimits) {
    let started = Instant::now();
    let (samples, problems) = index_generator::samples::fetch_with(snapshot.document(), false, limits);
    if limits.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
        tracing::debug!("sample devfile fetching abandoned: the server is stopping");
        return;
    }
    for problem in &problems {
        tracing::warn!(rule = %problem.rule, "{}", problem.message);
    }
    let timed_out = problems.iter().filter(|p| p.message.contains("timed out after")).count();
    if let (Some(timeout), 1..) = (limits.timeout, timed_out) {
        tracing::warn!(
            timed_out,
            timeout_ms = timeout.as_millis() as u64,
            "{timed_out} sample devfile fetch(es) took longer than the sample fetch timeout (--sample-fetch-timeout, SAMPLE_FETCH_TIMEOUT) and were abandoned: those samples answer 404"
        );
    }
    let fetched = samples.len();
    match index_generator::publish::uploads(std::path::Path::new("."), &[], &samples) {
        Ok(uploads) => store.add(uploads),
        Err(e) => tracing::error!(error = %e, "cannot store the sample devfiles"),
    }
    tracing::info!(
        fetched,
        failed = problems.len(),
        duration_ms = started.elapsed().as_millis() as u64,
        "sample devfiles fetched"
    );
}
