//! The viewer's view of the server: [`viewer::Catalog`] over the snapshot cell, [`viewer::Index`]
//! over one snapshot (its entries, its devfiles from the store, its icons from the icon cache).

use std::sync::Arc;

use base64::Engine;
use schemas::index::IndexEntry;

use crate::AppState;
use crate::devfiles;
use crate::snapshot::Snapshot;

/// The registry the viewer shows when `REGISTRY_NAME` is empty.
const DEFAULT_REGISTRY_NAME: &str = "Community";

/// What the viewer reads: the server's state.
pub struct Catalog {
    state: AppState,
    registry_name: String,
}

impl Catalog {
    pub fn new(state: AppState) -> Catalog {
        let name = state.options.registry_name.trim();
        let registry_name = if name.is_empty() { DEFAULT_REGISTRY_NAME } else { name }.to_string();
        Catalog { state, registry_name }
    }
}

impl viewer::Catalog for Catalog {
    fn registry_name(&self) -> &str {
        &self.registry_name
    }

    fn index(&self) -> Arc<dyn viewer::Index> {
        Arc::new(Index { snapshot: self.state.snapshots.current(), state: self.state.clone() })
    }
}

/// One snapshot, as the viewer reads it.
struct Index {
    snapshot: Arc<Snapshot>,
    state: AppState,
}

impl viewer::Index for Index {
    fn entries(&self) -> &[IndexEntry] {
        &self.snapshot.document().stacks
    }

    fn digest(&self) -> &str {
        self.snapshot.digest()
    }

    fn devfile<'a>(&'a self, name: &'a str, version: &'a str) -> viewer::DevfileFuture<'a> {
        Box::pin(async move {
            let at = devfiles::locate(&self.snapshot, name, version, None).ok()?;
            match devfiles::read(&self.state, name, &at).await {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) => {
                    tracing::debug!(stack.name = name, stack.version = version, error = %e, "no devfile for the viewer");
                    None
                }
            }
        })
    }

    fn icon(&self, name: &str) -> Option<viewer::Icon> {
        let entry = self.snapshot.entry(name)?;
        if let Some(data) = self.state.snapshots.icons().cached(&self.snapshot, name) {
            let (content_type, encoded) = data.strip_prefix("data:")?.split_once(";base64,")?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            return Some(viewer::Icon::Bytes { content_type: content_type.to_string(), bytes });
        }
        let icon = entry.icon.trim();
        let lower = icon.to_ascii_lowercase();
        (lower.starts_with("https://") || lower.starts_with("http://")).then(|| viewer::Icon::Url(icon.to_string()))
    }
}
