//! Dynamic updates (SPEC §7): update jobs, the worker that runs them one at a time, and the
//! reconciler that makes every replica converge on its own.
//!
//! A job goes `queued → fetching → validating → publishing → live`, or ends `failed` (nothing
//! served changes) or `superseded` (a newer commit made it unnecessary). At most one job runs;
//! a new trigger supersedes the job waiting behind it, so a storm of merges ends on the newest
//! commit after at most two runs.
//!
//! Where the new index goes depends on the mode: in OCI mode the changed artifacts are pushed
//! (content-addressed: only what the registry lacks; only what differs from the index this
//! replica last published, see `Verified`), then the index, then the snapshot swaps; in
//! the embedded mode the artifacts go into the local store. `devfile-index:latest` only ever moves
//! forward along the monitored branch: before moving it, the job checks that the commit it
//! replaces is an ancestor of the new one.

mod api;
mod changes;
mod reconciler;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use index_generator::publish::{self, Publisher};
use index_generator::{Checkout, DevfileSchemas, NoProgress, Options};
use schemas::index::{DevfileType, IndexDocument};
use schemas::updates::{Phase, Problem, Published, UpdateJob, UpdateStatus};
use tokio::sync::Notify;

pub use api::{Auth, routes};
pub use index_generator::Remote;

use crate::events::EventHub;
use crate::oci::OciStore;
use crate::snapshot::{Snapshot, SnapshotCell};
use crate::store::LocalStore;

/// Finished jobs kept for `GET /api/updates`.
const HISTORY: usize = 100;
/// `X-GitHub-Delivery` ids remembered, so that a redelivery does not run again.
const DELIVERIES: usize = 1000;

/// Where a new index goes.
pub enum Backend {
    /// Pushed to the OCI registry, which every replica reads.
    Oci { publisher: Arc<Publisher>, store: Arc<OciStore> },
    /// Kept in this process's store (embedded mode).
    Local { store: Arc<LocalStore> },
}

/// What asks for an update.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// `token`, `signature`, `github-push` or `reconciler`.
    pub kind: &'static str,
    pub commit: Option<String>,
    pub stacks: Vec<String>,
    pub delivery: Option<String>,
}

/// The update machinery of one server: jobs, the worker and the reconciler.
pub struct Updates {
    remote: Option<Remote>,
    backend: Backend,
    snapshots: Arc<SnapshotCell>,
    events: Arc<EventHub>,
    auth: Auth,
    schemas: Arc<DevfileSchemas>,
    jobs: Mutex<Jobs>,
    wake: Notify,
    /// Held from "the index may move" to "the snapshot swapped", by jobs and the reconciler.
    swap_lock: tokio::sync::Mutex<()>,
    refresh_interval: Duration,
    id_prefix: String,
    /// Rounds of the reconciler completed (the first one runs at startup).
    reconciler_rounds: AtomicU64,
    /// OCI mode: the artifacts of the index this replica last published, known to be in place.
    verified: Mutex<Option<Verified>>,
}

/// What the registry holds for an index this replica published itself: every stack version and
/// sample artifact it pushed or found in place before pushing the index. While
/// `devfile-index:latest` still points at that index, the next update pushes only the artifacts
/// whose manifest differs, without looking the others up. The record is taken when an update
/// starts pushing and put back only when it succeeded, so after any failure (or a restart, or
/// an index published by another replica) the next update looks every artifact up again.
struct Verified {
    /// The manifest digest of that index at `devfile-index:latest`.
    index_digest: String,
    /// `(repository, tag)` → manifest digest.
    artifacts: HashMap<(String, String), String>,
}

#[derive(Default)]
struct Jobs {
    next: u64,
    /// Oldest first.
    list: VecDeque<UpdateJob>,
    queued: Option<String>,
    running: Option<String>,
    deliveries: HashMap<String, String>,
    delivery_order: VecDeque<String>,
    /// Commits whose source is invalid: the reconciler does not try them again (a trigger does).
    invalid_commits: HashSet<String>,
}

impl Jobs {
    fn get_mut(&mut self, id: &str) -> Option<&mut UpdateJob> {
        self.list.iter_mut().find(|j| j.id == id)
    }

    fn get(&self, id: &str) -> Option<&UpdateJob> {
        self.list.iter().find(|j| j.id == id)
    }

    /// Drops the oldest finished jobs beyond [`HISTORY`].
    fn trim(&mut self) {
        while self.list.len() > HISTORY {
            match self.list.iter().position(|j| j.status.is_final()) {
                Some(i) => {
                    self.list.remove(i);
                }
                None => break,
            }
        }
    }
}

/// Why a job failed: the source itself (not retried by the reconciler), or anything else.
enum Failure {
    Invalid(String, Vec<Problem>),
    Transient(String),
}

impl Updates {
    pub fn new(
        remote: Option<Remote>,
        backend: Backend,
        snapshots: Arc<SnapshotCell>,
        events: Arc<EventHub>,
        auth: Auth,
        refresh_interval: Duration,
    ) -> Arc<Updates> {
        let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        Arc::new(Updates {
            remote,
            backend,
            snapshots,
            events,
            auth,
            schemas: Arc::new(DevfileSchemas::new()),
            jobs: Mutex::new(Jobs::default()),
            wake: Notify::new(),
            swap_lock: tokio::sync::Mutex::new(()),
            refresh_interval,
            id_prefix: format!("{started:x}"),
            reconciler_rounds: AtomicU64::new(0),
            verified: Mutex::new(None),
        })
    }

    /// Starts the worker and the reconciler on the current runtime.
    pub fn start(self: &Arc<Updates>) {
        let worker = Arc::clone(self);
        tokio::spawn(async move { worker.work().await });
        let reconciler = Arc::clone(self);
        tokio::spawn(async move { reconciler.reconcile_forever().await });
    }

    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// Records a trigger as a queued job and wakes the worker. Returns the job and whether it is
    /// new (`false`: a redelivery, or the same commit is already waiting or running).
    pub fn enqueue(&self, trigger: Trigger) -> (UpdateJob, bool) {
        let mut jobs = self.jobs.lock().expect("the job lock is never poisoned");
        if let Some(delivery) = &trigger.delivery {
            if let Some(job) = jobs.deliveries.get(delivery).and_then(|id| jobs.get(id)) {
                return (job.clone(), false);
            }
        }
        if let Some(commit) = &trigger.commit {
            let pending = [jobs.queued.clone(), jobs.running.clone()];
            for id in pending.into_iter().flatten() {
                if let Some(job) = jobs.get(&id) {
                    if job.requested_commit.as_ref() == Some(commit) || job.commit.as_ref() == Some(commit) {
                        return (job.clone(), false);
                    }
                }
            }
        }
        jobs.next += 1;
        let id = format!("{}-{}", self.id_prefix, jobs.next);
        let job = UpdateJob {
            id: id.clone(),
            status: UpdateStatus::Queued,
            trigger: trigger.kind.to_string(),
            requested_commit: trigger.commit.clone(),
            commit: None,
            requested_stacks: trigger.stacks.clone(),
            delivery: trigger.delivery.clone(),
            created_at: now(),
            finished_at: None,
            phases: vec![Phase { status: UpdateStatus::Queued, started_at: now(), duration_ms: 0 }],
            changes: Vec::new(),
            published: None,
            problems: Vec::new(),
            log: Vec::new(),
            superseded_by: None,
            index_digest: None,
        };
        if let Some(older) = jobs.queued.replace(id.clone()) {
            if let Some(older) = jobs.get_mut(&older) {
                older.status = UpdateStatus::Superseded;
                older.superseded_by = Some(id.clone());
                older.finished_at = Some(now());
                older.log.push(format!("superseded by {id}, which asks for a newer commit"));
                let older = older.clone();
                self.events.publish("update", &older);
            }
        }
        if let Some(delivery) = &trigger.delivery {
            jobs.deliveries.insert(delivery.clone(), id.clone());
            jobs.delivery_order.push_back(delivery.clone());
            if jobs.delivery_order.len() > DELIVERIES {
                if let Some(old) = jobs.delivery_order.pop_front() {
                    jobs.deliveries.remove(&old);
                }
            }
        }
        jobs.list.push_back(job.clone());
        jobs.trim();
        drop(jobs);
        tracing::info!(job = %id, trigger = trigger.kind, commit = ?trigger.commit, "update queued");
        self.events.publish("update", &job);
        self.wake.notify_one();
        (job, true)
    }

    pub fn job(&self, id: &str) -> Option<UpdateJob> {
        self.jobs.lock().expect("the job lock is never poisoned").get(id).cloned()
    }

    /// The jobs kept, newest first.
    pub fn jobs(&self) -> Vec<UpdateJob> {
        self.jobs.lock().expect("the job lock is never poisoned").list.iter().rev().cloned().collect()
    }

    /// Whether a job for `commit` is waiting or running, or `commit` is known to be invalid.
    fn pending_or_invalid(&self, commit: &str) -> bool {
        let jobs = self.jobs.lock().expect("the job lock is never poisoned");
        jobs.invalid_commits.contains(commit)
            || [&jobs.queued, &jobs.running]
                .into_iter()
                .flatten()
                .filter_map(|id| jobs.get(id))
                .any(|j| j.requested_commit.as_deref() == Some(commit) || j.commit.as_deref() == Some(commit))
    }

    /// Changes a job and tells the subscribers.
    fn update(&self, id: &str, change: impl FnOnce(&mut UpdateJob)) {
        let mut jobs = self.jobs.lock().expect("the job lock is never poisoned");
        if let Some(job) = jobs.get_mut(id) {
            change(job);
            let job = job.clone();
            drop(jobs);
            self.events.publish("update", &job);
        }
    }

    fn log(&self, id: &str, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(job = %id, "{line}");
        self.update(id, |job| job.log.push(line));
    }

    /// Moves a job to `status`, closing the timing of the phase it leaves.
    fn enter(&self, id: &str, status: UpdateStatus, entered: &mut Instant) {
        let elapsed = entered.elapsed().as_millis() as u64;
        *entered = Instant::now();
        self.update(id, |job| {
            if let Some(last) = job.phases.last_mut() {
                last.duration_ms = elapsed;
            }
            job.status = status;
            if status.is_final() {
                job.finished_at = Some(now());
            } else {
                job.phases.push(Phase { status, started_at: now(), duration_ms: 0 });
            }
        });
    }

    /// Runs queued jobs, one at a time, forever.
    async fn work(self: Arc<Updates>) {
        loop {
            let next = {
                let mut jobs = self.jobs.lock().expect("the job lock is never poisoned");
                let next = jobs.queued.take();
                jobs.running.clone_from(&next);
                next
            };
            let Some(id) = next else {
                self.wake.notified().await;
                continue;
            };
            let started = Instant::now();
            let mut entered = Instant::now();
            let outcome = self.run(&id, &mut entered).await;
            match outcome {
                Ok(Some(status)) => self.enter(&id, status, &mut entered),
                Ok(None) => self.enter(&id, UpdateStatus::Live, &mut entered),
                Err(Failure::Invalid(message, problems)) => {
                    self.log(&id, format!("failed: {message}"));
                    let commit = self.job(&id).and_then(|j| j.commit);
                    self.update(&id, |job| job.problems.extend(problems));
                    if let Some(commit) = commit {
                        self.jobs.lock().expect("the job lock is never poisoned").invalid_commits.insert(commit);
                    }
                    self.enter(&id, UpdateStatus::Failed, &mut entered);
                }
                Err(Failure::Transient(message)) => {
                    self.log(&id, format!("failed: {message}"));
                    self.enter(&id, UpdateStatus::Failed, &mut entered);
                }
            }
            let status = self.job(&id).map(|j| j.status);
            tracing::info!(job = %id, status = ?status, duration_ms = started.elapsed().as_millis() as u64, "update finished");
            self.jobs.lock().expect("the job lock is never poisoned").running = None;
        }
    }

    /// One job. `Ok(None)`: live; `Ok(Some(status))`: ended otherwise without error.
    async fn run(&self, id: &str, entered: &mut Instant) -> Result<Option<UpdateStatus>, Failure> {
        self.enter(id, UpdateStatus::Fetching, entered);
        let Some(remote) = &self.remote else {
            // No repository to build from: follow the registry now.
            self.log(id, "no monitored repository: reading devfile-index:latest from the registry");
            self.reconcile_registry().await.map_err(Failure::Transient)?;
            let snapshot = self.snapshots.current();
            let (commit, digest) =
                (snapshot.commit_hash().to_string(), snapshot.published_digest().map(str::to_string));
            self.update(id, |job| {
                job.commit = Some(commit);
                job.index_digest = digest;
            });
            return Ok(None);
        };
        let requested = self.job(id).and_then(|j| j.requested_commit);
        let commit = match requested {
            Some(commit) => commit,
            None => remote
                .head()
                .await
                .map_err(|e| Failure::Transient(format!("cannot read the head of {}: {e}", remote.describe())))?,
        };
        self.update(id, |job| job.commit = Some(commit.clone()));
        let current = self.snapshots.current();
        if current.commit_hash() == commit {
            self.log(id, format!("{commit} is already served"));
            let digest = current.published_digest().map(str::to_string);
            self.update(id, |job| job.index_digest = digest);
            return Ok(None);
        }
        self.log(id, format!("fetching {commit} from {}", remote.describe()));
        let checkout = remote
            .checkout(&commit)
            .await
            .map_err(|e| Failure::Transient(format!("cannot fetch {commit} from {}: {e}", remote.describe())))?;

        self.enter(id, UpdateStatus::Validating, entered);
        let mut built = self.build(id, checkout, &current).await?;

        self.enter(id, UpdateStatus::Publishing, entered);
        match &self.backend {
            Backend::Local { store } => {
                store.add(built.uploads);
                let _swap = self.swap_lock.lock().await;
                let snapshot =
                    Snapshot::new(built.document, Some(Arc::new(built.checkout))).with_version_folders(&built.sources);
                let previous = self.snapshots.swap(snapshot);
                // The previous snapshot may own the last checkout: its folder is removed off the
                // async threads (see below).
                tokio::task::spawn_blocking(move || drop(previous));
                self.log(id, "live");
                Ok(None)
            }
            Backend::Oci { publisher, store } => {
                // The files are packed: their temporary folder goes, on a blocking thread (removing
                // a tree on a busy disk took a worker, and the requests queued on it, for ~250 ms).
                let checkout = std::mem::replace(&mut built.checkout, Checkout::folder(""));
                tokio::task::spawn_blocking(move || drop(checkout));
                // A late trigger for an older commit pushes nothing: its artifacts would move
                // the tags of versions the index at latest names back to older content.
                let before = self.published(store).await.map_err(Failure::Transient)?;
                if let Some((_, latest)) = &before {
                    if !self.moves_forward(remote, latest, &commit).await? {
                        return self.left_behind(id, latest, &commit).await;
                    }
                }
                let verified = self.verified.lock().expect("the verified lock is never poisoned").take();
                let artifacts: HashMap<(String, String), String> = built
                    .uploads
                    .iter()
                    .flat_map(|u| {
                        u.tags.iter().map(|t| ((u.repository.clone(), t.clone()), u.artifact.manifest_digest.clone()))
                    })
                    .collect();
                let known = match (verified, &before) {
                    (Some(verified), Some((digest, _))) if verified.index_digest == *digest => Some(verified.artifacts),
                    _ => None,
                };
                let (uploads, skipped) = match &known {
                    None => (built.uploads, 0),
                    Some(known) => {
                        let total = built.uploads.len();
                        let changed: Vec<publish::Upload> = built
                            .uploads
                            .into_iter()
                            .filter(|u| {
                                u.tags.iter().any(|t| {
                                    known.get(&(u.repository.clone(), t.clone())) != Some(&u.artifact.manifest_digest)
                                })
                            })
                            .collect();
                        let skipped = total - changed.len();
                        (changed, skipped)
                    }
                };
                if known.is_some() {
                    self.log(
                        id,
                        format!("{skipped} artifact(s) as this replica last published them, {} to push", uploads.len()),
                    );
                }
                let summary = publisher
                    .push_artifacts(uploads, &publish::NoPublishProgress)
                    .await
                    .map_err(|e| Failure::Transient(format!("cannot publish: {e}")))?;
                let mut published = Published {
                    manifests_pushed: summary.manifests_pushed,
                    manifests_unchanged: summary.manifests_unchanged + skipped,
                    blobs_uploaded: summary.blobs_uploaded,
                    blobs_present: summary.blobs_present,
                    bytes_uploaded: summary.bytes_uploaded,
                };
                self.log(
                    id,
                    format!(
                        "artifacts in place: {} manifest(s) pushed, {} unchanged, {} blob(s) uploaded ({} bytes)",
                        summary.manifests_pushed,
                        published.manifests_unchanged,
                        summary.blobs_uploaded,
                        summary.bytes_uploaded
                    ),
                );
                let _swap = self.swap_lock.lock().await;
                let latest = self.published(store).await.map_err(Failure::Transient)?;
                let move_latest = match &latest {
                    None => true,
                    // As it was before the artifacts were pushed: already checked.
                    Some(now) if before.as_ref() == Some(now) => true,
                    Some((_, latest)) => self.moves_forward(remote, latest, &commit).await?,
                };
                let json = built.document.to_pretty_json();
                let pushed = publisher
                    .push_index(&commit, json.as_bytes(), move_latest)
                    .await
                    .map_err(|e| Failure::Transient(format!("cannot push the index: {e}")))?;
                published.manifests_pushed += pushed.manifests_pushed;
                published.bytes_uploaded += pushed.bytes_uploaded;
                self.update(id, |job| job.published = Some(published));
                if !move_latest {
                    let latest = latest.map(|(_, commit)| commit).unwrap_or_default();
                    drop(_swap);
                    return self.left_behind(id, &latest, &commit).await;
                }
                self.snapshots.swap(Snapshot::new(built.document, None).with_published_digest(pushed.digest.clone()));
                store.forget_tags();
                *self.verified.lock().expect("the verified lock is never poisoned") =
                    Some(Verified { index_digest: pushed.digest.clone(), artifacts });
                self.update(id, |job| job.index_digest = Some(pushed.digest.clone()));
                self.log(id, format!("live: devfile-index:latest is {}", pushed.digest));
                Ok(None)
            }
        }
    }

    /// Whether `devfile-index:latest`, now at `latest`, may move to `commit`: `commit` descends
    /// from it, or is the branch head (after a force push).
    async fn moves_forward(&self, remote: &Remote, latest: &str, commit: &str) -> Result<bool, Failure> {
        if latest.is_empty() || latest == commit || remote.is_ancestor(latest, commit).await.unwrap_or(false) {
            return Ok(true);
        }
        let head = remote
            .head()
            .await
            .map_err(|e| Failure::Transient(format!("cannot read the head of {}: {e}", remote.describe())))?;
        Ok(head == commit)
    }

    /// Ends a job whose commit is older than the one at `devfile-index:latest`: serves latest.
    async fn left_behind(&self, id: &str, latest: &str, commit: &str) -> Result<Option<UpdateStatus>, Failure> {
        self.log(id, format!("devfile-index:latest is at {latest}, which is newer than {commit}: left there"));
        if let Err(e) = self.reconcile_registry().await {
            tracing::warn!(error = %e, "cannot follow the registry");
        }
        Ok(Some(UpdateStatus::Superseded))
    }

    /// Validates and packs `checkout`: every error fails the job.
    async fn build(&self, id: &str, checkout: Checkout, current: &Snapshot) -> Result<Built, Failure> {
        let schemas = Arc::clone(&self.schemas);
        let previous = current.document().clone();
        let (checkout, generated) = tokio::task::spawn_blocking(move || {
            let generated = index_generator::generate(&checkout, &schemas, Options { strict: true }, &NoProgress);
            (checkout, generated)
        })
        .await
        .expect("generating does not panic");
        let generated = generated.map_err(|e| Failure::Transient(format!("cannot scan the repository: {e}")))?;
        let problems: Vec<Problem> = generated
            .problems
            .iter()
            .map(|p| Problem {
                severity: p.severity.to_string(),
                file: p.file.clone(),
                line: p.line,
                rule: p.rule.clone(),
                message: p.message.clone(),
            })
            .collect();
        let errors = generated.errors();
        if errors > 0 {
            return Err(Failure::Invalid(
                format!("{errors} error(s) in the source; nothing changed (see problems)"),
                problems,
            ));
        }
        let changes = changes::between(&previous, &generated.document);
        let (stacks, stack_versions, samples, sample_versions) = generated.counts();
        self.log(
            id,
            format!(
                "valid: {stacks} stacks ({stack_versions} versions), {samples} samples ({sample_versions} versions), {} change(s), {} warning(s)",
                changes.len(),
                generated.warnings()
            ),
        );
        self.update(id, |job| {
            job.problems = problems;
            job.changes = changes;
        });
        // Sample devfiles come from their own remotes: only new or changed samples are fetched.
        let wanted = changes::samples_to_fetch(&previous, &generated.document);
        let (checkout, samples, sample_problems, uploads) = tokio::task::spawn_blocking({
            let sources = generated.sources.clone();
            move || {
                let (samples, problems) = if wanted.stacks.is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    index_generator::samples::fetch(&wanted, false)
                };
                let uploads = publish::uploads(&checkout.root, &sources, &samples);
                (checkout, samples.len(), problems, uploads)
            }
        })
        .await
        .expect("packing does not panic");
        for problem in sample_problems {
            self.log(id, format!("warning: {}", problem.message));
        }
        let uploads = uploads.map_err(|e| Failure::Transient(format!("cannot pack the stacks: {e}")))?;
        if samples > 0 {
            self.log(id, format!("fetched {samples} sample devfile(s)"));
        }
        Ok(Built { document: generated.document, sources: generated.sources, uploads, checkout })
    }

    /// The manifest digest and the commit of the index at `devfile-index:latest` (`None`: there
    /// is none).
    async fn published(&self, store: &OciStore) -> Result<Option<(String, String)>, String> {
        let current = self.snapshots.current();
        let cannot = |e: crate::store::StoreError| format!("cannot read devfile-index:latest: {e}");
        let digest = store.index_digest().await.map_err(cannot)?;
        let Some(digest) = digest else { return Ok(None) };
        if current.published_digest() == Some(digest.as_str()) {
            return Ok(Some((digest, current.commit_hash().to_string())));
        }
        let published = store.index_at(&digest).await.map_err(cannot)?;
        Ok(published.map(|p| (digest, p.document.commit_hash)))
    }

    /// OCI mode: serves `devfile-index:latest` if it is not what is served. Does nothing in the
    /// embedded mode.
    pub async fn reconcile_registry(&self) -> Result<(), String> {
        let Backend::Oci { store, .. } = &self.backend else { return Ok(()) };
        let before = self.snapshots.current();
        let digest = store.index_digest().await.map_err(|e| format!("cannot look up devfile-index:latest: {e}"))?;
        let Some(digest) = digest else { return Ok(()) };
        if before.published_digest() == Some(digest.as_str()) {
            return Ok(());
        }
        let _swap = self.swap_lock.lock().await;
        if !Arc::ptr_eq(&before, &self.snapshots.current()) {
            // Swapped meanwhile: the next round looks again.
            return Ok(());
        }
        let published = store
            .index_at(&digest)
            .await
            .map_err(|e| format!("cannot read the index {digest}: {e}"))?
            .ok_or_else(|| format!("the index {digest} disappeared"))?;
        tracing::info!(digest = %digest, commit = %published.document.commit_hash, "the registry has a new index");
        self.snapshots.swap(Snapshot::new(published.document, None).with_published_digest(digest));
        store.forget_tags();
        Ok(())
    }
}

/// A validated, packed commit.
struct Built {
    document: IndexDocument,
    sources: Vec<index_generator::scan::VersionSource>,
    uploads: Vec<publish::Upload>,
    checkout: Checkout,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether an entry is a sample.
fn is_sample(kind: Option<DevfileType>) -> bool {
    kind == Some(DevfileType::Sample)
}
