//! The monitored repository, read with the `git` program: its branch head, a checkout of one
//! commit, and whether one commit is an ancestor of another.
//!
//! Every operation runs `git` on a blocking thread.

use index_generator::{Checkout, SourceError, source};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Remote {
    url: String,
    branch: Option<String>,
}

impl Remote {
    pub fn new(url: &str, branch: Option<&str>) -> Remote {
        Remote { url: url.to_string(), branch: branch.map(str::to_string) }
    }

    /// `URL` or `URL@branch`, for logs.
    pub fn describe(&self) -> String {
        match &self.branch {
            Some(branch) => format!("{}@{branch}", self.url),
            None => self.url.clone(),
        }
    }

    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The commit the monitored branch (else `HEAD`) points to now.
    pub async fn head(&self) -> Result<String, SourceError> {
        let url = self.url.clone();
        let reference = match &self.branch {
            Some(branch) => format!("refs/heads/{branch}"),
            None => "HEAD".to_string(),
        };
        blocking(move || {
            let out = git(&["ls-remote", "--", &url, &reference])?;
            out.split_whitespace()
                .next()
                .map(str::to_string)
                .ok_or_else(|| SourceError::UnknownRef { reference: reference.clone(), repo: url.clone() })
        })
        .await
    }

    /// The files of `commit`, with the history-derived times of its folders.
    pub async fn checkout(&self, commit: &str) -> Result<Checkout, SourceError> {
        let url = self.url.clone();
        let commit = commit.to_string();
        blocking(move || source::open(&url, Some(&commit))).await
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, SourceError> {
        let url = self.url.clone();
        let (ancestor, descendant) = (ancestor.to_string(), descendant.to_string());
        blocking(move || {
            let status = Command::new("git")
                .args(["-C", &url, "merge-base", "--is-ancestor", &ancestor, &descendant])
                .output()
                .map_err(SourceError::GitMissing)?;
            match status.status.code() {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                _ => Err(SourceError::Git {
                    args: format!("merge-base --is-ancestor {ancestor} {descendant}"),
                    stderr: String::from_utf8_lossy(&status.stderr).trim().to_string(),
                }),
            }
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work).await.expect("a git task does not panic")
}

fn git(args: &[&str]) -> Result<String, SourceError> {
    let out =
        Command::new("git").args(args).env("GIT_TERMINAL_PROMPT", "0").output().map_err(SourceError::GitMissing)?;
    if !out.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
