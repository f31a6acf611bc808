//! Dynamic updates end to end (SPEC §7), with real processes only: a Git repository in a
//! temporary folder (the monitored repository), a CNCF distribution registry, and `index-server`
//! processes in OCI mode. Triggers are sent over HTTP as a post-merge workflow sends them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::updates::{ChangeKind, UpdateJob, UpdateStatus};
use serde_json::json;
use tests::faults::Method;
use tests::updates::{Client, SECRET, TOKEN, World, add_stack, edit, sign};
use tests::{Fault, FaultyProxy, ServerProcess, workspace};

const BIN: &str = env!("CARGO_BIN_EXE_index-server");

fn assert_live(job: &UpdateJob, server: &ServerProcess) {
    assert_eq!(job.status, UpdateStatus::Live, "{job:#?}\nserver log:\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_adds_changes_and_removes_stacks() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let before = client.names().await;
    assert!(before.contains(&"python".to_string()) && !before.contains(&"go-next".to_string()));

    // Add a stack.
    let commit = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let job = client.trigger(&commit, &["go-next"]).await;
    assert_eq!(job.status, UpdateStatus::Queued);
    assert_eq!(job.requested_stacks, ["go-next"]);
    let job = client.wait(&job.id).await;
    assert_live(&job, &server);
    assert_eq!(job.commit.as_deref(), Some(commit.as_str()));
    let phases: Vec<UpdateStatus> = job.phases.iter().map(|p| p.status).collect();
    assert_eq!(
        phases,
        [UpdateStatus::Queued, UpdateStatus::Fetching, UpdateStatus::Validating, UpdateStatus::Publishing]
    );
    assert_eq!(job.changes.len(), 1, "{:?}", job.changes);
    assert_eq!((job.changes[0].name.as_str(), job.changes[0].change), ("go-next", ChangeKind::Added));
    let published = job.published.clone().unwrap();
    // The new stack's manifest, and the index at its commit and at latest.
    assert_eq!(published.manifests_pushed, 3, "{published:?}");
    assert!(client.names().await.contains(&"go-next".to_string()));
    let (status, devfile) = client.get("/devfiles/go-next").await;
    assert_eq!(status, 200);
    assert!(devfile.contains("name: go-next"));
    assert_eq!(world.published_commit(), commit);
    assert_eq!(client.served_commit().await, commit);

    // Change one version of a stack: the devfile served is the new one at once.
    let (_, old) = client.get("/devfiles/java-maven/2.0.0").await;
    let commit = world.commit("java-maven 2.0.0: new description", |root| {
        edit(root, "stacks/java-maven/2.0.0/devfile.yaml", "description: ", "description: Changed. ")
    });
    let body = json!({ "commit": commit, "stacks": ["java-maven"] }).to_string();
    let (status, job) = client.trigger_signed(&body, &[]).await;
    assert_eq!(status, 202, "{job}");
    let job = client.wait(job["id"].as_str().unwrap()).await;
    assert_live(&job, &server);
    assert_eq!(job.trigger, "signature");
    assert_eq!(job.changes.len(), 1, "{:?}", job.changes);
    assert_eq!(job.changes[0].name, "java-maven");
    assert_eq!(job.changes[0].change, ChangeKind::Changed);
    assert_eq!(job.changes[0].versions, ["2.0.0"]);
    // The replica published the previous index itself: only the changed version is pushed, the
    // others are not looked up.
    assert!(job.log.iter().any(|l| l.contains("as this replica last published them, 1 to push")), "{:?}", job.log);
    assert_eq!(job.published.as_ref().unwrap().manifests_pushed, 3, "{:?}", job.published);
    let (_, new) = client.get("/devfiles/java-maven/2.0.0").await;
    assert_ne!(old, new);
    assert!(new.contains("description: Changed. "));

    // Remove a stack.
    let commit = world.commit("remove python", |root| std::fs::remove_dir_all(root.join("stacks/python")).unwrap());
    let job = client.wait(&client.trigger(&commit, &["python"]).await.id).await;
    assert_live(&job, &server);
    assert_eq!(job.changes[0].change, ChangeKind::Removed);
    assert!(!client.names().await.contains(&"python".to_string()));
    assert_eq!(client.get("/devfiles/python").await.0, 404);
    assert_eq!(world.published_commit(), world.head());

    // The same commit again changes nothing and says so.
    let again = client.wait(&client.trigger(&commit, &[]).await.id).await;
    assert_live(&again, &server);
    assert!(again.log.iter().any(|l| l.contains("already served")), "{:?}", again.log);
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs.len(), 4);
    assert_eq!(jobs[0].id, again.id, "newest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_devfile_fails_the_update_and_the_old_index_stays() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "300ms");
    let client = Client::of(&server);
    let good = world.head();
    let names = client.names().await;

    let bad = world.commit("break go", |root| {
        edit(root, "stacks/go/devfile.yaml", "schemaVersion: 2.2.2", "schemaVersion: 9.9.9")
    });
    // The reconciler may have seen the new head first: then the trigger joins its job.
    let job = client.wait(&client.trigger(&bad, &["go"]).await.id).await;
    assert_eq!(job.status, UpdateStatus::Failed, "{job:#?}");
    let error = job.problems.iter().find(|p| p.severity == "error").expect("the error is reported");
    assert_eq!(error.file, "stacks/go/devfile.yaml");
    assert!(error.line > 0, "{error:?}");
    assert!(!error.rule.is_empty() && !error.message.is_empty());
    assert_eq!(client.served_commit().await, good);
    assert_eq!(client.names().await, names);
    assert_eq!(world.published_commit(), good);

    // The reconciler does not try the broken commit again and again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs.iter().filter(|j| j.commit.as_deref() == Some(bad.as_str())).count(), 1, "{jobs:#?}");

    // A fix is picked up with no trigger at all (as after a lost webhook).
    let fixed = world
        .commit("fix go", |root| edit(root, "stacks/go/devfile.yaml", "schemaVersion: 9.9.9", "schemaVersion: 2.2.2"));
    client.wait_for_commit(&fixed, Duration::from_secs(30)).await;
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs[0].trigger, "reconciler");
    assert_eq!(jobs[0].status, UpdateStatus::Live);
    assert_eq!(world.published_commit(), fixed);
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_are_authenticated_and_github_push_events_understood() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Client::of(&server);
    let commit = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let body = json!({ "commit": commit }).to_string();

    // No proof, a wrong signature, a wrong token, a signature of another body: 401, nothing runs.
    let (status, _, reply) = client.post(&body, &[]).await;
    assert_eq!(status, 401, "{reply}");
    let bad_signature = format!("sha256={}", "0".repeat(64));
    for headers in [
        vec![("x-hub-signature-256", bad_signature.as_str())],
        vec![("x-hub-signature-256", "sha1=abc")],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let (status, _, reply) = client.post(&body, &headers).await;
        assert_eq!(status, 401, "{headers:?}: {reply}");
        assert!(reply["message"].as_str().is_some());
    }
    let other_signature = sign("{}");
    assert_eq!(client.post(&body, &[("x-hub-signature-256", &other_signature)]).await.0, 401);
    assert_eq!(client.json("/api/updates").await, json!([]));
    assert!(!server.log().contains(SECRET) && !server.log().contains(TOKEN), "secrets in the log");

    // Malformed bodies are 400, with a reason.
    let auth = format!("Bearer {TOKEN}");
    for bad in [r#"{"commit": 12}"#, r#"{"commit": "abc123"}"#, r#"{"sha": "x"}"#, "not json"] {
        let (status, _, reply) = client.post(bad, &[("authorization", &auth)]).await;
        assert_eq!(status, 400, "{bad}: {reply}");
    }

    // GitHub: ping, a push to another branch, then a push to main, delivered twice.
    let (status, reply) =
        client.trigger_signed("{}", &[("x-github-event", "ping"), ("x-github-delivery", "p-1")]).await;
    assert_eq!((status, reply["message"].as_str()), (200, Some("pong")));
    let push = |reference: &str| {
        json!({
            "ref": reference, "before": "0".repeat(40), "after": commit,
            "commits": [{"added": ["stacks/go-next/devfile.yaml"], "removed": [], "modified": ["README.md"]}],
            "repository": {"default_branch": "main"}
        })
        .to_string()
    };
    let (status, reply) = client
        .trigger_signed(&push("refs/heads/feature"), &[("x-github-event", "push"), ("x-github-delivery", "d-0")])
        .await;
    assert_eq!(status, 200);
    assert!(reply["message"].as_str().unwrap().starts_with("ignored"), "{reply}");
    let headers = [("x-github-event", "push"), ("x-github-delivery", "d-1")];
    let (status, first) = client.trigger_signed(&push("refs/heads/main"), &headers).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["trigger"], "github-push");
    assert_eq!(first["requested_stacks"], json!(["go-next"]));
    let (status, again) = client.trigger_signed(&push("refs/heads/main"), &headers).await;
    assert_eq!(status, 200, "a redelivery is not run twice: {again}");
    assert_eq!(again["id"], first["id"]);
    let job = client.wait(first["id"].as_str().unwrap()).await;
    assert_live(&job, &server);
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(client.names().await.contains(&"go-next".to_string()));
    assert_eq!(client.get("/api/updates/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_twenty_merges_ends_on_the_newest_with_nothing_half_applied() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "1h");
    let client = Arc::new(Client::of(&server));
    let stacks = client.names().await.len();

    // A reader that checks every index served during the storm is whole.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn({
        let (client, done) = (Arc::clone(&client), Arc::clone(&done));
        async move {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let index = client.json("/v2index/all").await;
                let entries = index.as_array().unwrap();
                assert_eq!(entries.len(), stacks, "a partial index was served");
                reads += 1;
            }
            reads
        }
    });
    let mut jobs = Vec::new();
    for i in 1..=20 {
        let commit = world.commit(&format!("go, take {i}"), |root| {
            let path = root.join("stacks/go/devfile.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match text.find("  displayName: ") {
                Some(start) => {
                    let end = start + text[start..].find('\n').unwrap();
                    format!("{}  displayName: Go take {i}{}", &text[..start], &text[end..])
                }
                None => unreachable!("the go devfile has a displayName"),
            };
            std::fs::write(path, text).unwrap();
        });
        jobs.push(client.trigger(&commit, &["go"]).await);
    }
    let newest = world.head();
    let last = client.wait(&jobs.last().unwrap().id).await;
    assert_live(&last, &server);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);

    let mut live = 0;
    for job in &jobs {
        let job = client.wait(&job.id).await;
        match job.status {
            UpdateStatus::Live => live += 1,
            UpdateStatus::Superseded => assert!(job.superseded_by.is_some(), "{job:#?}"),
            _ => panic!("{job:#?}\n{}", server.log()),
        }
    }
    assert!(live >= 1);
    assert_eq!(client.served_commit().await, newest);
    assert_eq!(world.published_commit(), newest);
    let (_, devfile) = client.get("/devfiles/go").await;
    assert!(devfile.contains("displayName: Go take 20"), "{devfile}");
    let index = client.json("/v2index?name=go").await;
    assert_eq!(index[0]["displayName"], "Go take 20");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_goes_down_fails_the_update_and_the_reconciler_recovers() {
    let mut world = World::new(Path::new(BIN));
    let server = world.server(true, "500ms");
    let client = Client::of(&server);
    let good = world.head();

    world.registry.stop();
    let commit = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let job = client.wait(&client.trigger(&commit, &["go-next"]).await.id).await;
    assert_eq!(job.status, UpdateStatus::Failed, "{job:#?}");
    assert!(job.log.iter().any(|l| l.contains("cannot")), "{:?}", job.log);
    assert_eq!(client.served_commit().await, good);
    assert!(!client.names().await.contains(&"go-next".to_string()));

    world.registry.restart();
    client.wait_for_commit(&commit, Duration::from_secs(60)).await;
    assert!(client.names().await.contains(&"go-next".to_string()));
    assert_eq!(client.get("/devfiles/go-next").await.0, 200);
    assert_eq!(world.published_commit(), commit);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_in_the_middle_of_an_update_converges_after_a_restart() {
    let mut world = World::new(Path::new(BIN));
    let before = world.head();
    // The server reaches the registry through a proxy that holds manifest uploads back, so that
    // the kill lands while the update is publishing.
    let proxy = FaultyProxy::start(&world.registry);
    let url = proxy.url();
    let env = [
        ("OCI_REGISTRY_URL", url.as_str()),
        ("UPDATE_TOKEN", TOKEN),
        ("REFRESH_INTERVAL", "1h"),
        ("REGISTRY_REPO_URL", world.path()),
        ("REGISTRY_REPO_BRANCH", "main"),
    ];
    let mut server = ServerProcess::start(Path::new(BIN), &[], &env);
    let client = Client::of(&server);
    let commit = world.commit("add two stacks", |root| {
        add_stack(root, "go-next");
        add_stack(root, "go-later");
    });
    proxy.inject(Fault::delay(Duration::from_secs(5)).on(Method::PUT).path_contains("/manifests/").times(100));
    let job = client.trigger(&commit, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job: UpdateJob = serde_json::from_value(client.json(&format!("/api/updates/{}", job.id)).await).unwrap();
        if job.status == UpdateStatus::Publishing {
            break;
        }
        assert!(Instant::now() < deadline && !job.status.is_final(), "{job:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    // Killed before it could push the index: latest has not moved.
    assert_eq!(world.published_commit(), before);

    // Started again with nothing but its configuration, it catches up on its own.
    proxy.remove_faults();
    server.restart();
    client.wait_for_commit(&commit, Duration::from_secs(60)).await;
    let names = client.names().await;
    assert!(names.contains(&"go-next".to_string()) && names.contains(&"go-later".to_string()));
    assert_eq!(world.published_commit(), commit);
    let jobs: Vec<UpdateJob> = serde_json::from_value(client.json("/api/updates").await).unwrap();
    assert_eq!(jobs[0].trigger, "reconciler");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_registry_and_latest_never_moves_back() {
    let mut world = World::new(Path::new(BIN));
    let receiver = world.server(true, "1h");
    let follower = world.server(false, "300ms");
    let (a, b) = (Client::of(&receiver), Client::of(&follower));

    let first = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let second = world.commit("add go-later, describe go-next", |root| {
        add_stack(root, "go-later");
        edit(root, "stacks/go-next/devfile.yaml", "  description: ", "  description: Changed. ");
    });
    let job = a.wait(&a.trigger(&second, &["go-later"]).await.id).await;
    assert_live(&job, &receiver);
    // The follower learns of it through its reconciler.
    b.wait_for_commit(&second, Duration::from_secs(20)).await;
    assert!(b.names().await.contains(&"go-later".to_string()));
    assert_eq!(b.get("/devfiles/go-later").await.0, 200);

    // A late trigger for an older commit of the branch does not move latest back, nor the tags
    // of the versions latest names (r: its go-next artifact used to overwrite the newer one).
    let go_next = world.registry.tags("devfile-catalog/go-next");
    let go_next_manifest = world.registry.manifest("devfile-catalog/go-next", &go_next[0]).unwrap();
    let late = a.wait(&a.trigger(&first, &[]).await.id).await;
    assert_eq!(late.status, UpdateStatus::Superseded, "{late:#?}");
    assert!(late.published.is_none(), "nothing is pushed for an older commit: {late:#?}");
    assert_eq!(world.registry.manifest("devfile-catalog/go-next", &go_next[0]).unwrap(), go_next_manifest);
    assert_eq!(world.published_commit(), second);
    assert_eq!(a.served_commit().await, second);
    assert_eq!(b.served_commit().await, second);

    // Two replicas that update at the same time end on the same index.
    let other = world.server(true, "1h");
    let c = Client::of(&other);
    let third = world.commit("remove rust", |root| std::fs::remove_dir_all(root.join("stacks/rust")).unwrap());
    let (ja, jc) = tokio::join!(a.trigger(&third, &[]), c.trigger(&third, &[]));
    let (ja, jc) = tokio::join!(a.wait(&ja.id), c.wait(&jc.id));
    assert_live(&ja, &receiver);
    assert_live(&jc, &other);
    assert_eq!(world.published_commit(), third);
    b.wait_for_commit(&third, Duration::from_secs(20)).await;
    for client in [&a, &b, &c] {
        assert!(!client.names().await.contains(&"rust".to_string()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_mode_takes_updates_from_a_monitored_repository() {
    let mut world = World::new(Path::new(BIN));
    let server = world.embedded_server();
    let client = Client::of(&server);
    assert_eq!(client.served_commit().await, world.head());
    let commit = world.commit("add go-next", |root| add_stack(root, "go-next"));
    let job = client.wait(&client.trigger(&commit, &["go-next"]).await.id).await;
    assert_live(&job, &server);
    assert!(job.published.is_none(), "nothing is pushed in the embedded mode");
    assert!(client.names().await.contains(&"go-next".to_string()));
    let (status, devfile) = client.get("/devfiles/go-next").await;
    assert_eq!(status, 200);
    assert!(devfile.contains("name: go-next"));
    // Files of the new commit are served too.
    assert_eq!(client.get("/stacks/go-next/devfile.yaml").await.0, 200);
}

#[test]
fn sigterm_stops_the_server_even_with_event_streams_open() {
    use std::io::{Read, Write};
    let source = workspace().join("stacks");
    let mut server = ServerProcess::start(Path::new(BIN), &["--source", source.to_str().unwrap()], &[]);
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: index") {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "the stream closed early");
        seen.extend_from_slice(&buffer[..n]);
    }
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let clean = server.terminate();
        let _ = done.send(clean);
        server
    });
    let clean = finished.recv_timeout(Duration::from_secs(15)).expect("the server stops within 15 s of SIGTERM");
    let server = waiter.join().unwrap();
    assert!(clean, "the server exits successfully; its log:\n{}", server.log());
    // The stream was ended by the server, not cut.
    let rest = stream.read_to_end(&mut seen);
    assert!(rest.is_ok(), "{rest:?}");
}
