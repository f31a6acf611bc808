//! `stacks/<name>/stack.yaml`: a multi-version stack.

use serde::{Deserialize, Serialize};

use crate::index::Git;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackYaml {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub versions: Vec<StackVersion>,
}

/// One `versions:` item: a folder `stacks/<name>/<version>/`, or a remote version with `git`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackVersion {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
}
