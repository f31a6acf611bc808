//! The index document (`index.json`) and its entries, as SPEC §4 describes them.
//!
//! Field order is the serialized key order; empty, false and null values are omitted, except
//! the `commandGroups` of a stack version, which always carries its five keys. Map-valued
//! fields are `BTreeMap`s, so their keys come out sorted as the reference (Go) writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{"commit_hash": ..., "stacks": [...]}`: what the generator writes and publishes.
/// `stacks` holds stacks (by folder name, then extra stacks in file order), then samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexDocument {
    /// The Git commit the index was built from: 40 hex digits, or empty for a plain folder.
    #[serde(default)]
    pub commit_hash: String,
    #[serde(default)]
    pub stacks: Vec<IndexEntry>,
}

impl IndexDocument {
    /// Two-space indented JSON with a final newline, as written to `index.json`.
    pub fn to_pretty_json(&self) -> String {
        pretty(self)
    }

    /// The reference's format: the bare array of entries (`--legacy`).
    pub fn to_legacy_json(&self) -> String {
        pretty(&self.stacks)
    }
}

fn pretty<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing these types cannot fail: every map key is a string.
    let mut out = serde_json::to_string_pretty(value).expect("index types serialize to JSON");
    out.push('\n');
    out
}

/// Whether an entry is a stack or a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevfileType {
    #[default]
    Stack,
    Sample,
}

/// One stack or sample of the index. The v1 fields (`version`, `links`, `resources`,
/// `starterProjects` at entry level) are set only in v1 responses and in the reference format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DevfileType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub global_memory_limit: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub language: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub command_groups: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployment_scopes: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starter_projects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub support_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
    /// RFC 3339, original offset kept, zero offset written `Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl IndexEntry {
    /// The version flagged `default`, if any.
    pub fn default_version(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.default)
    }
}

/// One version of a stack or sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema_version: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub command_groups: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployment_scopes: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starter_projects: Vec<String>,
    /// Extension (SPEC §4): the parent the devfile declares; clients ignore unknown keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where a sample's (or remote stack version's) sources live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Git {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remotes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
}

/// The parent a devfile declares: by registry id or by URI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registry_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
}

/// The command group kinds, in the order `commandGroups` lists them.
pub const COMMAND_GROUP_KINDS: [&str; 5] = ["build", "debug", "deploy", "run", "test"];

/// The only keys `deploymentScopes` may carry.
pub const DEPLOYMENT_SCOPES: [&str; 2] = ["innerloop", "outerloop"];
