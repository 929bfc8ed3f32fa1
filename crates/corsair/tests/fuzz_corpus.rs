//! Replays every committed fuzz corpus file (fuzz/corpus/<target>/*) through the same target
//! bodies the libFuzzer binaries run, on stable: each body checks its invariants against the
//! independent oracle, so a corpus file that once crashed, or that a change breaks, fails here.
//! Bounded: a few hundred small files, each run once.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[allow(dead_code)]
#[path = "../../../fuzz/src/oracle.rs"]
mod oracle;
#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::path::PathBuf;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{target}: only {} seed files",
        files.len()
    );
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| body(&data)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{}: {msg}", file.display());
        }
    }
}

#[test]
fn request_origin_corpus() {
    replay("request_origin", targets::request_origin);
}

#[test]
fn request_headers_corpus() {
    replay("request_headers", targets::request_headers);
}

#[test]
fn server_corpus() {
    replay("server", targets::server);
}

#[test]
fn browser_corpus() {
    replay("browser", targets::browser);
}

#[test]
fn policy_file_corpus() {
    replay("policy_file", targets::policy_file);
}
