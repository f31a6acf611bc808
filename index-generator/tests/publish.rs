//! `index-generator publish` against a real CNCF distribution registry (started by the test
//! harness): every artifact and the index are read back and compared byte for byte with what
//! packing gives; republishing uploads nothing; one changed stack uploads only that stack; basic
//! auth; failures (500s, dropped connections, a registry that is down) are retried or reported
//! and never leave `devfile-index:latest` pointing at missing artifacts; third-party clients
//! (Python `oras`, `skopeo`) read what was published; sample devfiles come from local Git remotes.
//!
//! Tests share one registry and keep apart by publishing under a namespace of their own.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use index_generator::pack::{self, Artifact};
use serde_json::Value;
use tempfile::TempDir;
use tests::faults::{Fault, FaultyProxy, Method};
use tests::registry::{Registry, RegistryOptions};
use tests::{GitRepo, community_registry, copy_tree, oras};

const DATE: &str = "2025-01-10T09:00:00+00:00";
const LATER: &str = "2025-02-11T10:00:00+00:00";

/// Runs `index-generator publish <source> --registry <registry> --json <extra...>`, with
/// `stdin` on standard input.
fn publish_with(source: &Path, registry: &str, extra: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_index-generator"))
        .args(["publish", source.to_str().unwrap(), "--registry", registry, "--json"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("OCI_REGISTRY_USERNAME")
        .env_remove("OCI_REGISTRY_PASSWORD")
        // Sample remotes of the community snapshot are on the internet: refuse them at once,
        // the same way on every machine, instead of depending on the network.
        .env("GIT_ALLOW_PROTOCOL", "file")
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the index-generator binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn publish(source: &Path, registry: &str) -> Output {
    publish_with(source, registry, &[], "")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `--json` summary of a successful run.
fn summary(out: &Output) -> Value {
    assert!(out.status.success(), "publish failed ({:?}):\n{}", out.status, stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{}", stderr(out)))
}

/// The community snapshot in a Git repository of its own (so the index has a commit hash).
fn community_repo() -> (TempDir, GitRepo) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&community_registry(), dir.path()).unwrap();
    let repo = GitRepo::init(dir.path()).unwrap();
    repo.commit_all(DATE, "community registry").unwrap();
    (dir, repo)
}

/// What publishing `source` must put in the registry: `(repository, tag, artifact)` of every
/// stack version, computed with the library (generate + pack), independently of the CLI run.
fn expected_artifacts(source: &Path) -> (String, Vec<(String, String, Artifact)>) {
    let (checkout, generated) = tests::generate(source);
    let artifacts = generated
        .sources
        .iter()
        .map(|s| {
            let artifact = pack::pack_version(&checkout.root.join(&s.folder), s.devfile_name).unwrap();
            (format!("devfile-catalog/{}", s.stack), s.version.clone(), artifact)
        })
        .collect();
    (generated.document.to_pretty_json(), artifacts)
}

/// `repository` under `namespace` (none when empty).
fn under(namespace: &str, repository: &str) -> String {
    if namespace.is_empty() { repository.to_string() } else { format!("{namespace}/{repository}") }
}

/// Checks that every expected artifact is in the registry (under `namespace`) byte for byte,
/// and that `devfile-index:latest` holds `index_json`.
fn assert_published(registry: &Registry, namespace: &str, index_json: &str, artifacts: &[(String, String, Artifact)]) {
    for (repository, tag, artifact) in artifacts {
        let repository = under(namespace, repository);
        let (manifest, digest) =
            registry.manifest(&repository, tag).unwrap_or_else(|| panic!("{repository}:{tag} is missing"));
        assert_eq!(
            String::from_utf8_lossy(&manifest),
            String::from_utf8_lossy(&artifact.manifest),
            "manifest of {repository}:{tag}"
        );
        assert_eq!(digest, artifact.manifest_digest);
        for blob in artifact.blobs() {
            assert!(
                registry.blob(&repository, &blob.digest) == blob.bytes,
                "blob {} of {repository}:{tag}",
                blob.digest
            );
        }
    }
    let index = under(namespace, "devfile-index");
    let (manifest, _) = registry.manifest(&index, "latest").expect("devfile-index:latest");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.devfileio.index.layer.v1+json");
    assert_eq!(layer["annotations"]["org.opencontainers.image.title"], "index.json");
    let bytes = registry.blob(&index, layer["digest"].as_str().unwrap());
    assert_eq!(String::from_utf8(bytes).unwrap(), index_json);
}

/// Every request the proxy forwarded, as `METHOD path` (without the query).
fn seen(proxy: &FaultyProxy) -> Vec<String> {
    proxy.requests().into_iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

/// The requests that change something in the registry.
fn writes(proxy: &FaultyProxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| !matches!(r.method, Method::GET | Method::HEAD))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn community_registry_publishes_byte_exact_then_incrementally() {
    let registry = Registry::shared();
    let proxy = FaultyProxy::start(registry);
    let target = format!("{}/community", proxy.url());
    let (dir, repo) = community_repo();
    let (index_json, artifacts) = expected_artifacts(dir.path());
    assert_eq!(artifacts.len(), 90, "every version of the snapshot is published");

    let first = summary(&publish(dir.path(), &target));
    assert_eq!(first["artifacts"], 90);
    assert_eq!(first["manifests_pushed"], 90 + 2, "every version, then the index under its commit and latest");
    assert_eq!(first["index_pushed"], true);
    assert!(first["blobs_uploaded"].as_u64().unwrap() > 90);
    assert_published(registry, "community", &index_json, &artifacts);
    let commit = repo.git(&["rev-parse", "HEAD"], None).unwrap();
    assert_eq!(first["commit_hash"], commit.as_str());
    let (_, latest) = registry.manifest("community/devfile-index", "latest").unwrap();
    let (_, by_commit) = registry.manifest("community/devfile-index", &commit).unwrap();
    assert_eq!(latest, by_commit);
    assert_eq!(first["index_digest"], latest.as_str());

    // The index is pushed last: the `latest` tag moves last of all, and nothing of the index is
    // written before every stack manifest.
    let requests = proxy.requests();
    let is_write = |r: &&tests::faults::Seen| matches!(r.method, Method::PUT | Method::POST | Method::PATCH);
    let last_write = requests.iter().rfind(is_write).unwrap();
    assert_eq!(last_write.path, "/v2/community/devfile-index/manifests/latest");
    let first_index_write = requests.iter().position(|r| is_write(&r) && r.path.contains("/devfile-index/")).unwrap();
    let manifests_before = requests[..first_index_write]
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.contains("/manifests/"))
        .count();
    assert_eq!(manifests_before, 90, "every stack manifest is pushed before anything of the index");

    // The same commit again: nothing is uploaded or pushed.
    proxy.clear();
    let again = summary(&publish(dir.path(), &target));
    assert_eq!(
        (again["blobs_uploaded"].as_u64(), again["manifests_pushed"].as_u64(), again["bytes_uploaded"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(again["index_pushed"], false);
    assert_eq!(again["manifests_unchanged"], 92);
    assert_eq!(writes(&proxy), Vec::<String>::new());
    // The registry has this very index, so its artifacts are in place: one lookup is enough.
    assert_eq!(again["artifacts_checked"], false);
    let looked_up: Vec<String> = proxy.requests().into_iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(looked_up, ["GET /v2/", "GET /v2/community/devfile-index/manifests/latest"]);
    // --verify looks every artifact up, and finds nothing to push.
    proxy.clear();
    let verified = summary(&publish_with(dir.path(), &target, &["--verify"], ""));
    assert_eq!(verified["artifacts_checked"], true);
    assert_eq!((verified["manifests_pushed"].as_u64(), verified["blobs_uploaded"].as_u64()), (Some(0), Some(0)));
    assert_eq!(verified["manifests_unchanged"], 92);
    assert_eq!(writes(&proxy), Vec::<String>::new());

    // One stack version changes: only its blobs and manifest, and the index, go up.
    let devfile = dir.path().join("stacks/go/2.5.0/devfile.yaml");
    let text = std::fs::read_to_string(&devfile).unwrap();
    std::fs::write(&devfile, text.replace("description:", "description: Changed.")).unwrap();
    let commit = repo.commit_all(LATER, "change go").unwrap();
    proxy.clear();
    let changed = summary(&publish(dir.path(), &target));
    assert_eq!(changed["manifests_pushed"], 1 + 2);
    assert_eq!(changed["index_pushed"], true);
    let mut pushed: Vec<String> = writes(&proxy).into_iter().filter(|w| w.contains("/manifests/")).collect();
    pushed.sort();
    assert_eq!(
        pushed,
        [
            "PUT /v2/community/devfile-catalog/go/manifests/2.5.0".to_string(),
            format!("PUT /v2/community/devfile-index/manifests/{commit}"),
            "PUT /v2/community/devfile-index/manifests/latest".to_string(),
        ]
    );
    // The changed devfile and the new index: two blobs (the archive did not change).
    assert_eq!(changed["blobs_uploaded"], 2);
    assert!(
        writes(&proxy).iter().all(|w| w.contains("/community/devfile-catalog/go/") || w.contains("/devfile-index/"))
    );
    // The published index's commit is an ancestor: only the changed version was packed and
    // looked at, no other repository was even read.
    assert_eq!(changed["artifacts_checked"], false);
    assert_eq!((changed["artifacts"].as_u64(), changed["manifests_unchanged"].as_u64()), (Some(90), Some(89)));
    let read: Vec<String> = seen(&proxy)
        .into_iter()
        .filter(|r| r.contains("/devfile-catalog/") && !r.contains("/community/devfile-catalog/go/"))
        .collect();
    assert_eq!(read, Vec::<String>::new());
    assert!(!seen(&proxy).iter().any(|r| r.contains("/go/manifests/") && !r.ends_with("/go/manifests/2.5.0")));
    let (index_json, artifacts) = expected_artifacts(dir.path());
    assert_published(registry, "community", &index_json, &artifacts);
}

/// A small registry: the project's default registry, in a Git repository.
fn default_registry_repo() -> (TempDir, GitRepo) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&tests::workspace().join("stacks"), dir.path()).unwrap();
    let repo = GitRepo::init(dir.path()).unwrap();
    repo.commit_all(DATE, "default registry").unwrap();
    (dir, repo)
}

#[test]
fn basic_auth_with_password_on_stdin_and_wrong_credentials_push_nothing() {
    let registry =
        Registry::start(RegistryOptions { htpasswd: Some(("publisher".to_string(), "s3cret-pass".to_string())) });
    let (dir, _repo) = default_registry_repo();

    let anonymous = publish(dir.path(), &registry.url());
    assert_eq!(anonymous.status.code(), Some(2), "{}", stderr(&anonymous));
    assert!(stderr(&anonymous).contains("refused the credentials (none were given"), "{}", stderr(&anonymous));

    let wrong = publish_with(dir.path(), &registry.url(), &["--username", "publisher", "--password-stdin"], "nope\n");
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    let message = stderr(&wrong);
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!message.contains("nope"), "the password never shows: {message}");
    assert_eq!(registry.catalog(), Vec::<String>::new(), "nothing was pushed");

    let right =
        publish_with(dir.path(), &registry.url(), &["--username", "publisher", "--password-stdin"], "s3cret-pass\n");
    let summary = summary(&right);
    assert!(!stderr(&right).contains("s3cret-pass"));
    let (index_json, artifacts) = expected_artifacts(dir.path());
    assert_eq!(summary["artifacts"].as_u64().unwrap() as usize, artifacts.len());
    assert_published(&registry, "", &index_json, &artifacts);
}

#[test]
fn transient_failures_are_retried() {
    let registry = Registry::shared();
    let proxy = FaultyProxy::start(registry);
    let (dir, _repo) = default_registry_repo();
    // Two upload starts answer 500, one blob upload loses its connection half-way, and one
    // blob lookup answers 503.
    proxy.inject(
        Fault::status(500, r#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#)
            .on(Method::POST)
            .path_contains("/blobs/uploads")
            .times(2),
    );
    proxy.inject(Fault::reset(10).on(Method::PUT).path_contains("/blobs/uploads"));
    proxy.inject(Fault::status(503, "{}").on(Method::HEAD).path_contains("/blobs/sha256:"));
    let out = publish(dir.path(), &format!("{}/retried", proxy.url()));
    let summary = summary(&out);
    assert_eq!(proxy.faults_left(), 0, "every fault was hit");
    assert!(stderr(&out).contains("retrying"), "retries are logged: {}", stderr(&out));
    assert_eq!(summary["index_pushed"], true);
    let (index_json, artifacts) = expected_artifacts(dir.path());
    assert_published(registry, "retried", &index_json, &artifacts);
}

#[test]
fn a_failed_artifact_leaves_the_published_index_alone() {
    let registry = Registry::shared();
    let proxy = FaultyProxy::start(registry);
    let target = format!("{}/failing", proxy.url());
    let (dir, repo) = default_registry_repo();
    let (old_index, old_artifacts) = expected_artifacts(dir.path());
    summary(&publish(dir.path(), &target));
    let (_, old_digest) = registry.manifest("failing/devfile-index", "latest").unwrap();

    // A new version of one stack whose manifest the registry keeps refusing with 500.
    let devfile = dir.path().join("stacks/go/devfile.yaml");
    let text = std::fs::read_to_string(&devfile).unwrap();
    std::fs::write(&devfile, text.replace("description:", "description: Changed.")).unwrap();
    repo.commit_all(LATER, "change go").unwrap();
    proxy.clear();
    proxy.inject(Fault::status(500, "{}").on(Method::PUT).path_contains("/devfile-catalog/go/manifests/").times(100));
    let out = publish(dir.path(), &target);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("devfile-catalog/go"), "{message}");
    assert!(message.contains("the index was not pushed"), "{message}");
    assert!(!proxy.requests().iter().any(|r| r.path.contains("/devfile-index/manifests/") && r.method == Method::PUT));
    let (_, digest) = registry.manifest("failing/devfile-index", "latest").unwrap();
    assert_eq!(digest, old_digest, "latest still points at the last good index");
    // ... whose artifacts are all still there.
    assert_published(registry, "failing", &old_index, &old_artifacts);
}

#[test]
fn a_registry_that_is_down_gives_a_clear_error() {
    let mut registry = Registry::start(RegistryOptions::default());
    let url = registry.url();
    registry.kill();
    let (dir, _repo) = default_registry_repo();
    let out = publish(dir.path(), &url);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(&format!("cannot publish to {url}")), "{message}");
    assert!(message.contains("looking up devfile-index:latest failed after 4 attempt(s)"), "{message}");
}

#[test]
fn oras_and_skopeo_read_what_was_published() {
    let registry = Registry::shared();
    let (dir, _repo) = default_registry_repo();
    summary(&publish(dir.path(), &format!("{}/interop", registry.url())));
    // java-maven 2.0.0 has a devfile and other files, packed into archive.tar.
    let version = dir.path().join("stacks/java-maven/2.0.0");
    let artifact = pack::pack_version(&version, "devfile.yaml").unwrap();
    let out = tempfile::tempdir().unwrap();
    let files =
        oras::oras_pull(&registry.addr(), "interop/devfile-catalog/java-maven:2.0.0", out.path(), None).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        std::fs::read(out.path().join("devfile.yaml")).unwrap(),
        std::fs::read(version.join("devfile.yaml")).unwrap()
    );
    let archive = artifact.layers.iter().find(|(name, _)| name == "archive.tar").unwrap();
    assert!(std::fs::read(out.path().join("archive.tar")).unwrap() == archive.1.bytes);

    let raw = oras::skopeo_inspect_raw(&registry.addr(), "interop/devfile-catalog/java-maven:2.0.0", None).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), String::from_utf8(artifact.manifest).unwrap());
}

/// A Git repository holding a sample project with its devfile at `path`.
fn sample_remote(root: &Path, name: &str, path: &str, devfile: &str) -> GitRepo {
    let dir = root.join(name);
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, devfile).unwrap();
    std::fs::write(dir.join("README.md"), format!("# {name}\n")).unwrap();
    let repo = GitRepo::init(&dir).unwrap();
    repo.commit_all(DATE, "sample").unwrap();
    repo
}

const SAMPLE_DEVFILE: &str = "schemaVersion: 2.2.0\nmetadata:\n  name: NAME\n  version: 1.0.0\n";

#[test]
fn sample_devfiles_are_fetched_from_their_git_remotes_and_published() {
    let registry = Registry::shared();
    let remotes = tempfile::tempdir().unwrap();
    let plain = sample_remote(remotes.path(), "plain", "devfile.yaml", &SAMPLE_DEVFILE.replace("NAME", "plain"));
    let nested =
        sample_remote(remotes.path(), "nested", ".devfile/devfile.yaml", &SAMPLE_DEVFILE.replace("NAME", "v1"));
    nested.git(&["tag", "v1"], None).unwrap();
    std::fs::write(remotes.path().join("nested/.devfile/devfile.yaml"), SAMPLE_DEVFILE.replace("NAME", "v2")).unwrap();
    let v2 = nested.commit_all(LATER, "v2").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let entries = format!(
        "schemaVersion: 2.2.0\nsamples:\n\
         - name: plain\n  displayName: Plain\n  description: At the root\n  provider: Tests\n  supportUrl: https://example.invalid\n  architectures: [amd64]\n  git:\n    remotes:\n      origin: {plain}\n\
         - name: nested\n  displayName: Nested\n  description: In .devfile\n  provider: Tests\n  supportUrl: https://example.invalid\n  architectures: [amd64]\n  versions:\n\
         \x20   - version: 1.0.0\n      schemaVersion: 2.2.0\n      git:\n        revision: v1\n        remotes:\n          origin: {nested}\n\
         \x20   - version: 2.0.0\n      default: true\n      schemaVersion: 2.2.0\n      git:\n        revision: {v2}\n        remotes:\n          origin: {nested}\n\
         - name: gone\n  displayName: Gone\n  description: Unreachable\n  provider: Tests\n  supportUrl: https://example.invalid\n  architectures: [amd64]\n  git:\n    remotes:\n      origin: {gone}\n",
        plain = plain.path.display(),
        nested = nested.path.display(),
        gone = remotes.path().join("missing").display(),
    );
    std::fs::write(dir.path().join("extraDevfileEntries.yaml"), entries).unwrap();
    let registry_repo = GitRepo::init(dir.path()).unwrap();
    registry_repo.commit_all(DATE, "samples").unwrap();

    // --strict: the unreachable sample is an error, and nothing is published.
    let strict = publish_with(dir.path(), &format!("{}/strict-samples", registry.url()), &["--strict"], "");
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    assert!(
        stderr(&strict)
            .contains("error: extraDevfileEntries.yaml: [sample/unreachable] the devfile of sample gone latest")
    );
    assert!(registry.tags("strict-samples/devfile-index").is_empty());
    // Samples are fetched before anything is pushed with --strict.
    assert!(!registry.catalog().iter().any(|r| r.starts_with("strict-samples/")), "{:?}", registry.catalog());

    let out = publish(dir.path(), &format!("{}/samples", registry.url()));
    let summary = summary(&out);
    assert!(
        stderr(&out)
            .contains("warning: extraDevfileEntries.yaml: [sample/unreachable] the devfile of sample gone latest")
    );
    assert_eq!(summary["artifacts"], 3);
    let devfile = |repository: &str, tag: &str| {
        let (manifest, _) = registry.manifest(repository, tag).unwrap_or_else(|| panic!("{repository}:{tag}"));
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], "application/vnd.devfileio.devfile.layer.v1");
        assert_eq!(layer["annotations"]["org.opencontainers.image.title"], "devfile.yaml");
        String::from_utf8(registry.blob(repository, layer["digest"].as_str().unwrap())).unwrap()
    };
    assert_eq!(devfile("samples/devfile-samples/plain", "latest"), SAMPLE_DEVFILE.replace("NAME", "plain"));
    assert_eq!(devfile("samples/devfile-samples/nested", "1.0.0"), SAMPLE_DEVFILE.replace("NAME", "v1"));
    assert_eq!(devfile("samples/devfile-samples/nested", "2.0.0"), SAMPLE_DEVFILE.replace("NAME", "v2"));
    assert!(registry.tags("samples/devfile-samples/gone").is_empty());
    // The index still lists the unreachable sample.
    let (manifest, _) = registry.manifest("samples/devfile-index", "latest").unwrap();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let index: Value = serde_json::from_slice(
        &registry.blob("samples/devfile-index", manifest["layers"][0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    let names: Vec<&str> = index["stacks"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["plain", "nested", "gone"]);

    // A later commit of the registry: only the stacks it changed would be packed, but the
    // samples are fetched again, and one whose branch moved is published anew.
    std::fs::write(remotes.path().join("plain/devfile.yaml"), SAMPLE_DEVFILE.replace("NAME", "moved")).unwrap();
    plain.commit_all(LATER, "moved").unwrap();
    std::fs::write(dir.path().join("README.md"), "samples\n").unwrap();
    registry_repo.commit_all(LATER, "readme").unwrap();
    let again = self::summary(&publish(dir.path(), &format!("{}/samples", registry.url())));
    assert_eq!(again["artifacts_checked"], false, "the published index's commit is an ancestor");
    assert_eq!(again["index_pushed"], true);
    assert_eq!(devfile("samples/devfile-samples/plain", "latest"), SAMPLE_DEVFILE.replace("NAME", "moved"));
}

#[test]
fn a_full_publish_reads_the_catalog_once_and_mounts_the_blobs_it_already_pushed() {
    // A registry of its own: its catalog holds nothing of other tests.
    let registry = Registry::start(RegistryOptions::default());
    let proxy = FaultyProxy::start(&registry);
    let (dir, _repo) = community_repo();
    let (index_json, artifacts) = expected_artifacts(dir.path());
    let first = summary(&publish(dir.path(), &proxy.url()));
    let seen = seen(&proxy);
    assert_eq!(seen.iter().filter(|r| r.as_str() == "GET /v2/_catalog").count(), 1, "{seen:?}");
    assert!(!seen.iter().any(|r| r.ends_with("/tags/list")), "the catalog says no repository exists yet: {seen:?}");
    // The `{}` config goes up once, then into the 30 other stack repositories and the index's
    // by a mount each (a POST answered 201, no PUT).
    assert_eq!(first["blobs_mounted"], 31);
    let count = |f: &dyn Fn(&String) -> bool| seen.iter().filter(|r| f(r)).count() as u64;
    let uploaded = first["blobs_uploaded"].as_u64().unwrap();
    let posts = count(&|r| r.starts_with("POST ") && r.contains("/blobs/uploads/"));
    let puts = count(&|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/"));
    assert_eq!((posts, puts), (uploaded + 31, uploaded));
    // Nothing else: the authentication probe, the index lookup and the catalog.
    let manifests = first["manifests_pushed"].as_u64().unwrap();
    assert_eq!(manifests, 92);
    assert_eq!(seen.len() as u64, 3 + 2 * uploaded + 31 + manifests, "{seen:?}");
    // Every mounted blob is readable where its manifest says.
    assert_published(&registry, "", &index_json, &artifacts);
}

#[test]
fn a_registry_that_refuses_the_catalog_is_asked_repository_by_repository() {
    let registry = Registry::start(RegistryOptions::default());
    let proxy = FaultyProxy::start(&registry);
    proxy.inject(
        Fault::status(401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"no catalog"}]}"#)
            .path_ends_with("/_catalog"),
    );
    let (dir, _repo) = community_repo();
    let (index_json, artifacts) = expected_artifacts(dir.path());
    let first = summary(&publish(dir.path(), &proxy.url()));
    assert_eq!(proxy.faults_left(), 0, "the catalog was asked for");
    assert_eq!(first["manifests_pushed"], 92);
    let listed = seen(&proxy).into_iter().filter(|r| r.ends_with("/tags/list")).count();
    assert_eq!(listed, 31, "one tag list per stack repository");
    assert_published(&registry, "", &index_json, &artifacts);
}

#[test]
fn only_changed_stacks_are_pushed_unless_verify_or_history_was_rewritten() {
    let registry = Registry::shared();
    let proxy = FaultyProxy::start(registry);
    let target = format!("{}/history", proxy.url());
    let (dir, repo) = community_repo();
    summary(&publish(dir.path(), &target));
    let change = |text: &str| {
        let devfile = dir.path().join("stacks/go/2.5.0/devfile.yaml");
        let old = std::fs::read_to_string(&devfile).unwrap();
        std::fs::write(&devfile, old.replacen("description:", &format!("description: {text}"), 1)).unwrap();
    };
    let stacks_listed = |proxy: &FaultyProxy| {
        seen(proxy).into_iter().filter(|r| r.contains("/devfile-catalog/") && r.ends_with("/tags/list")).count()
    };

    // --verify: every artifact is looked up even though Git could tell what changed.
    change("Verified.");
    repo.commit_all(LATER, "change go").unwrap();
    proxy.clear();
    let verified = summary(&publish_with(dir.path(), &target, &["--verify"], ""));
    assert_eq!(verified["artifacts_checked"], true);
    assert_eq!((verified["manifests_pushed"].as_u64(), verified["manifests_unchanged"].as_u64()), (Some(3), Some(89)));
    assert_eq!(stacks_listed(&proxy), 31);

    // History rewritten: the published commit is not an ancestor of the new one any more, so
    // nothing can be assumed from it.
    change("Amended.");
    repo.git(&["add", "."], None).unwrap();
    repo.git(&["commit", "--quiet", "--amend", "-m", "change go, amended"], Some(LATER)).unwrap();
    proxy.clear();
    let rewritten = summary(&publish(dir.path(), &target));
    assert_eq!(rewritten["artifacts_checked"], true);
    assert_eq!(
        (rewritten["manifests_pushed"].as_u64(), rewritten["manifests_unchanged"].as_u64()),
        (Some(3), Some(89))
    );
    assert_eq!(stacks_listed(&proxy), 31);

    // A normal commit on top: only the go stack is read.
    change("Again.");
    repo.commit_all("2025-03-01T10:00:00+00:00", "change go again").unwrap();
    proxy.clear();
    let incremental = summary(&publish(dir.path(), &target));
    assert_eq!(incremental["artifacts_checked"], false);
    assert_eq!(incremental["manifests_pushed"], 3);
    assert_eq!(stacks_listed(&proxy), 1);
    let (index_json, artifacts) = expected_artifacts(dir.path());
    assert_published(registry, "history", &index_json, &artifacts);
}
