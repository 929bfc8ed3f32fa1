//! `corsair lint FILE`: every problem of a policy file at once, with codes, lines and fixes.

use std::path::Path;

use corsair::config::PolicyFile;

use crate::error::{Error, Verdict};

/// `corsair lint`'s command line.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy file (TOML).
    pub file: std::path::PathBuf,
    /// Exit 1 on warnings (valid but risky settings) too, not only on problems.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs `corsair lint` and prints its report.
///
/// # Errors
/// The file cannot be read ([`Error::Config`], exit status 2; problems in it are exit status 1,
/// and so are warnings with `--deny-warnings`).
pub fn main(args: Args) -> Result<Verdict, Error> {
    match run(&args.file) {
        Lint::Clean { report, warnings } => {
            print!("{report}");
            Ok(if warnings > 0 && args.deny_warnings {
                Verdict::Fail
            } else {
                Verdict::Pass
            })
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
    /// The file is valid; the report says what it holds, with its notes and warnings.
    Clean {
        /// The report.
        report: String,
        /// How many warnings it holds.
        warnings: usize,
    },
    /// The file has problems, one a line, then their count.
    Problems(String),
    /// The file could not be read.
    Unreadable(String),
}

/// Lints the policy file at `path`: every problem, and (clean or not) every note (origins
/// rewritten into the form browsers send, every grant a `dangerously_` key made) and warning
/// (valid but risky settings, the classes `corsair audit` reports), in line order.
pub fn run(path: &Path) -> Lint {
    let name = path.display().to_string();
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return Lint::Unreadable(format!("{name}: cannot be read: {e}")),
    };
    let file = PolicyFile::parse(&source);
    let mut lines: Vec<(usize, String)> = file
        .notes
        .iter()
        .map(|n| {
            let at = n.line().map_or(name.clone(), |l| format!("{name}:{l}"));
            let section = n.section().map_or(String::new(), |s| format!("{s}: "));
            (
                n.line().unwrap_or(0),
                format!("{at}: {section}note: {}", n.note()),
            )
        })
        .collect();
    let notes = lines.len();
    for w in &file.warnings {
        let at = w.line().map_or(name.clone(), |l| format!("{name}:{l}"));
        let section = w.section().map_or(String::new(), |s| format!("{s}: "));
        lines.push((
            w.line().unwrap_or(0),
            format!("{at}: {section}warning: {}", w.warning()),
        ));
    }
    let warnings = file.warnings.len();
    match file.policies {
        Ok(set) => {
            lines.sort_by_key(|(l, _)| *l);
            let mut out: String = lines.into_iter().map(|(_, t)| t + "\n").collect();
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
            let count = |n: usize, what: &str| match n {
                0 => String::new(),
                1 => format!(", 1 {what}"),
                n => format!(", {n} {what}s"),
            };
            out.push_str(&format!(
                "{name}: ok ({detail}{}{})\n",
                count(notes, "note"),
                count(warnings, "warning")
            ));
            Lint::Clean {
                report: out,
                warnings,
            }
        }
        Err(errors) => {
            let n = errors.errors().len();
            let rendered = errors.with_file(&name).to_string();
            for (e, text) in errors.errors().iter().zip(rendered.lines()) {
                lines.push((e.line().unwrap_or(0), text.to_owned()));
            }
            lines.sort_by_key(|(l, _)| *l);
            let mut out: String = lines.into_iter().map(|(_, t)| t + "\n").collect();
            out.push_str(&format!("{n} problem{}\n", if n == 1 { "" } else { "s" }));
            Lint::Problems(out)
        }
    }
}
