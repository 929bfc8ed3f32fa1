//! An [`OriginSource`] in SQLite (feature `sqlite`): embedded, the default for one machine.
//!
//! SQLite is compiled into the program (rusqlite's `bundled` SQLite), so a fresh machine needs
//! no system library. Lookups run on tokio's blocking pool. Another process (an admin tool, the
//! sign-up service) changing the table is seen when an entry's time to live runs out, on
//! [`OriginCache::invalidate`](super::OriginCache::invalidate), or within one
//! [`watch`](SqliteSource::watch) interval when watching is on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Invalidator, OriginSource, SourceError};

/// Tenants' origins in a SQLite table, one serialized origin a row.
///
/// ```
/// use corsair::origin_source::sqlite::SqliteSource;
/// use corsair::origin_source::OriginCache;
/// use corsair::server::Resolved;
///
/// let dir = std::env::temp_dir().join(format!("corsair-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let db = dir.join("tenants.db");
/// let admin = rusqlite::Connection::open(&db)?;
/// admin.execute_batch(SqliteSource::SCHEMA)?;
/// admin.execute("INSERT OR IGNORE INTO cors_origins (origin) VALUES (?1)", ["https://shop.tenant.example"])?;
///
/// let cache = OriginCache::builder(SqliteSource::open(&db)?).build();
/// tokio::runtime::Builder::new_multi_thread().enable_time().build()?.block_on(async {
///     assert_eq!(cache.resolve("https://shop.tenant.example").await, Resolved::Allowed);
///     assert_eq!(cache.resolve("https://evil.example").await, Resolved::NotAllowed);
/// });
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqliteSource {
    conn: Arc<Mutex<Connection>>,
    query: Arc<str>,
    watch: Option<Duration>,
}

impl std::fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSource")
            .field("query", &self.query)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl SqliteSource {
    /// The table [`DEFAULT_QUERY`](Self::DEFAULT_QUERY) reads: run it once to create it.
    pub const SCHEMA: &'static str =
        "CREATE TABLE IF NOT EXISTS cors_origins (origin TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;";

    /// `SELECT 1 FROM cors_origins WHERE origin = ?1`: an origin is admitted when a row holds
    /// it exactly.
    pub const DEFAULT_QUERY: &'static str = "SELECT 1 FROM cors_origins WHERE origin = ?1";

    /// Opens the database at `path` read-only and reads the table of [`SCHEMA`](Self::SCHEMA).
    ///
    /// # Errors
    /// The database cannot be opened, or the query does not prepare (no such table).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(SourceError::new)?;
        Self::with_query(conn, Self::DEFAULT_QUERY)
    }

    /// A source over an open connection with a query of your own, taking the origin as `?1`
    /// and admitting it when the query returns a row, e.g. `SELECT 1 FROM tenants WHERE
    /// cors_origin = ?1 AND active`.
    ///
    /// # Errors
    /// The query does not prepare.
    pub fn with_query(conn: Connection, query: &str) -> Result<Self, SourceError> {
        conn.prepare_cached(query).map_err(|e| {
            SourceError::new(format!("the origin query {query:?} does not prepare: {e}"))
        })?;
        // A writer holding the lock makes a lookup wait this long before it fails.
        conn.busy_timeout(Duration::from_millis(250))
            .map_err(SourceError::new)?;
        Ok(SqliteSource {
            conn: Arc::new(Mutex::new(conn)),
            query: query.into(),
            watch: None,
        })
    }

    /// Checks every `interval` whether another connection changed the database (`PRAGMA
    /// data_version`), and empties the cache when it did: changes are then seen within an
    /// interval, not a time to live. Needs a tokio runtime when the cache is built, which reads
    /// the starting point (so a change committed before the watcher first looks is seen too);
    /// the watcher stops with the cache.
    pub fn watch(mut self, interval: Duration) -> Self {
        self.watch = Some(interval);
        self
    }

    fn data_version(&self) -> Result<i64, SourceError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| SourceError::new("the SQLite connection's lock is poisoned"))?;
        conn.pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(SourceError::new)
    }
}

impl OriginSource for SqliteSource {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        let conn = self.conn.clone();
        let query = self.query.clone();
        let origin = origin.to_owned();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| SourceError::new("the SQLite connection's lock is poisoned"))?;
            let mut statement = conn.prepare_cached(&query).map_err(SourceError::new)?;
            statement.exists([origin]).map_err(SourceError::new)
        })
        .await
        .map_err(SourceError::new)?
    }

    fn attach(&self, invalidator: Invalidator) {
        let Some(interval) = self.watch else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                target: "corsair",
                "SqliteSource::watch needs a tokio runtime when the cache is built; not watching"
            );
            return;
        };
        let source = self.clone();
        // The starting point, read now, before the cache answers anything: taken at the
        // watcher's first look instead, a change committed in between would never be seen, and
        // an answer cached before it would stay for its whole time to live.
        let mut last = match self.data_version() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(target: "corsair", error = %e, "SQLite origin watch failed");
                None
            }
        };
        runtime.spawn(async move {
            while invalidator.is_live() {
                let probe = source.clone();
                let version = tokio::task::spawn_blocking(move || probe.data_version()).await;
                match version {
                    Ok(Ok(v)) => {
                        // Without a starting point (it could not be read), anything may
                        // have changed: empty the cache once.
                        if last != Some(v) {
                            invalidator.invalidate_all();
                        }
                        last = Some(v);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(target: "corsair", error = %e, "SQLite origin watch failed");
                    }
                    Err(_) => return,
                }
                tokio::time::sleep(interval).await;
            }
        });
    }
}
