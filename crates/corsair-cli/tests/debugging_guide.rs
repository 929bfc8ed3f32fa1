//! docs/debugging-cors-errors.md, run: every `corsair check` line of the guide against its
//! server (examples/misconfigured.rs, on a free loopback port) must print what the guide shows
//! (every line shown, in order; `...` stands for lines left out) and exit 1, and the guide must
//! have a section for every console message corsair reproduces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

#[path = "../examples/misconfigured.rs"]
#[allow(dead_code)] // its `main`
mod misconfigured;

use common::{corsair, serve, stderr, stdout};
use corsair::browser::{AccessCheck, CorsError, CorsErrorKind};

fn guide() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/debugging-cors-errors.md"
    ))
    .unwrap()
}

/// The lines of the guide's `console` blocks.
fn console_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = None;
    for line in text.lines() {
        match (&inside, line.strip_prefix("```")) {
            (None, Some(lang)) => inside = Some(lang.trim() == "console"),
            (Some(_), Some(_)) => inside = None,
            (Some(true), None) => out.push(line.to_owned()),
            _ => {}
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for the guide's quoting (single quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => (word.push(c), any = true).1,
        }
    }
    if any {
        out.push(word);
    }
    out
}

#[tokio::test]
async fn every_command_of_the_debugging_guide_prints_what_it_shows() {
    let base = serve(misconfigured::app()).await; // http://127.0.0.1:PORT
    let api = base.trim_start_matches("http://");
    let adapt = |s: &str| s.replace("localhost:9000", api);

    let lines = console_lines(&guide());
    let mut printed_all = String::new();
    let mut ran = 0;
    let mut i = 0;
    while i < lines.len() {
        let command = lines[i]
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("console line {:?} is not a command", lines[i]));
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with("$ "))
            .map_or(lines.len(), |p| i + 1 + p);
        let mut args = words(&adapt(command));
        assert_eq!(args.remove(0), "corsair", "{command}");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = corsair(&args).await;
        let printed = stdout(&o) + &stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{command}: {printed}");
        let mut rest = printed.lines();
        for want in lines[i + 1..end].iter().filter(|l| l.trim() != "...") {
            let want = adapt(want);
            assert!(
                rest.any(|got| got == want),
                "{command}: the guide shows {want:?}, not printed (in order) in:\n{printed}"
            );
        }
        printed_all.push_str(&printed);
        ran += 1;
        i = end;
    }
    assert_eq!(ran, 19, "one command per console message");

    // Every message corsair reproduces (browser/error.rs), each printed by one of the commands.
    let checks = [
        AccessCheck::MissingAllowOriginHeader,
        AccessCheck::MultipleAllowOriginValues,
        AccessCheck::InvalidAllowOriginValue,
        AccessCheck::AllowOriginMismatch,
        AccessCheck::WildcardOriginNotAllowed,
        AccessCheck::InvalidAllowCredentials,
    ];
    let mut kinds: Vec<CorsErrorKind> =
        checks.iter().map(|&c| CorsErrorKind::Response(c)).collect();
    kinds.extend(checks.iter().map(|&c| CorsErrorKind::Preflight(c)));
    kinds.extend([
        CorsErrorKind::PreflightInvalidStatus,
        CorsErrorKind::PreflightDisallowedRedirect,
        CorsErrorKind::InvalidAllowMethodsPreflightResponse,
        CorsErrorKind::InvalidAllowHeadersPreflightResponse,
        CorsErrorKind::MethodDisallowedByPreflightResponse,
        CorsErrorKind::HeaderDisallowedByPreflightResponse,
        CorsErrorKind::RedirectContainsCredentials,
    ]);
    for kind in kinds {
        // The message with a marker where the value goes: its fixed parts, in order, on one line.
        let reason = CorsError::new(kind, "u", "o").with_value("\u{1}").reason();
        let parts: Vec<&str> = reason.split('\u{1}').collect();
        let shown = printed_all.lines().any(|line| {
            let mut at = 0;
            parts.iter().all(|part| match line[at..].find(part) {
                Some(p) => {
                    at += p + part.len();
                    true
                }
                None => false,
            })
        });
        assert!(shown, "no command of the guide prints {kind}: {reason:?}");
    }
}
