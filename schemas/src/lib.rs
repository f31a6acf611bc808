//! Every serialized shape of the registry, in one place.
//!
//! A serde type here is a compatibility promise to the clients of the devfile registry: the
//! index document and its entries ([`index`]), the files of a registry repository
//! ([`stack_yaml`], [`extra_entries`], [`last_modified`]), the slice of a devfile we read
//! ([`devfile`]), the OCI names and media types ([`oci`]), and the devfile JSON schemas
//! ([`devfile_schema`]). Changing a type here changes a golden file in the same commit.
//!
//! This crate does no I/O: parsing files, validating them and talking to registries belong to
//! `index-generator` and `index-server`.

pub mod devfile;
pub mod extra_entries;
pub mod index;
pub mod last_modified;
pub mod oci;
pub mod stack_yaml;
pub mod updates;

/// Our JSON Schema (draft 7) of the index document, the contract of `index.json`.
pub const INDEX_JSON_SCHEMA: &str = include_str!("../json/index.schema.json");

/// The devfile `schemaVersion`s the registry accepts, oldest first.
pub const SUPPORTED_SCHEMA_VERSIONS: [&str; 6] = ["2.0.0", "2.1.0", "2.2.0", "2.2.1", "2.2.2", "2.3.0"];

/// The devfile JSON schema (draft 7, without `$schema`) of an exact `schemaVersion`, or `None`
/// when the registry does not support that version.
///
/// The files are third-party: `schemas/fetch-devfile-schemas.sh` obtains and verifies them, and
/// the build refuses to run without them.
pub fn devfile_schema(schema_version: &str) -> Option<&'static str> {
    Some(match schema_version {
        "2.0.0" => include_str!("../devfile/2.0.0/devfile.json"),
        "2.1.0" => include_str!("../devfile/2.1.0/devfile.json"),
        "2.2.0" => include_str!("../devfile/2.2.0/devfile.json"),
        "2.2.1" => include_str!("../devfile/2.2.1/devfile.json"),
        "2.2.2" => include_str!("../devfile/2.2.2/devfile.json"),
        "2.3.0" => include_str!("../devfile/2.3.0/devfile.json"),
        _ => return None,
    })
}
