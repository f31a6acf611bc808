//! Packs a stack version folder into the blobs of its OCI artifact (SPEC §5): the devfile, the
//! loose files that are layers of their own, and `archive.tar` (gzip bytes, despite the name)
//! holding everything else. Packing is deterministic: the same folder gives the same bytes and
//! digests on any machine, whatever the files' times, owners or the directory order.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use schemas::oci::{self, Descriptor, Manifest};
use sha2::{Digest, Sha256};

/// Files of a version folder served as they are rather than packed into `archive.tar`.
pub fn is_loose(name: &str) -> bool {
    matches!(name, "meta.yaml" | "logo.svg" | "logo.png") || name.ends_with(".vsx") || name.ends_with(".zip")
}

/// Files of a version folder that are neither packed nor listed.
pub fn is_dropped(name: &str) -> bool {
    name == "OWNERS"
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// A blob with its digest (`sha256:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob { media_type, digest: digest(&bytes), bytes }
    }

    fn descriptor(&self, title: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_string(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            annotations: title.map(|t| BTreeMap::from([(oci::TITLE_ANNOTATION.to_string(), t.to_string())])),
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Everything one stack version pushes: config, layers (by file name) and the manifest bytes.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub config: Blob,
    /// `(file name, blob)`, in manifest order (sorted by digest).
    pub layers: Vec<(String, Blob)>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// Packs the version folder `dir` whose devfile is `devfile_name`.
pub fn pack_version(dir: &Path, devfile_name: &str) -> Result<Artifact, PackError> {
    let mut layers = Vec::new();
    let mut packed = Vec::new();
    for (name, path) in sorted_entries(dir)? {
        if is_dropped(&name) {
            continue;
        }
        if name == devfile_name {
            layers.push((name, Blob::new(oci::DEVFILE_MEDIA_TYPE, read(&path)?)));
        } else if is_loose(&name) {
            if let Some(media_type) = oci::layer_media_type(&name) {
                layers.push((name, Blob::new(media_type, read(&path)?)));
            }
        } else {
            packed.push((name, path));
        }
    }
    if !packed.is_empty() {
        layers.push((oci::ARCHIVE_NAME.to_string(), Blob::new(oci::ARCHIVE_MEDIA_TYPE, archive(&packed)?)));
    }
    Ok(Artifact::new(layers))
}

impl Artifact {
    /// The artifact of some named layers: the `{}` config, layers sorted by digest, and the
    /// manifest bytes of SPEC §5. Also used for sample devfiles and the index document.
    pub fn new(mut layers: Vec<(String, Blob)>) -> Artifact {
        layers.sort_by(|a, b| a.1.digest.cmp(&b.1.digest));
        let config = Blob::new(oci::CONFIG_MEDIA_TYPE, oci::EMPTY_CONFIG.to_vec());
        let manifest = Manifest {
            schema_version: 2,
            config: config.descriptor(None),
            layers: layers.iter().map(|(name, blob)| blob.descriptor(Some(name))).collect(),
        };
        let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
        Artifact { manifest_digest: digest(&manifest), config, layers, manifest }
    }

    /// The config and the layers: every blob the manifest refers to.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter().map(|(_, blob)| blob))
    }

    /// Bytes of all blobs and the manifest.
    pub fn size(&self) -> u64 {
        self.blobs().map(|b| b.bytes.len() as u64).sum::<u64>() + self.manifest.len() as u64
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PackError> {
    std::fs::read(path).map_err(|source| PackError::Io { path: path.display().to_string(), source })
}

/// `(name, path)` of a folder's entries, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, PackError> {
    let io = |source| PackError::Io { path: dir.display().to_string(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        out.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    out.sort();
    Ok(out)
}

/// A gzip-compressed tar of `entries` (top-level names and their paths), recursively, in name
/// order, with fixed times, owners and modes (0755 for folders and executables, 0644 otherwise).
fn archive(entries: &[(String, PathBuf)]) -> Result<Vec<u8>, PackError> {
    let gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    let mut stack: Vec<(String, PathBuf)> = entries.iter().rev().cloned().collect();
    while let Some((name, path)) = stack.pop() {
        let io = |source| PackError::Io { path: path.display().to_string(), source };
        let meta = std::fs::metadata(&path).map_err(io)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, format!("{name}/"), std::io::empty()).map_err(io)?;
            let children = sorted_entries(&path)?;
            stack.extend(children.into_iter().rev().map(|(child, p)| (format!("{name}/{child}"), p)));
        } else {
            use std::os::unix::fs::PermissionsExt;
            let executable = meta.permissions().mode() & 0o111 != 0;
            let bytes = read(&path)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, &name, bytes.as_slice()).map_err(io)?;
        }
    }
    let io = |source| PackError::Io { path: "archive.tar".to_string(), source };
    let mut gzip = tar.into_inner().map_err(io)?;
    gzip.flush().map_err(io)?;
    gzip.finish().map_err(io)
}
