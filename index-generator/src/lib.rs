//! The index generator: turns a registry repository into a validated devfile index.
//!
//! It owns reading sources ([`source`]: folders, Git, GitHub through its API with [`github`];
//! [`remote`]: the monitored repository of dynamic updates), scanning and validating them ([`scan`],
//! [`devfile`], [`yaml`]) and reporting problems ([`diagnostics`]), then packing stack versions
//! ([`pack`]), fetching sample devfiles ([`samples`]) and publishing all of it to an OCI
//! registry ([`publish`]). It does not own the wire
//! types (the `schemas` crate does) and it does not serve anything (`index-server` does).

pub mod devfile;
pub mod diagnostics;
pub mod github;
pub mod pack;
pub mod publish;
pub mod remote;
pub mod samples;
pub mod scan;
pub mod source;
pub mod yaml;

use schemas::index::IndexDocument;

pub use devfile::DevfileSchemas;
pub use diagnostics::{Diagnostic, Severity};
pub use remote::Remote;
pub use scan::{NoProgress, Progress, ScanError};
pub use source::{Checkout, SourceError};

/// How strict a run is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Uncommitted changes in a Git work tree are an error rather than a warning. (Callers also
    /// refuse to write anything when a strict run has any error.)
    pub strict: bool,
}

/// The index built from a checkout, and every problem found on the way.
#[derive(Debug)]
pub struct Generated {
    pub document: IndexDocument,
    pub problems: Vec<Diagnostic>,
    /// How many devfiles were checked.
    pub devfiles: usize,
    /// The folder of every stack version in the index.
    pub sources: Vec<scan::VersionSource>,
}

impl Generated {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }

    /// `(stacks, stack versions, samples, sample versions)` in the index.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for entry in &self.document.stacks {
            let versions = entry.versions.len();
            if entry.kind == Some(schemas::index::DevfileType::Sample) {
                counts.2 += 1;
                counts.3 += versions;
            } else {
                counts.0 += 1;
                counts.1 += versions;
            }
        }
        counts
    }
}

/// Scans `checkout` and builds its index document, stamped with the checkout's commit.
pub fn generate(
    checkout: &Checkout,
    schemas: &DevfileSchemas,
    options: Options,
    progress: &dyn Progress,
) -> Result<Generated, ScanError> {
    let scan = scan::scan(checkout, schemas, progress)?;
    let mut problems = Vec::new();
    let uncommitted = checkout.uncommitted();
    if !uncommitted.is_empty() {
        let mut shown: Vec<&str> = uncommitted.iter().take(5).map(String::as_str).collect();
        if uncommitted.len() > shown.len() {
            shown.push("...");
        }
        let message = format!(
            "the work tree has {} uncommitted change(s) ({}); {}",
            uncommitted.len(),
            shown.join(", "),
            if checkout.commit_hash.is_empty() {
                "the repository has no commit yet, so the index is stamped with none".to_string()
            } else {
                format!("the index is stamped with {} but does not match it", checkout.commit_hash)
            }
        );
        problems.push(if options.strict {
            Diagnostic::error(".", 0, "source/uncommitted", message)
        } else {
            Diagnostic::warning(".", 0, "source/uncommitted", message)
        });
    }
    problems.extend(scan.problems);
    Ok(Generated {
        document: IndexDocument { commit_hash: checkout.commit_hash.clone(), stacks: scan.entries },
        problems,
        devfiles: scan.devfiles,
        sources: scan.sources,
    })
}
