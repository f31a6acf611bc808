//! Fetches the devfile of every sample version from its Git remote (SPEC §5), so that it can be
//! published as `devfile-samples/<name>:<version>` and served with no network.
//!
//! Any URL `git` understands works, local repositories included. A remote that cannot be read is
//! a problem (a warning, or an error in strict mode), never a failed run: the sample stays in the
//! index, and only its devfile is unavailable.

use std::path::Path;
use std::process::{Command, Stdio};

use schemas::index::{DevfileType, Git, IndexDocument};

use crate::diagnostics::Diagnostic;

/// Where a sample's devfile may sit in its repository, in the order they are tried.
const DEVFILE_PATHS: [&str; 3] = ["devfile.yaml", ".devfile.yaml", ".devfile/devfile.yaml"];

/// Tag of a sample without versions.
pub const UNVERSIONED_TAG: &str = "latest";

const EXTRA_ENTRIES: &str = "extraDevfileEntries.yaml";

/// The devfile of one sample version, as found in its remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleDevfile {
    /// The sample's name, which names the OCI repository `devfile-samples/<name>`.
    pub name: String,
    /// The sample version, or [`UNVERSIONED_TAG`] for a sample without versions.
    pub tag: String,
    /// The devfile's path in the remote (`devfile.yaml`, `.devfile/devfile.yaml`, ...).
    pub path: String,
    pub bytes: Vec<u8>,
}

/// One sample version to fetch.
struct Job<'a> {
    name: &'a str,
    tag: &'a str,
    git: Option<&'a Git>,
}

/// Fetches the devfile of every sample version of `document`, several remotes at a time.
/// Returns the devfiles found, and a problem for each one that could not be fetched.
pub fn fetch(document: &IndexDocument, strict: bool) -> (Vec<SampleDevfile>, Vec<Diagnostic>) {
    let mut jobs = Vec::new();
    for entry in document.stacks.iter().filter(|e| e.kind == Some(DevfileType::Sample)) {
        if entry.versions.is_empty() {
            jobs.push(Job { name: &entry.name, tag: UNVERSIONED_TAG, git: entry.git.as_ref() });
        }
        for version in &entry.versions {
            jobs.push(Job {
                name: &entry.name,
                tag: &version.version,
                git: version.git.as_ref().or(entry.git.as_ref()),
            });
        }
    }
    let results: Vec<Result<SampleDevfile, String>> = std::thread::scope(|scope| {
        // A few at a time: each is a `git` process mostly waiting on the network.
        let mut results = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(8) {
            let handles: Vec<_> = chunk.iter().map(|job| scope.spawn(|| fetch_one(job))).collect();
            results.extend(handles.into_iter().map(|h| h.join().expect("a sample fetch does not panic")));
        }
        results
    });
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        match result {
            Ok(devfile) => found.push(devfile),
            Err(why) => {
                let message = format!(
                    "the devfile of sample {} {} cannot be fetched: {why}; the sample stays in the index but servers cannot serve its devfile",
                    job.name, job.tag
                );
                problems.push(if strict {
                    Diagnostic::error(EXTRA_ENTRIES, 0, "sample/unreachable", message)
                } else {
                    Diagnostic::warning(EXTRA_ENTRIES, 0, "sample/unreachable", message)
                });
            }
        }
    }
    (found, problems)
}

/// The remote URL and revision of a sample's `git` (SPEC §4 shape): `url`, else the remote named
/// `remoteName`, else `origin`, else the first remote; the revision, else the remote's HEAD.
fn remote(git: &Git) -> Option<(&str, Option<&str>)> {
    let url = if !git.url.is_empty() {
        git.url.as_str()
    } else {
        let named = [git.remote_name.as_str(), "origin"].into_iter().find_map(|n| git.remotes.get(n));
        named.or_else(|| git.remotes.values().next())?.as_str()
    };
    Some((url, Some(git.revision.as_str()).filter(|r| !r.is_empty())))
}

fn fetch_one(job: &Job) -> Result<SampleDevfile, String> {
    let git = job.git.ok_or("it has no git remote")?;
    let (url, revision) = remote(git).ok_or("its git section names no remote")?;
    let at = revision.unwrap_or("HEAD");
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    run_git(dir.path(), &["init", "--quiet", "--bare"])?;
    // A shallow fetch of just that revision; older servers refuse a commit id that is not a
    // branch or tag head, so fall back to fetching everything.
    let commit = match run_git(dir.path(), &["fetch", "--quiet", "--depth=1", "--no-tags", url, at]) {
        Ok(_) => "FETCH_HEAD".to_string(),
        Err(shallow) => {
            run_git(dir.path(), &["fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*"])
                .map_err(|_| format!("{url} at {at}: {shallow}"))?;
            at.to_string()
        }
    };
    let prefix = git.sub_dir.trim_matches('/');
    for path in DEVFILE_PATHS {
        let path = if prefix.is_empty() { path.to_string() } else { format!("{prefix}/{path}") };
        if let Ok(bytes) = run_git(dir.path(), &["cat-file", "blob", &format!("{commit}:{path}")]) {
            return Ok(SampleDevfile { name: job.name.to_string(), tag: job.tag.to_string(), path, bytes });
        }
    }
    Err(format!("{url} at {at} has none of {}", DEVFILE_PATHS.join(", ")))
}

/// Runs git, turning a failure into its last line of standard error.
fn run_git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        // Never wait for a password on a terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn remote_prefers_url_then_named_then_origin() {
        let remotes = BTreeMap::from([("a".to_string(), "A".to_string()), ("origin".to_string(), "O".to_string())]);
        let git = Git { remotes: remotes.clone(), ..Git::default() };
        assert_eq!(remote(&git), Some(("O", None)));
        let git = Git { remotes: remotes.clone(), remote_name: "a".into(), revision: "v1".into(), ..Git::default() };
        assert_eq!(remote(&git), Some(("A", Some("v1"))));
        let git = Git { remotes, url: "U".into(), ..Git::default() };
        assert_eq!(remote(&git), Some(("U", None)));
        assert_eq!(remote(&Git::default()), None);
    }
}
