//! The read-only OCI distribution API under `/v2` (SPEC §6), served from the store, so that odo,
//! the devfile library and any OCI client (oras, skopeo) pull stacks from the server itself:
//! `GET /v2/`, `/v2/_catalog`, `/v2/<name>/tags/list`, `/v2/<name>/manifests/<reference>` and
//! `/v2/<name>/blobs/<digest>`, GET and HEAD. Errors use the distribution error envelope.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use crate::AppState;
use crate::store::StoreError;

const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// `GET /v2/`: the API is there, and needs no authentication.
pub async fn base() -> Response {
    ([API_VERSION], Json(json!({}))).into_response()
}

pub async fn catalog(State(state): State<AppState>) -> Response {
    match state.store.catalog().await {
        Ok(repositories) => ([API_VERSION], Json(json!({ "repositories": repositories }))).into_response(),
        Err(e) => store_failed(e),
    }
}

/// `/v2/<name>/{tags/list, manifests/<reference>, blobs/<digest>}`; `name` may hold slashes.
pub async fn route(State(state): State<AppState>, method: Method, Path(rest): Path<String>) -> Response {
    let head = method == Method::HEAD;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return tags(&state, name).await;
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        if valid_name(name) && valid_reference(reference) {
            return manifest(&state, name, reference, head).await;
        }
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        if valid_name(name) && valid_digest(digest) {
            return blob(&state, name, digest, head).await;
        }
    }
    error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry")
}

async fn tags(state: &AppState, name: &str) -> Response {
    if !valid_name(name) {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry");
    }
    match state.store.tags(name).await {
        Ok(Some(tags)) => ([API_VERSION], Json(json!({ "name": name, "tags": tags }))).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry"),
        Err(e) => store_failed(e),
    }
}

async fn manifest(state: &AppState, name: &str, reference: &str, head: bool) -> Response {
    match state.store.manifest(name, reference).await {
        Ok(Some(manifest)) => content(schemas::oci::MANIFEST_MEDIA_TYPE, &manifest.digest, manifest.bytes, head),
        Ok(None) => error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown"),
        Err(e) => store_failed(e),
    }
}

async fn blob(state: &AppState, name: &str, digest: &str, head: bool) -> Response {
    match state.store.blob(name, digest).await {
        Ok(Some(bytes)) => content("application/octet-stream", digest, bytes, head),
        Ok(None) => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry"),
        Err(e) => store_failed(e),
    }
}

/// A manifest or blob answer: the bytes (none for HEAD) with their type, digest and length.
fn content(media_type: &'static str, digest: &str, bytes: Bytes, head: bool) -> Response {
    let length = bytes.len();
    let mut response = if head { ().into_response() } else { bytes.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{digest}\"")).expect("a digest is a header value"));
    headers.insert("docker-content-digest", HeaderValue::from_str(digest).expect("a digest is a header value"));
    headers.insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, [API_VERSION], Json(json!({ "errors": [{ "code": code, "message": message }] }))).into_response()
}

fn store_failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "the store failed on a /v2 request");
    error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "the artifact store is not available")
}

/// Repository names of the distribution spec: lowercase path components joined by `/`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) or a digest.
fn valid_reference(reference: &str) -> bool {
    valid_digest(reference)
        || (reference.len() <= 128
            && reference.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && reference.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_references_and_digests() {
        assert!(valid_name("devfile-catalog/go"));
        assert!(!valid_name("devfile-catalog/../go"));
        assert!(!valid_name("Upper"));
        assert!(!valid_name("a//b"));
        assert!(valid_reference("1.0.0"));
        assert!(valid_reference("latest"));
        assert!(!valid_reference(".hidden"));
        assert!(!valid_reference("a/b"));
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
    }
}
