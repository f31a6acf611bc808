//! A registry repository on GitHub, read through the GitHub REST API with octocrab: no `git`,
//! no clone, one tarball per commit.
//!
//! What is asked of the API, and nothing else (the fake in `tests::github` answers exactly these):
//!
//! | request | for |
//! |---|---|
//! | `GET /repos/{o}/{r}` | the default branch, when no branch or ref is given; tells a missing repository from a missing ref |
//! | `GET /repos/{o}/{r}/branches/{branch}` | the head of a branch ([`GitHub::head`]) |
//! | `GET /repos/{o}/{r}/commits/{ref}` | the commit a branch, tag or SHA names ([`GitHub::commit`]) |
//! | `GET /repos/{o}/{r}/tarball/{sha}` | the files of that exact commit (a redirect to a `.tar.gz` whose one top folder is `OWNER-REPO-SHORTSHA/`) |
//! | `GET /repos/{o}/{r}/commits?sha={sha}&path={folder}&per_page=1` | `lastModified`: the last commit touching each folder with a devfile, as `git log` gives it for Git sources |
//! | `GET /repos/{o}/{r}/compare/{a}...{b}` | whether `a` is an ancestor of `b` ([`GitHub::is_ancestor`]) |
//!
//! Responses are read into small structs of the few fields used (`sha`, `commit.committer.date`,
//! `status`, `default_branch`) rather than octocrab's complete models, so that a field GitHub adds,
//! drops or sends as `null` never breaks an update.
//!
//! The API is `https://api.github.com`, or `GITHUB_API_URL` (GitHub Enterprise Server, or a fake
//! in tests). The token comes from `GITHUB_TOKEN` (optional for public repositories); it is sent
//! as `Authorization: Bearer` to the API host only and never logged.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use octocrab::Octocrab;
use serde::Deserialize;

use crate::source::{Checkout, normalize_offset};

/// The environment variable with the API's base URL.
pub const API_URL_ENV: &str = "GITHUB_API_URL";
/// The environment variable with the token.
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";
/// GitHub's public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Folder-time lookups in flight at once (one request per folder with a devfile).
const FOLDER_TIME_CONCURRENCY: usize = 8;
/// The largest tarball accepted.
const MAX_TARBALL_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("cannot set up the GitHub API client for {api}: {message}")]
    Client { api: String, message: String },
    #[error(
        "GitHub refused the token in GITHUB_TOKEN (401 {message}) while reading {repo}: set a valid token, or none for a public repository"
    )]
    BadCredentials { repo: String, message: String },
    #[error("the GitHub repository {repo} does not exist{}", if *.authenticated { ", or the token in GITHUB_TOKEN cannot read it" } else { " (a private repository needs a token in GITHUB_TOKEN)" })]
    RepoNotFound { repo: String, authenticated: bool },
    #[error("{reference} is not a branch, tag or commit of the GitHub repository {repo}")]
    UnknownRef { reference: String, repo: String },
    #[error("GitHub's API rate limit is exhausted while reading {repo} ({message}){}", if *.authenticated { "" } else { "; without GITHUB_TOKEN GitHub allows 60 requests an hour" })]
    RateLimited { repo: String, message: String, authenticated: bool },
    #[error("{what} of the GitHub repository {repo} failed: {message}")]
    Api { what: String, repo: String, message: String },
    #[error("cannot extract the tarball of {commit} of {repo}: {message}")]
    Extract { commit: String, repo: String, message: String },
}

/// `https://github.com/OWNER/REPO[.git][/tree/REF]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    pub owner: String,
    pub repo: String,
    /// The `REF` of a `/tree/REF` URL.
    pub reference: Option<String>,
}

/// The GitHub repository an `https://github.com/...` URL names; `None` for any other URL (SSH
/// URLs such as `git@github.com:o/r.git` stay Git URLs, read with `git` and the user's keys).
pub fn parse_url(url: &str) -> Option<RepoUrl> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let path = rest.strip_prefix("github.com/")?;
    let path = path.trim_end_matches('/');
    let mut parts = path.splitn(3, '/');
    let owner = parts.next().filter(|o| !o.is_empty())?;
    let repo = parts.next().map(|r| r.strip_suffix(".git").unwrap_or(r)).filter(|r| !r.is_empty())?;
    let reference = match parts.next() {
        None => None,
        Some(tail) => Some(tail.strip_prefix("tree/").filter(|r| !r.is_empty())?.to_string()),
    };
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    (valid(owner) && valid(repo)).then(|| RepoUrl { owner: owner.to_string(), repo: repo.to_string(), reference })
}

/// `GITHUB_API_URL`, else GitHub's API.
pub fn api_url_from_env() -> String {
    std::env::var(API_URL_ENV).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_API_URL.to_string())
}

/// The token in `GITHUB_TOKEN`, when set and not empty.
pub fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty())
}

/// A commit as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    /// `commit.committer.date`: RFC 3339, in UTC as GitHub writes it.
    pub committed_at: String,
}

/// One GitHub repository through the API.
#[derive(Clone)]
pub struct GitHub {
    client: Octocrab,
    owner: String,
    repo: String,
    authenticated: bool,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client: it holds the token.
        f.debug_struct("GitHub")
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

impl GitHub {
    /// A client for `owner/repo` on the API at `GITHUB_API_URL` (else GitHub's), with `token`.
    /// Call it within a tokio runtime: the client starts a task of its own.
    pub fn new(owner: &str, repo: &str, token: Option<&str>) -> Result<GitHub, GitHubError> {
        GitHub::with_api_url(&api_url_from_env(), owner, repo, token)
    }

    /// A client for `owner/repo` on the API at `api` (`https://api.github.com`, a GitHub
    /// Enterprise Server's `https://HOST/api/v3`, a fake in tests), with `token`.
    pub fn with_api_url(api: &str, owner: &str, repo: &str, token: Option<&str>) -> Result<GitHub, GitHubError> {
        let client_error = |message: String| GitHubError::Client { api: api.to_string(), message };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        let mut builder = Octocrab::builder()
            .base_uri(api)
            .map_err(|e| client_error(e.to_string()))?
            .add_header(http::header::ACCEPT, "application/vnd.github+json".to_string())
            .add_header(http::HeaderName::from_static("x-github-api-version"), "2022-11-28".to_string());
        if let Some(token) = token {
            builder = builder.personal_token(token.to_string());
        }
        let client = builder.build_with_reqwest(http).map_err(|e| client_error(e.to_string()))?;
        Ok(GitHub { client, owner: owner.to_string(), repo: repo.to_string(), authenticated: token.is_some() })
    }

    /// `OWNER/REPO`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.repo)
    }

    /// The repository's default branch.
    pub async fn default_branch(&self) -> Result<String, GitHubError> {
        #[derive(Deserialize)]
        struct Repository {
            default_branch: String,
        }
        let repository: Repository = self
            .client
            .get(self.route(""), None::<&()>)
            .await
            .map_err(|e| self.error(e, "reading the repository", None))?;
        Ok(repository.default_branch)
    }

    /// The commit `branch` (else the default branch) points to now.
    pub async fn head(&self, branch: Option<&str>) -> Result<String, GitHubError> {
        #[derive(Deserialize)]
        struct Branch {
            commit: Sha,
        }
        let branch = match branch {
            Some(branch) => branch.to_string(),
            None => self.default_branch().await?,
        };
        let route = self.route(&format!("/branches/{}", encode_path(&branch)));
        let found: Result<Branch, _> = self.client.get(route, None::<&()>).await;
        match found {
            Ok(found) => Ok(found.commit.sha),
            Err(e) => Err(self.ref_error(e, "reading a branch", &branch).await),
        }
    }

    /// The commit a branch, tag or (full or abbreviated) SHA names.
    pub async fn commit(&self, reference: &str) -> Result<Commit, GitHubError> {
        let route = self.route(&format!("/commits/{}", encode_path(reference)));
        let found: Result<ApiCommit, _> = self.client.get(route, None::<&()>).await;
        match found {
            Ok(commit) => Ok(commit.into()),
            Err(e) => Err(self.ref_error(e, "looking a commit up", reference).await),
        }
    }

    /// The newest commit reachable from `sha` that touched `path`; `None` when none did.
    pub async fn last_commit_touching(&self, sha: &str, path: &str) -> Result<Option<Commit>, GitHubError> {
        #[derive(serde::Serialize)]
        struct Query<'a> {
            sha: &'a str,
            path: &'a str,
            per_page: u8,
        }
        let commits: Vec<ApiCommit> = self
            .client
            .get(self.route("/commits"), Some(&Query { sha, path, per_page: 1 }))
            .await
            .map_err(|e| self.error(e, "listing the commits of a folder", Some(sha)))?;
        Ok(commits.into_iter().next().map(Commit::from))
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors (the compare API says `ahead`
    /// or `identical`).
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitHubError> {
        #[derive(Deserialize)]
        struct Comparison {
            status: String,
        }
        let route = self.route(&format!("/compare/{}...{}", encode_path(ancestor), encode_path(descendant)));
        let found: Result<Comparison, _> = self.client.get(route, None::<&()>).await;
        match found {
            Ok(comparison) => Ok(matches!(comparison.status.as_str(), "ahead" | "identical")),
            Err(e) => Err(self.ref_error(e, "comparing commits", &format!("{ancestor}...{descendant}")).await),
        }
    }

    /// The `.tar.gz` of exactly `sha` (the redirect to it followed), in memory.
    pub async fn tarball(&self, sha: &str) -> Result<Bytes, GitHubError> {
        use http_body_util::BodyExt;
        let what = "downloading the tarball";
        let response = self
            .client
            .repos(&self.owner, &self.repo)
            .download_tarball(sha.to_string())
            .await
            .map_err(|e| self.error(e, what, Some(sha)))?;
        let response = match octocrab::map_github_error(response).await {
            Ok(response) => response,
            Err(e) => return Err(self.ref_error(e, what, sha).await),
        };
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.error(e, what, Some(sha)))?;
            if let Some(data) = frame.data_ref() {
                bytes.extend_from_slice(data);
                if bytes.len() > MAX_TARBALL_BYTES {
                    return Err(GitHubError::Api {
                        what: what.to_string(),
                        repo: self.name(),
                        message: format!("the tarball is larger than {MAX_TARBALL_BYTES} bytes"),
                    });
                }
            }
        }
        Ok(Bytes::from(bytes))
    }

    /// The files of `reference` (a branch, tag or commit; else the default branch) in a temporary
    /// folder, stamped with the exact commit, with the time of the last commit touching each
    /// folder that holds a devfile.
    ///
    /// `lastModified` is the same commit as a Git source gives (`git log` over the folder) but
    /// written in UTC, as the API gives times (a Git source keeps the committer's offset): the
    /// same instant. It costs one request per folder with a devfile (the community registry: 90),
    /// 8 at a time.
    pub async fn checkout(&self, reference: Option<&str>) -> Result<Checkout, GitHubError> {
        let reference = match reference {
            Some(reference) => reference.to_string(),
            None => self.default_branch().await?,
        };
        let commit = self.commit(&reference).await?;
        let sha = commit.sha;
        tracing::debug!(repository = %self.name(), reference = %reference, commit = %sha, "downloading the tarball");
        let tarball = self.tarball(&sha).await?;
        let extract_error = |message: String| GitHubError::Extract { commit: sha.clone(), repo: self.name(), message };
        let temp =
            tempfile::Builder::new().prefix("registry-github-").tempdir().map_err(|e| extract_error(e.to_string()))?;
        let tree = temp.path().join("tree");
        let folders = {
            let tree = tree.clone();
            tokio::task::spawn_blocking(move || {
                extract(&tarball, &tree)?;
                Ok::<_, String>(devfile_folders(&tree))
            })
            .await
            .map_err(|e| extract_error(e.to_string()))?
            .map_err(extract_error)?
        };
        let folder_times = self.folder_times(&sha, folders).await?;
        Ok(Checkout::extracted(tree, sha, folder_times, temp))
    }

    /// The commit time of the last commit touching each folder, a few requests at a time.
    async fn folder_times(&self, sha: &str, folders: Vec<String>) -> Result<HashMap<String, String>, GitHubError> {
        let limit = Arc::new(tokio::sync::Semaphore::new(FOLDER_TIME_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for folder in folders {
            let (github, sha, limit) = (self.clone(), sha.to_string(), Arc::clone(&limit));
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                let commit = github.last_commit_touching(&sha, &folder).await?;
                Ok::<_, GitHubError>((folder, commit))
            });
        }
        let mut times = HashMap::new();
        while let Some(done) = tasks.join_next().await {
            let (folder, commit) = done.expect("a folder lookup does not panic")?;
            if let Some(commit) = commit {
                times.insert(folder, commit.committed_at);
            }
        }
        Ok(times)
    }

    /// An error of a request about `reference`: a 404 (422 for `commits/{ref}`) is a missing
    /// ref when the repository exists, and a missing repository otherwise.
    async fn ref_error(&self, error: octocrab::Error, what: &str, reference: &str) -> GitHubError {
        let status = status_of(&error);
        if status == Some(StatusCode::NOT_FOUND) || status == Some(StatusCode::UNPROCESSABLE_ENTITY) {
            let repository: Result<serde_json::Value, _> = self.client.get(self.route(""), None::<&()>).await;
            return match repository {
                Ok(_) => GitHubError::UnknownRef { reference: reference.to_string(), repo: self.name() },
                Err(e) => self.error(e, "reading the repository", None),
            };
        }
        self.error(error, what, Some(reference))
    }

    fn error(&self, error: octocrab::Error, what: &str, reference: Option<&str>) -> GitHubError {
        let repo = self.name();
        match error {
            octocrab::Error::GitHub { source, .. } => {
                let message = source.message.clone();
                match source.status_code {
                    StatusCode::UNAUTHORIZED => GitHubError::BadCredentials { repo, message },
                    StatusCode::NOT_FOUND if reference.is_none() => {
                        GitHubError::RepoNotFound { repo, authenticated: self.authenticated }
                    }
                    StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
                        if message.to_ascii_lowercase().contains("rate limit") =>
                    {
                        GitHubError::RateLimited { repo, message, authenticated: self.authenticated }
                    }
                    status => {
                        GitHubError::Api { what: what.to_string(), repo, message: format!("{status}: {message}") }
                    }
                }
            }
            other => GitHubError::Api { what: what.to_string(), repo, message: redact_queries(&error_chain(&other)) },
        }
    }
}

fn status_of(error: &octocrab::Error) -> Option<StatusCode> {
    match error {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code),
        _ => None,
    }
}

/// An error and its causes, `: `-separated (octocrab's own text is only the outermost layer).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Drops query strings from URLs in an error message: a tarball's download URL may carry a
/// temporary token there.
fn redact_queries(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_query = false;
    for c in message.chars() {
        if in_query {
            if c.is_whitespace() || c == ')' {
                in_query = false;
                out.push(c);
            }
            continue;
        }
        if c == '?' && out.contains("://") {
            in_query = true;
            out.push_str("?...");
            continue;
        }
        out.push(c);
    }
    out
}

/// Percent-encodes a ref for one path segment of a route (branch names may hold `/`, which
/// GitHub accepts as it is in these routes; everything else outside the unreserved set is
/// encoded).
fn encode_path(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

/// The fields of a commit object we read (`GET commits/{ref}`, `GET commits`).
#[derive(Deserialize)]
struct ApiCommit {
    sha: String,
    commit: ApiCommitDetail,
}

#[derive(Deserialize)]
struct ApiCommitDetail {
    committer: Option<ApiSignature>,
}

#[derive(Deserialize)]
struct ApiSignature {
    date: Option<String>,
}

impl From<ApiCommit> for Commit {
    fn from(commit: ApiCommit) -> Commit {
        let date = commit.commit.committer.and_then(|c| c.date).unwrap_or_default();
        Commit { sha: commit.sha, committed_at: normalize_offset(&date) }
    }
}

/// Unpacks a GitHub tarball into `into`, without its one top folder (`OWNER-REPO-SHORTSHA/`).
/// Entries leading outside `into` (`..`, absolute paths) are refused; the pax global header
/// (the commit id) and other metadata entries are skipped.
fn extract(tarball: &[u8], into: &Path) -> Result<(), String> {
    std::fs::create_dir_all(into).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let mut components = path.components();
        components.next(); // the top folder
        let mut relative = PathBuf::new();
        for component in components {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                _ => return Err(format!("the tarball has an entry outside its folder: {}", path.display())),
            }
        }
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        entry.unpack(&target).map_err(|e| format!("{}: {e}", relative.display()))?;
    }
    Ok(())
}

/// The folders under `stacks/` that hold a devfile directly: `stacks/go` for a single-version
/// stack, `stacks/java-maven/2.0.0` for each version of a multi-version one. These are the
/// folders whose time the scan reads.
fn devfile_folders(root: &Path) -> Vec<String> {
    let has_devfile = |dir: &Path| dir.join("devfile.yaml").is_file() || dir.join(".devfile.yaml").is_file();
    let mut folders = Vec::new();
    let Ok(stacks) = std::fs::read_dir(root.join("stacks")) else { return folders };
    for stack in stacks.flatten() {
        let path = stack.path();
        if !path.is_dir() {
            continue;
        }
        let name = stack.file_name().to_string_lossy().into_owned();
        if has_devfile(&path) {
            folders.push(format!("stacks/{name}"));
        }
        for version in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            if version.path().is_dir() && has_devfile(&version.path()) {
                folders.push(format!("stacks/{name}/{}", version.file_name().to_string_lossy()));
            }
        }
    }
    folders.sort();
    folders
}

#[cfg(test)]
mod tests {
    use super::{RepoUrl, parse_url, redact_queries};

    #[test]
    fn github_urls() {
        let repo = |owner: &str, repo: &str, reference: Option<&str>| {
            Some(RepoUrl { owner: owner.into(), repo: repo.into(), reference: reference.map(Into::into) })
        };
        assert_eq!(parse_url("https://github.com/devfile/registry"), repo("devfile", "registry", None));
        assert_eq!(parse_url("https://github.com/devfile/registry.git"), repo("devfile", "registry", None));
        assert_eq!(parse_url("https://github.com/devfile/registry/"), repo("devfile", "registry", None));
        assert_eq!(parse_url("https://www.github.com/o/r"), repo("o", "r", None));
        assert_eq!(parse_url("https://github.com/o/r/tree/main"), repo("o", "r", Some("main")));
        assert_eq!(parse_url("https://github.com/o/r/tree/release/1.x"), repo("o", "r", Some("release/1.x")));
        for other in [
            "https://github.com/o",
            "https://github.com/",
            "https://github.com/o/r/blob/main/x",
            "https://gitlab.com/o/r",
            "git@github.com:o/r.git",
            "file:///tmp/github.com/o/r",
            "/tmp/r",
        ] {
            assert_eq!(parse_url(other), None, "{other}");
        }
    }

    #[test]
    fn queries_are_redacted() {
        assert_eq!(
            redact_queries("error sending request for url (http://h/x.tar.gz?token=SECRET): closed"),
            "error sending request for url (http://h/x.tar.gz?...): closed"
        );
        assert_eq!(redact_queries("no url? fine"), "no url? fine");
    }
}
