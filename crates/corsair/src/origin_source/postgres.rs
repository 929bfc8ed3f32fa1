//! An [`OriginSource`] in PostgreSQL (feature `postgres`), for fleets: every instance keeps
//! one connection that both answers lookups and `LISTEN`s on a channel, and a trigger on the
//! table `NOTIFY`s the changed origin, so every instance forgets it at once and asks again.
//!
//! A connection that breaks (the database restarts or goes away) empties the cache, so that
//! every origin only the database admits is refused (fail closed) while it is down, with the
//! reason logged as a `warn` event of target `corsair`; the source reconnects by itself (every
//! 100 ms at first, then every second) and, once connected and listening again, empties the
//! cache once more, since notifications sent meanwhile were lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use super::{Invalidator, OriginSource, SourceError};

/// Tenants' origins in a PostgreSQL table, with changes pushed by `LISTEN`/`NOTIFY`.
///
/// Create the table and its trigger once with [`SCHEMA`](Self::SCHEMA) (or write your own
/// query and a trigger that sends `pg_notify('corsair_origins', origin)` on every change).
/// Connections are plain TCP or Unix sockets, without TLS: run the database on the same host
/// or network.
///
/// ```no_run
/// use corsair::origin_source::postgres::PostgresSource;
/// use corsair::origin_source::OriginCache;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let source = PostgresSource::connect("host=127.0.0.1 user=app dbname=tenants")?;
/// let cache = OriginCache::builder(source).build();
/// let cors = corsair::Policy::builder()
///     .allow_origins(["https://app.example.com"])
///     .allow_origin_source(cache)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresSource {
    shared: Arc<Shared>,
}

struct Shared {
    /// The live connection and its prepared lookup, or `None` while disconnected.
    live: ArcSwapOption<Live>,
    /// Why the last connection attempt or connection failed.
    last_error: Mutex<String>,
    /// The cache to invalidate, once attached.
    invalidator: Mutex<Option<Invalidator>>,
}

struct Live {
    client: Client,
    lookup: Statement,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// The channel [`SCHEMA`](PostgresSource::SCHEMA)'s trigger notifies.
pub const CHANNEL: &str = "corsair_origins";

impl PostgresSource {
    /// The table the default query reads, and a trigger that notifies [`CHANNEL`] of each
    /// added, changed or removed origin (the payload is the origin). Idempotent.
    pub const SCHEMA: &'static str = "
        CREATE TABLE IF NOT EXISTS cors_origins (origin TEXT PRIMARY KEY);
        CREATE OR REPLACE FUNCTION corsair_origins_notify() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM pg_notify('corsair_origins', OLD.origin);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM pg_notify('corsair_origins', NEW.origin);
            END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql;
        DROP TRIGGER IF EXISTS corsair_origins_notify ON cors_origins;
        CREATE TRIGGER corsair_origins_notify AFTER INSERT OR UPDATE OR DELETE ON cors_origins
            FOR EACH ROW EXECUTE FUNCTION corsair_origins_notify();
        CREATE OR REPLACE FUNCTION corsair_origins_truncate() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('corsair_origins', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql;
        DROP TRIGGER IF EXISTS corsair_origins_truncate ON cors_origins;
        CREATE TRIGGER corsair_origins_truncate AFTER TRUNCATE ON cors_origins
            FOR EACH STATEMENT EXECUTE FUNCTION corsair_origins_truncate();
    ";

    /// `SELECT 1 FROM cors_origins WHERE origin = $1`.
    pub const DEFAULT_QUERY: &'static str = "SELECT 1 FROM cors_origins WHERE origin = $1";

    /// Starts connecting to the database `config` names (`host=… port=… user=… dbname=…`, or
    /// a `postgresql://` URL) with the default query, and keeps connecting for as long as the
    /// source lives. Returns at once: lookups fail (refused) until the first connection.
    ///
    /// # Errors
    /// `config` does not parse, or there is no tokio runtime to run the connection on.
    pub fn connect(config: &str) -> Result<Self, SourceError> {
        Self::connect_with_query(config, Self::DEFAULT_QUERY)
    }

    /// [`connect`](Self::connect) with a query of your own, taking the origin as `$1` and
    /// admitting it when the query returns a row. A query that does not prepare is logged and
    /// retried like a failed connection.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with_query(config: &str, query: &str) -> Result<Self, SourceError> {
        let mut config: Config = config
            .parse()
            .map_err(|e| SourceError::new(format!("the PostgreSQL configuration: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(1));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            SourceError::new("PostgresSource::connect needs a tokio runtime to run the connection")
        })?;
        let shared = Arc::new(Shared {
            live: ArcSwapOption::empty(),
            last_error: Mutex::new("not connected yet".to_owned()),
            invalidator: Mutex::new(None),
        });
        runtime.spawn(supervise(Arc::downgrade(&shared), config, query.to_owned()));
        Ok(PostgresSource { shared })
    }

    /// Whether the source is connected and listening now.
    pub fn is_connected(&self) -> bool {
        self.shared.live.load().is_some()
    }
}

impl Shared {
    fn invalidate_all(&self) {
        if let Ok(slot) = self.invalidator.lock() {
            if let Some(i) = slot.as_ref() {
                i.invalidate_all();
            }
        }
    }

    fn invalidate(&self, origin: &str) {
        if let Ok(slot) = self.invalidator.lock() {
            if let Some(i) = slot.as_ref() {
                i.invalidate(origin);
            }
        }
    }

    fn failed(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }
}

impl OriginSource for PostgresSource {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        let Some(live) = self.shared.live.load_full() else {
            let why = self
                .shared
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            return Err(SourceError::new(format!(
                "not connected to PostgreSQL: {why}"
            )));
        };
        let row = live
            .client
            .query_opt(&live.lookup, &[&origin])
            .await
            .map_err(SourceError::new)?;
        Ok(row.is_some())
    }

    fn attach(&self, invalidator: Invalidator) {
        if let Ok(mut slot) = self.shared.invalidator.lock() {
            *slot = Some(invalidator);
        }
    }
}

/// Connects, listens, forwards notifications to the cache, and reconnects, until the source
/// is dropped.
async fn supervise(shared: std::sync::Weak<Shared>, config: Config, query: String) {
    let mut backoff = Duration::from_millis(100);
    let mut reported = false;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        match listen(&strong, &config, &query).await {
            Ok(mut notifications) => {
                backoff = Duration::from_millis(100);
                reported = false;
                // Whatever changed while disconnected went unnoticed.
                strong.invalidate_all();
                tracing::info!(target: "corsair", "PostgreSQL origin source connected and listening");
                drop(strong);
                let error = loop {
                    match notifications.recv().await {
                        Some(Ok(origin)) => match shared.upgrade() {
                            Some(s) if origin.is_empty() => s.invalidate_all(),
                            Some(s) => s.invalidate(&origin),
                            None => return,
                        },
                        Some(Err(e)) => break e,
                        None => break "the connection ended".to_owned(),
                    }
                };
                let Some(strong) = shared.upgrade() else {
                    return;
                };
                strong.live.store(None);
                strong.invalidate_all();
                tracing::warn!(
                    target: "corsair",
                    reason = "origin-source-disconnected",
                    error = %error,
                    "PostgreSQL origin source lost its connection; origins it admits are refused until it reconnects"
                );
                strong.failed(error);
            }
            Err(error) => {
                if !reported {
                    tracing::warn!(
                        target: "corsair",
                        reason = "origin-source-disconnected",
                        error = %error,
                        "PostgreSQL origin source cannot connect; retrying"
                    );
                    reported = true;
                }
                strong.failed(error);
                drop(strong);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// One connection: prepared, listening, published in `shared.live`; the receiver yields each
/// notification's payload, then the error that ended the connection.
async fn listen(
    shared: &Shared,
    config: &Config,
    query: &str,
) -> Result<mpsc::UnboundedReceiver<Result<String, String>>, String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            let sent = match message {
                Some(Ok(AsyncMessage::Notification(n))) => tx.send(Ok(n.payload().to_owned())),
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                None => return,
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let lookup = client
        .prepare(query)
        .await
        .map_err(|e| format!("the origin query {query:?} does not prepare: {e}"))?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    shared.live.store(Some(Arc::new(Live { client, lookup })));
    Ok(rx)
}
