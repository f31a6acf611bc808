//! Dynamic updates from a GitHub repository (`REGISTRY_REPO_URL=https://github.com/OWNER/REPO`),
//! read through the GitHub API: a real registry, real `index-server` processes, and
//! `tests::FakeGitHub` serving the monitored Git repository of a temporary folder as a private
//! GitHub repository (GitHub itself cannot be reached from here).

use std::path::Path;
use std::time::Duration;

use schemas::updates::{UpdateJob, UpdateStatus};
use tests::FakeGitHub;
use tests::updates::{Client, World, add_stack, edit};

const BIN: &str = env!("CARGO_BIN_EXE_index-server");
const GITHUB_TOKEN: &str = "ghp_servertoken0123456789";

#[tokio::test(flavor = "multi_thread")]
async fn a_github_repository_is_followed_through_the_api() {
    let mut world = World::new(Path::new(BIN));
    let github = FakeGitHub::private("owner", "repo", world.dir.path(), GITHUB_TOKEN);
    let api = github.url();
    let server = world.server_monitoring(
        &github.repo_url(),
        "500ms",
        &[("GITHUB_API_URL", api.as_str()), ("GITHUB_TOKEN", GITHUB_TOKEN)],
    );
    let client = Client::of(&server);
    let first = world.head();
    assert_eq!(client.served_commit().await, first);

    // A merge and its trigger: the new stack is live, read from the tarball of that commit.
    let commit = world.commit("add go-next", |root| add_stack(root, "go-next"));
    // The reconciler may have seen the new head first: then the trigger joins its job.
    let job = client.wait(&client.trigger(&commit, &["go-next"]).await.id).await;
    assert_eq!(job.status, UpdateStatus::Live, "{job:#?}\nserver log:\n{}", server.log());
    assert_eq!(job.commit.as_deref(), Some(commit.as_str()));
    assert!(client.names().await.contains(&"go-next".to_string()));
    let (status, devfile) = client.get("/devfiles/go-next").await;
    assert_eq!(status, 200);
    assert!(devfile.contains("name: go-next"));
    assert_eq!(world.published_commit(), commit);
    let paths = github.paths();
    assert!(paths.contains(&"/repos/owner/repo/branches/main".to_string()), "{paths:?}");
    assert!(paths.contains(&format!("/repos/owner/repo/tarball/{commit}")), "{paths:?}");
    assert!(paths.contains(&format!("/repos/owner/repo/compare/{first}...{commit}")), "{paths:?}");
    for request in github.requests().iter().filter(|r| r.path.starts_with("/repos/")) {
        assert!(request.status < 400, "{request:?}");
        assert_eq!(request.authorization, Some(format!("Bearer {GITHUB_TOKEN}")), "{request:?}");
    }

    // The branch moves with no trigger at all (a lost webhook): the reconciler converges.
    let fixed = world.commit("java-maven 2.0.0: new description", |root| {
        edit(root, "stacks/java-maven/2.0.0/devfile.yaml", "description: ", "description: Changed. ")
    });
    client.wait_for_commit(&fixed, Duration::from_secs(30)).await;
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs[0].trigger, "reconciler");
    assert_eq!(jobs[0].status, UpdateStatus::Live, "{:#?}", jobs[0]);
    assert!(client.get("/devfiles/java-maven/2.0.0").await.1.contains("description: Changed. "));
    assert_eq!(world.published_commit(), fixed);

    // The logs name the repository and its branch, never the token.
    let log = server.log();
    assert!(log.contains("https://github.com/owner/repo") && log.contains("main"), "{log}");
    assert!(!log.contains(GITHUB_TOKEN), "the token is logged:\n{log}");
}
