//! `extraDevfileEntries.yaml`: samples and extra stacks, in index-entry shape.

use serde::{Deserialize, Serialize};

use crate::index::IndexEntry;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtraDevfileEntries {
    #[serde(default)]
    pub schema_version: String,
    #[serde(default)]
    pub samples: Vec<IndexEntry>,
    #[serde(default)]
    pub stacks: Vec<IndexEntry>,
}
