//! The fuzz targets' bodies, shared with the stable corpus replay
//! (`crates/corsair/tests/fuzz_corpus.rs` compiles `oracle.rs` and `targets.rs` itself).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed invariant is a crash

pub mod oracle;
pub mod targets;
