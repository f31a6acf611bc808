//! The update API (SPEC §7): what a post-merge trigger sends to `POST /api/updates`, and the
//! update jobs `GET /api/updates[/{id}]` answers with.

use serde::{Deserialize, Serialize};

/// The body of `POST /api/updates` (other than a GitHub `push` event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The commit of the monitored branch to serve; the branch's head when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The stacks the trigger says changed (informative: every stack is checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<String>,
}

/// The part of a GitHub `push` event the server reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    /// `refs/heads/<branch>`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The commit the branch points to after the push (all zeros when it was deleted).
    pub after: String,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    #[serde(default)]
    pub repository: Option<PushRepository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushCommit {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushRepository {
    #[serde(default)]
    pub default_branch: Option<String>,
}

impl PushEvent {
    /// The stacks whose files the pushed commits touched (`stacks/<name>/...`), sorted.
    pub fn stacks(&self) -> Vec<String> {
        let mut stacks: Vec<String> = self
            .commits
            .iter()
            .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
            .filter_map(|path| path.strip_prefix("stacks/")?.split_once('/').map(|(name, _)| name.to_string()))
            .collect();
        stacks.sort();
        stacks.dedup();
        stacks
    }
}

/// Where an update job is. `live`, `failed` and `superseded` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateStatus {
    Queued,
    Fetching,
    Validating,
    Publishing,
    Live,
    Failed,
    Superseded,
}

impl UpdateStatus {
    pub fn is_final(self) -> bool {
        matches!(self, UpdateStatus::Live | UpdateStatus::Failed | UpdateStatus::Superseded)
    }
}

/// One update: from a trigger (or the reconciler) to a live index, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateJob {
    pub id: String,
    pub status: UpdateStatus,
    /// What asked for it: `token`, `signature`, `github-push` or `reconciler`.
    pub trigger: String,
    /// The commit asked for, when the trigger named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_commit: Option<String>,
    /// The commit being (or that was) built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The stacks the trigger said changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_stacks: Vec<String>,
    /// The `X-GitHub-Delivery` of the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Every phase entered, in order, with how long it took (the last one: so far).
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// What changed in the index, stack by stack.
    #[serde(default)]
    pub changes: Vec<StackChange>,
    /// What was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    /// Every problem that failed the update (and the warnings).
    #[serde(default)]
    pub problems: Vec<Problem>,
    #[serde(default)]
    pub log: Vec<String>,
    /// The job that made this one unnecessary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// The digest of the index manifest served when the job went live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub status: UpdateStatus,
    pub started_at: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

/// A stack or sample that entered, changed in or left the index, and which of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackChange {
    pub name: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub manifests_pushed: usize,
    pub manifests_unchanged: usize,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
}

/// A problem of the source, as the generator reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `error` or `warning`.
    pub severity: String,
    /// Relative to the registry root.
    pub file: String,
    /// 1-based; 0 when the problem has no line.
    pub line: usize,
    pub rule: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_needs_nothing_and_refuses_unknown_fields() {
        let empty: UpdateRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, UpdateRequest::default());
        let full: UpdateRequest = serde_json::from_str(r#"{"commit":"abc","stacks":["go"]}"#).unwrap();
        assert_eq!(full.commit.as_deref(), Some("abc"));
        assert!(serde_json::from_str::<UpdateRequest>(r#"{"comit":"abc"}"#).is_err());
    }

    #[test]
    fn push_event_stacks_come_from_paths() {
        let event: PushEvent = serde_json::from_str(
            r#"{"ref":"refs/heads/main","after":"b","commits":[
                {"added":["stacks/go/devfile.yaml"],"removed":[],"modified":["README.md"]},
                {"added":[],"removed":["stacks/udi/2.0.0/devfile.yaml"],"modified":["stacks/go/devfile.yaml","stacks"]}]}"#,
        )
        .unwrap();
        assert_eq!(event.stacks(), ["go", "udi"]);
    }

    #[test]
    fn statuses_are_lowercase() {
        assert_eq!(serde_json::to_string(&UpdateStatus::Superseded).unwrap(), r#""superseded""#);
        assert!(UpdateStatus::Failed.is_final() && !UpdateStatus::Publishing.is_final());
    }
}
