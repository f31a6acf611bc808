//! Process-level tests of the `index-generator` binary: `generate` (stdout, `-o`, `--legacy`,
//! `--strict`) and `validate` over plain folders, Git work trees, `--ref` (commit, branch, tag)
//! and `file://` URLs; exit codes, the diagnostics and summary on standard error, one-line error
//! messages, and no progress bar when standard error is a pipe.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;
use tests::{GitRepo, community_registry, copy_tree, fixtures, workspace};

/// Commit dates at UTC (`+00:00`), which the index writes with `Z`.
const FIRST_DATE: &str = "2024-03-01T12:00:00+00:00";
const FIRST_DATE_Z: &str = "2024-03-01T12:00:00Z";
const SECOND_DATE: &str = "2024-04-02T08:30:00+00:00";
const SECOND_DATE_Z: &str = "2024-04-02T08:30:00Z";

/// Runs the binary with `args`, standard output and error captured (pipes, not a terminal).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_index-generator"))
        .args(args)
        .env_remove("RUST_LOG")
        // Git must not find a repository above the temporary folders (plain copies stay plain).
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .expect("the index-generator binary runs")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 standard error")
}

/// The summary line: the last line of standard error.
fn summary(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_string()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The `name` of every entry of an index array.
fn names(entries: &Value) -> Vec<String> {
    let list = entries.as_array().expect("an array of entries");
    list.iter().map(|e| e["name"].as_str().expect("a name").to_string()).collect()
}

/// A tempdir holding a copy of the fixture `case`'s registry in `registry/`, outside any Git
/// work tree.
fn plain_copy(case: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures(&format!("generate/{case}/registry")), &dir.path().join("registry")).unwrap();
    dir
}

fn registry(dir: &TempDir) -> PathBuf {
    dir.path().join("registry")
}

/// A Git repository in `dir` holding the fixture `case`'s registry in one commit at
/// [`FIRST_DATE`]; returns it with the commit's hash.
fn committed_registry(dir: &Path, case: &str) -> (GitRepo, String) {
    copy_tree(&fixtures(&format!("generate/{case}/registry")), dir).unwrap();
    let repo = GitRepo::init(dir).unwrap();
    let hash = repo.commit_all(FIRST_DATE, "first").unwrap();
    (repo, hash)
}

/// Exit code 2 and one line on standard error, `error: ...` in words, with every `needle` and
/// without a panic or a Rust debug dump.
fn assert_clear_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(out.stdout.is_empty(), "nothing on standard output");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line:\n{err}");
    for bad in ["panicked", "Os {", " { ", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{bad:?} in:\n{err}");
    }
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
}

#[test]
fn generate_plain_folder_to_stdout_and_to_file_gives_the_same_bytes() {
    let dir = plain_copy("single-version");
    let reg = registry(&dir);
    let out = run(&["generate", text(&reg)]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert_eq!(
        summary(&out),
        "2 devfile(s) checked: 2 stack(s) with 2 version(s), 0 sample(s) with 0 version(s); 0 error(s), 0 warning(s)"
    );
    let doc = json(&out.stdout);
    assert_eq!(doc["commit_hash"], "");
    assert_eq!(names(&doc["stacks"]), ["go", "nodejs"]);
    let golden = std::fs::read(fixtures("generate/single-version/index.json")).unwrap();
    assert_eq!(doc, json(&golden), "same content as the golden index");

    let file = dir.path().join("index.json");
    let to_file = run(&["generate", text(&reg), "-o", text(&file)]);
    assert!(to_file.status.success(), "stderr:\n{}", stderr(&to_file));
    assert!(to_file.stdout.is_empty(), "with -o nothing goes to standard output");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.as_bytes(), out.stdout.as_slice(), "-o writes exactly what standard output gets");
    assert!(written.ends_with("}\n"), "ends with one newline");
    assert_eq!(written.lines().nth(1), Some("  \"commit_hash\": \"\","), "two-space indentation");
    assert!(written.lines().any(|l| l.starts_with("    {")), "entries indented by four spaces");
    for line in written.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        assert!(indent % 2 == 0 && !line.contains('\t'), "odd indentation: {line:?}");
    }
}

#[test]
fn legacy_is_the_bare_stacks_array() {
    let dir = plain_copy("single-version");
    let reg = registry(&dir);
    let normal = run(&["generate", text(&reg)]);
    let legacy = run(&["generate", "--legacy", text(&reg)]);
    assert!(legacy.status.success(), "stderr:\n{}", stderr(&legacy));
    let array = json(&legacy.stdout);
    assert!(array.is_array(), "legacy output is an array: {array}");
    assert!(!String::from_utf8_lossy(&legacy.stdout).contains("commit_hash"));
    assert_eq!(names(&array), ["go", "nodejs"]);
    assert_eq!(array, json(&normal.stdout)["stacks"]);
}

#[test]
fn validate_exits_1_on_errors_and_0_on_a_valid_registry() {
    let invalid = plain_copy("schema-invalid");
    let out = run(&["validate", text(&registry(&invalid))]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(out.stdout.is_empty(), "validate writes no index");
    assert!(err.contains("error: stacks/broken/devfile.yaml:7: [devfile/schema:type] "), "{err}");
    assert!(err.contains("error: stacks/partial/1.0.0/devfile.yaml:25: [devfile/schema:additionalProperties] "));
    assert!(summary(&out).ends_with("; 2 error(s), 0 warning(s)"), "{err}");

    let valid = plain_copy("single-version");
    let out = run(&["validate", text(&registry(&valid))]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    assert!(out.stdout.is_empty(), "validate writes no index");
    assert!(summary(&out).ends_with("; 0 error(s), 0 warning(s)"));
}

#[test]
fn strict_generate_with_errors_writes_nothing_and_lenient_skips_the_broken_stack() {
    let dir = plain_copy("schema-invalid");
    let reg = registry(&dir);
    let file = dir.path().join("index.json");
    let strict = run(&["generate", "--strict", text(&reg), "-o", text(&file)]);
    let err = stderr(&strict);
    assert_eq!(strict.status.code(), Some(2), "stderr:\n{err}");
    assert!(!file.exists(), "--strict must not write {}", file.display());
    assert!(strict.stdout.is_empty());
    assert!(err.contains("[devfile/schema:type]"), "the problems are still reported:\n{err}");
    assert!(
        err.trim_end().ends_with(&format!("error: 2 error(s) in {}; --strict writes nothing", text(&reg))),
        "{err}"
    );

    let lenient = run(&["generate", text(&reg), "-o", text(&file)]);
    assert_eq!(lenient.status.code(), Some(0), "stderr:\n{}", stderr(&lenient));
    let doc = json(&std::fs::read(&file).unwrap());
    assert_eq!(names(&doc["stacks"]), ["partial"], "broken is left out");
    let versions: Vec<&str> =
        doc["stacks"][0]["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["2.0.0"], "the invalid 1.0.0 is left out");
}

#[test]
fn git_work_tree_is_stamped_with_head_and_reports_uncommitted_changes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("repo");
    let (repo, head) = committed_registry(&work, "multi-version");
    assert_eq!(repo.git(&["rev-parse", "HEAD"], None).unwrap(), head);

    let out = run(&["generate", text(&work)]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert!(summary(&out).ends_with(&format!("; 0 error(s), 0 warning(s); commit {head}")), "{}", stderr(&out));
    let doc = json(&out.stdout);
    assert_eq!(doc["commit_hash"], head.as_str());
    let quarkus = &doc["stacks"][0];
    assert_eq!(quarkus["name"], "java-quarkus");
    assert_eq!(quarkus["lastModified"], FIRST_DATE_Z);
    let versions = quarkus["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    for v in versions {
        assert_eq!(v["lastModified"], FIRST_DATE_Z, "version {}", v["version"]);
    }

    let devfile = work.join("stacks/java-quarkus/1.2.0/devfile.yaml");
    let mut yaml = std::fs::read_to_string(&devfile).unwrap();
    yaml.push_str("# edited, not committed\n");
    std::fs::write(&devfile, yaml).unwrap();

    let dirty = run(&["generate", text(&work)]);
    let err = stderr(&dirty);
    assert_eq!(dirty.status.code(), Some(0), "stderr:\n{err}");
    assert!(err.lines().any(|l| l.starts_with("warning: ") && l.contains("[source/uncommitted]")), "{err}");
    assert!(err.contains("1 uncommitted change(s)"), "{err}");
    assert!(summary(&dirty).contains("; 0 error(s), 1 warning(s); commit "), "{err}");
    assert_eq!(json(&dirty.stdout)["commit_hash"], head.as_str());

    let file = dir.path().join("index.json");
    let strict = run(&["generate", "--strict", text(&work), "-o", text(&file)]);
    let err = stderr(&strict);
    assert_eq!(strict.status.code(), Some(2), "stderr:\n{err}");
    assert!(err.lines().any(|l| l.starts_with("error: ") && l.contains("[source/uncommitted]")), "{err}");
    assert!(err.contains("--strict writes nothing"), "{err}");
    assert!(!file.exists(), "--strict must not write {}", file.display());
}

/// Regression: trimming `git status --porcelain` cut the first letter of the first changed path
/// (`tacks/...`) in the `source/uncommitted` message.
#[test]
fn uncommitted_warning_names_the_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    committed_registry(dir.path(), "multi-version");
    let devfile = dir.path().join("stacks/java-quarkus/1.2.0/devfile.yaml");
    let mut yaml = std::fs::read_to_string(&devfile).unwrap();
    yaml.push_str("# edited\n");
    std::fs::write(&devfile, yaml).unwrap();
    let err = stderr(&run(&["generate", text(dir.path())]));
    assert!(err.contains("(stacks/java-quarkus/1.2.0/devfile.yaml)"), "{err}");
}

#[test]
fn ref_reads_a_commit_a_branch_or_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("repo");
    let (repo, first) = committed_registry(&work, "multi-version");
    copy_tree(&fixtures("generate/single-version/registry/stacks/go"), &work.join("stacks/go")).unwrap();
    let second = repo.commit(&["stacks/go"], SECOND_DATE, "add go").unwrap();
    repo.git(&["tag", "v1", &first], None).unwrap();
    // The work tree is not what --ref reads: a broken, uncommitted devfile changes nothing.
    std::fs::write(work.join("stacks/go/devfile.yaml"), "schemaVersion: [not, a, devfile\n").unwrap();

    let generate = |reference: &str| {
        let out = run(&["generate", "--strict", "--ref", reference, text(&work)]);
        assert!(out.status.success(), "--ref {reference}: stderr:\n{}", stderr(&out));
        assert!(!stderr(&out).contains("source/uncommitted"), "{}", stderr(&out));
        json(&out.stdout)
    };

    let at_first = generate(&first);
    assert_eq!(at_first["commit_hash"], first.as_str());
    assert_eq!(names(&at_first["stacks"]), ["java-quarkus"]);

    let at_main = generate("main");
    assert_eq!(at_main["commit_hash"], second.as_str());
    let mut stacks = names(&at_main["stacks"]);
    stacks.sort();
    assert_eq!(stacks, ["go", "java-quarkus"]);
    let go = at_main["stacks"].as_array().unwrap().iter().find(|e| e["name"] == "go").unwrap();
    assert_eq!(go["lastModified"], SECOND_DATE_Z);
    assert_eq!(go["versions"][0]["schemaVersion"], "2.2.2", "the committed devfile, not the work tree's");

    let at_tag = generate("v1");
    assert_eq!(at_tag["commit_hash"], first.as_str());
    assert_eq!(names(&at_tag["stacks"]), ["java-quarkus"]);

    let unknown = run(&["generate", "--ref", "no-such-ref", text(&work)]);
    assert_clear_error(&unknown, &["no-such-ref", "is not a branch, tag or commit"]);
}

#[test]
fn git_url_is_cloned_and_stamped_with_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("repo");
    let (_repo, head) = committed_registry(&work, "multi-version");
    let url = format!("file://{}", text(&work));
    let out = run(&["generate", &url]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert!(summary(&out).ends_with(&format!("; commit {head}")), "{}", stderr(&out));
    let doc = json(&out.stdout);
    assert_eq!(doc["commit_hash"], head.as_str());
    assert_eq!(names(&doc["stacks"]), ["java-quarkus"]);
    assert_eq!(doc["stacks"][0]["versions"][0]["lastModified"], FIRST_DATE_Z);
}

#[test]
fn source_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist");
    assert_clear_error(&run(&["generate", text(&missing)]), &[text(&missing), "neither a folder nor a Git"]);

    let plain = plain_copy("single-version");
    let out = run(&["generate", "--ref", "main", text(&registry(&plain))]);
    assert_clear_error(&out, &["--ref main", "needs a Git repository", "plain folder"]);

    let empty = tempfile::tempdir().unwrap();
    let out = run(&["validate", text(empty.path())]);
    assert_clear_error(&out, &[text(empty.path()), "is not a registry repository"]);
}

#[test]
fn no_progress_bar_when_stderr_is_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index.json");
    let out = run(&["generate", text(&community_registry()), "-o", text(&file)]);
    let err = stderr(&out);
    assert!(out.status.success(), "stderr:\n{err}");
    assert!(!err.contains('\r'), "carriage return (a progress bar) in stderr");
    assert!(!err.contains('\x1b'), "ANSI escape (a progress bar) in stderr");
    assert!(
        summary(&out).starts_with(
            "90 devfile(s) checked: 31 stack(s) with 90 version(s), 5 sample(s) with 8 version(s); 0 error(s)"
        ),
        "{}",
        summary(&out)
    );
    assert_eq!(json(&std::fs::read(&file).unwrap())["stacks"].as_array().unwrap().len(), 36);
}

#[test]
fn default_registry_generates_without_problems() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("registry");
    copy_tree(&workspace().join("stacks"), &reg).unwrap();
    let out = run(&["generate", text(&reg)]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert!(summary(&out).contains("; 0 error(s), 0 warning(s)"), "the default registry is clean: {}", stderr(&out));
    let doc = json(&out.stdout);
    assert_eq!(doc["commit_hash"], "");
    let entries = doc["stacks"].as_array().unwrap();
    let of_type = |kind: &str| entries.iter().filter(|e| e["type"] == kind).collect::<Vec<_>>();
    let stacks = of_type("stack");
    assert!(stacks.len() >= 4, "{} stacks", stacks.len());
    assert!(stacks.iter().any(|s| s["versions"].as_array().unwrap().len() == 3), "a stack with 3 versions");
    let resources = stacks
        .iter()
        .flat_map(|s| s["versions"].as_array().unwrap())
        .flat_map(|v| v["resources"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string));
    assert!(resources.collect::<Vec<_>>().iter().any(|r| r == "archive.tar"), "a version with archive.tar");
    assert_eq!(of_type("sample").len(), 2);
}

/// Regression: `-o` wrote the index with mode 0600 (the temporary file's), unreadable to a server
/// running as another user.
#[test]
fn output_file_is_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = plain_copy("single-version");
    let file = dir.path().join("index.json");
    let out = run(&["generate", "-o", text(&file), text(&dir.path().join("registry"))]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
}

/// `git status` and `git log` run while the files are scanned: when Git cannot read the
/// history (a tree object of the commit is missing), the command still fails with one clear line.
#[test]
fn a_work_tree_whose_history_git_cannot_read_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_repo, _) = committed_registry(dir.path(), "single-version");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").current_dir(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let tree = git(&["rev-parse", "HEAD:stacks"]);
    let object = dir.path().join(".git/objects").join(&tree[..2]).join(&tree[2..]);
    std::fs::remove_file(&object).unwrap_or_else(|e| panic!("{}: {e}", object.display()));
    let out = run(&["generate", text(dir.path())]);
    assert_clear_error(&out, &["cannot read the history of the work tree", "git"]);
}
