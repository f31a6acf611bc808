//! Merge-to-live benchmark (not a test): how long a one-stack merge takes to be served.
//!
//! The community registry snapshot, committed to a Git repository in a temporary folder (the
//! monitored repository), is published to a fresh CNCF distribution registry. Two replicas of the
//! release-built `index-server` run in OCI mode on it: the receiving one monitors the repository
//! and gets the triggers (refresh interval 1 h, so that only the trigger starts updates), the
//! second one only follows the registry (`REFRESH_INTERVAL=1s`). Each run commits a new version of
//! the `go` stack, sends the trigger (bearer token, as the post-merge workflow does) and times
//! trigger sent → the new version in `/v2index/all`, on both replicas, polled every few ms.
//!
//! The reference, measured in the same run on a registry of its own: the same commit made live
//! the other way, `index-generator publish` (release binary) then a restart of an OCI-mode server
//! until it serves the new version.
//!
//! Run with `scripts/bench-updates.sh` (installs what is missing, builds both release binaries,
//! then runs `cargo bench -p index-server --bench updates`). `BENCH_RUNS` (default 10) sets the
//! number of runs; `BENCH_SERVER_LOG=1` prints the receiving replica's log at the end (`SERVER_LOG`
//! sets its `RUST_LOG`). Prints one `name: value unit` line per figure and ends with the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use schemas::updates::{UpdateJob, UpdateStatus};
use tests::updates::{Client, World};
use tests::{Registry, RegistryOptions, ServerProcess, community_registry};

const BIN: &str = env!("CARGO_BIN_EXE_index-server");
/// The stack every run adds a version to, and the version folder copied.
const STACK: &str = "go";
const FROM_VERSION: &str = "2.6.0";
/// How often the replicas are polled while a change is on its way.
const POLL: Duration = Duration::from_millis(5);
/// A run that takes longer than this is a failure, not a figure.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `index-generator`, built in the same profile next to `index-server` (cargo gives a bench only
/// the binaries of its own package).
fn generator() -> PathBuf {
    let path = Path::new(BIN).with_file_name("index-generator");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/bench-updates.sh, which builds it (cargo build --release -p index-generator)",
        path.display()
    );
    path
}

/// Adds `version` to `stack` in the registry at `root`: a copy of the `from` folder with the new
/// version in its devfile, listed last in `stack.yaml` (the default version stays).
fn add_version(root: &Path, stack: &str, from: &str, version: &str) {
    let folder = root.join("stacks").join(stack);
    tests::copy_tree(&folder.join(from), &folder.join(version)).unwrap();
    tests::updates::edit(
        root,
        &format!("stacks/{stack}/{version}/devfile.yaml"),
        &format!("version: {from}"),
        &format!("version: {version}"),
    );
    let stack_yaml = folder.join("stack.yaml");
    let mut text = std::fs::read_to_string(&stack_yaml).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("  - version: {version}\n"));
    std::fs::write(&stack_yaml, text).unwrap();
}

/// Whether `/v2index/all` lists `version` of `stack`.
async fn serves(client: &Client, stack: &str, version: &str) -> bool {
    let index = client.json("/v2index/all").await;
    index.as_array().unwrap().iter().any(|entry| {
        entry["name"] == stack
            && entry["versions"].as_array().is_some_and(|vs| vs.iter().any(|v| v["version"] == version))
    })
}

/// Polls until `/v2index/all` lists the version; returns the time since `since`.
async fn visible(client: &Client, stack: &str, version: &str, since: Instant) -> Duration {
    loop {
        if serves(client, stack, version).await {
            return since.elapsed();
        }
        assert!(since.elapsed() < TIMEOUT, "{stack} {version} not served after {TIMEOUT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// `index-generator publish SOURCE --registry URL`; returns how long it took.
fn publish(source: &str, registry: &Registry) -> Duration {
    let started = Instant::now();
    let out = Command::new(generator())
        .args(["publish", source, "--registry", &registry.url()])
        // The samples' remotes are on the internet: refused at once instead of timing out.
        .env("GIT_ALLOW_PROTOCOL", "file")
        .output()
        .expect("index-generator runs");
    let took = started.elapsed();
    assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// The duration of `phase` in a finished job.
fn phase_ms(job: &UpdateJob, phase: UpdateStatus) -> f64 {
    job.phases.iter().filter(|p| p.status == phase).map(|p| p.duration_ms as f64).sum()
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(10);
    let generator = generator();
    let mut world = World::of(&community_registry(), Path::new(BIN));
    let receiver = world.server(true, "1h");
    let follower = world.server(false, "1s");

    // The reference: its own registry with the same first commit, and a server on it.
    let reference_registry = Registry::start(RegistryOptions::default());
    publish(world.path(), &reference_registry);
    let reference_url = reference_registry.url();
    let mut reference = ServerProcess::start(
        Path::new(BIN),
        &[],
        &[("OCI_REGISTRY_URL", reference_url.as_str()), ("REFRESH_INTERVAL", "1h")],
    );
    eprintln!("bench: {runs} run(s), community registry, index-server {BIN}, index-generator {}", generator.display());

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (a, b, r) = (Client::of(&receiver), Client::of(&follower), Client::of(&reference));
    let mut receiving = Vec::new();
    let mut following = Vec::new();
    let mut phases: Vec<[f64; 4]> = Vec::new();
    let mut reference_publish = Vec::new();
    let mut reference_live = Vec::new();
    for run in 0..runs {
        let version = format!("2.7.{run}");
        let commit =
            world.commit(&format!("{STACK} {version}"), |root| add_version(root, STACK, FROM_VERSION, &version));
        let (to_a, to_b, job) = runtime.block_on(async {
            let sent = Instant::now();
            let job = a.trigger(&commit, &[STACK]).await;
            let (to_a, to_b) = tokio::join!(visible(&a, STACK, &version, sent), visible(&b, STACK, &version, sent));
            (to_a, to_b, a.wait(&job.id).await)
        });
        assert_eq!(job.status, UpdateStatus::Live, "{job:#?}\nserver log:\n{}", receiver.log());
        phases.push([
            phase_ms(&job, UpdateStatus::Queued),
            phase_ms(&job, UpdateStatus::Fetching),
            phase_ms(&job, UpdateStatus::Validating),
            phase_ms(&job, UpdateStatus::Publishing),
        ]);
        receiving.push(ms(to_a));
        following.push(ms(to_b));

        // The other way: publish the new commit, restart a server on the registry.
        let started = Instant::now();
        let published = publish(world.path(), &reference_registry);
        reference.restart();
        let live = runtime.block_on(visible(&r, STACK, &version, started));
        reference_publish.push(ms(published));
        reference_live.push(ms(live));
        eprintln!(
            "bench: run {run}: receiving {:.0} ms, following {:.0} ms, reference {:.0} ms (phases {:?}; published {:?})",
            ms(to_a),
            ms(to_b),
            ms(live),
            phases[run],
            job.published.as_ref().map(|p| (p.manifests_pushed, p.manifests_unchanged, p.blobs_uploaded)),
        );
    }

    if std::env::var_os("BENCH_SERVER_LOG").is_some() {
        eprintln!("{}", receiver.log());
    }
    println!("receiving_replica_live_median: {:.0} ms", median(&receiving));
    println!("receiving_replica_live_max: {:.0} ms", max(&receiving));
    println!("second_replica_live_median: {:.0} ms", median(&following));
    println!("second_replica_live_max: {:.0} ms", max(&following));
    for (i, name) in ["queued", "fetching", "validating", "publishing"].iter().enumerate() {
        let values: Vec<f64> = phases.iter().map(|p| p[i]).collect();
        println!("job_{name}_median: {:.0} ms", median(&values));
    }
    println!("reference_publish_median: {:.0} ms", median(&reference_publish));
    println!("reference_live_median: {:.0} ms", median(&reference_live));
    println!("reference_live_max: {:.0} ms", max(&reference_live));
    let ours = median(&receiving);
    let theirs = median(&reference_live);
    println!(
        "ratio: a trigger is live on the receiving replica {:.1}x faster than publish + restart ({:.0} ms vs {:.0} ms; target: under 1000 ms)",
        theirs / ours,
        ours,
        theirs
    );
}
