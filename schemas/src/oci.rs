//! OCI repository names and media types of published artifacts (SPEC §5).

/// Repository of a stack version: `devfile-catalog/<stack folder>`, tagged `<version>`.
pub fn stack_repository(stack: &str) -> String {
    format!("{STACK_REPOSITORY_PREFIX}{stack}")
}

/// `links.self` of a stack version: `devfile-catalog/<stack folder>:<version>`.
pub fn stack_reference(stack: &str, version: &str) -> String {
    format!("{STACK_REPOSITORY_PREFIX}{stack}:{version}")
}

pub const STACK_REPOSITORY_PREFIX: &str = "devfile-catalog/";
pub const SAMPLE_REPOSITORY_PREFIX: &str = "devfile-samples/";
pub const INDEX_REPOSITORY: &str = "devfile-index";

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.devfileio.devfile.config.v2+json";
pub const DEVFILE_MEDIA_TYPE: &str = "application/vnd.devfileio.devfile.layer.v1";
pub const ARCHIVE_MEDIA_TYPE: &str = "application/x-tar";
pub const SVG_MEDIA_TYPE: &str = "image/svg+xml";
pub const PNG_MEDIA_TYPE: &str = "image/png";
pub const VSX_MEDIA_TYPE: &str = "application/vnd.devfileio.vsx.layer.v1.tar";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.devfileio.index.layer.v1+json";
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Name of the packed archive of a version's other files.
pub const ARCHIVE_NAME: &str = "archive.tar";

/// The config blob of every devfile artifact: the two bytes `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// An OCI image manifest as devfile artifacts carry it (SPEC §5): no manifest-level `mediaType`,
/// no annotations; serialized compact, keys in this order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A content descriptor: what a blob is, its digest and size, and (for layers) its file name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The media type a version file is pushed with, or `None` when it is not pushed as a layer
/// (`meta.yaml` and zips are served by the server itself).
pub fn layer_media_type(file_name: &str) -> Option<&'static str> {
    match file_name {
        "devfile.yaml" | ".devfile.yaml" => Some(DEVFILE_MEDIA_TYPE),
        ARCHIVE_NAME => Some(ARCHIVE_MEDIA_TYPE),
        "logo.svg" => Some(SVG_MEDIA_TYPE),
        "logo.png" => Some(PNG_MEDIA_TYPE),
        name if name.ends_with(".vsx") => Some(VSX_MEDIA_TYPE),
        _ => None,
    }
}
