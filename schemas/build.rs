//! Fails the build, with the command to run, when the devfile JSON schemas are missing.
//! They are third-party files that `fetch-devfile-schemas.sh` obtains and verifies; they are
//! embedded into the binaries with `include_str!`, so nothing reads them at run time.

use std::path::Path;

const VERSIONS: [&str; 6] = ["2.0.0", "2.1.0", "2.2.0", "2.2.1", "2.2.2", "2.3.0"];

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("devfile");
    println!("cargo::rerun-if-changed=devfile");
    let missing: Vec<&str> = VERSIONS.iter().copied().filter(|v| !dir.join(v).join("devfile.json").is_file()).collect();
    if !missing.is_empty() {
        println!(
            "cargo::error=the devfile JSON schemas {} are missing from {}: run `schemas/fetch-devfile-schemas.sh` (needs npm) and build again",
            missing.join(", "),
            dir.display()
        );
    }
    for v in VERSIONS {
        println!("cargo::rerun-if-changed=devfile/{v}/devfile.json");
    }
}
