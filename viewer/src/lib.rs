//! The registry viewer: pages and assets the index server mounts under `/viewer`.
//!
//! Empty for now. It will read the index snapshot through a small trait of its own and never
//! reach into server internals.
