//! Checks one devfile (SPEC §3): YAML, `schemaVersion`, the devfile JSON schema of that exact
//! version, the required metadata, and the rules the schema cannot express. Collects every
//! problem; returns what the index needs only when there is none.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use jsonschema::Validator;
use schemas::devfile::{Metadata, REQUIRED_METADATA};
use schemas::index::{COMMAND_GROUP_KINDS, Parent};
use schemas::{SUPPORTED_SCHEMA_VERSIONS, devfile_schema};
use serde_json::Value;

use crate::diagnostics::Diagnostic;
use crate::yaml::{Document, push_token};

/// The compiled devfile JSON schemas, one per supported `schemaVersion`, compiled on first use.
/// Shared by every thread that checks devfiles.
#[derive(Default)]
pub struct DevfileSchemas {
    compiled: [OnceLock<Validator>; SUPPORTED_SCHEMA_VERSIONS.len()],
}

impl DevfileSchemas {
    pub fn new() -> Self {
        Self::default()
    }

    fn validator(&self, schema_version: &str) -> Option<&Validator> {
        let slot = SUPPORTED_SCHEMA_VERSIONS.iter().position(|v| *v == schema_version)?;
        Some(self.compiled[slot].get_or_init(|| {
            let text = devfile_schema(schema_version).expect("a supported version has a schema");
            let schema: Value = serde_json::from_str(text).expect("the devfile schemas are verified JSON");
            // The files carry no `$schema`; they are draft 7 (NOTES.md).
            jsonschema::draft7::new(&schema).expect("the devfile schemas compile")
        }))
    }
}

/// What the index takes from a valid devfile.
#[derive(Debug, Clone)]
pub struct CheckedDevfile {
    pub schema_version: String,
    pub metadata: Metadata,
    /// Line of the `metadata` mapping, for problems about the entry it describes.
    pub metadata_line: usize,
    /// The five group kinds, each true when an exec, apply or composite command has it.
    pub command_groups: BTreeMap<String, bool>,
    pub starter_projects: Vec<String>,
    pub parent: Option<Parent>,
}

/// Checks the devfile `text` read from `file` (a path relative to the registry root). Problems
/// go to `problems`; the result is `Some` only when there was no error.
pub fn check(
    file: &str,
    text: &str,
    schemas: &DevfileSchemas,
    problems: &mut Vec<Diagnostic>,
) -> Option<CheckedDevfile> {
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(Diagnostic::error(file, e.line, "yaml", format!("not valid YAML: {}", e.message)));
            return None;
        }
    };
    let Some(root) = doc.value.as_object() else {
        problems.push(Diagnostic::error(file, doc.line(""), "devfile/schema:type", "a devfile must be a YAML mapping"));
        return None;
    };
    let schema_version = match root.get("schemaVersion") {
        None => {
            problems.push(Diagnostic::error(file, doc.line(""), "devfile/schema-version", "schemaVersion is missing"));
            return None;
        }
        Some(Value::String(v)) if SUPPORTED_SCHEMA_VERSIONS.contains(&v.as_str()) => v.clone(),
        Some(other) => {
            problems.push(Diagnostic::error(
                file,
                doc.line("/schemaVersion"),
                "devfile/schema-version",
                format!(
                    "schemaVersion {} is not supported (supported: {})",
                    display_value(other),
                    SUPPORTED_SCHEMA_VERSIONS.join(", ")
                ),
            ));
            return None;
        }
    };
    let before = problems.len();
    let validator = schemas.validator(&schema_version).expect("supported version");
    for error in validator.iter_errors(&doc.value) {
        let pointer = error.instance_path().as_str();
        let keyword = error.kind().keyword();
        let line = match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                .first()
                .map(|key| {
                    let mut p = pointer.to_string();
                    push_token(&mut p, key);
                    doc.key_line(&p)
                })
                .unwrap_or_else(|| doc.line(pointer)),
            _ => doc.line(pointer),
        };
        problems.push(Diagnostic::error(
            file,
            line,
            format!("devfile/schema:{keyword}"),
            format!("{}: {error} (devfile schema {schema_version})", dotted(pointer)),
        ));
    }
    check_metadata(file, &doc, problems);
    check_semantics(file, &doc, problems);
    if problems.len() > before {
        return None;
    }
    let metadata: Metadata = match serde_json::from_value(root.get("metadata").cloned().unwrap_or(Value::Null)) {
        Ok(m) => m,
        Err(e) => {
            problems.push(Diagnostic::error(
                file,
                doc.line("/metadata"),
                "devfile/metadata",
                format!("metadata cannot be read: {e}"),
            ));
            return None;
        }
    };
    Some(CheckedDevfile {
        schema_version,
        metadata,
        metadata_line: doc.line("/metadata"),
        command_groups: command_groups(&doc.value),
        starter_projects: names(&doc.value, "starterProjects", "name")
            .into_iter()
            .map(|(_, n)| n.to_string())
            .collect(),
        parent: parent(&doc.value),
    })
}

fn check_metadata(file: &str, doc: &Document, problems: &mut Vec<Diagnostic>) {
    let metadata = doc.get("/metadata");
    for field in REQUIRED_METADATA {
        let present = metadata.and_then(|m| m.get(field)).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
        // A present field of the wrong type is already a schema error.
        let wrong_type = metadata.and_then(|m| m.get(field)).is_some_and(|v| !v.is_string() && !v.is_null());
        if !present && !wrong_type {
            problems.push(Diagnostic::error(
                file,
                doc.line("/metadata"),
                "devfile/metadata",
                format!("metadata.{field} is required in a registry devfile"),
            ));
        }
    }
}

/// `(pointer of the name node, name)` of every item of a top-level list.
fn names<'a>(root: &'a Value, list: &str, key: &str) -> Vec<(String, &'a str)> {
    let Some(items) = root.get(list).and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((format!("/{list}/{i}/{key}"), item.get(key)?.as_str()?)))
        .collect()
}

/// The kind of a command (`exec`, `apply`, `composite`, ...) and its body.
fn command_body(command: &Value) -> Option<(&str, &Value)> {
    let object = command.as_object()?;
    ["exec", "apply", "composite", "vscodeTask", "vscodeLaunch", "custom"]
        .into_iter()
        .find_map(|kind| object.get(kind).map(|body| (kind, body)))
}

fn check_semantics(file: &str, doc: &Document, problems: &mut Vec<Diagnostic>) {
    let root = &doc.value;
    for (list, key, what) in [
        ("components", "name", "component"),
        ("commands", "id", "command"),
        ("projects", "name", "project"),
        ("starterProjects", "name", "starter project"),
    ] {
        let mut seen = HashSet::new();
        for (pointer, name) in names(root, list, key) {
            if !seen.insert(name) {
                problems.push(Diagnostic::error(
                    file,
                    doc.line(&pointer),
                    "devfile/unique-name",
                    format!("{what} {key} {name:?} is used more than once"),
                ));
            }
        }
    }

    // A devfile with a parent may refer to components and commands the parent defines.
    let has_parent = root.get("parent").is_some();
    let components: HashSet<&str> = names(root, "components", "name").into_iter().map(|(_, n)| n).collect();
    let command_ids: HashSet<&str> = names(root, "commands", "id").into_iter().map(|(_, n)| n).collect();
    let mut defaults: HashMap<&str, usize> = HashMap::new();
    let commands = root.get("commands").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, command) in commands.iter().enumerate() {
        let id = command.get("id").and_then(Value::as_str).unwrap_or("?");
        let Some((kind, body)) = command_body(command) else { continue };
        if matches!(kind, "exec" | "apply")
            && !has_parent
            && let Some(component) = body.get("component").and_then(Value::as_str)
            && !components.contains(component)
        {
            problems.push(Diagnostic::error(
                file,
                doc.line(&format!("/commands/{i}/{kind}/component")),
                "devfile/command-component",
                format!("command {id:?} runs in component {component:?}, which does not exist"),
            ));
        }
        if kind == "composite" && !has_parent {
            for (j, target) in body.get("commands").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if let Some(target) = target.as_str()
                    && !command_ids.contains(target)
                {
                    problems.push(Diagnostic::error(
                        file,
                        doc.line(&format!("/commands/{i}/composite/commands/{j}")),
                        "devfile/composite-command",
                        format!("composite command {id:?} refers to command {target:?}, which does not exist"),
                    ));
                }
            }
        }
        if let Some(group) = body.get("group")
            && group.get("isDefault").and_then(Value::as_bool) == Some(true)
            && let Some(group_kind) = group.get("kind").and_then(Value::as_str)
        {
            let count = defaults.entry(group_kind).or_default();
            *count += 1;
            if *count > 1 {
                problems.push(Diagnostic::error(
                    file,
                    doc.line(&format!("/commands/{i}/{kind}/group/isDefault")),
                    "devfile/default-command",
                    format!("command {id:?} is a second default command of group {group_kind:?}"),
                ));
            }
        }
    }
    if !has_parent && let Some(events) = root.get("events").and_then(Value::as_object) {
        for (event, targets) in events {
            for (j, target) in targets.as_array().into_iter().flatten().enumerate() {
                if let Some(target) = target.as_str()
                    && !command_ids.contains(target)
                {
                    let mut pointer = String::from("/events");
                    push_token(&mut pointer, event);
                    push_token(&mut pointer, &j.to_string());
                    problems.push(Diagnostic::error(
                        file,
                        doc.line(&pointer),
                        "devfile/event-command",
                        format!("event {event} refers to command {target:?}, which does not exist"),
                    ));
                }
            }
        }
    }
}

fn command_groups(root: &Value) -> BTreeMap<String, bool> {
    let mut groups: BTreeMap<String, bool> = COMMAND_GROUP_KINDS.iter().map(|k| (k.to_string(), false)).collect();
    for command in root.get("commands").and_then(Value::as_array).into_iter().flatten() {
        if let Some(("exec" | "apply" | "composite", body)) = command_body(command)
            && let Some(group) = body.get("group").and_then(|g| g.get("kind")).and_then(Value::as_str)
            && let Some(flag) = groups.get_mut(group)
        {
            *flag = true;
        }
    }
    groups
}

fn parent(root: &Value) -> Option<Parent> {
    let parent = root.get("parent")?;
    let text = |key: &str| parent.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let parent =
        Parent { id: text("id"), version: text("version"), registry_url: text("registryUrl"), uri: text("uri") };
    (parent != Parent::default()).then_some(parent)
}

/// `/commands/0/exec/component` → `commands[0].exec.component`; the root is `(root)`.
fn dotted(pointer: &str) -> String {
    if pointer.is_empty() {
        return "(root)".to_string();
    }
    let mut out = String::new();
    for token in pointer.trim_start_matches('/').split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths() {
        assert_eq!(dotted(""), "(root)");
        assert_eq!(dotted("/commands/0/exec/component"), "commands[0].exec.component");
        assert_eq!(dotted("/attributes/a~1b"), "attributes.a/b");
    }
}
