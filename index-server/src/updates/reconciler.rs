//! The reconciler: level-triggered, so that a lost trigger, a crash in the middle of an update
//! or a restart converge on their own. Every refresh interval (and once at startup) it
//!
//! 1. asks the registry for the digest of `devfile-index:latest` (a HEAD request) and serves that
//!    index when it is not the one served (OCI mode: another replica published it);
//! 2. asks the monitored repository for its branch head and queues an update when the served
//!    index was built from another commit, unless that commit is known to be invalid or an
//!    update for it is already waiting or running.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use schemas::updates::UpdateStatus;

use super::{Trigger, Updates};

impl Updates {
    pub(super) async fn reconcile_forever(self: Arc<Updates>) {
        let mut ticks = tokio::time::interval(self.refresh_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.reconcile_once().await;
        }
    }

    /// One round of the reconciler.
    pub async fn reconcile_once(&self) {
        self.reconcile_round().await;
        self.reconciler_rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Rounds completed since startup (`registry_reconciler_rounds_total`).
    pub fn reconciler_rounds(&self) -> u64 {
        self.reconciler_rounds.load(Ordering::Relaxed)
    }

    async fn reconcile_round(&self) {
        if !self.is_busy() {
            if let Err(e) = self.reconcile_registry().await {
                tracing::warn!(error = %e, "cannot follow the registry; trying again later");
            }
        }
        let Some(remote) = &self.remote else { return };
        match remote.head().await {
            Ok(head) => {
                if head != self.snapshots.current().commit_hash() && !self.pending_or_invalid(&head) {
                    tracing::info!(
                        head = %head,
                        repository.url = remote.url(),
                        repository.branch = remote.branch(),
                        "the monitored branch moved"
                    );
                    self.enqueue(Trigger {
                        kind: "reconciler",
                        commit: Some(head),
                        stacks: Vec::new(),
                        delivery: None,
                    });
                }
            }
            Err(e) => tracing::warn!(
                repository.url = remote.url(),
                repository.branch = remote.branch(),
                error = %e,
                "cannot read the monitored branch"
            ),
        }
    }

    /// Whether an update is publishing (it will swap itself).
    fn is_busy(&self) -> bool {
        let jobs = self.jobs.lock().expect("the job lock is never poisoned");
        jobs.running.as_ref().and_then(|id| jobs.get(id)).is_some_and(|j| j.status == UpdateStatus::Publishing)
    }
}
