//! Where a registry repository comes from: a plain folder, a Git work tree (as it is, or at a
//! branch, tag or commit), any Git URL, or a GitHub repository URL (read through the GitHub API,
//! see [`crate::github`]). Git is driven through the `git` program, which every machine that
//! builds stacks already has and which understands every URL and credential helper the user has
//! set up.
//!
//! Opening a source yields a [`Checkout`]: a folder to scan, the commit it holds, and the time of
//! the last commit that touched each folder (for `lastModified`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::thread::JoinHandle;

use tempfile::TempDir;

use crate::github::{self, GitHub, GitHubError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0} is neither a folder nor a Git repository URL")]
    NotFound(String),
    #[error("--ref {reference} needs a Git repository, and {path} is a plain folder")]
    RefWithoutGit { reference: String, path: String },
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("{reference} is not a branch, tag or commit of the Git repository {repo}")]
    UnknownRef { reference: String, repo: String },
    #[error("the `git` program could not be run (is Git installed?): {0}")]
    GitMissing(std::io::Error),
    #[error("could not extract {commit} into a temporary folder: {source}")]
    Extract { commit: String, source: std::io::Error },
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("cannot read the history of the work tree: {0}")]
    History(String),
}

/// A registry repository ready to scan.
#[derive(Debug)]
pub struct Checkout {
    /// The registry root: it holds `stacks/` and `extraDevfileEntries.yaml`.
    pub root: PathBuf,
    /// The commit the files come from; empty for a plain folder.
    pub commit_hash: String,
    /// What Git says of the files: see [`Checkout::folder_times`] and [`Checkout::uncommitted`].
    facts: Facts,
    /// The Git repository the files come from, when there is one on this machine.
    history: Option<History>,
    /// Keeps an extracted or cloned tree alive while the checkout is in use.
    _temp: Option<TempDir>,
}

/// What Git says of a checkout's files.
#[derive(Debug, Default)]
struct GitFacts {
    folder_times: HashMap<String, String>,
    uncommitted: Vec<String>,
}

/// What finds the [`GitFacts`] of a checkout when first asked: a value known at once, or the
/// end of a thread running `git` (the error as text).
type FindFacts = Box<dyn FnOnce() -> Result<GitFacts, String> + Send>;

/// [`GitFacts`], known at once or still being found by `git` on a thread of its own.
type Facts = LazyLock<Result<GitFacts, String>, FindFacts>;

fn known(facts: GitFacts) -> Facts {
    LazyLock::new(Box::new(move || Ok(facts)))
}

fn pending(finding: JoinHandle<Result<GitFacts, SourceError>>) -> Facts {
    LazyLock::new(Box::new(move || {
        finding.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)).map_err(|e| e.to_string())
    }))
}

/// Where `git` commands about a checkout's history run.
#[derive(Debug)]
struct History {
    /// A folder of the work tree, or the bare repository.
    repo: PathBuf,
    /// The registry root's path from the top (`""` or `registry/`).
    prefix: String,
}

impl Checkout {
    /// A plain folder: no commit, no history.
    pub fn folder(root: impl Into<PathBuf>) -> Checkout {
        Checkout {
            root: root.into(),
            commit_hash: String::new(),
            facts: known(GitFacts::default()),
            history: None,
            _temp: None,
        }
    }

    /// Paths under the root (`stacks/go`, `stacks/go/1.0.0`) → commit time of the last commit
    /// that touched them, RFC 3339 with the original offset and `Z` for UTC. Empty when Git
    /// failed: [`Checkout::settle`] tells why.
    pub fn folder_times(&self) -> &HashMap<String, String> {
        static NONE: LazyLock<HashMap<String, String>> = LazyLock::new(HashMap::new);
        self.facts.as_ref().map_or(&NONE, |f| &f.folder_times)
    }

    /// Paths with uncommitted changes (staged, unstaged or untracked) under the root, when the
    /// files are read from a work tree rather than from a commit.
    pub fn uncommitted(&self) -> &[String] {
        self.facts.as_ref().map_or(&[], |f| &f.uncommitted)
    }

    /// Waits for what Git says of a work tree's files (`git status` and `git log` run while the
    /// files are scanned), and fails as opening the source would have when Git did.
    pub fn settle(&self) -> Result<(), SourceError> {
        match &*self.facts {
            Ok(_) => Ok(()),
            Err(e) => Err(SourceError::History(e.clone())),
        }
    }

    /// Files extracted into `temp` (which the checkout keeps alive) at `commit_hash`.
    pub(crate) fn extracted(
        root: PathBuf,
        commit_hash: String,
        folder_times: HashMap<String, String>,
        temp: TempDir,
    ) -> Checkout {
        let facts = known(GitFacts { folder_times, uncommitted: Vec::new() });
        Checkout { root, commit_hash, facts, history: None, _temp: Some(temp) }
    }

    /// What differs between commit `old` and this checkout's commit under `stacks/`; `None`
    /// when Git cannot tell: no repository on this machine, `old` unknown here or not an
    /// ancestor of this commit, or uncommitted changes in the work tree.
    pub fn changes_since(&self, old: &str) -> Option<Changes> {
        let history = self.history.as_ref()?;
        if self.commit_hash.is_empty()
            || !self.uncommitted().is_empty()
            || old.len() < 7
            || !old.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        // Pathspecs and the paths git prints are relative to the top.
        let top = git_top(&history.repo).ok()?;
        // 0: an ancestor; 1: not one; 128: not a commit of this repository.
        let ancestor = Command::new("git")
            .current_dir(&top)
            .args(["merge-base", "--is-ancestor", old, &self.commit_hash])
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !ancestor.success() {
            return None;
        }
        let stacks = format!("{}stacks", history.prefix);
        let quiet = ["-c", "core.quotePath=false"];
        let diff = git_untrimmed(
            &top,
            &[&quiet[..], &["diff", "--name-only", "--no-renames", old, &self.commit_hash, "--", &stacks]].concat(),
        )
        .ok()?;
        let tree =
            git_untrimmed(&top, &[&quiet[..], &["ls-tree", "-r", &self.commit_hash, "--", &stacks]].concat()).ok()?;
        // `<mode> <type> <object>\t<path>`; 120000 is a symbolic link.
        let links =
            tree.lines().filter(|l| l.starts_with("120000 ")).filter_map(|l| l.split_once('\t')).map(|(_, p)| p);
        let relative = |path: &str| path.strip_prefix(history.prefix.as_str()).map(str::to_string);
        let linked = links.filter_map(relative).filter_map(|p| stack_folder(&p).map(str::to_string)).collect();
        Some(Changes { paths: diff.lines().filter_map(relative).collect(), linked })
    }
}

/// Files changed between two commits under `stacks/`, as [`Checkout::changes_since`] found them.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Changed (added, modified, removed) files, relative to the registry root.
    paths: Vec<String>,
    /// Stack folders holding a symbolic link: what a link points at may have changed outside
    /// the stack folder, so these always count as changed.
    linked: HashSet<String>,
}

impl Changes {
    /// Whether the stack version in `folder` (`stacks/go/1.0.0`, or `stacks/go` for a stack of
    /// one version) may pack differently: a file in it changed, or a file of its stack folder
    /// itself (`stack.yaml`).
    pub fn touch(&self, folder: &str) -> bool {
        let Some(stack) = stack_folder(folder) else { return true };
        self.linked.contains(stack)
            || self.paths.iter().any(|path| {
                path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'))
                    || path
                        .strip_prefix(stack)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|rest| !rest.contains('/'))
            })
    }
}

/// `stacks/<name>` of a path below it (`stacks/go/1.0.0/devfile.yaml`, `stacks/go`).
fn stack_folder(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("stacks/")?;
    let end = rest.find('/').unwrap_or(rest.len());
    (end > 0).then(|| &path[.."stacks/".len() + end])
}

/// Opens `source` (a folder, a Git URL or a GitHub repository URL), at `reference` when given
/// (a branch, tag or commit).
///
/// A folder inside a Git work tree is read as it is on disk, stamped with `HEAD`, and its
/// uncommitted changes are listed; with `reference`, the files are taken from that commit.
/// `https://github.com/OWNER/REPO[/tree/REF]` is read through the GitHub API with the token in
/// `GITHUB_TOKEN`, at `reference`, else `REF`, else the default branch.
pub fn open(source: &str, reference: Option<&str>) -> Result<Checkout, SourceError> {
    let path = Path::new(source);
    if path.is_dir() {
        match git_location(path)? {
            None => match reference {
                Some(reference) => {
                    Err(SourceError::RefWithoutGit { reference: reference.to_string(), path: source.to_string() })
                }
                None => Ok(Checkout::folder(path)),
            },
            Some(GitLocation::WorkTree { prefix, head }) => match reference {
                None => from_work_tree(path, &prefix, head),
                Some(reference) => from_commit(path, &prefix, reference, None),
            },
            Some(GitLocation::Bare) => from_commit(path, "", reference.unwrap_or("HEAD"), None),
        }
    } else if let Some(repo) = github::parse_url(source) {
        let reference = reference.map(str::to_string).or(repo.reference);
        let token = github::token_from_env();
        // The client needs a runtime to be built on (octocrab spawns its buffer task).
        Ok(block_on(async {
            let github = GitHub::new(&repo.owner, &repo.repo, token.as_deref())?;
            github.checkout(reference.as_deref()).await
        })?)
    } else if looks_like_url(source) {
        let temp = tempfile::Builder::new()
            .prefix("registry-clone-")
            .tempdir()
            .map_err(|e| SourceError::Extract { commit: source.to_string(), source: e })?;
        let clone = temp.path().join("repo.git");
        git(temp.path(), &["clone", "--quiet", "--bare", "--", source, &clone.to_string_lossy()])?;
        from_commit(&clone, "", reference.unwrap_or("HEAD"), Some(temp))
    } else {
        Err(SourceError::NotFound(source.to_string()))
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its own, so that callers
/// inside an async runtime (the server's blocking tasks) and outside any (the CLI) alike can wait.
fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime can be built")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn looks_like_url(source: &str) -> bool {
    source.contains("://") || (source.contains('@') && source.contains(':')) || source.ends_with(".git")
}

enum GitLocation {
    /// Inside a work tree; `prefix` is the folder's path from the top (`""` or `stacks/`), `head`
    /// the commit checked out (empty in a repository with no commit yet).
    WorkTree {
        prefix: String,
        head: String,
    },
    Bare,
}

/// Where `path` is in Git, and its `HEAD`: one `git rev-parse`, which prints whether the
/// repository is bare and the prefix whenever `path` is in a repository, then the commit unless
/// there is none (it then exits 1); outside any repository it prints nothing and exits 128.
fn git_location(path: &Path) -> Result<Option<GitLocation>, SourceError> {
    let out = Command::new("git")
        .current_dir(path)
        .args(["rev-parse", "--is-bare-repository", "--show-prefix", "--verify", "--quiet", "HEAD^{commit}"])
        .stderr(Stdio::null())
        .output()
        .map_err(SourceError::GitMissing)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    Ok(match lines.next() {
        Some("true") => Some(GitLocation::Bare),
        Some("false") => {
            let prefix = lines.next().unwrap_or("").to_string();
            let head = lines.next().filter(|_| out.status.success()).unwrap_or("").to_string();
            Some(GitLocation::WorkTree { prefix, head })
        }
        _ => None,
    })
}

fn from_work_tree(path: &Path, prefix: &str, commit: String) -> Result<Checkout, SourceError> {
    // `git status` and `git log` (each some milliseconds to tens of milliseconds) run at once, on
    // threads of their own, while the caller scans the files: see `Checkout::settle`.
    let finding = {
        let (path, commit, prefix) = (path.to_path_buf(), commit.clone(), prefix.to_string());
        std::thread::Builder::new()
            .name("git-history".to_string())
            .spawn(move || git_facts(&path, &commit, &prefix))
            .map_err(SourceError::GitMissing)?
    };
    Ok(Checkout {
        root: path.to_path_buf(),
        commit_hash: commit,
        facts: pending(finding),
        history: Some(History { repo: path.to_path_buf(), prefix: prefix.to_string() }),
        _temp: None,
    })
}

/// `git status` (uncommitted changes under `path`) and the folder times at `commit`, at once.
fn git_facts(path: &Path, commit: &str, prefix: &str) -> Result<GitFacts, SourceError> {
    let (status, folder_times) = std::thread::scope(|scope| {
        let status =
            scope.spawn(|| git_untrimmed(path, &["status", "--porcelain", "--untracked-files=all", "--", "."]));
        let folder_times = if commit.is_empty() { Ok(HashMap::new()) } else { folder_times(path, commit, prefix) };
        (status.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), folder_times)
    });
    let (status, folder_times) = (status?, folder_times?);
    // Porcelain lines are `XY path`.
    let uncommitted = status.lines().filter_map(|l| l.get(3..)).map(str::to_string).collect();
    Ok(GitFacts { folder_times, uncommitted })
}

/// Extracts the registry folder (`prefix`) at `reference` with `git archive` into a temporary
/// folder; the repository and its work tree are left as they are.
fn from_commit(repo: &Path, prefix: &str, reference: &str, temp: Option<TempDir>) -> Result<Checkout, SourceError> {
    let commit =
        git(repo, &["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{reference}^{{commit}}")])
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SourceError::UnknownRef {
                reference: reference.to_string(),
                repo: repo.display().to_string(),
            })?;
    let temp = match temp {
        Some(t) => t,
        None => tempfile::Builder::new()
            .prefix("registry-checkout-")
            .tempdir()
            .map_err(|e| SourceError::Extract { commit: commit.clone(), source: e })?,
    };
    let tree = temp.path().join("tree");
    std::fs::create_dir_all(&tree).map_err(|e| SourceError::Extract { commit: commit.clone(), source: e })?;
    let top = git_top(repo)?;
    let mut archive_args = vec!["archive".to_string(), "--format=tar".to_string(), commit.clone()];
    if !prefix.is_empty() {
        archive_args.push("--".to_string());
        archive_args.push(prefix.to_string());
    }
    let mut archive = Command::new("git")
        .current_dir(&top)
        .args(&archive_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SourceError::GitMissing)?;
    let stdout = archive.stdout.take().expect("piped stdout");
    let untar = Command::new("tar")
        .args(["-x", "-f", "-", "-C"])
        .arg(&tree)
        .stdin(stdout)
        .output()
        .map_err(|e| SourceError::Extract { commit: commit.clone(), source: e })?;
    let archived = archive.wait_with_output().map_err(SourceError::GitMissing)?;
    if !archived.status.success() {
        return Err(SourceError::Git {
            args: archive_args.join(" "),
            stderr: String::from_utf8_lossy(&archived.stderr).trim().to_string(),
        });
    }
    if !untar.status.success() {
        return Err(SourceError::Extract {
            commit,
            source: std::io::Error::other(String::from_utf8_lossy(&untar.stderr).trim().to_string()),
        });
    }
    let folder_times = folder_times(&top, &commit, prefix)?;
    Ok(Checkout {
        root: tree.join(prefix),
        commit_hash: commit,
        facts: known(GitFacts { folder_times, uncommitted: Vec::new() }),
        history: Some(History { repo: top, prefix: prefix.to_string() }),
        _temp: Some(temp),
    })
}

/// The folder `git` commands run in: the top of a work tree, or the bare repository itself.
fn git_top(repo: &Path) -> Result<PathBuf, SourceError> {
    match git(repo, &["rev-parse", "--show-toplevel"]) {
        Ok(top) if !top.is_empty() => Ok(PathBuf::from(top)),
        _ => Ok(repo.to_path_buf()),
    }
}

/// One pass over the history of `<prefix>stacks`: for every folder under the registry root, the
/// commit time of the newest commit that touched a file in it.
fn folder_times(repo: &Path, commit: &str, prefix: &str) -> Result<HashMap<String, String>, SourceError> {
    let top = git_top(repo)?;
    let pathspec = format!("{prefix}stacks");
    let log = git(
        &top,
        &[
            "-c",
            "core.quotePath=false",
            "log",
            "--no-renames",
            "--format=%x01%cI",
            "--name-only",
            commit,
            "--",
            &pathspec,
        ],
    )?;
    let mut times = HashMap::new();
    let mut current = String::new();
    for line in log.lines() {
        if let Some(time) = line.strip_prefix('\u{1}') {
            current = normalize_offset(time);
            continue;
        }
        let Some(path) = line.strip_prefix(prefix) else { continue };
        // Every ancestor folder of the file below `stacks/`: stacks/go, stacks/go/1.0.0, ...
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            let folder = &path[..end];
            if folder != "stacks" && !times.contains_key(folder) {
                times.insert(folder.to_string(), current.clone());
            }
            end += 1;
        }
    }
    Ok(times)
}

/// RFC 3339 as git prints it (`%cI`), with a zero offset written `Z`.
pub(crate) fn normalize_offset(time: &str) -> String {
    match time.strip_suffix("+00:00") {
        Some(rest) => format!("{rest}Z"),
        None => time.to_string(),
    }
}

/// Runs git in `dir` and returns its trimmed standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    Ok(git_untrimmed(dir, args)?.trim().to_string())
}

/// Runs git in `dir` and returns its standard output as it is (porcelain formats start lines
/// with meaningful spaces).
fn git_untrimmed(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    let out = Command::new("git").current_dir(dir).args(args).output().map_err(SourceError::GitMissing)?;
    if !out.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_touch_their_version_and_stack_files_only() {
        let changes = Changes {
            paths: vec![
                "stacks/go/2.5.0/devfile.yaml".into(),
                "stacks/java-maven/stack.yaml".into(),
                "stacks/README.md".into(),
            ],
            linked: HashSet::from(["stacks/nodejs".to_string()]),
        };
        assert!(changes.touch("stacks/go/2.5.0"));
        assert!(!changes.touch("stacks/go/2.4.0"));
        assert!(!changes.touch("stacks/go/2.5"), "a prefix of the folder name is another folder");
        assert!(changes.touch("stacks/java-maven/1.3.0"), "stack.yaml concerns every version");
        assert!(!changes.touch("stacks/java-maven-x"));
        assert!(changes.touch("stacks/nodejs"), "a stack with a symbolic link always counts");
        assert!(!changes.touch("stacks/python"));
        let single = Changes { paths: vec!["stacks/python/docker/Dockerfile".into()], linked: HashSet::new() };
        assert!(single.touch("stacks/python"), "a single-version stack is its own version folder");
        assert_eq!(stack_folder("stacks/go/1.0.0/devfile.yaml"), Some("stacks/go"));
        assert_eq!(stack_folder("stacks/go"), Some("stacks/go"));
        assert_eq!(stack_folder("README.md"), None);
    }
}
