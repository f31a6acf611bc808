//! A stand-in for the GitHub API (GitHub cannot be reached from here): [`FakeGitHub`] serves one
//! real Git repository of a temporary folder as `OWNER/REPO`, answering exactly the endpoints the
//! generator calls (see `index_generator::github`), the way GitHub answers them:
//!
//! - commit objects in GitHub's shape (`sha`, `node_id`, `commit.{author,committer}.{name,email,date}`
//!   with dates in UTC, `commit.tree`, `parents`, URLs), branch objects, the repository's
//!   `default_branch`, comparisons with `status` `ahead`/`behind`/`identical`/`diverged`;
//! - the tarball endpoint redirects (302) to a download URL (as GitHub redirects to codeload),
//!   which serves `git archive --format=tar.gz --prefix=OWNER-REPO-SHORTSHA/ SHA` of the very
//!   repository: GitHub's layout, real bytes;
//! - errors as GitHub sends them: 404 `Not Found` for unknown repositories, branches and ranges,
//!   422 `No commit found for SHA` for an unknown ref of `commits/{ref}`, 401 `Bad credentials`
//!   for a token it does not know; a private repository answers 404 to anonymous requests.
//!
//! Every request is recorded (path, query, `Authorization`, status), so tests can check which
//! endpoints were called and that the token was sent. It runs on a tokio runtime of its own, on
//! a thread of its own, like [`crate::FaultyProxy`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A request the fake saw, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRequest {
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    pub status: u16,
}

/// The GitHub API for one repository, on a free loopback port; stopped on drop.
pub struct FakeGitHub {
    addr: SocketAddr,
    state: Arc<FakeState>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct FakeState {
    owner: String,
    repo: String,
    git_dir: PathBuf,
    /// The token of a private repository: anonymous requests get 404, other tokens 401.
    token: Option<String>,
    /// `http://127.0.0.1:PORT`.
    base: String,
    requests: Mutex<Vec<GitHubRequest>>,
}

impl FakeGitHub {
    /// Serves the Git repository in `git_dir` (a work tree or a bare repository) as the public
    /// repository `owner/repo`; any token sent is refused as GitHub refuses an unknown one.
    pub fn start(owner: &str, repo: &str, git_dir: &Path) -> FakeGitHub {
        FakeGitHub::serve(owner, repo, git_dir, None)
    }

    /// Serves it as a private repository that `token` can read.
    pub fn private(owner: &str, repo: &str, git_dir: &Path, token: &str) -> FakeGitHub {
        FakeGitHub::serve(owner, repo, git_dir, Some(token.to_string()))
    }

    fn serve(owner: &str, repo: &str, git_dir: &Path, token: Option<String>) -> FakeGitHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake GitHub to a loopback port");
        listener.set_nonblocking(true).expect("a non-blocking listener for tokio");
        let addr = listener.local_addr().expect("the fake GitHub's address");
        let state = Arc::new(FakeState {
            owner: owner.to_string(),
            repo: repo.to_string(),
            git_dir: git_dir.to_path_buf(),
            token,
            base: format!("http://{addr}"),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("fake-github-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("building the fake GitHub's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("registering the fake GitHub's listener");
                    tokio::select! {
                        served = axum::serve(listener, app).into_future() => served.expect("the fake GitHub stopped"),
                        _ = stop => {}
                    }
                });
            })
            .expect("spawning the fake GitHub's thread");
        FakeGitHub { addr, state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`: the value of `GITHUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://github.com/OWNER/REPO`: the repository URL clients are given.
    pub fn repo_url(&self) -> String {
        format!("https://github.com/{}/{}", self.state.owner, self.state.repo)
    }

    /// Every request seen since the start or the last [`FakeGitHub::clear`].
    pub fn requests(&self) -> Vec<GitHubRequest> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// The paths of the requests seen, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    pub fn clear(&self) {
        self.state.requests.lock().expect("requests lock").clear();
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let response = if request.method() != http::Method::GET {
        error(StatusCode::NOT_FOUND, "Not Found")
    } else {
        let state = Arc::clone(&state);
        let (path, query, authorization) = (path.clone(), query.clone(), authorization.clone());
        tokio::task::spawn_blocking(move || state.answer(&path, &query, authorization.as_deref()))
            .await
            .expect("answering does not panic")
    };
    state.requests.lock().expect("requests lock").push(GitHubRequest {
        path,
        query,
        authorization,
        status: response.status().as_u16(),
    });
    response
}

impl FakeState {
    fn answer(&self, path: &str, query: &str, authorization: Option<&str>) -> Response {
        let presented = authorization.map(|a| a.strip_prefix("Bearer ").or(a.strip_prefix("token ")).unwrap_or(a));
        let authorized = match (presented, &self.token) {
            (None, _) => false,
            (Some(presented), Some(token)) if presented == token => true,
            (Some(_), _) => return error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        };
        if let Some(rest) = path.strip_prefix("/_codeload/") {
            return self.codeload(rest, query);
        }
        let prefix = format!("/repos/{}/{}", self.owner, self.repo);
        let Some(rest) = path.strip_prefix(&prefix) else { return error(StatusCode::NOT_FOUND, "Not Found") };
        if self.token.is_some() && !authorized {
            // GitHub does not tell anonymous clients that a private repository exists.
            return error(StatusCode::NOT_FOUND, "Not Found");
        }
        let rest = decode(rest);
        let params = parse_query(query);
        if rest.is_empty() {
            return ok(self.repository());
        }
        if let Some(branch) = rest.strip_prefix("/branches/") {
            return match self.rev(&format!("refs/heads/{branch}")) {
                Some(sha) => ok(json!({
                    "name": branch,
                    "commit": self.commit_json(&sha, false),
                    "_links": {
                        "self": format!("{}{prefix}/branches/{branch}", self.base),
                        "html": format!("https://github.com/{}/{}/tree/{branch}", self.owner, self.repo),
                    },
                    "protected": false,
                    "protection": {"enabled": false, "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []}},
                    "protection_url": format!("{}{prefix}/branches/{branch}/protection", self.base),
                })),
                None => error(StatusCode::NOT_FOUND, "Branch not found"),
            };
        }
        if rest == "/commits" {
            let start = params.iter().find(|(k, _)| k == "sha").map_or("HEAD", |(_, v)| v.as_str());
            let Some(sha) = self.rev(start) else { return error(StatusCode::NOT_FOUND, "Not Found") };
            let per_page = params.iter().find(|(k, _)| k == "per_page").and_then(|(_, v)| v.parse().ok()).unwrap_or(30);
            let mut args = vec!["log".to_string(), "--format=%H".to_string(), format!("-n{per_page}"), sha];
            if let Some((_, path)) = params.iter().find(|(k, _)| k == "path") {
                args.extend(["--".to_string(), path.clone()]);
            }
            let log = self.git(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
            let commits: Vec<Value> = log.lines().map(|sha| self.commit_json(sha, false)).collect();
            return ok(Value::Array(commits));
        }
        if let Some(reference) = rest.strip_prefix("/commits/") {
            return match self.rev(reference) {
                Some(sha) => ok(self.commit_json(&sha, true)),
                None => error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No commit found for SHA: {reference}")),
            };
        }
        if let Some(basehead) = rest.strip_prefix("/compare/") {
            let Some((base, head)) = basehead.split_once("...") else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            return match (self.rev(base), self.rev(head)) {
                (Some(base), Some(head)) => ok(self.comparison(&base, &head)),
                _ => error(StatusCode::NOT_FOUND, "Not Found"),
            };
        }
        if let Some(reference) = rest.strip_prefix("/tarball/") {
            return match self.rev(reference) {
                Some(sha) => {
                    let mut location =
                        format!("{}/_codeload/{}/{}/legacy.tar.gz/{sha}", self.base, self.owner, self.repo);
                    if let Some(token) = &self.token {
                        location.push_str(&format!("?token={}", download_token(token)));
                    }
                    Response::builder()
                        .status(StatusCode::FOUND)
                        .header(header::LOCATION, location)
                        .body(Body::empty())
                        .expect("a valid redirect")
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            };
        }
        error(StatusCode::NOT_FOUND, "Not Found")
    }

    /// `OWNER/REPO/legacy.tar.gz/SHA`: the archive itself (codeload answers no JSON).
    fn codeload(&self, rest: &str, query: &str) -> Response {
        let not_found = || (StatusCode::NOT_FOUND, "404: Not Found").into_response();
        let prefix = format!("{}/{}/legacy.tar.gz/", self.owner, self.repo);
        let Some(sha) = rest.strip_prefix(&prefix) else { return not_found() };
        if let Some(token) = &self.token {
            if query != format!("token={}", download_token(token)) {
                return not_found();
            }
        }
        let Some(sha) = self.rev(sha) else { return not_found() };
        let top = format!("{}-{}-{}", self.owner, self.repo, &sha[..7]);
        let out = Command::new("git")
            .current_dir(&self.git_dir)
            .args(["archive", "--format=tar.gz", &format!("--prefix={top}/"), &sha])
            .output()
            .expect("running git archive");
        assert!(out.status.success(), "git archive failed: {}", String::from_utf8_lossy(&out.stderr));
        Response::builder()
            .header(header::CONTENT_TYPE, "application/x-gzip")
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename={top}.tar.gz"))
            .body(Body::from(out.stdout))
            .expect("a valid archive response")
    }

    fn repository(&self) -> Value {
        let default_branch =
            self.git(&["symbolic-ref", "--short", "HEAD"]).map_or_else(|| "main".to_string(), |b| b.trim().to_string());
        let full_name = format!("{}/{}", self.owner, self.repo);
        json!({
            "id": 1296269,
            "node_id": "R_kgDOABCDEF",
            "name": self.repo,
            "full_name": full_name,
            "private": self.token.is_some(),
            "owner": {"login": self.owner, "id": 1, "type": "Organization", "url": format!("{}/users/{}", self.base, self.owner)},
            "html_url": format!("https://github.com/{full_name}"),
            "url": format!("{}/repos/{full_name}", self.base),
            "clone_url": format!("https://github.com/{full_name}.git"),
            "default_branch": default_branch,
            "visibility": if self.token.is_some() { "private" } else { "public" },
        })
    }

    /// A commit object as `GET /repos/{o}/{r}/commits/{ref}` answers it (`detail`: with `stats`
    /// and `files`), or as an element of lists and branches.
    fn commit_json(&self, sha: &str, detail: bool) -> Value {
        let format = "%H%x00%T%x00%P%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd%x00%B";
        let out = self
            .git_utc(&["show", "-s", "--date=iso-strict-local", &format!("--format={format}"), sha])
            .expect("the commit exists");
        let fields: Vec<&str> = out.splitn(10, '\0').collect();
        let utc = |date: &str| date.replace("+00:00", "Z");
        let api = format!("{}/repos/{}/{}", self.base, self.owner, self.repo);
        let html = format!("https://github.com/{}/{}", self.owner, self.repo);
        let parents: Vec<Value> = fields[2]
            .split_whitespace()
            .map(|p| json!({"sha": p, "url": format!("{api}/commits/{p}"), "html_url": format!("{html}/commit/{p}")}))
            .collect();
        let mut commit = json!({
            "sha": sha,
            "node_id": format!("C_kwDO{}", &sha[..12]),
            "commit": {
                "author": {"name": fields[3], "email": fields[4], "date": utc(fields[5])},
                "committer": {"name": fields[6], "email": fields[7], "date": utc(fields[8])},
                "message": fields[9].trim_end(),
                "tree": {"sha": fields[1], "url": format!("{api}/git/trees/{}", fields[1])},
                "url": format!("{api}/git/commits/{sha}"),
                "comment_count": 0,
                "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null},
            },
            "url": format!("{api}/commits/{sha}"),
            "html_url": format!("{html}/commit/{sha}"),
            "comments_url": format!("{api}/commits/{sha}/comments"),
            // No GitHub account has the test identity's e-mail address.
            "author": null,
            "committer": null,
            "parents": parents,
        });
        if detail {
            let changes = self
                .git(&["diff-tree", "--no-commit-id", "-r", "--root", "--name-status", "--no-renames", sha])
                .unwrap_or_default();
            let files: Vec<Value> = changes
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(status, file)| {
                    let status = match status {
                        "A" => "added",
                        "D" => "removed",
                        _ => "modified",
                    };
                    json!({"filename": file, "status": status, "blob_url": format!("{html}/blob/{sha}/{file}")})
                })
                .collect();
            commit["stats"] = json!({"total": files.len(), "additions": 0, "deletions": 0});
            commit["files"] = Value::Array(files);
        }
        commit
    }

    fn comparison(&self, base: &str, head: &str) -> Value {
        let count = |range: &str| -> usize {
            self.git(&["rev-list", "--count", range]).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
        };
        let ahead = count(&format!("{base}..{head}"));
        let behind = count(&format!("{head}..{base}"));
        let status = match (ahead, behind) {
            (0, 0) => "identical",
            (_, 0) => "ahead",
            (0, _) => "behind",
            _ => "diverged",
        };
        let merge_base = self.git(&["merge-base", base, head]).map(|s| s.trim().to_string()).unwrap_or_default();
        let commits: Vec<Value> = self
            .git(&["rev-list", "--reverse", &format!("{base}..{head}")])
            .unwrap_or_default()
            .lines()
            .map(|sha| self.commit_json(sha, false))
            .collect();
        let api = format!("{}/repos/{}/{}", self.base, self.owner, self.repo);
        let html = format!("https://github.com/{}/{}", self.owner, self.repo);
        json!({
            "url": format!("{api}/compare/{base}...{head}"),
            "html_url": format!("{html}/compare/{base}...{head}"),
            "permalink_url": format!("{html}/compare/{}...{}", &base[..7], &head[..7]),
            "diff_url": format!("{html}/compare/{base}...{head}.diff"),
            "patch_url": format!("{html}/compare/{base}...{head}.patch"),
            "base_commit": self.commit_json(base, false),
            "merge_base_commit": if merge_base.is_empty() { Value::Null } else { self.commit_json(&merge_base, false) },
            "status": status,
            "ahead_by": ahead,
            "behind_by": behind,
            "total_commits": ahead,
            "commits": commits,
            "files": [],
        })
    }

    /// The full SHA of the commit `reference` names (branch, tag, full or abbreviated SHA).
    fn rev(&self, reference: &str) -> Option<String> {
        if reference.starts_with('-') || reference.is_empty() {
            return None;
        }
        self.git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() == 40)
    }

    fn git(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("git").current_dir(&self.git_dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Git with dates printed in UTC, as the API prints them.
    fn git_utc(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("git").current_dir(&self.git_dir).env("TZ", "UTC").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The short-lived token GitHub puts in the download URL of a private repository's archive.
fn download_token(token: &str) -> String {
    format!("DL{}", token.len() * 7919)
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], value.to_string()).into_response()
}

/// An error body as GitHub's REST API sends it.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Percent-decoding of a path or query part.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
