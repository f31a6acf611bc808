//! The index server: the devfile registry REST API served from an in-memory snapshot.
//!
//! Not built yet: the generator (`index-generator`) is the first capability. This crate will own
//! configuration, the snapshot cache, stores, routes, `/v2`, updates and events; it will not own
//! any wire type (those live in `schemas`).
