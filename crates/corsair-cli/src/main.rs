//! The `corsair` command.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use corsair::browser::{Browser, Credentials};
use corsair_cli::check;

/// Cross-Origin Resource Sharing, both sides, as browsers do it.
#[derive(Parser, Debug)]
#[command(name = "corsair", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Would a browser let a page read this URL? Makes the requests a browser would make and
    /// prints the verdict, Chromium's console message, the exchanges and the fix.
    ///
    /// Exit status: 0 allowed, 1 blocked, 2 usage or network error.
    Check {
        /// The URL the page's script fetches.
        url: String,
        /// The page's origin, e.g. http://localhost:8000.
        #[arg(long)]
        origin: String,
        /// The method, as the script writes it (`patch` stays lowercase).
        #[arg(long, short = 'X', default_value = "GET")]
        method: String,
        /// A request header the script sets, 'Name: value'; repeatable.
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The credentials mode: omit, same-origin or include.
        #[arg(long, default_value = "same-origin", value_parser = parse_credentials)]
        credentials: Credentials,
        /// Whose rules to follow where browsers differ: chromium, firefox or safari.
        #[arg(long, default_value = "chromium", value_parser = parse_browser)]
        browser: Browser,
        /// Seconds each request may take.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Also trust the CA certificates of this PEM file (e.g. mkcert's rootCA.pem).
        #[arg(long, value_name = "FILE")]
        cacert: Option<std::path::PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a CORS policy in front of any HTTP service: answers preflights, replaces the
    /// upstream's CORS headers with the policy's, streams bodies. SIGHUP reloads --config;
    /// SIGTERM/SIGINT finish the requests in flight and exit.
    Proxy {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The service behind the proxy, e.g. http://127.0.0.1:9000.
        #[arg(long)]
        upstream: String,
        /// A policy file (TOML); reloaded on SIGHUP.
        #[arg(long, value_name = "FILE", conflicts_with = "allow_origin")]
        config: Option<std::path::PathBuf>,
        /// An origin to allow (repeatable), instead of a policy file.
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origin: Vec<String>,
        /// Local development: the --allow-origin origins with any method and header, and
        /// credentials. Announced with a warning.
        #[arg(long, requires = "allow_origin")]
        dev: bool,
        /// Write an access line per request, with the CORS decision and its reason.
        #[arg(long)]
        log: bool,
        /// The access log format: text or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Seconds to connect to the upstream.
        #[arg(long, default_value_t = 5.0)]
        connect_timeout: f64,
        /// Seconds for the upstream to start answering (then 504).
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Seconds to finish requests in flight on SIGTERM/SIGINT.
        #[arg(long, default_value_t = 30.0)]
        drain_timeout: f64,
    },
    /// Check a policy file: every problem at once, with codes, line numbers and fixes.
    ///
    /// Exit status: 0 clean, 1 problems found.
    Lint {
        /// The policy file (TOML).
        file: std::path::PathBuf,
    },
}

fn parse_credentials(s: &str) -> Result<Credentials, String> {
    s.parse()
}

fn parse_browser(s: &str) -> Result<Browser, String> {
    match s {
        "chromium" | "chrome" => Ok(Browser::Chromium),
        "firefox" => Ok(Browser::Firefox),
        "safari" => Ok(Browser::Safari),
        other => Err(format!(
            "{other:?} is not a browser: use chromium, firefox or safari"
        )),
    }
}

/// An async runtime: one thread for a client, all cores for a server.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Proxy {
            listen,
            upstream,
            config,
            allow_origin,
            dev,
            log,
            log_format,
            connect_timeout,
            timeout,
            drain_timeout,
        } => {
            let seconds = |name: &str, v: f64| {
                if v.is_finite() && v > 0.0 {
                    Ok(Duration::from_secs_f64(v.min(86_400.0)))
                } else {
                    Err(format!("--{name} must be a positive number of seconds"))
                }
            };
            let parsed = (|| {
                Ok::<_, String>(corsair_cli::proxy::ProxyArgs {
                    listen,
                    upstream: upstream
                        .parse()
                        .map_err(|e| format!("--upstream {upstream:?}: {e}"))?,
                    config,
                    allow_origins: allow_origin,
                    dev,
                    log: log.then_some(if log_format == "json" {
                        corsair_cli::proxy::LogFormat::Json
                    } else {
                        corsair_cli::proxy::LogFormat::Text
                    }),
                    connect_timeout: seconds("connect-timeout", connect_timeout)?,
                    timeout: seconds("timeout", timeout)?,
                    drain_timeout: seconds("drain-timeout", drain_timeout)?,
                })
            })();
            let args = match parsed {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match runtime(true) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(corsair_cli::proxy::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Lint { file } => match corsair_cli::lint::run(&file) {
            corsair_cli::lint::Lint::Clean(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            corsair_cli::lint::Lint::Problems(report) => {
                print!("{report}");
                ExitCode::from(1)
            }
            corsair_cli::lint::Lint::Unreadable(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
        },
        Command::Check {
            url,
            origin,
            method,
            headers,
            credentials,
            browser,
            timeout,
            cacert,
            json,
        } => {
            let mut parsed = Vec::new();
            for h in headers {
                let Some((name, value)) = h.split_once(':') else {
                    eprintln!("error: --header {h:?} is not 'Name: value'");
                    return ExitCode::from(2);
                };
                parsed.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            if !(timeout.is_finite() && timeout > 0.0) {
                eprintln!("error: --timeout must be a positive number of seconds");
                return ExitCode::from(2);
            }
            let args = check::CheckArgs {
                url,
                origin,
                method,
                headers: parsed,
                credentials,
                browser,
                timeout: Duration::from_secs_f64(timeout.min(3600.0)),
            };
            let client = match cacert {
                Some(path) => match corsair_cli::net::client_with_ca_file(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => corsair_cli::net::client(),
            };
            let runtime = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(check::run(&args, &client)) {
                Ok(report) => {
                    if json {
                        println!("{}", check::json(&report));
                    } else {
                        print!("{}", check::human(&report));
                    }
                    if report.allowed {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({ "allowed": false, "error": "usage-or-network", "message": e.0 })
                        );
                    }
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
