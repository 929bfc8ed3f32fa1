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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Lint { file } => {
            let (report, clean) = corsair_cli::lint::run(&file);
            print!("{report}");
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
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
