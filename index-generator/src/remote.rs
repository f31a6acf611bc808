//! The monitored repository of dynamic updates (`REGISTRY_REPO_URL` at `REGISTRY_REPO_BRANCH`):
//! its branch head, the files of one exact commit, and whether one commit is an ancestor of
//! another. Two implementations behind one type:
//!
//! - **Git** (any URL or path `git` understands), with the `git` program: `git ls-remote` for the
//!   head (nothing fetched); a bare repository in a temporary folder, kept for the life of the
//!   [`Remote`], into which the branch (and a commit not on it, by its SHA) is fetched
//!   incrementally, so each update transfers only the new objects. The history is fetched whole,
//!   not shallow: `lastModified` comes from it (see [`crate::source`]).
//! - **GitHub** (`https://github.com/OWNER/REPO`), through the GitHub API (see [`crate::github`]):
//!   the branches API for the head, the tarball at the exact SHA for a checkout, the compare API
//!   for ancestry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tempfile::TempDir;

use crate::github::{self, GitHub};
use crate::source::{self, Checkout, SourceError};

/// The monitored repository.
#[derive(Debug, Clone)]
pub struct Remote {
    url: String,
    branch: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Git(Arc<Mirror>),
    GitHub(GitHub),
}

/// A bare repository that holds what was fetched so far; one fetch at a time.
#[derive(Debug)]
struct Mirror {
    dir: TempDir,
    lock: tokio::sync::Mutex<()>,
}

impl Mirror {
    fn path(&self) -> PathBuf {
        self.dir.path().join("mirror.git")
    }
}

impl Remote {
    /// The repository at `url`, following `branch` (else its default branch). A GitHub
    /// repository URL is read through the API with `github_token` (`None`: anonymous); any
    /// other URL with `git`.
    /// The GitHub API is the one at `GITHUB_API_URL`, else GitHub's. Call it within a tokio
    /// runtime (the GitHub client starts a task of its own).
    pub fn new(url: &str, branch: Option<&str>, github_token: Option<&str>) -> Result<Remote, SourceError> {
        Remote::with_api_url(url, branch, github_token, &github::api_url_from_env())
    }

    /// As [`Remote::new`], with the GitHub API at `github_api`.
    pub fn with_api_url(
        url: &str,
        branch: Option<&str>,
        github_token: Option<&str>,
        github_api: &str,
    ) -> Result<Remote, SourceError> {
        let (kind, branch) = match github::parse_url(url) {
            Some(repo) => {
                let branch = branch.map(str::to_string).or(repo.reference);
                (Kind::GitHub(GitHub::with_api_url(github_api, &repo.owner, &repo.repo, github_token)?), branch)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("registry-mirror-")
                    .tempdir()
                    .map_err(|e| SourceError::Extract { commit: url.to_string(), source: e })?;
                let mirror = Mirror { dir, lock: tokio::sync::Mutex::new(()) };
                git(mirror.dir.path(), &["init", "--quiet", "--bare", "mirror.git"])?;
                (Kind::Git(Arc::new(mirror)), branch.map(str::to_string))
            }
        };
        Ok(Remote { url: url.to_string(), branch, kind })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The monitored branch; `None`: the repository's default branch.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// `URL` or `URL at branch B`, for messages.
    pub fn describe(&self) -> String {
        match &self.branch {
            Some(branch) => format!("{} at branch {branch}", self.url),
            None => self.url.clone(),
        }
    }

    /// Whether it is read through the GitHub API.
    pub fn is_github(&self) -> bool {
        matches!(self.kind, Kind::GitHub(_))
    }

    /// The commit the monitored branch (else the default branch) points to now.
    pub async fn head(&self) -> Result<String, SourceError> {
        match &self.kind {
            Kind::GitHub(github) => Ok(github.head(self.branch()).await?),
            Kind::Git(_) => {
                let url = self.url.clone();
                let reference = self.branch_ref();
                blocking(move || {
                    let out = git(Path::new("."), &["ls-remote", "--", &url, &reference])?;
                    out.split_whitespace()
                        .next()
                        .map(str::to_string)
                        .ok_or_else(|| SourceError::UnknownRef { reference: reference.clone(), repo: url.clone() })
                })
                .await
            }
        }
    }

    /// The files of exactly `commit`, with the times of its folders.
    pub async fn checkout(&self, commit: &str) -> Result<Checkout, SourceError> {
        match &self.kind {
            Kind::GitHub(github) => Ok(github.checkout(Some(commit)).await?),
            Kind::Git(mirror) => {
                let _fetching = mirror.lock.lock().await;
                let (url, reference, path, commit) =
                    (self.url.clone(), self.branch_ref(), mirror.path(), commit.to_string());
                blocking(move || {
                    fetch(&path, &url, &reference, &[&commit])?;
                    source::open(&path.to_string_lossy(), Some(&commit))
                })
                .await
            }
        }
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, SourceError> {
        match &self.kind {
            Kind::GitHub(github) => Ok(github.is_ancestor(ancestor, descendant).await?),
            Kind::Git(mirror) => {
                let _fetching = mirror.lock.lock().await;
                let (url, reference, path) = (self.url.clone(), self.branch_ref(), mirror.path());
                let (ancestor, descendant) = (ancestor.to_string(), descendant.to_string());
                blocking(move || {
                    fetch(&path, &url, &reference, &[&ancestor, &descendant])?;
                    let out = Command::new("git")
                        .current_dir(&path)
                        .args(["merge-base", "--is-ancestor", &ancestor, &descendant])
                        .output()
                        .map_err(SourceError::GitMissing)?;
                    match out.status.code() {
                        Some(0) => Ok(true),
                        Some(1) => Ok(false),
                        _ => Err(SourceError::Git {
                            args: format!("merge-base --is-ancestor {ancestor} {descendant}"),
                            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                        }),
                    }
                })
                .await
            }
        }
    }

    /// `refs/heads/BRANCH`, or `HEAD` (the default branch).
    fn branch_ref(&self) -> String {
        match &self.branch {
            Some(branch) => format!("refs/heads/{branch}"),
            None => "HEAD".to_string(),
        }
    }
}

/// Brings `commits` into the mirror: nothing when it has them all; else the branch (which
/// usually holds them), then any still missing by its SHA (servers allow that for reachable
/// commits; a force-pushed-away commit may be gone for good).
fn fetch(mirror: &Path, url: &str, reference: &str, commits: &[&str]) -> Result<(), SourceError> {
    let missing = |commits: &[&str]| -> Vec<String> {
        commits.iter().filter(|c| !has_commit(mirror, c)).map(|c| c.to_string()).collect()
    };
    if missing(commits).is_empty() {
        return Ok(());
    }
    // Into a ref of its own, so that the fetched history stays reachable (and is not pruned).
    let refspec = format!("+{reference}:refs/monitored/head");
    git(mirror, &["fetch", "--quiet", "--no-tags", "--", url, &refspec])?;
    for commit in missing(commits) {
        let refspec = format!("+{commit}:refs/monitored/{commit}");
        git(mirror, &["fetch", "--quiet", "--no-tags", "--", url, &refspec]).map_err(|e| match e {
            SourceError::Git { .. } => SourceError::UnknownRef { reference: commit.clone(), repo: url.to_string() },
            other => other,
        })?;
    }
    Ok(())
}

fn has_commit(mirror: &Path, commit: &str) -> bool {
    Command::new("git")
        .current_dir(mirror)
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work).await.expect("a git task does not panic")
}

/// Runs git in `dir` (never prompting for credentials) and returns its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(SourceError::GitMissing)?;
    if !out.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
