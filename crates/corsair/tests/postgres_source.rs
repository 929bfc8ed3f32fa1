//! The PostgreSQL origin source against a real server this test starts on 127.0.0.1 from
//! Debian's `postgresql` package (initdb in a temporary directory, as the `postgres` user when
//! run as root). Three instances serve over HTTP, each with its own connection and cache whose
//! entries live ten minutes, so only `LISTEN`/`NOTIFY` can explain an instance learning of a
//! change: an origin is added, then removed, and the time until every instance agrees is
//! measured and bounded by a second. Then the database stops: the instances refuse (fail
//! closed) with the reason logged, and admit again by themselves once it is back.
//!
//! One test in this binary: it sets a tracing subscriber (see tracing_events.rs).
#![cfg(all(feature = "postgres", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use corsair::origin_source::postgres::PostgresSource;
use corsair::origin_source::OriginCache;
use corsair::tower::CorsLayer;
use corsair::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "common/tracing_recorder.rs"]
mod recorder;

use recorder::Recorder;

/// A PostgreSQL server in a temporary directory, on a free loopback port.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// The `postgres` user's ids when running as root.
    ids: Option<(u32, u32)>,
    child: Option<Child>,
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Postgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|b| b.join("postgres").exists() && b.join("initdb").exists())
            .max()
            .expect("no PostgreSQL under /usr/lib/postgresql/*/bin: install Debian's postgresql (scripts/test.sh does)");
        let ids = (output("id", &["-u"]) == "0").then(|| {
            let id = |flag| output("id", &[flag, "postgres"]).parse::<u32>().unwrap();
            (id("-u"), id("-g"))
        });
        let dir = std::env::temp_dir().join(format!("corsair-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = Postgres {
            bin,
            dir,
            port,
            ids,
            child: None,
        };
        let data = pg.data();
        let out = pg
            .command("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.run();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.current_dir(&self.dir);
        if let Some((uid, gid)) = self.ids {
            c.uid(uid).gid(gid);
        }
        c
    }

    fn config(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// Starts the server and waits until it accepts connections.
    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("log")).unwrap();
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(self.dir.join("log"), Some(uid), Some(gid)).unwrap();
        }
        let child = self
            .command("postgres")
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args([
                "-k",
                self.dir.to_str().unwrap(),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        let ready = || {
            Command::new(self.bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        while !ready() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fast shutdown (SIGINT): clients are disconnected.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts one instance: its own source, cache and HTTP server. Returns its port.
async fn instance(config: &str) -> u16 {
    let source = PostgresSource::connect(config).unwrap();
    let cache = OriginCache::builder(source)
        .allowed_ttl(Duration::from_secs(600))
        .refused_ttl(Duration::from_secs(600))
        .timeout(Duration::from_millis(500))
        .build();
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_origin_source(cache)
        .allow_credentials(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(CorsLayer::new(cors));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Whether the instance on `port` lets `origin` read `/api`, over HTTP.
async fn admits(port: u16, origin: &str) -> bool {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .to_ascii_lowercase()
        .contains(&format!("\r\naccess-control-allow-origin: {origin}\r\n"))
}

/// Polls every instance until each answers `want` for `origin`; the time each took.
async fn until_all(ports: &[u16], origin: &str, want: bool, limit: Duration) -> Vec<Duration> {
    let started = Instant::now();
    let mut seen: Vec<Option<Duration>> = vec![None; ports.len()];
    while seen.iter().any(Option::is_none) {
        for (i, port) in ports.iter().enumerate() {
            if seen[i].is_none() && admits(*port, origin).await == want {
                seen[i] = Some(started.elapsed());
            }
        }
        assert!(
            started.elapsed() < limit,
            "{origin} -> {want}: only {seen:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen.into_iter().flatten().collect()
}

const STEADY: &str = "https://steady.tenant.example";
const NEW: &str = "https://new.tenant.example";

#[tokio::test]
async fn every_instance_learns_of_changes_and_a_database_down_fails_closed() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let mut pg = Postgres::start();
    let (admin, connection) = tokio_postgres::connect(&pg.config(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin.batch_execute(PostgresSource::SCHEMA).await.unwrap();
    admin
        .execute("INSERT INTO cors_origins VALUES ($1)", &[&STEADY])
        .await
        .unwrap();

    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(instance(&pg.config()).await);
    }
    until_all(&ports, STEADY, true, Duration::from_secs(10)).await;
    // Every instance has now refused NEW, and keeps that answer for ten minutes unless told.
    for port in &ports {
        assert!(!admits(*port, NEW).await);
    }

    admin
        .execute("INSERT INTO cors_origins VALUES ($1)", &[&NEW])
        .await
        .unwrap();
    let added = until_all(&ports, NEW, true, Duration::from_secs(1)).await;
    admin
        .execute("DELETE FROM cors_origins WHERE origin = $1", &[&NEW])
        .await
        .unwrap();
    let removed = until_all(&ports, NEW, false, Duration::from_secs(1)).await;
    println!("postgres propagation to 3 instances: add {added:?}, remove {removed:?}");

    // The database goes down: every instance refuses what only it admitted, and says why.
    drop(admin);
    pg.stop();
    let down = until_all(&ports, STEADY, false, Duration::from_secs(5)).await;
    println!("postgres down: refused after {down:?}");
    {
        let events = recorder.events();
        let with = |reason: &str| {
            events
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .collect::<Vec<_>>()
        };
        assert!(!with("origin-source-disconnected").is_empty(), "{events:?}");
        let failed = with("origin-source-failed");
        assert!(
            failed.iter().any(|e| e
                .error
                .as_deref()
                .is_some_and(|e| e.contains("not connected to PostgreSQL"))),
            "{events:?}"
        );
    }

    // Back up: every instance admits again by itself.
    pg.run();
    let back = until_all(&ports, STEADY, true, Duration::from_secs(10)).await;
    println!("postgres back: admitted again after {back:?}");
}
