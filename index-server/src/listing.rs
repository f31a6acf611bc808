//! The index routes: `/index`, `/index/{type}` (v1) and `/v2index`, `/v2index/{type}` (v2).
//!
//! An unfiltered request is answered with the snapshot's pre-serialized body; a filtered one
//! filters the snapshot's parsed entries and serializes the result, which the snapshot caches. Either way the body carries
//! a strong `ETag` and `If-None-Match` is honoured.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::filter::{Family, IndexQuery};
use crate::snapshot::{Body, Listing, Snapshot};
use crate::{AppState, reuse};

pub async fn v1_stacks(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    answer(&state, Family::V1, Ok(Listing::Stacks), query.as_deref(), &headers)
}

pub async fn v1_typed(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(&state, Family::V1, listing(kind), query.as_deref(), &headers)
}

pub async fn v2_stacks(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    answer(&state, Family::V2, Ok(Listing::Stacks), query.as_deref(), &headers)
}

pub async fn v2_typed(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(&state, Family::V2, listing(kind), query.as_deref(), &headers)
}

fn listing(kind: String) -> Result<Listing, ApiError> {
    Listing::from_segment(&kind).ok_or(ApiError::UnknownType(kind))
}

fn answer(
    state: &AppState,
    family: Family,
    listing: Result<Listing, ApiError>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let snapshot = state.snapshots.current();
    match body(state, &snapshot, family, listing, query) {
        Ok(body) => {
            let mut response = respond(&body, headers);
            // Bodies made for one request (icons inlined so far) are not the snapshot's answer.
            if response.status() == StatusCode::OK && !matches!(body, Served::Made(_)) {
                reuse::reusable(&mut response, body.bytes.clone());
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The body to send: the snapshot's own for an unfiltered request, a cached filtered one (neither
/// copied), or one made for this request.
enum Served<'a> {
    Snapshot(&'a Body),
    Cached(Arc<Body>),
    Made(Body),
}

impl std::ops::Deref for Served<'_> {
    type Target = Body;

    fn deref(&self) -> &Body {
        match self {
            Served::Snapshot(body) => body,
            Served::Cached(body) => body,
            Served::Made(body) => body,
        }
    }
}

fn body<'a>(
    state: &AppState,
    snapshot: &'a Snapshot,
    family: Family,
    listing: Result<Listing, ApiError>,
    query: Option<&str>,
) -> Result<Served<'a>, ApiError> {
    let listing = listing?;
    let Some(raw) = query else { return Ok(Served::Snapshot(snapshot.body(family, listing))) };
    // Clients repeat the same few queries: a cached one was valid, so it is not parsed again.
    if let Some(body) = snapshot.cached_filtered_body(family, listing, raw) {
        return Ok(Served::Cached(body));
    }
    let query = IndexQuery::parse(Some(raw), family)?;
    if query.icon_base64 {
        let mut entries = if query.filters() {
            query.apply(snapshot.entries(family), family, listing)
        } else {
            snapshot.entries(family).iter().filter(|e| listing.includes(e)).cloned().collect()
        };
        // The icons fetched so far; the others stay URLs (never fetched on a request's path).
        // Not cached: the set of fetched icons grows after the snapshot is made.
        state.snapshots.icons().inline(snapshot, &mut entries);
        return Ok(Served::Made(Body::json_pretty(&entries)));
    }
    Ok(if query.filters() {
        Served::Cached(snapshot.filtered_body(family, listing, raw, || {
            Body::json_pretty(&query.apply(snapshot.entries(family), family, listing))
        }))
    } else {
        Served::Snapshot(snapshot.body(family, listing))
    })
}

fn respond(body: &Body, headers: &HeaderMap) -> Response {
    let etag = body.etag_header.clone();
    if if_none_match(headers, &body.etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::ETAG, etag)],
        body.bytes.clone(),
    )
        .into_response()
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for GET), or is `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
        },
    )
}
