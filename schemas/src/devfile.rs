//! The slice of a devfile the index is built from. Everything else in a devfile is checked
//! against the devfile JSON schema and otherwise passed through untouched.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `metadata` of a devfile. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub global_memory_limit: String,
    #[serde(default)]
    pub project_type: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub support_url: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// The metadata fields every registry devfile must have (SPEC §3), as written in YAML.
pub const REQUIRED_METADATA: [&str; 4] = ["name", "displayName", "language", "projectType"];
