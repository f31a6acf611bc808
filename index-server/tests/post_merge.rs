//! The post-merge workflow end to end: `scripts/post-merge.sh` (what
//! `.github/workflows/post-merge.yaml` runs in a stacks repository after a push to main) run for
//! real against a Git repository in a temporary folder, a CNCF distribution registry and an
//! `index-server` process, sometimes behind a proxy that fails on demand.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use schemas::updates::{UpdateJob, UpdateStatus};
use serde_json::{Value, json};
use tests::faults::Method;
use tests::updates::{Client, SECRET, TOKEN, World, add_stack, edit};
use tests::{Fault, FaultyProxy, GitRepo, Seen, ServerProcess, workspace};

const BIN: &str = env!("CARGO_BIN_EXE_index-server");
const ZERO: &str = "0000000000000000000000000000000000000000";

/// What a run of the script gave.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// `key=value` from standard output.
    fn value(&self, key: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, code, "exit code of the script:\n{self:#?}");
    }
}

/// Runs `bash -c command` in `dir` with `env` and nothing of ours that the script reads, so the
/// caller's environment cannot change the test. Blocks: the servers are other processes.
fn bash(dir: &Path, command: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(command).current_dir(dir);
    for name in [
        "UPDATE_SERVER_URL",
        "UPDATE_WEBHOOK_SECRET",
        "UPDATE_TOKEN",
        "GITHUB_ACTIONS",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        cmd.env_remove(name);
    }
    let out = cmd.envs(env.iter().copied()).output().expect("running bash");
    Run {
        code: out.status.code().expect("the script exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs this project's `scripts/post-merge.sh` with `args` in the checkout `dir`.
fn post_merge(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let script = workspace().join("scripts/post-merge.sh");
    let mut command = format!("exec {}", quote(script.to_str().unwrap()));
    for arg in args {
        command.push(' ');
        command.push_str(&quote(arg));
    }
    bash(dir, &command, env)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Short retries, so failing attempts cost milliseconds.
const FAST: [&str; 6] = ["--retry-delay", "0.1", "--interval", "0.1", "--timeout", "60"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FAST.iter().copied().chain(extra.iter().copied()).collect()
}

async fn job_of(client: &Client, id: &str) -> UpdateJob {
    serde_json::from_value(client.json(&format!("/api/updates/{id}")).await).unwrap()
}

async fn all_jobs(client: &Client) -> Vec<UpdateJob> {
    serde_json::from_value(client.json("/api/updates").await).unwrap()
}

/// Runs the script with `--wait` (through `run`) and returns its run and its job. A server's
/// reconciler looks at the monitored branch once at startup; on a busy machine that look may come
/// after the test's commit and queue an update of its own, which the trigger then joins (200, the
/// reconciler's job). The trigger is then sent again, which makes a job of its own.
async fn own_job(client: &Client, run: impl Fn() -> Run) -> (Run, UpdateJob) {
    let first = run();
    let job = job_of(client, first.value("id").unwrap_or_else(|| panic!("no job id:\n{first:#?}"))).await;
    if job.trigger != "reconciler" {
        return (first, job);
    }
    assert!(first.stderr.contains("already had update"), "{first:#?}");
    let again = run();
    let job = job_of(client, again.value("id").unwrap_or_else(|| panic!("no job id:\n{again:#?}"))).await;
    assert_ne!(job.trigger, "reconciler", "{job:#?}");
    (again, job)
}

fn posts(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| s.method == Method::POST && s.path == "/api/updates").count()
}

fn assert_no_secret(run: &Run, secret: &str) {
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "the secret was printed:\n{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_sends_the_changed_stack_and_wait_ends_when_it_is_live() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let before = world.head();
    let after = world.commit("add go-next, edit the readme", |root| {
        add_stack(root, "go-next");
        std::fs::write(root.join("README.md"), "changed\n").unwrap();
    });

    let url = server.url();
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
    let (run, job) = own_job(&client, || post_merge(world.dir.path(), &args(&["--wait", &before, &after]), &env)).await;
    run.assert_code(0);
    assert_no_secret(&run, SECRET);
    assert_eq!(run.value("location"), Some(format!("{url}/api/updates/{}", job.id).as_str()));
    assert_eq!(run.value("status"), Some("live"));
    assert_eq!(job.status, UpdateStatus::Live, "{job:#?}");
    assert_eq!(job.trigger, "signature");
    assert_eq!(job.requested_commit.as_deref(), Some(after.as_str()));
    assert_eq!(job.requested_stacks, ["go-next"], "exactly the stack the push changed");
    assert!(client.names().await.contains(&"go-next".to_string()));
    assert_eq!(world.published_commit(), after);

    // A bearer token does as well; changing one version and removing a stack names both.
    let before = after;
    let after = world.commit("edit java-maven 2.0.0, remove python", |root| {
        edit(root, "stacks/java-maven/2.0.0/devfile.yaml", "description: ", "description: Changed. ");
        std::fs::remove_dir_all(root.join("stacks/python")).unwrap();
    });
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_TOKEN", TOKEN)];
    let run = post_merge(world.dir.path(), &args(&["--wait", &before, &after]), &env);
    run.assert_code(0);
    assert_no_secret(&run, TOKEN);
    assert!(run.stderr.contains("changed java-maven (2.0.0)") && run.stderr.contains("removed python"), "{run:#?}");
    let job = job_of(&client, run.value("id").unwrap()).await;
    assert_eq!((job.trigger.as_str(), job.status), ("token", UpdateStatus::Live));
    assert_eq!(job.requested_stacks, ["java-maven", "python"]);
    assert!(!client.names().await.contains(&"python".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_devfile_makes_wait_fail_with_the_problem() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let good = world.head();
    let bad = world.commit("break go", |root| {
        edit(root, "stacks/go/devfile.yaml", "schemaVersion: 2.2.2", "schemaVersion: 9.9.9")
    });

    let url = server.url();
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
    let (run, job) = own_job(&client, || post_merge(world.dir.path(), &args(&["--wait", &good, &bad]), &env)).await;
    run.assert_code(1);
    assert_eq!(run.value("status"), Some("failed"));
    assert_eq!(job.status, UpdateStatus::Failed);
    assert_eq!(job.requested_stacks, ["go"]);
    // Every error of the job, as the generator prints problems: file, line, rule, message.
    let error = job.problems.iter().find(|p| p.severity == "error").expect("an error");
    let printed = format!("error: {}:{}: [{}] {}", error.file, error.line, error.rule, error.message);
    assert!(printed.starts_with("error: stacks/go/devfile.yaml:"), "{printed}");
    assert!(run.stderr.contains(&printed), "{printed:?} not in\n{run:#?}");
    assert_eq!(client.served_commit().await, good, "the old index stays");

    // In a GitHub workflow the errors are annotations of their files as well.
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET), ("GITHUB_ACTIONS", "true")];
    let run = post_merge(world.dir.path(), &args(&["--wait", &good, &bad]), &env);
    run.assert_code(1);
    let annotation = format!("::error file={},line={},title={}::", error.file, error.line, error.rule);
    assert!(run.stdout.lines().any(|l| l.starts_with(&annotation)), "{annotation:?} not in\n{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_at_once_and_never_printed() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let proxy = FaultyProxy::forwarding_to(&server.url());
    let before = world.head();
    let after = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let url = proxy.url();

    let wrong = "not-the-secret-5f1e9c";
    for credential in ["UPDATE_WEBHOOK_SECRET", "UPDATE_TOKEN"] {
        proxy.clear();
        let env = [("UPDATE_SERVER_URL", url.as_str()), (credential, wrong)];
        let run = post_merge(world.dir.path(), &args(&["--wait", &before, &after]), &env);
        run.assert_code(3);
        assert!(run.stderr.contains("HTTP 401"), "{run:#?}");
        assert_no_secret(&run, wrong);
        assert_eq!(posts(&proxy.requests()), 1, "a 401 is not retried: {:?}", proxy.requests());
    }
    // (The reconciler's look at startup may have queued the commit by itself.)
    let triggered: Vec<UpdateJob> = all_jobs(&client).await.into_iter().filter(|j| j.trigger != "reconciler").collect();
    assert!(triggered.is_empty(), "nothing ran: {triggered:#?}");

    // Another 4xx is not retried either, and has its own exit code.
    proxy.clear();
    proxy.inject(Fault::status(400, r#"{"message":"no thanks"}"#).on(Method::POST));
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_TOKEN", TOKEN)];
    let run = post_merge(world.dir.path(), &args(&[&before, &after]), &env);
    run.assert_code(4);
    assert!(run.stderr.contains("no thanks"), "{run:#?}");
    assert_eq!(posts(&proxy.requests()), 1);

    // A secret longer than a SHA-256 block is hashed first (RFC 2104): the server agrees.
    let long = "a-webhook-secret-longer-than-sixty-four-bytes-".repeat(3);
    let registry = world.registry.url();
    let long_server = ServerProcess::start(
        Path::new(BIN),
        &[],
        &[
            ("OCI_REGISTRY_URL", registry.as_str()),
            ("UPDATE_WEBHOOK_SECRET", long.as_str()),
            ("REFRESH_INTERVAL", "1h"),
            ("REGISTRY_REPO_URL", world.path()),
            ("REGISTRY_REPO_BRANCH", "main"),
        ],
    );
    let long_url = long_server.url();
    let env = [("UPDATE_SERVER_URL", long_url.as_str()), ("UPDATE_WEBHOOK_SECRET", long.as_str())];
    let run = post_merge(world.dir.path(), &args(&["--wait", &before, &after]), &env);
    run.assert_code(0);
    assert_no_secret(&run, &long);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_errors_and_5xx_are_retried_then_the_trigger_goes_through() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let proxy = FaultyProxy::forwarding_to(&server.url());
    let before = world.head();
    let after = world.commit("add go-next", |root| add_stack(root, "go-next"));

    // The server is unreachable (the connection drops), then failing, then back.
    proxy.inject(Fault::reset(0).on(Method::POST).path_ends_with("/api/updates"));
    proxy.inject(Fault::status(503, r#"{"message":"busy"}"#).on(Method::POST).path_ends_with("/api/updates"));
    let url = proxy.url();
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
    let run = post_merge(world.dir.path(), &args(&["--retries", "4", "--wait", &before, &after]), &env);
    run.assert_code(0);
    assert_eq!(proxy.faults_left(), 0);
    assert_eq!(posts(&proxy.requests()), 3, "{:?}", proxy.requests());
    assert!(run.stderr.contains("attempt 1 of 4") && run.stderr.contains("HTTP 503: busy"), "{run:#?}");
    assert_eq!(job_of(&client, run.value("id").unwrap()).await.status, UpdateStatus::Live);
    let triggered = all_jobs(&client).await.into_iter().filter(|j| j.trigger == "signature").count();
    assert!(triggered <= 1, "the trigger ran once (or joined the reconciler's job)");

    // Retries are bounded: a server that stays down is given up on.
    proxy.clear();
    proxy.inject(Fault::status(502, "{}").on(Method::POST).times(10));
    let run = post_merge(world.dir.path(), &args(&["--retries", "3", &before, &after]), &env);
    run.assert_code(5);
    assert!(run.stderr.contains("giving up after 3 attempt(s): HTTP 502"), "{run:#?}");
    assert_eq!(posts(&proxy.requests()), 3);
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let env = [("UPDATE_SERVER_URL", nobody.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
    let run = post_merge(world.dir.path(), &args(&["--retries", "2", &before, &after]), &env);
    run.assert_code(5);
    assert!(run.stderr.contains("giving up after 2 attempt(s)"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_push_or_an_unknown_before_sends_no_stack_list() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let after = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let url = server.url();
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_TOKEN", TOKEN)];

    let (run, job) = own_job(&client, || post_merge(world.dir.path(), &args(&["--wait", ZERO, &after]), &env)).await;
    run.assert_code(0);
    assert!(run.stderr.contains("every stack is checked"), "{run:#?}");
    assert_eq!((job.trigger.as_str(), job.status), ("token", UpdateStatus::Live));
    assert!(job.requested_stacks.is_empty(), "{job:#?}");
    for before in [ZERO, ""] {
        let run = post_merge(world.dir.path(), &["--dry-run", before, &after], &env);
        assert_eq!(run.stdout.trim(), json!({ "commit": after }).to_string());
    }

    // After a force push the old head is not in the checkout: the same.
    let gone = "1234567890abcdef1234567890abcdef12345678";
    let run = post_merge(world.dir.path(), &["--dry-run", gone, &after], &env);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), json!({ "commit": after }).to_string());
    assert!(run.stderr.contains("not in this checkout"), "{run:#?}");
}

/// The stacks and samples a push changed, as `--dry-run` prints them; no server involved.
#[test]
fn dry_run_prints_the_body_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tests::copy_tree(&workspace().join("stacks"), dir.path()).unwrap();
    let repo = GitRepo::init(dir.path()).unwrap();
    let before = repo.commit_all("2025-03-01T10:00:00+00:00", "the registry").unwrap();
    let root = dir.path();
    edit(root, "extraDevfileEntries.yaml", "description: Python application with Flask", "description: Flask");
    edit(root, "stacks/go/devfile.yaml", "description: ", "description: Changed. ");
    std::fs::rename(root.join("stacks/rust"), root.join("stacks/rusty")).unwrap();
    std::fs::write(root.join("stacks/README.md"), "not a stack\n").unwrap();
    let after = repo.commit_all("2025-03-02T10:00:00+00:00", "a few changes").unwrap();

    // A proxy to nowhere records any request that would be sent.
    let proxy = FaultyProxy::forwarding_to("http://127.0.0.1:9");
    let url = proxy.url();
    let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_WEBHOOK_SECRET", SECRET)];
    let run = post_merge(root, &["--dry-run", "--wait", &before, &after], &env);
    run.assert_code(0);
    let body: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    // A renamed stack is a removed and an added one; a changed sample entry is named too.
    assert_eq!(body, json!({ "commit": after, "stacks": ["go", "python-basic", "rust", "rusty"] }));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_no_secret(&run, SECRET);

    // A push that changes no stack says so with an empty list (not "unknown").
    std::fs::write(root.join("README.md"), "changed\n").unwrap();
    let docs = repo.commit_all("2025-03-03T10:00:00+00:00", "docs").unwrap();
    let run = post_merge(root, &["--dry-run", &after, &docs], &env);
    assert_eq!(run.stdout.trim(), json!({ "commit": docs, "stacks": [] }).to_string());

    // Usage errors: exit code 2, nothing sent.
    for bad in [
        vec![before.as_str()],
        vec!["--bogus", before.as_str(), after.as_str()],
        vec![before.as_str(), "no-such-commit"],
    ] {
        post_merge(root, &bad, &env).assert_code(2);
    }
    post_merge(root, &[&before, &after], &[("UPDATE_SERVER_URL", url.as_str())]).assert_code(2);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

/// The workflow a stacks repository installs runs the script with arguments it accepts: its run
/// line is executed here, as written, in a checkout holding the script where the README says to
/// put it, against a real server.
#[tokio::test(flavor = "multi_thread")]
async fn the_workflow_runs_the_script_as_written() {
    let text = std::fs::read_to_string(workspace().join(".github/workflows/post-merge.yaml")).unwrap();
    let workflow = index_generator::yaml::Document::parse(&text).unwrap().value;
    assert_eq!(workflow["on"]["push"]["branches"], json!(["main"]));
    let jobs = workflow["jobs"].as_object().unwrap();
    assert_eq!(jobs.len(), 1);
    let job = jobs.values().next().unwrap();
    assert_eq!(job["if"], "vars.UPDATE_SERVER_URL != ''", "skipped where the server is not configured");
    let steps = job["steps"].as_array().unwrap();
    let checkout =
        steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/checkout@"))).unwrap();
    assert_eq!(checkout["with"]["fetch-depth"], 0, "the commit before the push must be in the checkout");
    let step = steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("scripts/post-merge.sh"))).unwrap();
    let run = step["run"].as_str().unwrap();
    assert!(!run.contains("${{"), "expressions go through env, never into the shell text: {run}");
    let env = step["env"].as_object().unwrap();
    let expected = [
        ("BEFORE", "${{ github.event.before }}"),
        ("AFTER", "${{ github.sha }}"),
        ("UPDATE_SERVER_URL", "${{ vars.UPDATE_SERVER_URL }}"),
        ("UPDATE_WEBHOOK_SECRET", "${{ secrets.UPDATE_WEBHOOK_SECRET }}"),
        ("UPDATE_TOKEN", "${{ secrets.UPDATE_TOKEN }}"),
    ];
    assert_eq!(env.len(), expected.len(), "{env:?}");
    for (name, value) in expected {
        assert_eq!(env[name], value, "{name}");
    }

    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let before = world.head();
    let after = world.commit("add go-next", |root| add_stack(root, "go-next"));
    // Installed as the README says: the script at the same path in the stacks repository.
    let scripts = world.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::copy(workspace().join("scripts/post-merge.sh"), scripts.join("post-merge.sh")).unwrap();
    let url = server.url();
    // What GitHub sets: an unset secret is an empty string.
    let values = [
        ("BEFORE", before.as_str()),
        ("AFTER", after.as_str()),
        ("UPDATE_SERVER_URL", url.as_str()),
        ("UPDATE_WEBHOOK_SECRET", SECRET),
        ("UPDATE_TOKEN", ""),
    ];
    let (run, job) = own_job(&client, || bash(world.dir.path(), run, &values)).await;
    run.assert_code(0);
    assert_no_secret(&run, SECRET);
    assert_eq!((job.trigger.as_str(), job.status), ("signature", UpdateStatus::Live));
    assert_eq!(job.requested_stacks, ["go-next"]);
    assert_eq!(client.served_commit().await, after);
}

/// `--wait` on an update that a newer trigger supersedes while it waits follows the newer one.
#[tokio::test(flavor = "multi_thread")]
async fn wait_follows_an_update_superseded_by_a_newer_one() {
    let mut world = World::new(Path::new(BIN));
    // The server reaches the registry through a proxy that makes the first manifest push slow,
    // so that the first update keeps running while the next triggers queue behind it.
    let proxy = FaultyProxy::start(&world.registry);
    proxy.inject(Fault::delay(Duration::from_secs(3)).on(Method::PUT).path_contains("/manifests/"));
    let proxied = proxy.url();
    let server = ServerProcess::start(
        Path::new(BIN),
        &[],
        &[
            ("OCI_REGISTRY_URL", proxied.as_str()),
            ("UPDATE_TOKEN", TOKEN),
            ("REFRESH_INTERVAL", "1h"),
            ("REGISTRY_REPO_URL", world.path()),
            ("REGISTRY_REPO_BRANCH", "main"),
        ],
    );
    let client = Client::of(&server);
    let first = world.commit("add a-stack", |root| add_stack(root, "a-stack"));
    let running = client.trigger(&first, &["a-stack"]).await;
    let second = world.commit("add b-stack", |root| add_stack(root, "b-stack"));

    let url = server.url();
    let dir = world.dir.path().to_path_buf();
    let (before, after) = (first.clone(), second.clone());
    let script = std::thread::spawn(move || {
        let env = [("UPDATE_SERVER_URL", url.as_str()), ("UPDATE_TOKEN", TOKEN)];
        post_merge(&dir, &args(&["--wait", &before, &after]), &env)
    });
    // Once the script's update waits behind the running one, a newer merge supersedes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let jobs = all_jobs(&client).await;
        if let Some(job) = jobs.iter().find(|j| j.requested_commit.as_deref() == Some(second.as_str())) {
            break job.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the script's trigger never arrived: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(waiting.status, UpdateStatus::Queued, "{waiting:#?}");
    let status = job_of(&client, &running.id).await.status;
    assert!(!status.is_final(), "the first update still runs: {status:?}");
    let third = world.commit("add c-stack", |root| add_stack(root, "c-stack"));
    let newest = client.trigger(&third, &["c-stack"]).await;

    let run = tokio::task::spawn_blocking(move || script.join().unwrap()).await.unwrap();
    run.assert_code(0);
    assert!(run.stderr.contains(&format!("superseded by {}", newest.id)), "{run:#?}");
    assert_eq!(run.value("status"), Some("live"));
    assert_eq!(job_of(&client, &waiting.id).await.status, UpdateStatus::Superseded);
    assert_eq!(job_of(&client, &newest.id).await.status, UpdateStatus::Live);
    assert_eq!(client.served_commit().await, third);
}
