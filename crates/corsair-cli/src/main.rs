//! The `corsair` command: parses the command line, runs one subcommand, and turns its result
//! into an exit status (0 pass, 1 found something, 2 could not do its job).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use corsair_cli::{audit, check, demo, error, lint, proxy};

mod alloc;

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
    /// prints the verdict, Chromium's console message, the exchanges and the fix; Chromium,
    /// Firefox and Safari each get a verdict unless --browser names one.
    ///
    /// Exit status: 0 allowed (by every engine checked), 1 blocked, 2 usage or network error.
    Check(check::Args),
    /// Put a CORS policy in front of any HTTP service: answers preflights, replaces the
    /// upstream's CORS headers with the policy's, streams bodies, passes WebSockets from
    /// allowed origins. SIGHUP reloads --config; SIGTERM/SIGINT finish the requests in flight
    /// and exit. Every flag can also be set by its CORSAIR_ variable.
    Proxy(Box<proxy::Args>),
    /// Check a policy file: every problem at once, with codes, line numbers and fixes.
    ///
    /// Exit status: 0 clean, 1 problems found, 2 the file cannot be read.
    Lint(lint::Args),
    /// The explainer's scenario, live: a page on one port calls an API on another, protected by
    /// corsair; break the API's policy on purpose and watch the browser's verdict. Ctrl-C stops.
    Demo(demo::Args),
    /// Probe a live server with crafted origins; report what a browser would let an attacker's
    /// page read, with the evidence and the fix.
    ///
    /// Exit status: 0 clean (or low findings only), 1 a finding of medium severity or above,
    /// 2 usage or network error.
    Audit(audit::Args),
}

fn main() -> ExitCode {
    error::exit_code(match Cli::parse().command {
        Command::Check(args) => check::main(args),
        Command::Proxy(args) => {
            alloc::return_freed_pages();
            proxy::main(*args)
        }
        Command::Lint(args) => lint::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Audit(args) => audit::main(args),
    })
}
