//! `corsair lint FILE`: every problem of a policy file at once, with codes, lines and fixes.

use std::path::Path;

use corsair::config::PolicySet;

/// The report and whether the file is clean.
pub fn run(path: &Path) -> (String, bool) {
    match PolicySet::load(path) {
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
            (format!("{}: ok ({detail})\n", path.display()), true)
        }
        Err(errors) => {
            let mut out = String::new();
            for e in errors.errors() {
                match e.line() {
                    Some(l) => {
                        out.push_str(&format!("{}:{l}: {}\n", path.display(), strip_line(e)))
                    }
                    None => out.push_str(&format!("{}: {e}\n", path.display())),
                }
            }
            let n = errors.errors().len();
            out.push_str(&format!("{n} problem{}\n", if n == 1 { "" } else { "s" }));
            (out, false)
        }
    }
}

/// The error's text without its `line N: ` prefix (the path and line lead the output line).
fn strip_line(e: &corsair::config::FileError) -> String {
    let s = e.to_string();
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_owned(),
        _ => s,
    }
}
