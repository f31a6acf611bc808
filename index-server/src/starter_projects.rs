//! `GET /devfiles/{name}[/{version}]/starter-projects/{project}`: a stack's starter project,
//! as a zip (SPEC §6).
//!
//! The version is named as on the devfile routes (exact, `default`, `latest`), the project is
//! looked up by name in that version's devfile, and its files come from the first of:
//! 1. `zip.location`, when it is a relative path: that file of the stack version's folder;
//! 2. `<project>-offline.zip` in the version's folder, which registries ship for air-gapped use
//!    and which is served in preference to any network fetch;
//! 3. `zip.location`, when it is an `http(s)` URL: downloaded;
//! 4. `git`: the remote fetched at its revision (a shallow fetch of the branch, tag or commit,
//!    with the `git` program), its tree, or the `subDir` sub-tree re-rooted, zipped.
//!
//! Local files are only read from the version's folder, never through `..`, an absolute path or
//! a link leading out of it. A remote that cannot be fetched is 502, naming the project; the
//! cause is logged. Every fetch has a timeout and a size limit.

use std::io::{Cursor, Write};
use std::path::{Component, Path};
use std::process::Stdio;
use std::time::Duration;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use schemas::devfile::{GitProject, StarterProject};
use tokio::io::AsyncReadExt;

use crate::AppState;
use crate::devfiles;
use crate::download;
use crate::error::ApiError;

/// The largest zip served, and the largest tree zipped from a Git remote (uncompressed).
const MAX_ZIP_BYTES: usize = 100 * 1024 * 1024;
/// For downloading a remote zip.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// For everything Git does for one starter project (fetch and archive).
const GIT_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn default_version(
    State(state): State<AppState>,
    UrlPath((name, project)): UrlPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    starter_project(&state, &name, "default", &project, query.as_deref()).await
}

pub async fn with_version(
    State(state): State<AppState>,
    UrlPath((name, version, project)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    starter_project(&state, &name, &version, &project, query.as_deref()).await
}

async fn starter_project(
    state: &AppState,
    name: &str,
    version: &str,
    project: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshots.current();
    let at = devfiles::locate(&snapshot, name, version, query)?;
    let devfile = devfiles::read(state, name, &at).await?;
    let definition = find(&devfile, project)
        .map_err(|cause| ApiError::DevfileUnreadable { name: name.to_string(), cause })?
        .ok_or_else(|| ApiError::UnknownStarterProject { name: name.to_string(), project: project.to_string() })?;
    let folder = snapshot.version_dir(&at.folder, &at.version);
    let bytes = zip_of(&definition, folder.as_deref()).await.map_err(|failure| {
        let (name, project) = (name.to_string(), project.to_string());
        match failure {
            Failure::Unavailable(cause) => ApiError::StarterProjectUnavailable { name, project, cause },
            Failure::Fetch(cause) => ApiError::StarterProjectFetch { name, project, cause },
        }
    })?;
    tracing::debug!(
        stack.name = name,
        starter_project = project,
        size_bytes = bytes.len(),
        "serving a starter project"
    );
    Ok((
        StatusCode::ACCEPTED,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
            (header::CONTENT_DISPOSITION, disposition(project)),
        ],
        bytes,
    )
        .into_response())
}

/// The starter project named `project` in a devfile (YAML), `Ok(None)` when there is none.
fn find(devfile: &[u8], project: &str) -> Result<Option<StarterProject>, String> {
    let text = std::str::from_utf8(devfile).map_err(|e| format!("not UTF-8: {e}"))?;
    let document =
        index_generator::yaml::Document::parse(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let Some(projects) = document.value.get("starterProjects").and_then(|p| p.as_array()) else { return Ok(None) };
    let Some(found) = projects.iter().find(|p| p.get("name").and_then(|n| n.as_str()) == Some(project)) else {
        return Ok(None);
    };
    serde_json::from_value(found.clone()).map(Some).map_err(|e| format!("starter project {project}: {e}"))
}

/// `attachment; filename="<project>.zip"`, with anything a quoted header parameter cannot hold
/// replaced (devfile names are lowercase letters, digits and dashes, so normally nothing).
fn disposition(project: &str) -> HeaderValue {
    let safe: String =
        project.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}.zip\"")).expect("printable ASCII is a valid header")
}

/// Why no zip could be served.
#[derive(Debug)]
enum Failure {
    /// Nothing to serve (404): a missing or refused local file, no source at all.
    Unavailable(String),
    /// A remote that cannot be fetched (502).
    Fetch(String),
}

/// The zip of a starter project, from the first of its sources that applies (module doc).
/// `folder` is the stack version's folder, when the snapshot has local files.
async fn zip_of(project: &StarterProject, folder: Option<&Path>) -> Result<Bytes, Failure> {
    let location = project.zip.as_ref().map(|z| z.location.trim()).filter(|l| !l.is_empty());
    let url = location.filter(|l| l.contains("://"));
    let mut missing = None;
    if let Some(relative) = location.filter(|_| url.is_none()) {
        let dir = folder.ok_or_else(|| Failure::Unavailable(format!("zip.location {relative}: no local files")))?;
        match read_inside(dir, relative).await {
            Ok(Some(bytes)) => return Ok(bytes),
            Ok(None) => missing = Some(format!("zip.location {relative} is not a file of {}", dir.display())),
            Err(refused) => return Err(Failure::Unavailable(refused)),
        }
    }
    if let Some(dir) = folder.filter(|_| plain_name(&project.name)) {
        if let Ok(Some(bytes)) = read_inside(dir, &format!("{}-offline.zip", project.name)).await {
            return Ok(bytes);
        }
    }
    if let Some(url) = url {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(Failure::Unavailable(format!(
                "zip.location {url} is neither a relative path nor an http(s) URL"
            )));
        }
        let client = download::client(DOWNLOAD_TIMEOUT).map_err(|e| Failure::Fetch(e.to_string()))?;
        return download::get(&client, url, MAX_ZIP_BYTES).await.map_err(|e| Failure::Fetch(e.to_string()));
    }
    if let Some(missing) = missing {
        return Err(Failure::Unavailable(missing));
    }
    if let Some(git) = &project.git {
        return match tokio::time::timeout(GIT_TIMEOUT, git_zip(git, &project.sub_dir)).await {
            Ok(result) => result.map_err(Failure::Fetch),
            Err(_) => Err(Failure::Fetch(format!("git took longer than {} s", GIT_TIMEOUT.as_secs()))),
        };
    }
    Err(Failure::Unavailable("it has neither a zip location nor a git remote".to_string()))
}

/// A name that is one path segment: not empty, not `.` or `..`, without separators or NUL.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The file at `relative` in `dir`: `Ok(None)` when there is no such file, `Err` when the path
/// leaves `dir` (`..`, absolute, or a link resolving outside) or the file is too large.
async fn read_inside(dir: &Path, relative: &str) -> Result<Option<Bytes>, String> {
    let path = Path::new(relative);
    if relative.contains('\0') || !path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("{relative} is not a path inside the stack version's folder"));
    }
    let Ok(root) = tokio::fs::canonicalize(dir).await else { return Ok(None) };
    let Ok(target) = tokio::fs::canonicalize(root.join(path)).await else { return Ok(None) };
    if !target.starts_with(&root) {
        return Err(format!("{relative} resolves outside the stack version's folder"));
    }
    match tokio::fs::metadata(&target).await {
        Ok(meta) if meta.is_file() && meta.len() > MAX_ZIP_BYTES as u64 => {
            Err(format!("{relative} is larger than {MAX_ZIP_BYTES} bytes"))
        }
        Ok(meta) if meta.is_file() => {
            tokio::fs::read(&target).await.map(|b| Some(Bytes::from(b))).map_err(|e| e.to_string())
        }
        _ => Ok(None),
    }
}

/// Fetches the remote of `git` at its revision into a temporary repository and zips its tree,
/// or the `sub_dir` sub-tree with `sub_dir` as the zip's root.
async fn git_zip(git: &GitProject, sub_dir: &str) -> Result<Bytes, String> {
    let (url, revision) = git.remote().ok_or("its git section names no remote to fetch")?;
    // Both become arguments of `git fetch`: neither may pass for an option.
    if url.starts_with('-') || revision.is_some_and(|r| r.starts_with('-')) {
        return Err(format!("refusing the remote {url} at {revision:?}"));
    }
    let at = revision.unwrap_or("HEAD");
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    run_git(dir.path(), &["init", "--quiet", "--bare"], 0).await?;
    // A shallow fetch of just that branch, tag or commit; servers that refuse a commit id that is
    // not a branch or tag head get a full fetch of their branches and tags instead.
    let commit = match run_git(dir.path(), &["fetch", "--quiet", "--depth=1", "--no-tags", url, at], 0).await {
        Ok(_) => "FETCH_HEAD",
        Err(shallow) => {
            let refs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
            run_git(dir.path(), &["fetch", "--quiet", "--no-tags", url, refs[0], refs[1]], 0)
                .await
                .map_err(|_| format!("{url} at {at}: {shallow}"))?;
            at
        }
    };
    let sub_dir = sub_dir.trim_matches('/');
    let tree = if sub_dir.is_empty() { format!("{commit}^{{tree}}") } else { format!("{commit}:{sub_dir}") };
    let tar = run_git(dir.path(), &["archive", "--format=tar", &tree], MAX_ZIP_BYTES)
        .await
        .map_err(|e| format!("{url} at {at}, sub-folder {sub_dir:?}: {e}"))?;
    // Zipping is CPU work: off the async threads, and the temporary folder is removed there too.
    tokio::task::spawn_blocking(move || {
        drop(dir);
        tar_to_zip(&tar, MAX_ZIP_BYTES)
    })
    .await
    .map_err(|e| format!("zipping failed: {e}"))?
    .map(Bytes::from)
}

/// Runs git in `dir` and returns its standard output, or its last line of standard error.
/// `max_stdout` > 0 stops git once its output exceeds that many bytes. Never prompts; the
/// process is killed when the future is dropped (timeout).
async fn run_git(dir: &Path, args: &[&str], max_stdout: usize) -> Result<Vec<u8>, String> {
    let mut child = tokio::process::Command::new("git")
        // `ext::` URLs run commands: never, whatever the local configuration says.
        .args(["-c", "protocol.ext.allow=never"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    // Standard error is read on the side, so that git never blocks on a full pipe.
    let stderr = tokio::spawn(async move {
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        err
    });
    let limit = if max_stdout == 0 { u64::MAX } else { max_stdout as u64 + 1 };
    let mut out = Vec::new();
    (&mut stdout).take(limit).read_to_end(&mut out).await.map_err(|e| format!("cannot read git's output: {e}"))?;
    if max_stdout > 0 && out.len() > max_stdout {
        let _ = child.kill().await;
        return Err(format!("more than {max_stdout} bytes"));
    }
    let status = child.wait().await.map_err(|e| format!("git failed: {e}"))?;
    if status.success() {
        return Ok(out);
    }
    let err = stderr.await.unwrap_or_default();
    let err = String::from_utf8_lossy(&err);
    Err(err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed").trim().to_string())
}

/// A tar archive (as `git archive` writes it) as a zip: files (deflated, with their modes),
/// folders and symbolic links (stored as links, never followed), in the tar's order. Entries are
/// dated 1980-01-01, the zip epoch, so the same tree gives the same bytes.
fn tar_to_zip(tar: &[u8], max_bytes: usize) -> Result<Vec<u8>, String> {
    use zip::write::SimpleFileOptions;
    let broken = |e: std::io::Error| format!("git archive wrote a broken tar: {e}");
    let zipping = |e: zip::result::ZipError| format!("cannot zip: {e}");
    let mut archive = tar::Archive::new(tar);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut total = 0usize;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let path = entry.path().map_err(broken)?.to_string_lossy().into_owned();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let options = SimpleFileOptions::default().unix_permissions(mode).last_modified_time(zip::DateTime::default());
        match entry.header().entry_type() {
            tar::EntryType::Regular => {
                total += entry.size() as usize;
                if total > max_bytes {
                    return Err(format!("the tree is larger than {max_bytes} bytes"));
                }
                zip.start_file(path, options.compression_method(zip::CompressionMethod::Deflated)).map_err(zipping)?;
                std::io::copy(&mut entry, &mut zip).map_err(broken)?;
            }
            tar::EntryType::Directory => zip.add_directory(path, options).map_err(zipping)?,
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(broken)?.map(|t| t.to_string_lossy().into_owned());
                let target = target.unwrap_or_default();
                zip.add_symlink(path, target, options).map_err(zipping)?;
            }
            // The pax header that carries the commit id, and nothing else git writes.
            _ => {}
        }
    }
    let mut cursor = zip.finish().map_err(zipping)?;
    cursor.flush().map_err(broken)?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dispositions() {
        assert!(plain_name("go-starter"));
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        assert_eq!(disposition("go-starter"), "attachment; filename=\"go-starter.zip\"");
        assert_eq!(disposition("a\"b c"), "attachment; filename=\"a_b_c.zip\"");
    }

    #[test]
    fn find_reads_the_definition() {
        let devfile = b"schemaVersion: 2.2.0\nstarterProjects:\n  - name: a\n    subDir: app\n    zip:\n      location: a.zip\n  - name: b\n    git:\n      remotes:\n        origin: https://example.invalid/b.git\n";
        let a = find(devfile, "a").unwrap().unwrap();
        assert_eq!((a.sub_dir.as_str(), a.zip.unwrap().location.as_str()), ("app", "a.zip"));
        let b = find(devfile, "b").unwrap().unwrap();
        assert_eq!(b.git.unwrap().remote(), Some(("https://example.invalid/b.git", None)));
        assert_eq!(find(devfile, "c").unwrap(), None);
        assert_eq!(find(b"schemaVersion: 2.2.0\n", "a").unwrap(), None);
        assert!(find(b"a: [", "a").is_err());
    }
}
