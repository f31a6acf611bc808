//! Registry repositories on GitHub, read through the GitHub API (octocrab), against
//! `tests::FakeGitHub`: a local HTTP server answering the endpoints we call from a real Git
//! repository in a temporary folder (real tarballs from `git archive`, real commit objects).
//! Also the Git side of [`Remote`]: a persistent mirror fetched incrementally.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use index_generator::github::GitHubError;
use index_generator::{Remote, SourceError};
use tempfile::TempDir;
use tests::{FakeGitHub, GitRepo, copy_tree, workspace};

const TOKEN: &str = "ghp_testtoken0123456789";

/// A copy of the default registry (`stacks/`) committed twice on `main` (the second commit, at
/// UTC+2, changes the `go` stack), and one commit on a side branch.
struct Repo {
    dir: TempDir,
    git: GitRepo,
    first: String,
    second: String,
    side: String,
}

fn repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&workspace().join("stacks"), dir.path()).unwrap();
    // An executable file and a nested folder, so that modes and paths are checked too.
    let script = dir.path().join("stacks/go/build.sh");
    std::fs::write(&script, "#!/bin/sh\necho build\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let git = GitRepo::init(dir.path()).unwrap();
    let first = git.commit_all("2025-03-01T10:00:00+00:00", "the registry").unwrap();
    let devfile = dir.path().join("stacks/go/devfile.yaml");
    let text = std::fs::read_to_string(&devfile).unwrap();
    std::fs::write(&devfile, text.replacen("description: ", "description: Changed. ", 1)).unwrap();
    let second = git.commit_all("2025-03-02T12:00:00+02:00", "go: new description").unwrap();
    git.git(&["checkout", "--quiet", "-b", "side", &first], None).unwrap();
    std::fs::write(dir.path().join("stacks/go/side.txt"), "side\n").unwrap();
    let side = git.commit_all("2025-03-03T10:00:00+00:00", "a side branch").unwrap();
    git.git(&["checkout", "--quiet", "main"], None).unwrap();
    Repo { dir, git, first, second, side }
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// Every file under `root` with its mode's executable bit and its bytes (links as their target).
fn files(root: &Path) -> BTreeMap<String, (bool, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (bool, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(relative, (false, target.to_string_lossy().as_bytes().to_vec()));
            } else {
                let executable = entry.metadata().unwrap().permissions().mode() & 0o111 != 0;
                out.insert(relative, (executable, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The files of `commit` as `git archive` gives them.
fn archived(repo: &Repo, commit: &str) -> BTreeMap<String, (bool, Vec<u8>)> {
    let into = tempfile::tempdir().unwrap();
    let archive =
        Command::new("git").current_dir(repo.dir.path()).args(["archive", "--format=tar", commit]).output().unwrap();
    assert!(archive.status.success());
    let mut untar = Command::new("tar")
        .args(["-x", "-f", "-", "-C", path(into.path())])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    untar.stdin.take().unwrap().write_all(&archive.stdout).unwrap();
    assert!(untar.wait().unwrap().success());
    files(into.path())
}

fn github_error(error: SourceError) -> GitHubError {
    match error {
        SourceError::GitHub(e) => e,
        other => panic!("not a GitHub error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_remote_reads_heads_exact_commits_and_ancestry() {
    let repo = repo();
    let github = FakeGitHub::start("owner", "repo", repo.dir.path());
    let remote = Remote::with_api_url(&github.repo_url(), Some("main"), None, &github.url()).unwrap();
    assert!(remote.is_github());
    assert_eq!((remote.url(), remote.branch()), ("https://github.com/owner/repo", Some("main")));

    assert_eq!(remote.head().await.unwrap(), repo.second);
    assert_eq!(github.paths(), ["/repos/owner/repo/branches/main"]);

    // The files of exactly that commit, byte for byte what `git archive` gives, modes included.
    github.clear();
    let checkout = remote.checkout(&repo.first).await.unwrap();
    assert_eq!(checkout.commit_hash, repo.first);
    assert!(checkout.uncommitted().is_empty());
    let got = files(&checkout.root);
    assert_eq!(got, archived(&repo, &repo.first));
    assert!(got["stacks/go/build.sh"].0, "the executable bit is kept");
    assert!(!got.contains_key("stacks/go/side.txt"));
    // lastModified: the last commit touching each folder with a devfile, in UTC.
    assert_eq!(checkout.folder_times().get("stacks/go").map(String::as_str), Some("2025-03-01T10:00:00Z"));
    assert_eq!(
        checkout.folder_times().get("stacks/java-maven/2.0.0").map(String::as_str),
        Some("2025-03-01T10:00:00Z")
    );
    let paths = github.paths();
    assert_eq!(paths[0], format!("/repos/owner/repo/commits/{}", repo.first));
    assert_eq!(paths[1], format!("/repos/owner/repo/tarball/{}", repo.first));
    assert_eq!(paths[2], format!("/_codeload/owner/repo/legacy.tar.gz/{}", repo.first));
    let folder_lookups: Vec<_> =
        github.requests().into_iter().filter(|r| r.path == "/repos/owner/repo/commits").collect();
    assert_eq!(folder_lookups.len(), checkout.folder_times().len());
    assert!(
        folder_lookups.iter().any(|r| r.query == format!("sha={}&path=stacks%2Fgo&per_page=1", repo.first)),
        "{folder_lookups:?}"
    );
    assert!(github.requests().iter().all(|r| r.authorization.is_none()), "no token, no Authorization header");

    // The second commit changed go at UTC+2: the same instant, written in UTC.
    let checkout = remote.checkout(&repo.second).await.unwrap();
    assert_eq!(checkout.folder_times().get("stacks/go").map(String::as_str), Some("2025-03-02T10:00:00Z"));
    assert_eq!(files(&checkout.root), archived(&repo, &repo.second));

    // Ancestry through the compare API.
    github.clear();
    assert!(remote.is_ancestor(&repo.first, &repo.second).await.unwrap());
    assert!(remote.is_ancestor(&repo.second, &repo.second).await.unwrap());
    assert!(!remote.is_ancestor(&repo.second, &repo.first).await.unwrap());
    assert!(!remote.is_ancestor(&repo.side, &repo.second).await.unwrap());
    assert_eq!(github.paths()[0], format!("/repos/owner/repo/compare/{}...{}", repo.first, repo.second));

    // No branch: the repository's default branch.
    let remote = Remote::with_api_url(&github.repo_url(), None, None, &github.url()).unwrap();
    assert_eq!(remote.head().await.unwrap(), repo.second);
    // A /tree/REF URL names the branch.
    let url = format!("{}/tree/side", github.repo_url());
    let remote = Remote::with_api_url(&url, None, None, &github.url()).unwrap();
    assert_eq!(remote.branch(), Some("side"));
    assert_eq!(remote.head().await.unwrap(), repo.side);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_sent_and_a_wrong_or_missing_one_is_a_clear_error() {
    let repo = repo();
    let github = FakeGitHub::private("owner", "repo", repo.dir.path(), TOKEN);
    let remote = Remote::with_api_url(&github.repo_url(), Some("main"), Some(TOKEN), &github.url()).unwrap();
    assert_eq!(remote.head().await.unwrap(), repo.second);
    let checkout = remote.checkout(&repo.second).await.unwrap();
    assert_eq!(files(&checkout.root), archived(&repo, &repo.second));
    let requests = github.requests();
    assert!(requests.iter().all(|r| r.status < 400), "{requests:#?}");
    for request in requests.iter().filter(|r| r.path.starts_with("/repos/")) {
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()), "{request:?}");
    }
    // The token is never in the Debug form of a remote (which logs may print).
    assert!(!format!("{remote:?}").contains(TOKEN));

    let wrong = Remote::with_api_url(&github.repo_url(), Some("main"), Some("ghp_wrong"), &github.url()).unwrap();
    let error = github_error(wrong.head().await.unwrap_err());
    assert!(matches!(error, GitHubError::BadCredentials { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("GITHUB_TOKEN") && message.contains("owner/repo"), "{message}");
    assert!(!message.contains("ghp_wrong"), "{message}");

    let anonymous = Remote::with_api_url(&github.repo_url(), Some("main"), None, &github.url()).unwrap();
    let error = github_error(anonymous.head().await.unwrap_err());
    assert!(matches!(error, GitHubError::RepoNotFound { authenticated: false, .. }), "{error:?}");
    assert!(error.to_string().contains("needs a token in GITHUB_TOKEN"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_refs_and_repositories_are_clear_errors() {
    let repo = repo();
    let github = FakeGitHub::start("owner", "repo", repo.dir.path());
    let api = github.url();

    let remote = Remote::with_api_url(&github.repo_url(), Some("nope"), None, &api).unwrap();
    let error = github_error(remote.head().await.unwrap_err());
    assert_eq!(error.to_string(), "nope is not a branch, tag or commit of the GitHub repository owner/repo");

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let remote = Remote::with_api_url(&github.repo_url(), Some("main"), None, &api).unwrap();
    let error = github_error(remote.checkout(missing).await.unwrap_err());
    assert!(matches!(error, GitHubError::UnknownRef { .. }), "{error:?}");
    assert!(error.to_string().starts_with(missing), "{error}");
    let error = github_error(remote.is_ancestor(missing, &repo.second).await.unwrap_err());
    assert!(matches!(error, GitHubError::UnknownRef { .. }), "{error:?}");

    let other = Remote::with_api_url("https://github.com/owner/other", Some("main"), None, &api).unwrap();
    let error = github_error(other.head().await.unwrap_err());
    assert!(matches!(error, GitHubError::RepoNotFound { .. }), "{error:?}");
    assert!(error.to_string().starts_with("the GitHub repository owner/other does not exist"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_remote_fetches_into_a_mirror_as_needed() {
    let repo = repo();
    let remote = Remote::new(path(repo.dir.path()), Some("main"), None).unwrap();
    assert!(!remote.is_github());
    assert_eq!(remote.head().await.unwrap(), repo.second);
    let checkout = remote.checkout(&repo.first).await.unwrap();
    assert_eq!(checkout.commit_hash, repo.first);
    assert_eq!(files(&checkout.root), archived(&repo, &repo.first));
    assert_eq!(checkout.folder_times().get("stacks/go").map(String::as_str), Some("2025-03-01T10:00:00Z"));
    assert!(remote.is_ancestor(&repo.first, &repo.second).await.unwrap());
    assert!(!remote.is_ancestor(&repo.second, &repo.first).await.unwrap());
    // A commit that is not on the monitored branch is fetched by its SHA.
    assert!(!remote.is_ancestor(&repo.side, &repo.second).await.unwrap());
    assert_eq!(remote.checkout(&repo.side).await.unwrap().commit_hash, repo.side);

    // A new commit on the branch is fetched on demand, over what the mirror already has.
    std::fs::write(repo.dir.path().join("stacks/go/more.txt"), "more\n").unwrap();
    let third = repo.git.commit_all("2025-03-04T10:00:00-05:00", "more").unwrap();
    assert_eq!(remote.head().await.unwrap(), third);
    let checkout = remote.checkout(&third).await.unwrap();
    assert_eq!(checkout.folder_times().get("stacks/go").map(String::as_str), Some("2025-03-04T10:00:00-05:00"));
    assert!(remote.is_ancestor(&repo.second, &third).await.unwrap());

    let error = remote.checkout("0123456789abcdef0123456789abcdef01234567").await.unwrap_err();
    assert!(matches!(error, SourceError::UnknownRef { .. }), "{error:?}");
}

/// Runs the generator binary with the GitHub API pointed at `github`.
fn generate(github: &FakeGitHub, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_index-generator"))
        .arg("generate")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_API_URL", github.url())
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .expect("the index-generator binary runs")
}

#[test]
fn generate_over_github_gives_the_index_of_the_git_repository() {
    let repo = repo();
    let github = FakeGitHub::start("owner", "repo", repo.dir.path());
    let url = github.repo_url();
    let local = generate(&github, &[path(repo.dir.path()), "--ref", "main"]);
    assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
    assert!(github.requests().is_empty());
    let remote = generate(&github, &[&url, "--ref", "main"]);
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(remote.status.success(), "{stderr}");
    assert!(stderr.lines().last().unwrap().ends_with(&format!("; commit {}", repo.second)), "{stderr}");
    let local = String::from_utf8(local.stdout).unwrap();
    let remote = String::from_utf8(remote.stdout).unwrap();
    // The one documented difference: the API writes times in UTC, Git keeps the committer's
    // offset. The go stack changed at 12:00+02:00, which GitHub writes 10:00Z.
    assert!(local.contains("\"lastModified\": \"2025-03-02T12:00:00+02:00\""));
    assert_eq!(remote, local.replace("2025-03-02T12:00:00+02:00", "2025-03-02T10:00:00Z"));

    // `/tree/REF` URLs and the default branch give the same index.
    let tree = generate(&github, &[&format!("{url}/tree/main")]);
    assert_eq!(String::from_utf8(tree.stdout).unwrap(), remote);
    let default = generate(&github, &[&url]);
    assert_eq!(String::from_utf8(default.stdout).unwrap(), remote);
    // An exact commit.
    let first = generate(&github, &[&url, "--ref", &repo.first]);
    assert!(String::from_utf8(first.stdout).unwrap().contains(&format!("\"commit_hash\": \"{}\"", repo.first)));

    // Failures are one paragraph and exit code 2.
    let unknown = generate(&github, &[&url, "--ref", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: cannot read the registry repository {url}: nope is not a branch, tag or commit of the GitHub repository owner/repo"
        )
    );
}

#[test]
fn generate_reads_a_private_repository_with_the_token_in_github_token() {
    let repo = repo();
    let github = FakeGitHub::private("owner", "repo", repo.dir.path(), TOKEN);
    let url = github.repo_url();
    let with_token = Command::new(env!("CARGO_BIN_EXE_index-generator"))
        .args(["generate", &url])
        .env_remove("RUST_LOG")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", github.url())
        .output()
        .unwrap();
    assert!(with_token.status.success(), "{}", String::from_utf8_lossy(&with_token.stderr));
    assert!(String::from_utf8(with_token.stdout).unwrap().contains(&repo.second));
    let api_requests: Vec<_> = github.requests().into_iter().filter(|r| r.path.starts_with("/repos/")).collect();
    assert!(!api_requests.is_empty());
    assert!(api_requests.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));

    // Without it, the repository cannot be seen, and the message says what to do.
    let without = generate(&github, &[&url]);
    assert_eq!(without.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("owner/repo does not exist (a private repository needs a token in GITHUB_TOKEN)"),
        "{stderr}"
    );
}
