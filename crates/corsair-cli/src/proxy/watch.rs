//! `--watch`: reload the policy file when it changes, by looking at its metadata at a fixed
//! interval.
//!
//! A bounded poll rather than inotify (`notify`): a Kubernetes ConfigMap is mounted as
//! `cors.toml -> ..data/cors.toml` with `..data` a symlink the kubelet replaces atomically, so
//! the watched name itself never changes; only the file it leads to does. `metadata` follows
//! every symlink on each look, so a new target (another inode), an edit in place (size or
//! modification time) or a rename over the file are all seen, on any filesystem, with no extra
//! dependency, for one `stat` a second. The kubelet takes up to a minute to publish an update,
//! so a second's delay adds nothing an operator can notice.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// What identifies one version of the file: where the symlinks lead, and its metadata there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    target: Option<PathBuf>,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn fingerprint(path: &std::path::Path) -> Option<Fingerprint> {
    let m = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        target: std::fs::canonicalize(path).ok(),
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// Watched files: the policy file, and the TLS certificate and key.
pub(super) struct Watcher {
    paths: Vec<PathBuf>,
    every: tokio::time::Interval,
    last: Vec<Option<Fingerprint>>,
}

impl Watcher {
    pub(super) fn new(paths: Vec<PathBuf>, every: Duration) -> Self {
        let last = paths.iter().map(|p| fingerprint(p)).collect();
        let mut every = tokio::time::interval(every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Watcher { paths, every, last }
    }

    /// Waits until a file differs from the last look (a file that disappears is a change
    /// only once it is back: a ConfigMap swap never leaves it missing, an editor may).
    async fn next_change(&mut self) {
        loop {
            self.every.tick().await;
            let mut changed = false;
            for (path, last) in self.paths.iter().zip(&mut self.last) {
                let now = fingerprint(path);
                if now.is_some() && now != *last {
                    *last = now;
                    changed = true;
                }
            }
            if changed {
                return;
            }
        }
    }
}

/// Resolves when the watched file changed; never, without `--watch`.
pub(super) async fn changed(watcher: &mut Option<Watcher>) {
    match watcher {
        Some(w) => w.next_change().await,
        None => std::future::pending().await,
    }
}
