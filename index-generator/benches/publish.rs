//! Publishing benchmark (not a test): `index-generator publish` of the community registry
//! snapshot to a fresh local CNCF distribution registry, then again with no change, then after
//! changing one stack; and, as the reference, the same artifacts pushed by the Python `oras`
//! client one artifact at a time to another fresh registry.
//!
//! Run with `cargo bench -p index-generator --bench publish` (`BENCH_ROUNDS`, default 3: medians
//! over rounds alternating the two clients). Prints one `name: value unit` line per figure and
//! ends with the ratio to the reference.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use tests::registry::{Registry, RegistryOptions};
use tests::{GitRepo, community_registry, copy_tree, oras};

const DATE: &str = "2025-01-10T09:00:00+00:00";

fn publish(source: &Path, registry: &Registry) -> (f64, Value) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_index-generator"))
        .args(["publish", source.to_str().unwrap(), "--registry", &registry.url(), "--json"])
        .env("GIT_ALLOW_PROTOCOL", "file")
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .expect("the index-generator binary runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "publish failed: {}", String::from_utf8_lossy(&out.stderr));
    (seconds, serde_json::from_slice(&out.stdout).expect("a JSON summary"))
}

/// What a run uploaded (the same in every round).
fn report(name: &str, summary: &Value) {
    println!("{name}_blobs_uploaded: {} blobs", summary["blobs_uploaded"]);
    println!("{name}_bytes_uploaded: {} bytes", summary["bytes_uploaded"]);
    println!("{name}_manifests_pushed: {} manifests", summary["manifests_pushed"]);
}

/// Writes each stack version's files as oras pushes them (the devfile, archive.tar, logos...)
/// into `<dir>/<n>/`, and returns `(reference, [(path, media type)])` per artifact.
fn oras_inputs(source: &Path, dir: &Path) -> Vec<(String, Vec<(PathBuf, &'static str)>)> {
    let (checkout, generated) = tests::generate(source);
    let mut out = Vec::new();
    for (n, s) in generated.sources.iter().enumerate() {
        let artifact = index_generator::pack::pack_version(&checkout.root.join(&s.folder), s.devfile_name).unwrap();
        let folder = dir.join(n.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        let mut files = Vec::new();
        for (name, blob) in &artifact.layers {
            let path = folder.join(name);
            std::fs::write(&path, &blob.bytes).unwrap();
            files.push((path, blob.media_type));
        }
        out.push((format!("devfile-catalog/{}:{}", s.stack, s.version), files));
    }
    out
}

/// Pushes every artifact with the Python `oras` client, one after the other, in one process.
fn oras_push_all(registry: &Registry, inputs: &[(String, Vec<(PathBuf, &'static str)>)], dir: &Path) -> f64 {
    const PUSH: &str = r#"
import json, sys
import oras.client
host, plan, config = sys.argv[1:4]
client = oras.client.OrasClient(hostname=host, insecure=True)
for reference, files in json.load(open(plan)):
    client.push(target=f"{host}/{reference}", files=[f"{p}:{t}" for p, t in files],
                manifest_config=f"{config}:application/vnd.devfileio.devfile.config.v2+json",
                disable_path_validation=True, quiet=True)
"#;
    let config = dir.join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let plan: Vec<(String, Vec<(String, &str)>)> = inputs
        .iter()
        .map(|(r, files)| (r.clone(), files.iter().map(|(p, t)| (p.display().to_string(), *t)).collect()))
        .collect();
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan).unwrap()).unwrap();
    let python = oras::python().expect("the oras virtualenv");
    let started = Instant::now();
    let out = Command::new(python)
        .args(["-c", PUSH, &registry.addr()])
        .arg(&plan_path)
        .arg(&config)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "oras push failed: {}", String::from_utf8_lossy(&out.stderr));
    seconds
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("registry");
    copy_tree(&community_registry(), &source).unwrap();
    let repo = GitRepo::init(&source).unwrap();
    repo.commit_all(DATE, "community registry").unwrap();
    let inputs = oras_inputs(&source, &dir.path().join("oras"));
    // Warm the virtualenv (created once) outside the timed part.
    oras::python().expect("the oras virtualenv");

    // Rounds alternate between the two clients, each on fresh registries, so that a change of
    // load on the machine weighs on both alike; the figures are medians over the rounds.
    let (mut full, mut again, mut one, mut oras_full) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let ours = Registry::start(RegistryOptions::default());
        let (seconds, summary) = publish(&source, &ours);
        full.push(seconds);
        let (seconds, no_change) = publish(&source, &ours);
        again.push(seconds);
        let devfile = source.join("stacks/go/2.5.0/devfile.yaml");
        let text = std::fs::read_to_string(&devfile).unwrap();
        std::fs::write(&devfile, text.replacen("description:", &format!("description: Changed {round}."), 1)).unwrap();
        repo.commit_all(&format!("2025-02-11T10:{round:02}:00+00:00"), "change go").unwrap();
        let (seconds, one_changed) = publish(&source, &ours);
        one.push(seconds);
        if round == 0 {
            report("publish_full", &summary);
            report("publish_no_change", &no_change);
            report("publish_one_stack_changed", &one_changed);
        }
        let reference = Registry::start(RegistryOptions::default());
        oras_full.push(oras_push_all(&reference, &inputs, dir.path()));
    }
    let (full, again, one, oras_full) =
        (median(&mut full), median(&mut again), median(&mut one), median(&mut oras_full));
    println!("rounds: {rounds} rounds");
    println!("publish_full_time: {:.0} ms", full * 1000.0);
    println!("publish_no_change_time: {:.0} ms", again * 1000.0);
    println!("publish_one_stack_changed_time: {:.0} ms", one * 1000.0);
    println!("oras_push_full_time: {:.0} ms", oras_full * 1000.0);
    println!("oras_push_artifacts: {} artifacts", inputs.len());
    println!("no_change_share_of_full: {:.1} %", again / full * 100.0);
    println!(
        "ratio: publish_full is {:.2}x faster than oras pushing one artifact at a time (target: 3x)",
        oras_full / full
    );
}
