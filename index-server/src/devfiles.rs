//! `GET /devfiles/{name}` and `GET /devfiles/{name}/{version}`: the devfile YAML of one version.

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::index::{DevfileType, IndexEntry, Version};

use crate::AppState;
use crate::error::ApiError;
use crate::filter::VersionRange;

pub async fn default_version(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    devfile(&state, name, "default".to_string(), query.as_deref()).await
}

pub async fn with_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    devfile(&state, name, version, query.as_deref()).await
}

async fn devfile(state: &AppState, name: String, version: String, query: Option<&str>) -> Result<Response, ApiError> {
    let snapshot = state.snapshots.current();
    let Some(entry) = snapshot.entry(&name) else { return Err(ApiError::UnknownDevfile(name)) };
    let found = resolve(entry, &name, &version, query)?;
    let lookup = match (entry.kind == Some(DevfileType::Sample), found) {
        // Samples are published as devfile-samples/<name>:<version>, or :latest (SPEC §5).
        (true, found) => state
            .store
            .sample_devfile(&entry.name, found.map_or(index_generator::samples::UNVERSIONED_TAG, |v| &v.version)),
        (false, Some(found)) => state.store.devfile(stack_folder(entry, found), &found.version),
        (false, None) => return Err(ApiError::DevfileUnavailable(name)),
    };
    let bytes = lookup
        .await
        .map_err(|source| ApiError::Store { name: name.clone(), source })?
        .ok_or(ApiError::DevfileUnavailable(name))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// The version a request names: `default`, `latest` or an exact one. `Ok(None)` for an entry
/// without versions (a sample with a single devfile), which answers `default` and `latest`.
fn resolve<'a>(
    entry: &'a IndexEntry,
    name: &str,
    version: &str,
    query: Option<&str>,
) -> Result<Option<&'a Version>, ApiError> {
    if entry.versions.is_empty() && (version == "default" || version == "latest") {
        return Ok(None);
    }
    let found = match version {
        "default" => entry.default_version(),
        "latest" => latest(entry, &VersionRange::schema_versions(query)?),
        exact => entry.versions.iter().find(|v| v.version == exact),
    };
    found.map(Some).ok_or_else(|| ApiError::UnknownVersion { name: name.to_string(), version: version.to_string() })
}

/// The highest version (semver order) whose schema version is in `schemas`.
fn latest<'a>(entry: &'a IndexEntry, schemas: &VersionRange) -> Option<&'a Version> {
    entry
        .versions
        .iter()
        .filter(|v| schemas.contains(&v.schema_version))
        .max_by_key(|v| semver::Version::parse(&v.version).ok())
}

/// The stack folder a version was published from: `links.self` is
/// `devfile-catalog/<stack folder>:<version>`, and the entry's name may differ from the folder.
fn stack_folder<'a>(entry: &'a IndexEntry, version: &'a Version) -> &'a str {
    version
        .links
        .get("self")
        .and_then(|link| link.strip_prefix(schemas::oci::STACK_REPOSITORY_PREFIX))
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(folder, _)| folder)
        .unwrap_or(&entry.name)
}
