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
