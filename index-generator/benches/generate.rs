//! Generation of the community registry's index against its floor: only reading the same YAML
//! files and parsing them (saphyr, the parser the generator uses), nothing else.
//!
//! `cargo bench -p index-generator --bench generate [-- RUNS]` prints the median of each and the
//! ratio. Target: generation within 3x of the floor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use index_generator::{Checkout, DevfileSchemas, NoProgress, Options};
use saphyr::{LoadableYamlNode, Yaml};

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(30);
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/community-registry");
    assert!(registry.join("stacks").is_dir(), "community registry snapshot not found at {}", registry.display());
    let files = yaml_files(&registry);

    // One warm-up of each, so both read from the page cache.
    let expected = generate(&registry);
    let parsed = read_and_parse(&files);

    let generation = median(runs, || {
        assert_eq!(generate(&registry), expected);
    });
    let floor = median(runs, || {
        assert_eq!(read_and_parse(&files), parsed);
    });
    println!("devfiles: {} files", files.iter().filter(|f| f.ends_with("devfile.yaml")).count());
    println!("runs: {runs} runs");
    println!("generate_median: {:.2} ms", ms(generation));
    println!("read_and_parse_median: {:.2} ms", ms(floor));
    println!(
        "ratio: generation takes {:.2}x the read+parse floor (target: at most 3x)",
        generation.as_secs_f64() / floor.as_secs_f64()
    );
}

/// A full generation, schemas compiled from scratch as in one CLI run; returns the index size.
fn generate(registry: &Path) -> usize {
    let checkout = Checkout::folder(registry);
    let generated = index_generator::generate(&checkout, &DevfileSchemas::new(), Options::default(), &NoProgress)
        .expect("the community registry scans");
    assert_eq!(generated.errors(), 0);
    generated.document.to_pretty_json().len()
}

/// Reads and parses every YAML file the generator reads; returns the number of documents.
fn read_and_parse(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("readable");
            Yaml::load_from_str(&text).expect("valid YAML").len()
        })
        .sum()
}

/// devfile.yaml, stack.yaml and extraDevfileEntries.yaml files of the registry.
fn yaml_files(registry: &Path) -> Vec<PathBuf> {
    let mut out = vec![registry.join("extraDevfileEntries.yaml")];
    let mut stack = vec![registry.join("stacks")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(path.file_name().and_then(|n| n.to_str()), Some("devfile.yaml" | "stack.yaml")) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
