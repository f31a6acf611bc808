//! The update API: `POST /api/updates` (the post-merge trigger), `GET /api/updates[/{id}]`.
//!
//! A trigger is authenticated by an HMAC-SHA256 of its body (`X-Hub-Signature-256`, as GitHub
//! webhooks sign) with `UPDATE_WEBHOOK_SECRET`, or by `Authorization: Bearer <UPDATE_TOKEN>`.
//! Both comparisons take constant time. Without either configured, every trigger is refused.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use schemas::updates::{PushEvent, UpdateRequest};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Trigger;
use crate::AppState;

/// The secrets a trigger may prove it knows. `Debug` shows whether they are set, never them.
#[derive(Clone, Default)]
pub struct Auth {
    pub webhook_secret: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<set>"))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Auth {
    /// Which proof `headers` carry for `body`, if a valid one: `signature` or `token`.
    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<&'static str, &'static str> {
        if self.webhook_secret.is_none() && self.token.is_none() {
            return Err("updates are disabled: the server has neither UPDATE_WEBHOOK_SECRET nor UPDATE_TOKEN");
        }
        if let Some(signature) = headers.get("x-hub-signature-256") {
            let Some(secret) = &self.webhook_secret else {
                return Err("signed triggers are not accepted: the server has no UPDATE_WEBHOOK_SECRET");
            };
            let given = signature.to_str().ok().and_then(|s| s.strip_prefix("sha256=")).and_then(decode_hex);
            let Some(given) = given else { return Err("X-Hub-Signature-256 is not sha256=<hex>") };
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
            mac.update(body);
            return mac.verify_slice(&given).map(|()| "signature").map_err(|_| "the signature does not match the body");
        }
        if let Some(authorization) = headers.get(header::AUTHORIZATION) {
            let Some(token) = &self.token else {
                return Err("bearer tokens are not accepted: the server has no UPDATE_TOKEN");
            };
            let given = authorization.to_str().ok().and_then(|s| s.strip_prefix("Bearer ")).unwrap_or("");
            return if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                Ok("token")
            } else {
                Err("the token is wrong")
            };
        }
        Err("a trigger needs X-Hub-Signature-256 or Authorization: Bearer")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// `/api/updates` and `/api/updates/{id}`.
pub fn routes() -> Router<AppState> {
    use axum::routing::get;
    Router::new()
        .route("/api/updates", get(list).post(trigger).fallback(crate::routing::method_not_allowed))
        .route("/api/updates/{id}", get(show).fallback(crate::routing::method_not_allowed))
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

/// 404 on a server without updates: the embedded mode with no monitored repository.
fn no_updates() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "this server takes no updates: it serves a folder (set REGISTRY_REPO_URL or --oci-registry)",
    )
}

async fn list(State(state): State<AppState>) -> Response {
    match &state.updates {
        Some(updates) => Json(updates.jobs()).into_response(),
        None => no_updates(),
    }
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(updates) = &state.updates else { return no_updates() };
    match updates.job(&id) {
        Some(job) => Json(job).into_response(),
        None => message(StatusCode::NOT_FOUND, format!("no update {id}")),
    }
}

async fn trigger(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(updates) = &state.updates else { return no_updates() };
    let kind = match updates.auth.check(&headers, &body) {
        Ok(kind) => kind,
        Err(why) => {
            tracing::warn!(reason = why, "update trigger refused");
            let mut response = message(StatusCode::UNAUTHORIZED, why);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"updates\""));
            return response;
        }
    };
    let delivery = headers.get("x-github-delivery").and_then(|v| v.to_str().ok()).map(str::to_string);
    let event = headers.get("x-github-event").and_then(|v| v.to_str().ok());
    let (kind, commit, stacks) = match event {
        Some("ping") => return message(StatusCode::OK, "pong"),
        Some("push") => {
            let push: PushEvent = match serde_json::from_slice(&body) {
                Ok(push) => push,
                Err(e) => return message(StatusCode::BAD_REQUEST, format!("not a GitHub push event: {e}")),
            };
            let branch = updates
                .remote()
                .and_then(|r| r.branch().map(str::to_string))
                .or_else(|| push.repository.as_ref().and_then(|r| r.default_branch.clone()));
            if let Some(branch) = branch {
                if push.reference != format!("refs/heads/{branch}") {
                    return message(
                        StatusCode::OK,
                        format!("ignored: {} is not the monitored branch {branch}", push.reference),
                    );
                }
            }
            if push.after.bytes().all(|b| b == b'0') {
                return message(StatusCode::OK, "ignored: the branch was deleted");
            }
            let stacks = push.stacks();
            ("github-push", Some(push.after), stacks)
        }
        Some(other) => return message(StatusCode::OK, format!("ignored: {other} events do not change the registry")),
        None => {
            let request: UpdateRequest = if body.iter().all(u8::is_ascii_whitespace) {
                UpdateRequest::default()
            } else {
                match serde_json::from_slice(&body) {
                    Ok(request) => request,
                    Err(e) => {
                        return message(
                            StatusCode::BAD_REQUEST,
                            format!("the body must be {{\"commit\": \"<sha>\", \"stacks\": [...]}}: {e}"),
                        );
                    }
                }
            };
            (kind, request.commit, request.stacks)
        }
    };
    if let Some(commit) = &commit {
        let hex = commit.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex || !(commit.len() == 40 || commit.len() == 64) {
            return message(
                StatusCode::BAD_REQUEST,
                format!("commit {commit} is not a full commit id (40 or 64 lowercase hex digits)"),
            );
        }
    }
    let (job, created) = updates.enqueue(Trigger { kind, commit, stacks, delivery });
    let location = format!("/api/updates/{}", job.id);
    let status = if created { StatusCode::ACCEPTED } else { StatusCode::OK };
    (status, [(header::LOCATION, location)], Json(job)).into_response()
}
