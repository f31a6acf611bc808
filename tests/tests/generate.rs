//! Golden tests of the generator over the fixture registries in `tests/fixtures/generate/`
//! (format: that folder's README.md), and the run over the community registry snapshot.
//!
//! `UPDATE_EXPECT=1 cargo test -p tests --test generate` rewrites the expected files from the
//! current output; review the diff before committing it.

use std::path::Path;

use anyhow::{Context, Result};
use index_generator::{Checkout, DevfileSchemas, Generated, NoProgress, Options, source};
use serde::Deserialize;
use tests::{GitRepo, community_registry, copy_tree, fixtures};

#[derive(Deserialize)]
struct Commit {
    date: String,
    add: Vec<String>,
    #[serde(default)]
    touch: Vec<String>,
}

/// Builds the case's registry (as a plain folder, or as a Git repository when it has a git.json)
/// and generates its index.
fn generate_case(case: &Path, work: &Path) -> Result<Generated> {
    let registry = case.join("registry");
    let schemas = DevfileSchemas::new();
    let git_plan = case.join("git.json");
    let checkout = if git_plan.is_file() {
        let commits: Vec<Commit> = serde_json::from_str(&std::fs::read_to_string(&git_plan)?)?;
        copy_tree(&registry, work)?;
        let repo = GitRepo::init(work)?;
        for (i, commit) in commits.iter().enumerate() {
            for file in &commit.touch {
                let path = work.join(file);
                let mut text = std::fs::read_to_string(&path).with_context(|| format!("touching {file}"))?;
                text.push_str("# touched\n");
                std::fs::write(&path, text)?;
            }
            let mut paths: Vec<&str> = commit.add.iter().map(String::as_str).collect();
            paths.extend(commit.touch.iter().map(String::as_str));
            repo.commit(&paths, &commit.date, &format!("commit {i}"))?;
        }
        let status = repo.git(&["status", "--porcelain"], None)?;
        anyhow::ensure!(status.is_empty(), "git.json leaves files uncommitted:\n{status}");
        source::open(work.to_str().expect("utf-8 temp path"), None)?
    } else {
        // A plain folder, even though the fixtures live in this project's Git work tree.
        Checkout::folder(&registry)
    };
    Ok(index_generator::generate(&checkout, &schemas, Options::default(), &NoProgress)?)
}

/// `severity file:line rule`, one problem a line.
fn short_problems(generated: &Generated) -> String {
    generated.problems.iter().map(|p| format!("{} {}:{} {}\n", p.severity, p.file, p.line, p.rule)).collect()
}

/// The expected index, re-printed so that only key order and values matter, with `<HEAD>`
/// standing for the commit the harness made.
fn normalized_expected(text: &str, commit: &str) -> Result<String> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let mut out = serde_json::to_string_pretty(&value)?.replace("<HEAD>", commit);
    out.push('\n');
    Ok(out)
}

fn check(case: &str) {
    let dir = fixtures("generate").join(case);
    let work = tempfile::tempdir().unwrap();
    let generated = generate_case(&dir, work.path()).unwrap_or_else(|e| panic!("case {case}: {e:#}"));
    let actual_index = generated.document.to_pretty_json();
    assert_conforms(&actual_index);
    let actual_problems = short_problems(&generated);
    let messages: String = generated.problems.iter().map(|p| format!("  {p}\n")).collect();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let commit = &generated.document.commit_hash;
        let golden =
            if commit.is_empty() { actual_index.clone() } else { actual_index.replace(commit.as_str(), "<HEAD>") };
        std::fs::write(dir.join("index.json"), golden).unwrap();
        std::fs::write(dir.join("problems.txt"), &actual_problems).unwrap();
        return;
    }
    let expected_problems = std::fs::read_to_string(dir.join("problems.txt")).unwrap();
    assert_eq!(actual_problems, expected_problems, "case {case}: problems differ; all messages:\n{messages}");
    let expected_index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    let expected_index = normalized_expected(&expected_index, &generated.document.commit_hash).unwrap();
    assert_eq!(actual_index, expected_index, "case {case}: index.json differs; problems:\n{messages}");
}

/// The generated document follows our JSON Schema of the index (schemas/json/index.schema.json).
fn assert_conforms(index: &str) {
    let schema: serde_json::Value = serde_json::from_str(schemas::INDEX_JSON_SCHEMA).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(index).unwrap();
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the index does not follow index.schema.json:\n{}", errors.join("\n"));
}

#[test]
fn the_index_schema_rejects_what_the_format_forbids() {
    let schema: serde_json::Value = serde_json::from_str(schemas::INDEX_JSON_SCHEMA).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let valid = serde_json::json!({"commit_hash": "", "stacks": [{"name": "go", "type": "stack", "versions": [{"version": "1.0.0", "default": true}]}]});
    assert!(validator.is_valid(&valid));
    for bad in [
        serde_json::json!({"stacks": []}),
        serde_json::json!({"commit_hash": "", "stacks": [{"name": "go", "type": "stack", "tags": []}]}),
        serde_json::json!({"commit_hash": "", "stacks": [{"name": "go", "type": "stack", "versions": [{"version": "1", "default": false}]}]}),
        serde_json::json!({"commit_hash": "", "stacks": [{"name": "go", "type": "stack", "lastModified": "2024-03-01T10:00:00+00:00Z"}]}),
        serde_json::json!({"commit_hash": "abc", "stacks": []}),
    ] {
        assert!(!validator.is_valid(&bad), "accepted {bad}");
    }
}

#[test]
fn every_case_has_a_test() {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures("generate"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("registry").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let source = include_str!("generate.rs");
    let missing: Vec<&String> = cases.iter().filter(|c| !source.contains(&format!("=> \"{c}\","))).collect();
    assert!(missing.is_empty(), "fixture cases without a test: {missing:?}");
}

macro_rules! cases {
    ($($name:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($case);
            }
        )*
    };
}

cases! {
    bad_samples => "bad-samples",
    bad_semver => "bad-semver",
    both_devfiles => "both-devfiles",
    command_groups => "command-groups",
    dangling_command => "dangling-command",
    default_command => "default-command",
    dot_devfile => "dot-devfile",
    duplicate_component => "duplicate-component",
    git_history => "git-history",
    last_modified_override => "last-modified-override",
    missing_default => "missing-default",
    missing_devfile => "missing-devfile",
    missing_metadata => "missing-metadata",
    multi_version => "multi-version",
    samples => "samples",
    schema_invalid => "schema-invalid",
    single_version => "single-version",
    stack_yaml_field => "stack-yaml-field",
    two_defaults => "two-defaults",
    unknown_schema_version => "unknown-schema-version",
    version_folder => "version-folder",
    warnings => "warnings",
}

#[test]
fn community_registry_has_31_stacks_90_versions_5_samples_8_versions_and_no_error() {
    let checkout = Checkout::folder(community_registry());
    let generated =
        index_generator::generate(&checkout, &DevfileSchemas::new(), Options::default(), &NoProgress).unwrap();
    let errors: Vec<String> = generated.problems.iter().filter(|p| p.is_error()).map(|p| p.to_string()).collect();
    assert!(errors.is_empty(), "errors in the community registry:\n{}", errors.join("\n"));
    assert_eq!(generated.counts(), (31, 90, 5, 8));

    let doc = &generated.document;
    let names: Vec<&str> = doc.stacks.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(&names[..3], ["dotnet80", "go", "hermes"], "stacks in folder order");
    assert_eq!(
        &names[31..],
        ["nodejs-basic", "code-with-quarkus", "java-springboot-basic", "python-basic", "go-basic"]
    );
    let go = &doc.stacks[1];
    let go_versions: Vec<&str> = go.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(go_versions.first(), Some(&"2.6.0"), "newest first");
    assert_eq!(go_versions.last(), Some(&"1.0.2"));
    assert_eq!(go.default_version().map(|v| v.version.as_str()), Some("2.6.0"));
    let go_200 = go.versions.iter().find(|v| v.version == "2.0.0").unwrap();
    assert_eq!(go_200.resources, ["archive.tar", "devfile.yaml"]);
    assert_eq!(go_200.links["self"], "devfile-catalog/go:2.0.0");
    // Every stack version has its five command groups and a devfile resource.
    for entry in doc.stacks.iter().take(31) {
        for v in &entry.versions {
            assert_eq!(v.command_groups.len(), 5, "{} {}", entry.name, v.version);
            assert!(v.resources.iter().any(|r| r == "devfile.yaml"), "{} {}", entry.name, v.version);
        }
    }
    assert_conforms(&doc.to_pretty_json());
    // Deterministic: a second run gives the same bytes.
    let again = index_generator::generate(&checkout, &DevfileSchemas::new(), Options::default(), &NoProgress).unwrap();
    assert_eq!(again.document.to_pretty_json(), doc.to_pretty_json());
}
