//! Packing a stack version into its OCI blobs (SPEC §5): byte-stable manifests and archives.
//!
//! `UPDATE_EXPECT=1 cargo test -p tests --test pack` rewrites the pinned manifests; review them.

use std::path::Path;
use std::process::Command;

use index_generator::pack::{self, Artifact};
use tests::{copy_tree, fixtures};

fn version_dir(version: &str) -> std::path::PathBuf {
    fixtures("generate/multi-version/registry/stacks/java-quarkus").join(version)
}

/// The pinned manifest bytes and digest of a fixture version (`<name>.manifest.json` holds the
/// exact bytes, `<name>.digest` the digest).
fn check_pinned(name: &str, artifact: &Artifact) {
    let dir = fixtures("pack");
    let manifest_file = dir.join(format!("{name}.manifest.json"));
    let digest_file = dir.join(format!("{name}.digest"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&manifest_file, &artifact.manifest).unwrap();
        std::fs::write(&digest_file, format!("{}\n", artifact.manifest_digest)).unwrap();
        return;
    }
    assert_eq!(String::from_utf8_lossy(&artifact.manifest), std::fs::read_to_string(&manifest_file).unwrap());
    assert_eq!(format!("{}\n", artifact.manifest_digest), std::fs::read_to_string(&digest_file).unwrap());
}

#[test]
fn manifest_of_a_version_with_an_archive_is_pinned() {
    let artifact = pack::pack_version(&version_dir("1.10.0"), "devfile.yaml").unwrap();
    let names: Vec<&str> = artifact.layers.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["archive.tar", "devfile.yaml"]);
    // Layers in digest order, the config is the `{}` blob, no manifest-level mediaType.
    assert!(artifact.layers.windows(2).all(|w| w[0].1.digest < w[1].1.digest));
    assert_eq!(artifact.config.bytes, b"{}");
    let text = String::from_utf8(artifact.manifest.clone()).unwrap();
    assert!(text.starts_with(r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.devfileio.devfile.config.v2+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":["#), "{text}");
    assert_eq!(artifact.manifest_digest, pack::digest(&artifact.manifest));
    check_pinned("java-quarkus-1.10.0", &artifact);
}

#[test]
fn loose_files_are_layers_and_owners_is_dropped() {
    let artifact = pack::pack_version(&version_dir("1.9.0"), "devfile.yaml").unwrap();
    let mut layers: Vec<(&str, &str)> = artifact.layers.iter().map(|(n, b)| (n.as_str(), b.media_type)).collect();
    layers.sort();
    assert_eq!(layers, [("devfile.yaml", "application/vnd.devfileio.devfile.layer.v1"), ("logo.svg", "image/svg+xml")]);
    check_pinned("java-quarkus-1.9.0", &artifact);
    // meta.yaml is served by the server, not pushed.
    let with_meta = pack::pack_version(&version_dir("1.2.0"), "devfile.yaml").unwrap();
    assert_eq!(with_meta.layers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["devfile.yaml"]);
}

/// Same folder content, other times and creation order ⇒ the same bytes.
#[test]
fn packing_ignores_times_and_creation_order() {
    let original = pack::pack_version(&version_dir("1.10.0"), "devfile.yaml").unwrap();
    let copy = tempfile::tempdir().unwrap();
    // Create the entries in reverse order, with other modification times.
    for sub in ["kubernetes", "docker"] {
        copy_tree(&version_dir("1.10.0").join(sub), &copy.path().join(sub)).unwrap();
    }
    std::fs::copy(version_dir("1.10.0").join("devfile.yaml"), copy.path().join("devfile.yaml")).unwrap();
    let touched =
        Command::new("touch").args(["-d", "2001-02-03 04:05:06"]).arg(copy.path().join("docker/Dockerfile")).status();
    assert!(touched.unwrap().success());
    let again = pack::pack_version(copy.path(), "devfile.yaml").unwrap();
    assert_eq!(again.manifest, original.manifest);
}

/// The archive is a gzip tar that GNU tar reads: entries in name order, owner 0/0, epoch times.
#[test]
fn archive_reads_back_with_gnu_tar() {
    let artifact = pack::pack_version(&version_dir("1.10.0"), "devfile.yaml").unwrap();
    let (_, archive) = artifact.layers.iter().find(|(n, _)| n == "archive.tar").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive.tar");
    std::fs::write(&file, &archive.bytes).unwrap();
    let listing = Command::new("tar").args(["-tzvf"]).arg(&file).arg("--numeric-owner").output().unwrap();
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let listing = String::from_utf8(listing.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    let names: Vec<&str> = lines.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["docker/", "docker/Dockerfile", "kubernetes/", "kubernetes/deploy.yaml"]);
    for line in &lines {
        assert!(line.contains(" 0/0 ") && line.contains("1970-01-01"), "{line}");
    }
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    assert!(Command::new("tar").arg("-xzf").arg(&file).arg("-C").arg(&out).status().unwrap().success());
    let original = std::fs::read(version_dir("1.10.0").join("docker/Dockerfile")).unwrap();
    assert_eq!(std::fs::read(out.join("docker/Dockerfile")).unwrap(), original);
    assert!(Path::new(&out.join("kubernetes/deploy.yaml")).is_file());
}
