//! `corsair lint FILE`: every problem of a policy file at once, with codes, lines and fixes.

use std::path::Path;

use corsair::config::PolicySet;

use crate::error::{Error, Verdict};

/// `corsair lint`'s command line.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy file (TOML).
    pub file: std::path::PathBuf,
}

/// Runs `corsair lint` and prints its report.
///
/// # Errors
/// The file cannot be read ([`Error::Config`], exit status 2; problems in it are exit status 1).
pub fn main(args: Args) -> Result<Verdict, Error> {
    match run(&args.file) {
        Lint::Clean(report) => {
            print!("{report}");
            Ok(Verdict::Pass)
        }
        Lint::Problems(report) => {
            print!("{report}");
            Ok(Verdict::Fail)
        }
        Lint::Unreadable(message) => Err(Error::Config(message)),
    }
}

/// What `lint` found.
#[derive(Debug)]
pub enum Lint {
    /// The file is valid; the report says what it holds.
    Clean(String),
    /// The file has problems, one a line, then their count.
    Problems(String),
    /// The file could not be read.
    Unreadable(String),
}

/// Lints the policy file at `path`.
pub fn run(path: &Path) -> Lint {
    let name = path.display().to_string();
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return Lint::Unreadable(format!("{name}: cannot be read: {e}")),
    };
    match PolicySet::from_toml(&source) {
        Ok(set) => {
            let routes: Vec<&str> = set.route_prefixes().collect();
            let detail = if routes.is_empty() {
                "one policy for every path".to_owned()
            } else {
                format!(
                    "{} route(s): {}, and the top level",
                    routes.len(),
                    routes.join(", ")
                )
            };
            Lint::Clean(format!("{name}: ok ({detail})\n"))
        }
        Err(errors) => {
            let n = errors.errors().len();
            Lint::Problems(format!(
                "{}\n{n} problem{}\n",
                errors.with_file(&name),
                if n == 1 { "" } else { "s" }
            ))
        }
    }
}
