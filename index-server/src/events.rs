//! `GET /api/events`: Server-Sent Events for index swaps and update jobs (SPEC §7).
//!
//! A subscriber first gets an `index` event describing the snapshot being served, then one after
//! every swap (when several swaps happen faster than it reads, it gets the newest), and the
//! notices other parts of the server publish on the [`EventHub`] (update jobs: `update`).
//! Pages compare the `digest` with the one they were rendered from.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_stream::{Stream, StreamExt};

use crate::AppState;
use crate::snapshot::Snapshot;

/// Notices waiting for a slow subscriber; one that falls further behind misses the oldest.
const BACKLOG: usize = 256;

/// One event for the subscribers: its SSE name and its JSON data.
#[derive(Debug, Clone)]
pub struct Notice {
    pub name: &'static str,
    pub data: String,
}

/// Where the server publishes notices for `/api/events`.
#[derive(Debug)]
pub struct EventHub {
    sender: broadcast::Sender<Notice>,
    /// Set when the server shuts down: every event stream ends, so that open pages do not hold
    /// a graceful shutdown forever.
    closing: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> EventHub {
        EventHub { sender: broadcast::Sender::new(BACKLOG), closing: watch::Sender::new(false) }
    }
}

impl EventHub {
    /// Sends `data` as an event named `name` to everyone subscribed now.
    pub fn publish(&self, name: &'static str, data: &impl Serialize) {
        let data = serde_json::to_string(data).expect("event data serializes");
        // No subscriber is not an error.
        let _ = self.sender.send(Notice { name, data });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }

    /// Ends every event stream, now and for later subscribers.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// The `data` of an `index` event.
#[derive(Debug, Serialize)]
pub struct IndexEvent<'a> {
    pub digest: &'a str,
    pub commit_hash: &'a str,
    pub entries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_digest: Option<&'a str>,
}

impl<'a> IndexEvent<'a> {
    pub fn of(snapshot: &'a Snapshot) -> IndexEvent<'a> {
        IndexEvent {
            digest: snapshot.digest(),
            commit_hash: snapshot.commit_hash(),
            entries: snapshot.document().stacks.len(),
            published_digest: snapshot.published_digest(),
        }
    }
}

pub async fn stream(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let notices = BroadcastStream::new(state.events.subscribe()).filter_map(|notice| match notice {
        Ok(notice) => Some(Some(Event::default().event(notice.name).data(notice.data))),
        // Lagged: the subscriber missed some notices; the next index event still tells the truth.
        Err(_) => None,
    });
    let snapshots = WatchStream::new(state.snapshots.subscribe()).map(|snapshot: Arc<Snapshot>| {
        let data = serde_json::to_string(&IndexEvent::of(&snapshot)).expect("event data serializes");
        Some(Event::default().event("index").data(data))
    });
    // `None` ends the stream.
    let closing = WatchStream::new(state.events.closing.subscribe()).filter(|closing| *closing).map(|_| None);
    let events = snapshots.merge(notices).merge(closing).take_while(Option::is_some).filter_map(|e| e.map(Ok));
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
