//! The slices of a devfile we read: the metadata the index is built from, and the starter
//! projects the server fetches. Everything else in a devfile is checked against the devfile JSON
//! schema and otherwise passed through untouched.

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

/// One of a devfile's `starterProjects`: where a new project's files come from. Unknown keys
/// are ignored; a field that is absent is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StarterProject {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The sub-folder of the source that is the project, for `git` and `zip` alike.
    #[serde(default)]
    pub sub_dir: String,
    #[serde(default)]
    pub git: Option<GitProject>,
    #[serde(default)]
    pub zip: Option<ZipProject>,
}

/// `starterProjects[].git`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitProject {
    /// Remote name → URL.
    #[serde(default)]
    pub remotes: BTreeMap<String, String>,
    #[serde(default)]
    pub checkout_from: Option<CheckoutFrom>,
    /// Not in the devfile schema, but written by some registries' tooling next to `remotes`.
    #[serde(default)]
    pub revision: String,
}

/// `starterProjects[].git.checkoutFrom`: which remote, at which branch, tag or commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutFrom {
    #[serde(default)]
    pub remote: String,
    #[serde(default)]
    pub revision: String,
}

/// `starterProjects[].zip`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZipProject {
    /// An `http(s)` URL, or a path relative to the stack version's folder.
    #[serde(default)]
    pub location: String,
}

impl GitProject {
    /// The remote to fetch and the revision to fetch it at: the remote `checkoutFrom.remote`
    /// names, else `origin`, else the first one; `checkoutFrom.revision`, else `revision`, else
    /// the remote's default branch (`None`). `None` when no such remote exists.
    pub fn remote(&self) -> Option<(&str, Option<&str>)> {
        let named = self.checkout_from.as_ref().map(|c| c.remote.as_str()).filter(|r| !r.is_empty());
        let url = match named {
            Some(name) => self.remotes.get(name)?,
            None => self.remotes.get("origin").or_else(|| self.remotes.values().next())?,
        };
        let revision = self
            .checkout_from
            .as_ref()
            .map(|c| c.revision.as_str())
            .filter(|r| !r.is_empty())
            .or(Some(self.revision.as_str()).filter(|r| !r.is_empty()));
        Some((url.as_str(), revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_project_remote_and_revision() {
        let project: StarterProject = serde_json::from_value(serde_json::json!({
            "name": "p",
            "git": {"remotes": {"upstream": "U", "origin": "O"}, "checkoutFrom": {"revision": "v1"}},
        }))
        .unwrap();
        let git = project.git.unwrap();
        assert_eq!(git.remote(), Some(("O", Some("v1"))));
        let git = GitProject {
            remotes: BTreeMap::from([("a".into(), "A".into()), ("b".into(), "B".into())]),
            checkout_from: Some(CheckoutFrom { remote: "b".into(), revision: String::new() }),
            revision: "main".into(),
        };
        assert_eq!(git.remote(), Some(("B", Some("main"))));
        let missing =
            GitProject { checkout_from: Some(CheckoutFrom { remote: "c".into(), ..CheckoutFrom::default() }), ..git };
        assert_eq!(missing.remote(), None);
        assert_eq!(GitProject::default().remote(), None);
    }
}
