//! Fetches the devfile of every sample version from its Git remote (SPEC §5), so that it can be
//! published as `devfile-samples/<name>:<version>` and served with no network.
//!
//! Any URL `git` understands works, local repositories included. A remote that cannot be read is
//! a problem (a warning, or an error in strict mode), never a failed run: the sample stays in the
//! index, and only its devfile is unavailable.

use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// Bounds on fetching: how long one sample version may take (all its `git` runs together), and a
/// flag that abandons every fetch still running when it is set. A `git` run that is stopped is
/// killed with the processes it started (its process group).
#[derive(Debug, Clone, Default)]
pub struct FetchLimits {
    pub timeout: Option<Duration>,
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Fetches the devfile of every sample version of `document`, several remotes at a time.
/// Returns the devfiles found, and a problem for each one that could not be fetched.
pub fn fetch(document: &IndexDocument, strict: bool) -> (Vec<SampleDevfile>, Vec<Diagnostic>) {
    fetch_with(document, strict, &FetchLimits::default())
}

/// [`fetch`] within `limits`: a sample that takes longer than the timeout, or is still being
/// fetched when the flag is set, is a problem like an unreachable one.
pub fn fetch_with(
    document: &IndexDocument,
    strict: bool,
    limits: &FetchLimits,
) -> (Vec<SampleDevfile>, Vec<Diagnostic>) {
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
            let handles: Vec<_> = chunk
                .iter()
                .map(|job| {
                    let runner = Runner {
                        deadline: limits.timeout.map(|t| (Instant::now() + t, t)),
                        cancel: limits.cancel.as_deref(),
                    };
                    scope.spawn(move || fetch_one(job, &runner))
                })
                .collect();
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

/// What git says when it cannot even talk to a remote: a second, longer fetch would fail too.
const UNREACHABLE: [&str; 4] = ["not allowed", "Could not resolve host", "Connection refused", "Failed to connect"];

fn fetch_one(job: &Job, run: &Runner) -> Result<SampleDevfile, String> {
    let git = job.git.ok_or("it has no git remote")?;
    let (url, revision) = remote(git).ok_or("its git section names no remote")?;
    let at = revision.unwrap_or("HEAD");
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    // A branch, a tag or the remote's HEAD: one shallow clone of just that, a single process.
    let cloned = dir.path().join("clone.git");
    let commit_id = at.len() >= 7 && at.bytes().all(|b| b.is_ascii_hexdigit());
    let (repo, commit) = if commit_id {
        (dir.path().to_path_buf(), fetch_commit(dir.path(), url, at, run)?)
    } else {
        let mut clone = vec!["clone", "--quiet", "--bare", "--depth=1"];
        if let Some(revision) = revision {
            clone.extend(["--branch", revision]);
        }
        let target = cloned.to_string_lossy();
        clone.extend(["--", url, &target]);
        match run.run(dir.path(), &clone) {
            Ok(_) => (cloned.clone(), "HEAD".to_string()),
            // Running out of time is not a reason to try a longer fetch, nor is a remote that
            // cannot be reached at all (git's own words; in another language, it is tried anyway).
            Err(stopped) if run.stopped() => return Err(format!("{url} at {at}: {stopped}")),
            Err(unreachable) if UNREACHABLE.iter().any(|words| unreachable.contains(words)) => {
                return Err(format!("{url} at {at}: {unreachable}"));
            }
            // Say, a remote that cannot clone shallow: fetch as for a commit.
            Err(_) => (dir.path().to_path_buf(), fetch_commit(dir.path(), url, at, run)?),
        }
    };
    let prefix = git.sub_dir.trim_matches('/');
    for path in DEVFILE_PATHS {
        let path = if prefix.is_empty() { path.to_string() } else { format!("{prefix}/{path}") };
        if let Ok(bytes) = run.run(&repo, &["cat-file", "blob", &format!("{commit}:{path}")]) {
            return Ok(SampleDevfile { name: job.name.to_string(), tag: job.tag.to_string(), path, bytes });
        }
    }
    Err(format!("{url} at {at} has none of {}", DEVFILE_PATHS.join(", ")))
}

/// Fetches `at` from `url` into a new bare repository in `dir`; returns what to read it as.
fn fetch_commit(dir: &Path, url: &str, at: &str, run: &Runner) -> Result<String, String> {
    run.run(dir, &["init", "--quiet", "--bare"])?;
    // A shallow fetch of just that revision; older servers refuse a commit id that is not a
    // branch or tag head, so fall back to fetching everything.
    match run.run(dir, &["fetch", "--quiet", "--depth=1", "--no-tags", url, at]) {
        Ok(_) => Ok("FETCH_HEAD".to_string()),
        Err(stopped) if run.stopped() => Err(format!("{url} at {at}: {stopped}")),
        Err(unreachable) if UNREACHABLE.iter().any(|words| unreachable.contains(words)) => {
            Err(format!("{url} at {at}: {unreachable}"))
        }
        Err(shallow) => {
            run.run(dir, &["fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*"])
                .map_err(|_| format!("{url} at {at}: {shallow}"))?;
            Ok(at.to_string())
        }
    }
}

/// How `git` runs for one sample version: until its deadline (the instant, and the timeout it
/// came from for the message), unless the cancel flag is set first.
struct Runner<'a> {
    deadline: Option<(Instant, Duration)>,
    cancel: Option<&'a AtomicBool>,
}

impl Runner<'_> {
    /// Runs git, turning a failure into its last line of standard error.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(dir)
            // Never wait for a password on a terminal.
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        if self.deadline.is_none() && self.cancel.is_none() {
            let output = command.output().map_err(|e| format!("cannot run git: {e}"))?;
            return outcome(output.status, output.stdout, &output.stderr);
        }
        // Bounded: git may be stopped, so it writes to files (a pipe could be held open by a
        // helper it started) and runs in a process group of its own, which is killed whole.
        let file = || tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"));
        let (mut stdout, mut stderr) = (file()?, file()?);
        let clone = |f: &std::fs::File| f.try_clone().map_err(|e| format!("cannot create a temporary file: {e}"));
        command.stdout(clone(&stdout)?).stderr(clone(&stderr)?);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| format!("cannot run git: {e}"))?;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| format!("cannot wait for git: {e}"))? {
                break status;
            }
            let why = if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                Some("abandoned (the fetch was cancelled)".to_string())
            } else {
                self.deadline
                    .filter(|(at, _)| Instant::now() >= *at)
                    .map(|(_, timeout)| format!("timed out after {}", humanize(timeout)))
            };
            if let Some(why) = why {
                kill(&mut child);
                return Err(format!("git {} {why}", args.first().unwrap_or(&"")));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        let read = |f: &mut std::fs::File| {
            let mut bytes = Vec::new();
            f.rewind().and_then(|()| f.read_to_end(&mut bytes)).map(|_| bytes)
        };
        let out = read(&mut stdout).map_err(|e| format!("cannot read git's output: {e}"))?;
        let err = read(&mut stderr).unwrap_or_default();
        outcome(status, out, &err)
    }

    /// Whether this sample's time is up or the fetch was cancelled.
    fn stopped(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|(at, _)| Instant::now() >= at)
    }
}

/// Kills git and whatever it started (its process group), then reaps it.
fn kill(child: &mut std::process::Child) {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// `60 s`, `1.5 s`, `500 ms`.
fn humanize(duration: Duration) -> String {
    if duration.as_millis() % 1000 == 0 {
        format!("{} s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Standard output on success, else the last line of standard error.
fn outcome(status: std::process::ExitStatus, stdout: Vec<u8>, stderr: &[u8]) -> Result<Vec<u8>, String> {
    if status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(stderr);
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
