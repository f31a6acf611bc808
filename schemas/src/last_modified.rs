//! `last_modified.json`: optional override of the `lastModified` of stack and sample versions.

use serde::{Deserialize, Serialize};

/// The version a sample without versions is listed under.
pub const UNVERSIONED: &str = "undefined";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastModifiedFile {
    #[serde(default)]
    pub stacks: Vec<LastModifiedItem>,
    #[serde(default)]
    pub samples: Vec<LastModifiedItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastModifiedItem {
    pub name: String,
    pub version: String,
    pub last_modified: String,
}
