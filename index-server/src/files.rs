//! `GET /stacks/<path>`: the files of the current source's `stacks/` folder.
//!
//! Only regular files inside the tree are served: no directory listings, and no path that
//! leaves the tree, whether spelled with `..` (plain or percent-encoded), as an absolute path, or
//! through a symbolic link pointing outside. Bad paths are 400, missing files 404; never a 500.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::routing;

pub async fn stack_file(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    // `/stacks/go/` reaches this route too; it is redirected like any GET with a trailing slash.
    if let Some(redirect) = routing::without_trailing_slash(&uri) {
        return Ok(redirect);
    }
    let raw = uri.path().strip_prefix("/stacks/").unwrap_or_default();
    let relative = relative_path(raw).ok_or_else(|| ApiError::InvalidPath(raw.to_string()))?;
    let not_found = || ApiError::FileNotFound(raw.to_string());
    let root = state.snapshots.current().stacks_dir().ok_or_else(not_found)?;
    let root = tokio::fs::canonicalize(&root).await.map_err(|_| not_found())?;
    // Resolving every link first, then checking the prefix, catches links that point outside.
    let target = tokio::fs::canonicalize(root.join(&relative)).await.map_err(|_| not_found())?;
    if !target.starts_with(&root) {
        tracing::debug!(path = raw, "refused a path that resolves outside the stacks folder");
        return Err(not_found());
    }
    match tokio::fs::metadata(&target).await {
        Ok(meta) if meta.is_file() => {}
        _ => return Err(not_found()),
    }
    let bytes = tokio::fs::read(&target).await.map_err(|_| not_found())?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type(&target)), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        bytes,
    )
        .into_response())
}

/// The percent-decoded path below `stacks/`, when every segment is a plain name: not empty,
/// not `.` or `..`, without `/`, `\` or NUL once decoded, and valid UTF-8.
fn relative_path(raw: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for segment in raw.split('/') {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
        let plain = !decoded.is_empty() && decoded != "." && decoded != ".." && !decoded.contains(['/', '\\', '\0']);
        if !plain {
            return None;
        }
        path.push(decoded.as_ref());
    }
    Some(path)
}

/// The media type of a registry file, by extension; unknown files are bytes.
fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match ext.as_str() {
        "yaml" | "yml" => "text/yaml; charset=utf-8",
        "json" => "application/json",
        "md" | "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        _ if name == "Dockerfile" || name == "OWNERS" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn plain_names_pass_and_escapes_do_not() {
        assert_eq!(relative_path("go/devfile.yaml").unwrap(), std::path::Path::new("go/devfile.yaml"));
        assert_eq!(relative_path("java%20maven/x").unwrap(), std::path::Path::new("java maven/x"));
        for bad in [
            "",
            "..",
            "go/../..",
            "%2e%2e/x",
            "%2E%2E",
            "./go",
            "go//x",
            "/etc/passwd",
            "go%2f..%2f..",
            "a%00b",
            "a%5c..",
            "%ff",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }
}
