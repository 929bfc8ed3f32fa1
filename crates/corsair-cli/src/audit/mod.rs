//! `corsair audit`: probe a live server with crafted origins and report what a browser would let
//! an attacker's page read. The classes, probes and verdicts are the library's
//! (`corsair::audit`); this module sends the requests, bounded and paced, and prints.
//!
//! The requests go through `corsair check`'s own HTTP/1.1 client ([`net::RawClient`]): the
//! bytes a browser sends, and answers read as a browser reads them, within the client's bounds
//! (the head at most 256 KiB, no redirect followed by the client: the probes decide). The
//! answers' header fields go to the library's judge as read ([`Answer`]), every byte browsers
//! accept kept, so that the engine's rules judge them as they judge `check`'s; `--header` is
//! parsed as `check` parses it ([`crate::check::header_args`]).

mod render;

use std::time::Duration;

use corsair::audit::{conclude, Answer, Audit, Finding, Severity};

use crate::error::{self, Error, Verdict};
use crate::net;

pub use render::{human, json};

/// The `User-Agent` of every request the audit sends.
pub const USER_AGENT: &str = concat!("corsair-audit/", env!("CARGO_PKG_VERSION"));

/// `corsair audit`'s command line.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The URL to audit (an API endpoint).
    #[arg(required_unless_present = "input", conflicts_with = "input")]
    pub url: Option<String>,
    /// Audit every URL of this file instead (one a line; `-` for standard input; blank lines
    /// and lines starting with `#` are skipped).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<std::path::PathBuf>,
    /// With --input, how many targets to audit at once (under one global --rate).
    #[arg(long, default_value = "4", value_parser = positive)]
    pub concurrency: usize,
    /// An origin whose pages legitimately call the API, e.g. `https://app.example.com`;
    /// repeatable. Trusted origins (and the target's own) are never reported.
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// The method the site's pages use.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// A request header the site's pages set, 'Name: value'; repeatable. The value is taken as
    /// fetch() takes it, as `corsair check` does: leading and trailing spaces, tabs, CR and LF
    /// removed, every other byte kept.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Report only what an attacker reads or sends with the victim's cookies.
    #[arg(long)]
    pub credentials: bool,
    /// The most requests to send; probes beyond it are skipped and counted.
    #[arg(long, default_value = "100", value_parser = positive)]
    pub max_requests: usize,
    /// Requests per second, at most.
    #[arg(long, default_value = "10", value_parser = rate)]
    pub rate: f64,
    /// Seconds each request may take.
    #[arg(long, default_value = "10", value_parser = error::seconds)]
    pub timeout: Duration,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive number of requests per second, such as 10 or 0.5"
        )),
    }
}

/// What an audit found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target URL.
    pub target: String,
    /// The findings, one per class.
    pub findings: Vec<Finding>,
    /// The requests sent.
    pub requests: usize,
    /// Probes not sent for lack of budget (`--max-requests`).
    pub skipped: usize,
}

impl Report {
    /// Fail (exit status 1) when a finding of medium severity or above exists.
    pub fn verdict(&self) -> Verdict {
        if self.findings.iter().any(|f| f.severity >= Severity::Medium) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}

/// Runs `corsair audit` and prints its report (with `--input`, one report per target, one JSON
/// object a line with `--json`).
///
/// # Errors
/// Bad arguments or a network failure: one line, exit status 2. With `--input`, a target that
/// fails is reported on its line and the others are audited; the run then ends with status 2.
pub fn main(args: Args) -> Result<Verdict, Error> {
    let headers = crate::check::header_args(&args.headers)?;
    let setup = Setup {
        origins: args.origins.clone(),
        method: args.method.clone(),
        headers,
        credentials: args.credentials,
        max_requests: args.max_requests,
        timeout: args.timeout,
    };
    let pace = std::sync::Arc::new(Pace::new(args.rate));
    let client = net::RawClient::new();
    let Some(path) = &args.input else {
        let url = args.url.clone().unwrap_or_default();
        let result = setup.audit(&url).and_then(|audit| {
            error::runtime(false)?.block_on(run(
                &audit,
                &client,
                &pace,
                setup.max_requests,
                setup.timeout,
            ))
        });
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "version": 1, "target": url, "error": e.to_string() })
                    );
                }
                return Err(e);
            }
        };
        if args.json {
            println!("{}", render::json(&report));
        } else {
            print!("{}", render::human(&report));
        }
        return Ok(report.verdict());
    };
    let targets = read_targets(path)?;
    error::runtime(false)?.block_on(many(
        targets,
        std::sync::Arc::new(setup),
        client,
        pace,
        args.concurrency,
        args.json,
    ))
}

/// What every target of a run shares.
#[derive(Debug, Clone)]
struct Setup {
    origins: Vec<String>,
    method: String,
    headers: Vec<(String, String)>,
    credentials: bool,
    max_requests: usize,
    timeout: Duration,
}

impl Setup {
    fn audit(&self, url: &str) -> Result<Audit, Error> {
        Ok(Audit::new(url, &self.origins)
            .and_then(|a| a.with_request(&self.method, self.headers.clone()))
            .map_err(|e| Error::Usage(e.0))?
            .cookies_only(self.credentials))
    }
}

/// The URLs of an --input file (or standard input for `-`).
fn read_targets(path: &std::path::Path) -> Result<Vec<String>, Error> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Error::Config(format!("standard input cannot be read: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: cannot be read: {e}", path.display())))?
    };
    let targets: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err(Error::Usage(format!("{}: no URL in it", path.display())));
    }
    Ok(targets)
}

/// Audits many targets, `concurrency` at a time under one rate limit, printing each report as
/// it completes (and progress on standard error when it is a terminal).
async fn many(
    targets: Vec<String>,
    setup: std::sync::Arc<Setup>,
    client: net::RawClient,
    pace: std::sync::Arc<Pace>,
    concurrency: usize,
    json: bool,
) -> Result<Verdict, Error> {
    use std::io::IsTerminal;
    let total = targets.len();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(targets.into_iter()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..concurrency.min(total) {
        let (queue, setup, client, pace, tx) = (
            queue.clone(),
            setup.clone(),
            client.clone(),
            pace.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(url) = next else { break };
                let result = match setup.audit(&url) {
                    Ok(audit) => {
                        run(&audit, &client, &pace, setup.max_requests, setup.timeout).await
                    }
                    Err(e) => Err(e),
                };
                if tx.send((url, result)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let progress = std::io::stderr().is_terminal();
    let (mut done, mut failed, mut found) = (0, 0, false);
    while let Some((url, result)) = rx.recv().await {
        done += 1;
        match result {
            Ok(report) => {
                found |= report.verdict() == Verdict::Fail;
                if json {
                    println!("{}", render::json(&report));
                } else {
                    println!("{}", render::human(&report));
                }
            }
            Err(e) => {
                failed += 1;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "version": 1, "target": url, "error": e.to_string() })
                    );
                } else {
                    eprintln!("error: {e}");
                }
            }
        }
        if progress {
            eprint!("\raudited {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    }
    if failed > 0 {
        return Err(Error::Net(net::NetError::Failed {
            url: format!("{failed} of {total} targets"),
            detail: "see their lines above".to_owned(),
        }));
    }
    Ok(if found { Verdict::Fail } else { Verdict::Pass })
}

/// A rate limit shared by every request of a run: each request waits for its turn.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pace {
    /// At most `per_second` requests per second.
    pub fn new(per_second: f64) -> Pace {
        Pace {
            interval: Duration::from_secs_f64((1.0 / per_second).min(error::MAX_SECONDS)),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits until the next request may go.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        drop(next);
        tokio::time::sleep_until(at).await;
    }
}

/// Audits one target: sends every probe's requests within the budget, paced, and concludes.
///
/// # Errors
/// A network failure, naming the URL.
pub async fn run(
    audit: &Audit,
    client: &net::RawClient,
    pace: &Pace,
    max_requests: usize,
    timeout: Duration,
) -> Result<Report, Error> {
    let mut findings = Vec::new();
    let mut sent = 0;
    let mut skipped = 0;
    for probe in audit.probes() {
        let mut answers: Vec<Answer> = Vec::new();
        while let Some(req) = audit.next_request(&probe, &answers) {
            if sent >= max_requests {
                break;
            }
            let mut headers = req.headers;
            headers.push(("User-Agent".to_owned(), USER_AGENT.to_owned()));
            pace.wait().await;
            sent += 1;
            let head = client
                .exchange(&req.method, &req.url, &headers, timeout)
                .await?;
            // The fields as read, every byte browsers accept kept: the engine judges them.
            answers.push(Answer {
                status: head.status,
                fields: head.fields,
            });
        }
        if answers.is_empty() && sent >= max_requests {
            skipped += 1;
            continue;
        }
        findings.extend(audit.judge(&probe, &answers));
    }
    Ok(Report {
        target: audit.target().to_owned(),
        findings: conclude(findings),
        requests: sent,
        skipped,
    })
}
