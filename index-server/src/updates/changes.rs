//! What changed between two index documents, entry by entry.

use std::collections::HashMap;

use schemas::index::{IndexDocument, IndexEntry};
use schemas::updates::{ChangeKind, StackChange};

use super::is_sample;

/// The entries added to, changed in or removed from `old` to make `new`, in `new`'s order (the
/// removed ones last), each with the versions concerned.
pub fn between(old: &IndexDocument, new: &IndexDocument) -> Vec<StackChange> {
    let before: HashMap<&str, &IndexEntry> = old.stacks.iter().map(|e| (e.name.as_str(), e)).collect();
    let after: HashMap<&str, &IndexEntry> = new.stacks.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut changes = Vec::new();
    for entry in &new.stacks {
        match before.get(entry.name.as_str()) {
            None => changes.push(StackChange {
                name: entry.name.clone(),
                change: ChangeKind::Added,
                versions: entry.versions.iter().map(|v| v.version.clone()).collect(),
            }),
            Some(previous) if *previous != entry => {
                let mut versions: Vec<String> = entry
                    .versions
                    .iter()
                    .filter(|v| !previous.versions.contains(v))
                    .map(|v| v.version.clone())
                    .collect();
                versions.extend(
                    previous
                        .versions
                        .iter()
                        .filter(|v| !entry.versions.iter().any(|n| n.version == v.version))
                        .map(|v| v.version.clone()),
                );
                changes.push(StackChange { name: entry.name.clone(), change: ChangeKind::Changed, versions });
            }
            Some(_) => {}
        }
    }
    for entry in &old.stacks {
        if !after.contains_key(entry.name.as_str()) {
            changes.push(StackChange {
                name: entry.name.clone(),
                change: ChangeKind::Removed,
                versions: entry.versions.iter().map(|v| v.version.clone()).collect(),
            });
        }
    }
    changes
}

/// The samples of `new` that `old` does not have as they are: the ones whose devfiles must be
/// fetched (the others are already stored).
pub fn samples_to_fetch(old: &IndexDocument, new: &IndexDocument) -> IndexDocument {
    let stacks = new
        .stacks
        .iter()
        .filter(|e| is_sample(e.kind))
        .filter(|e| !old.stacks.iter().any(|o| o == *e))
        .cloned()
        .collect();
    IndexDocument { commit_hash: new.commit_hash.clone(), stacks }
}

#[cfg(test)]
mod tests {
    use schemas::index::Version;

    use super::*;

    fn entry(name: &str, versions: &[(&str, &str)]) -> IndexEntry {
        IndexEntry {
            name: name.to_string(),
            versions: versions
                .iter()
                .map(|(v, schema)| Version {
                    version: v.to_string(),
                    schema_version: schema.to_string(),
                    ..Version::default()
                })
                .collect(),
            ..IndexEntry::default()
        }
    }

    #[test]
    fn added_changed_removed_with_versions() {
        let old = IndexDocument {
            commit_hash: "a".into(),
            stacks: vec![
                entry("go", &[("1.0.0", "2.1.0"), ("2.0.0", "2.2.0")]),
                entry("java", &[("1.0.0", "2.2.0")]),
                entry("node", &[("1.0.0", "2.2.0")]),
            ],
        };
        let new = IndexDocument {
            commit_hash: "b".into(),
            stacks: vec![
                entry("go", &[("2.0.0", "2.2.2"), ("3.0.0", "2.3.0")]),
                entry("java", &[("1.0.0", "2.2.0")]),
                entry("python", &[("1.0.0", "2.2.0")]),
            ],
        };
        let changes = between(&old, &new);
        let summary: Vec<String> =
            changes.iter().map(|c| format!("{:?} {} {}", c.change, c.name, c.versions.join(","))).collect();
        assert_eq!(summary, ["Changed go 2.0.0,3.0.0,1.0.0", "Added python 1.0.0", "Removed node 1.0.0"]);
        assert!(between(&new, &new).is_empty());
    }
}
