//! What the detail page shows of one stack or sample version: which version a request names,
//! and the parts of its devfile the index does not carry (starter projects with their sources,
//! commands by group, the parent), read from the devfile YAML.

use std::collections::BTreeMap;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use schemas::index::{IndexEntry, Version};
use serde::Serialize;
use serde_json::{Map, Number, Value};

/// The version `?devfile-version=` names: absent, empty or `default` is the default version,
/// `latest` the highest (semver); otherwise the exact version. `Ok(None)` for an entry without
/// versions (a sample with a single devfile) asked for its default; `Err(())` when there is no
/// such version.
#[expect(clippy::result_unit_err, reason = "the caller renders its own not-found page")]
pub fn select<'a>(entry: &'a IndexEntry, requested: Option<&str>) -> Result<Option<&'a Version>, ()> {
    let requested = requested.map(str::trim).filter(|v| !v.is_empty()).unwrap_or("default");
    if entry.versions.is_empty() {
        return if requested == "default" || requested == "latest" { Ok(None) } else { Err(()) };
    }
    let found = match requested {
        "default" => entry.default_version().or(entry.versions.first()),
        "latest" => entry.versions.iter().max_by_key(|v| semver::Version::parse(&v.version).ok()),
        exact => entry.versions.iter().find(|v| v.version == exact),
    };
    found.map(Some).ok_or(())
}

/// A command of the devfile, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub id: String,
    /// `exec`, `apply` or `composite`.
    pub kind: String,
    pub is_default: bool,
    /// The command line (exec), or the commands it runs (composite).
    pub detail: String,
    /// The component it runs in (exec, apply).
    pub component: String,
}

/// Commands of one group kind (`build`, `run`, `test`, `debug`, `deploy`, or `other` for
/// commands in no group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandGroup {
    pub kind: String,
    pub commands: Vec<Command>,
}

/// A starter project of the devfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StarterProject {
    pub name: String,
    pub description: String,
    /// Where it comes from: a Git remote (with its revision) or a zip location.
    pub source: String,
}

/// What the page reads from the devfile YAML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DevfileParts {
    pub schema_version: String,
    pub commands: Vec<CommandGroup>,
    pub starter_projects: Vec<StarterProject>,
    /// `parent` as written (id and registry, or URI), when there is one.
    pub parent: Option<String>,
    /// Component names with their kind (`container`, `kubernetes`, `image`, ...).
    pub components: Vec<(String, String)>,
}

/// The group kinds, in the order the page shows them.
const GROUP_ORDER: [&str; 6] = ["build", "run", "test", "debug", "deploy", "other"];

/// Reads the parts of a devfile the page shows; a devfile that is not valid YAML gives nothing.
pub fn parts(yaml: &str) -> DevfileParts {
    let Some(devfile) = parse(yaml) else { return DevfileParts::default() };
    let text = |v: &Value, pointer: &str| v.pointer(pointer).map(scalar_text).unwrap_or_default();
    let mut groups: BTreeMap<usize, Vec<Command>> = BTreeMap::new();
    for command in devfile.get("commands").and_then(Value::as_array).into_iter().flatten() {
        let Some((kind, body)) =
            ["exec", "apply", "composite"].iter().find_map(|k| command.get(*k).map(|body| (*k, body)))
        else {
            continue;
        };
        let group = text(body, "/group/kind");
        let position = GROUP_ORDER.iter().position(|g| *g == group).unwrap_or(GROUP_ORDER.len() - 1);
        let detail = match kind {
            "composite" => body
                .get("commands")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(scalar_text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            _ => text(body, "/commandLine"),
        };
        groups.entry(position).or_default().push(Command {
            id: text(command, "/id"),
            kind: kind.to_string(),
            is_default: body.pointer("/group/isDefault").and_then(Value::as_bool).unwrap_or(false),
            detail,
            component: text(body, "/component"),
        });
    }
    let commands =
        groups.into_iter().map(|(i, commands)| CommandGroup { kind: GROUP_ORDER[i].to_string(), commands }).collect();
    let starter_projects = devfile
        .get("starterProjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|project| StarterProject {
            name: text(project, "/name"),
            description: text(project, "/description"),
            source: project_source(project),
        })
        .collect();
    let parent = devfile.get("parent").map(|parent| {
        let uri = text(parent, "/uri");
        if !uri.is_empty() {
            return uri;
        }
        let mut out = text(parent, "/id");
        let version = text(parent, "/version");
        if !version.is_empty() {
            out = format!("{out} {version}");
        }
        let registry = text(parent, "/registryUrl");
        if !registry.is_empty() {
            out = format!("{out} from {registry}");
        }
        out
    });
    let components = devfile
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let kind = ["container", "kubernetes", "openshift", "image", "volume", "plugin", "custom"]
                .iter()
                .find(|k| c.get(**k).is_some())
                .copied()
                .unwrap_or("");
            (text(c, "/name"), kind.to_string())
        })
        .collect();
    DevfileParts { schema_version: text(&devfile, "/schemaVersion"), commands, starter_projects, parent, components }
}

fn project_source(project: &Value) -> String {
    if let Some(git) = project.get("git") {
        let remotes = git.get("remotes").and_then(Value::as_object);
        let wanted = git.pointer("/checkoutFrom/remote").map(scalar_text);
        let remote = remotes.and_then(|r| {
            wanted
                .as_deref()
                .and_then(|w| r.get(w))
                .or_else(|| r.get("origin"))
                .or_else(|| r.values().next())
                .map(scalar_text)
        });
        let revision = git.pointer("/checkoutFrom/revision").map(scalar_text).unwrap_or_default();
        return match (remote, revision.is_empty()) {
            (Some(url), false) => format!("{url} at {revision}"),
            (Some(url), true) => url,
            (None, _) => String::new(),
        };
    }
    project.pointer("/zip/location").map(scalar_text).unwrap_or_default()
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// YAML (1.2, as devfile tooling reads it) into JSON values.
fn parse(yaml: &str) -> Option<Value> {
    let docs = Yaml::load_from_str(yaml).ok()?;
    docs.first().map(convert)
}

fn convert(node: &Yaml<'_>) -> Value {
    match node {
        Yaml::Value(scalar) => scalar_value(scalar),
        Yaml::Representation(text, _, _) => scalar_value(&Scalar::parse_from_cow(text.clone())),
        Yaml::Tagged(_, inner) => convert(inner),
        Yaml::Sequence(items) => Value::Array(items.iter().map(convert).collect()),
        Yaml::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match convert(key) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, convert(value));
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => Value::Null,
    }
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => {
            Number::from_f64(f.into_inner()).map_or_else(|| Value::String(f.to_string()), Value::Number)
        }
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_grouped_by_kind_in_a_fixed_order() {
        let yaml = r#"
schemaVersion: 2.2.0
parent:
  id: nodejs
  registryUrl: https://registry.devfile.io
starterProjects:
  - name: web
    description: A web app
    git:
      checkoutFrom:
        revision: v1
      remotes:
        origin: https://git.example/web.git
  - name: offline
    zip:
      location: offline.zip
components:
  - name: tools
    container:
      image: x
commands:
  - id: run
    exec:
      component: tools
      commandLine: npm start
      group: {kind: run, isDefault: true}
  - id: build
    exec:
      component: tools
      commandLine: npm install
      group:
        kind: build
  - id: all
    composite:
      commands: [build, run]
  - id: deploy
    apply:
      component: tools
      group:
        kind: deploy
"#;
        let parts = parts(yaml);
        assert_eq!(parts.schema_version, "2.2.0");
        let kinds: Vec<&str> = parts.commands.iter().map(|g| g.kind.as_str()).collect();
        assert_eq!(kinds, ["build", "run", "deploy", "other"]);
        assert_eq!(parts.commands[1].commands[0].detail, "npm start");
        assert!(parts.commands[1].commands[0].is_default);
        assert_eq!(parts.commands[3].commands[0].detail, "build, run");
        assert_eq!(parts.starter_projects[0].source, "https://git.example/web.git at v1");
        assert_eq!(parts.starter_projects[1].source, "offline.zip");
        assert_eq!(parts.parent.as_deref(), Some("nodejs from https://registry.devfile.io"));
        assert_eq!(parts.components, [("tools".to_string(), "container".to_string())]);
        assert_eq!(super::parts("not: [valid"), DevfileParts::default());
    }
}
