//! Helpers shared by the end-to-end and golden tests: where the fixtures are, real Git
//! repositories built in temporary folders with fixed authors and dates (so commit hashes are
//! the same on every machine and every run), a real OCI registry ([`registry`]), a proxy that
//! makes it misbehave on demand ([`faults`]), third-party clients to read it with ([`oras`]) and
//! the server binary as a process ([`server`]), and the monitored repository of dynamic updates
//! with a client that triggers them ([`updates`]), and headless Chromium for the viewer
//! ([`browser`]).
//! No mocks: every component is the real program, except the GitHub API, which cannot be reached
//! from here: [`github`] serves a real Git repository through the endpoints we call.

pub mod browser;
pub mod faults;
pub mod github;
pub mod oras;
pub mod registry;
pub mod reply;
pub mod server;
pub mod updates;

pub use faults::{Fault, FaultyProxy, Seen};
pub use github::FakeGitHub;
pub use oras::{oras_pull, skopeo_inspect_raw};
pub use registry::{Registry, RegistryOptions};
pub use reply::Reply;
pub use server::ServerProcess;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use index_generator::publish::{Credentials, NoPublishProgress, Publisher, Target};
use index_generator::{Checkout, Generated};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf()
}

/// `tests/fixtures/<rest>`.
pub fn fixtures(rest: &str) -> PathBuf {
    workspace().join("tests/fixtures").join(rest)
}

/// The snapshot of the community registry in the team's shared folder (`../shared/fixtures`).
pub fn community_registry() -> PathBuf {
    let path = workspace().join("../shared/fixtures/community-registry");
    assert!(
        path.join("stacks").is_dir(),
        "the community registry snapshot is missing at {}: the shared/ folder must sit beside the repository",
        path.display()
    );
    path
}

/// Copies a folder tree (files and sub-folders).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            // Fixtures are read-only in shared/; the copies must be editable.
            let mut perms = std::fs::metadata(&target)?.permissions();
            #[expect(clippy::permissions_set_readonly_false, reason = "test copies are private temp files")]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms)?;
        }
    }
    Ok(())
}

/// A Git repository in a folder, committed to with a fixed identity.
pub struct GitRepo {
    pub path: PathBuf,
}

impl GitRepo {
    /// `git init` in `path` (which may already hold files), on branch `main`.
    pub fn init(path: &Path) -> Result<GitRepo> {
        std::fs::create_dir_all(path)?;
        let repo = GitRepo { path: path.to_path_buf() };
        repo.git(&["init", "--quiet", "--initial-branch=main"], None)?;
        Ok(repo)
    }

    /// Runs git with a fixed identity; `date` (RFC 3339 / ISO 8601) sets author and committer
    /// dates. Returns trimmed standard output.
    pub fn git(&self, args: &[&str], date: Option<&str>) -> Result<String> {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.path)
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.autocrlf=false"])
            .args(args)
            .env("GIT_AUTHOR_NAME", "Registry Tests")
            .env("GIT_AUTHOR_EMAIL", "tests@registry.invalid")
            .env("GIT_COMMITTER_NAME", "Registry Tests")
            .env("GIT_COMMITTER_EMAIL", "tests@registry.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        if let Some(date) = date {
            cmd.env("GIT_AUTHOR_DATE", date).env("GIT_COMMITTER_DATE", date);
        }
        let out = cmd.output().context("running git (is it installed?)")?;
        if !out.status.success() {
            bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stages `paths` (relative to the repository) and commits them at `date`; returns the hash.
    pub fn commit(&self, paths: &[&str], date: &str, message: &str) -> Result<String> {
        let mut add = vec!["add", "--"];
        add.extend_from_slice(paths);
        self.git(&add, None)?;
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message], Some(date))?;
        self.git(&["rev-parse", "HEAD"], None)
    }

    /// Commits everything in the work tree.
    pub fn commit_all(&self, date: &str, message: &str) -> Result<String> {
        self.commit(&["."], date, message)
    }
}

/// Opens and generates `source` with the library, as `index-generator generate` does.
pub fn generate(source: &Path) -> (Checkout, Generated) {
    let checkout = index_generator::source::open(source.to_str().expect("a UTF-8 path"), None).unwrap();
    let schemas = index_generator::DevfileSchemas::new();
    let generated = index_generator::generate(
        &checkout,
        &schemas,
        index_generator::Options::default(),
        &index_generator::NoProgress,
    )
    .unwrap();
    (checkout, generated)
}

/// Publishes `source` with the library, as `index-generator publish` does (no samples), to
/// `target` (`host:port[/namespace]`); returns the index document.
pub fn publish(source: &Path, target: &str) -> schemas::index::IndexDocument {
    let (checkout, generated) = generate(source);
    let uploads = index_generator::publish::uploads(&checkout.root, &generated.sources, &[]).unwrap();
    let target: Target = target.parse().unwrap();
    let json = generated.document.to_pretty_json();
    registry::block_on(async {
        let publisher = std::sync::Arc::new(Publisher::connect(target, Credentials::Anonymous, 8).await);
        publisher.publish(uploads, &checkout.commit_hash, json.as_bytes(), &NoPublishProgress).await.unwrap();
    });
    generated.document
}
