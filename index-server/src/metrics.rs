//! `GET /metrics`: a small Prometheus text exposition, written by hand.
//!
//! Counted: requests by route template and status, requests by the `Client` telemetry header
//! (bounded, so that arbitrary headers cannot grow it without limit), and the snapshot served.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemas::index::DevfileType;

use crate::AppState;

/// Distinct `Client` values counted; later ones are counted as `other`.
const MAX_CLIENTS: usize = 64;
/// `Client` values are cut to this many characters.
const MAX_CLIENT_LEN: usize = 64;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Route → status → count. Nested so that counting a request seen before allocates nothing.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    clients: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn record(&self, route: &str, status: u16, client: Option<&str>) {
        // The maps only hold counters: a panic elsewhere cannot leave them inconsistent.
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.get_mut(route) {
            Some(statuses) => *statuses.entry(status).or_default() += 1,
            None => {
                requests.insert(route.to_string(), BTreeMap::from([(status, 1)]));
            }
        }
        drop(requests);
        if let Some(client) = client {
            let clean = |c: char| c.is_ascii_graphic() || c == ' ';
            let client: std::borrow::Cow<str> = if client.len() <= MAX_CLIENT_LEN && client.chars().all(clean) {
                client.into()
            } else {
                client.chars().filter(|c| clean(*c)).take(MAX_CLIENT_LEN).collect::<String>().into()
            };
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = clients.get_mut(client.as_ref()) {
                *count += 1;
            } else {
                let key = if clients.len() < MAX_CLIENTS { client.into_owned() } else { "other".into() };
                *clients.entry(key).or_default() += 1;
            }
        }
    }

    fn requests(&self) -> Vec<((String, u16), u64)> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests
            .iter()
            .flat_map(|(route, statuses)| statuses.iter().map(|(status, n)| ((route.clone(), *status), *n)))
            .collect()
    }

    fn clients(&self) -> Vec<(String, u64)> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

pub async fn exposition(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshots.current();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_all(&mut out, &state, &snapshot);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

fn write_all(out: &mut String, state: &AppState, snapshot: &crate::snapshot::Snapshot) -> std::fmt::Result {
    writeln!(out, "# HELP registry_http_requests_total HTTP requests answered, by route and status.")?;
    writeln!(out, "# TYPE registry_http_requests_total counter")?;
    for ((route, status), count) in state.metrics.requests() {
        writeln!(out, "registry_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}", escape(&route))?;
    }
    writeln!(out, "# HELP registry_client_requests_total Requests by the Client telemetry header.")?;
    writeln!(out, "# TYPE registry_client_requests_total counter")?;
    for (client, count) in state.metrics.clients() {
        writeln!(out, "registry_client_requests_total{{client=\"{}\"}} {count}", escape(&client))?;
    }
    writeln!(out, "# HELP registry_snapshot_info The index snapshot being served.")?;
    writeln!(out, "# TYPE registry_snapshot_info gauge")?;
    writeln!(
        out,
        "registry_snapshot_info{{commit_hash=\"{}\",digest=\"{}\"}} 1",
        escape(snapshot.commit_hash()),
        escape(snapshot.digest())
    )?;
    let loaded = snapshot.loaded_at().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    writeln!(out, "# HELP registry_snapshot_loaded_timestamp_seconds When the served snapshot was built.")?;
    writeln!(out, "# TYPE registry_snapshot_loaded_timestamp_seconds gauge")?;
    writeln!(out, "registry_snapshot_loaded_timestamp_seconds {loaded}")?;
    let entries = &snapshot.document().stacks;
    let samples = entries.iter().filter(|e| e.kind == Some(DevfileType::Sample)).count();
    writeln!(out, "# HELP registry_index_entries Entries in the served index, by type.")?;
    writeln!(out, "# TYPE registry_index_entries gauge")?;
    writeln!(out, "registry_index_entries{{type=\"stack\"}} {}", entries.len() - samples)?;
    writeln!(out, "registry_index_entries{{type=\"sample\"}} {samples}")?;
    if let Some(updates) = &state.updates {
        writeln!(out, "# HELP registry_reconciler_rounds_total Rounds of the reconciler completed (one at startup).")?;
        writeln!(out, "# TYPE registry_reconciler_rounds_total counter")?;
        writeln!(out, "registry_reconciler_rounds_total {}", updates.reconciler_rounds())?;
    }
    Ok(())
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
