//! `GET /devfiles/{name}` and `GET /devfiles/{name}/{version}`: the devfile YAML of one version.
//! How these routes name a stack version ([`locate`]) is shared with the starter project routes.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use schemas::index::{DevfileType, IndexEntry, Version};

use crate::error::ApiError;
use crate::filter::VersionRange;
use crate::snapshot::Snapshot;
use crate::{AppState, reuse};

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
    let at = locate(&state.snapshots.current(), &name, &version, query)?;
    let bytes = read(state, &name, &at).await?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))],
        bytes.clone(),
    )
        .into_response();
    if state.store.fixed_per_snapshot() {
        reuse::reusable(&mut response, bytes);
    }
    Ok(response)
}

/// A devfile as the store addresses it: `devfile-catalog/<folder>:<version>` for a stack
/// version, `devfile-samples/<name>:<version or latest>` for a sample (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub sample: bool,
    /// The stack folder, or the sample's name.
    pub folder: String,
    /// The version, or `latest` for a sample without versions.
    pub version: String,
}

/// The stack version `{name}/{version}` names on `snapshot` (`version` is exact, `default` or
/// `latest`, the latter bounded by the `minSchemaVersion`/`maxSchemaVersion` of `query`), or the
/// 404 of the devfile routes.
pub fn locate(snapshot: &Snapshot, name: &str, version: &str, query: Option<&str>) -> Result<Located, ApiError> {
    let Some(entry) = snapshot.entry(name) else { return Err(ApiError::UnknownDevfile(name.to_string())) };
    let found = resolve(entry, name, version, query)?;
    match (entry.kind == Some(DevfileType::Sample), found) {
        (true, found) => Ok(Located {
            sample: true,
            folder: entry.name.clone(),
            version: found.map_or(index_generator::samples::UNVERSIONED_TAG.to_string(), |v| v.version.clone()),
        }),
        (false, Some(found)) => Ok(Located {
            sample: false,
            folder: stack_folder(entry, found).to_string(),
            version: found.version.clone(),
        }),
        (false, None) => Err(ApiError::DevfileUnavailable(name.to_string())),
    }
}

/// The devfile at `at` of the entry `name`, from the store.
pub async fn read(state: &AppState, name: &str, at: &Located) -> Result<Bytes, ApiError> {
    let lookup = if at.sample {
        state.store.sample_devfile(&at.folder, &at.version)
    } else {
        state.store.devfile(&at.folder, &at.version)
    };
    lookup
        .await
        .map_err(|source| ApiError::Store { name: name.to_string(), source })?
        .ok_or_else(|| ApiError::DevfileUnavailable(name.to_string()))
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
pub(crate) fn stack_folder<'a>(entry: &'a IndexEntry, version: &'a Version) -> &'a str {
    version
        .links
        .get("self")
        .and_then(|link| link.strip_prefix(schemas::oci::STACK_REPOSITORY_PREFIX))
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(folder, _)| folder)
        .unwrap_or(&entry.name)
}

/// The stack folder of an entry (every version of a stack has the same); the entry's name for
/// one without versions.
pub fn entry_folder(entry: &IndexEntry) -> &str {
    match entry.default_version().or(entry.versions.first()) {
        Some(version) => stack_folder(entry, version),
        None => &entry.name,
    }
}
