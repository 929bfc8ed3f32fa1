//! `corsair lint`: every problem with its line, code and fix; exit 1 on problems, 0 when clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::process::Command;

fn lint(source: &str, name: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("corsair-lint-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(&file, source).unwrap();
    let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .arg("lint")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&file.display().to_string(), "policy.toml");
    (out.status.code(), text)
}

#[test]
fn a_clean_file_exits_zero() {
    let (code, out) = lint(
        "allow_origins = [\"https://app.example.com\"]\n[[route]]\npath = \"/public/\"\nallow_origins = [\"*\"]\n",
        "clean",
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "policy.toml: ok (1 route(s): /public, and the top level)\n"
    );
}

#[test]
fn every_problem_with_line_code_and_fix() {
    let (code, out) = lint(
        "allow_origins = [\n  \"https://App.example.com\",\n]\nallow_methods = [\"TRACE\"]\nexpose_header = [\"x\"]\n",
        "problems",
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "policy.toml:2: [origin-uppercase] allow_origins: \"https://App.example.com\": browsers send origins in lowercase, so this never matches. Fix: write https://app.example.com.\n\
         policy.toml:4: [method-forbidden] allow_methods: \"TRACE\": browsers refuse to send CONNECT, TRACE and TRACK, so allowing them does nothing. Fix: remove it.\n\
         policy.toml:5: [unknown-key] \"expose_header\": unknown key. Fix: did you mean `expose_headers`?\n\
         3 problems\n"
    );
}

#[test]
fn a_missing_file_is_reported() {
    let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args(["lint", "/nonexistent/policy.toml"])
        .output()
        .unwrap();
    // 1 means "problems found"; a file that cannot be read is a usage error.
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: /nonexistent/policy.toml: cannot be read: No such file or directory (os error 2)\n"
    );
}

/// Hole 4 of the hardening review: a route that an earlier route covers is reported.
#[test]
fn a_shadowed_route_is_reported() {
    let (code, out) = lint(
        "allow_origins = [\"https://app.example.com\"]\n\
         [[route]]\npath = \"/api\"\nallow_origins = [\"*\"]\n\
         [[route]]\npath = \"/api/public\"\nallow_origins = [\"*\"]\n\
         [[route]]\npath = \"/apiary\"\nallow_origins = [\"*\"]\n",
        "shadowed",
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "policy.toml:6: route 2 (/api/public): [route-shadowed] path: \"/api/public\": route 1 (/api) comes first and covers every path this one does, so this route is never used. Fix: put the more specific route first, or remove one of them.\n\
         1 problem\n"
    );
}

/// Hole 5 of the hardening review: the line is the parser's, not the first place the value
/// appears in the text.
#[test]
fn lines_are_not_fooled_by_comments_or_other_keys() {
    let (code, out) = lint(
        "# never allow_origins = [\"*\"] with credentials\n\
         expose_headers = [\"x-request-id\"]   # \"*\" would expose everything\n\
         allow_credentials = true\n\
         allow_origins = [\"*\"]\n",
        "lines",
    );
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with("policy.toml:4: [credentials-with-any-origin] allow_origins: \"*\": "),
        "{out}"
    );
}

/// Issue 16: origins corsair rewrites into the browser's form are accepted, and lint says what
/// they were rewritten to; every dangerous grant is noted. Notes alone keep the exit status 0.
#[test]
fn notes_say_what_was_rewritten_and_what_is_dangerous() {
    let (code, out) = lint(
        "allow_origins = [\n  \"http://127.1:8000\",\n  \"https://*.vercel.app\",\n]\n\
         dangerously_allow_public_suffix_subdomains = true\n",
        "notes",
    );
    assert_eq!(code, Some(0), "{out}");
    // Warnings are another test's business here.
    let lines: Vec<&str> = out.lines().filter(|l| !l.contains(": warning: ")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(
            "policy.toml:2: note: allow_origins [origin-rewritten]: \"http://127.1:8000\": matched as http://127.0.0.1:8000"
        ),
        "{out}"
    );
    assert!(
        lines[1].starts_with(
            "policy.toml:3: note: allow_origins [dangerously-allowed]: \"https://*.vercel.app\": [pattern-over-public-suffix] allowed by dangerously_allow_public_suffix_subdomains"
        ),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "policy.toml: ok (one policy for every path, 2 notes, 1 warning)"
    );

    // Without the key, the same file is refused, on the pattern's line.
    let (code, out) = lint(
        "allow_origins = [\n  \"http://127.1:8000\",\n  \"https://*.vercel.app\",\n]\n",
        "notes-refused",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "policy.toml:3: [pattern-over-public-suffix] allow_origins: \"https://*.vercel.app\""
        ),
        "{out}"
    );
}

/// Issue 11: lint warns about valid but risky settings, from the classes `corsair audit` reports
/// on live servers; warnings exit 0 unless --deny-warnings.
#[test]
fn risky_settings_are_warnings_and_deny_warnings_fails_on_them() {
    let file = "allow_origins = [\n  \"https://app.example.com\",\n  \"https://*.example.com\",\n  \"https://someone.github.io\",\n  \"http://127.1:3000\",\n]\nallow_credentials = true\n";
    let (code, out) = lint(file, "warnings");
    assert_eq!(code, Some(0), "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.contains(": warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{out}");
    assert!(
        warnings[0].starts_with(
            "policy.toml:3: warning: [any-subdomain-trusted] \"https://*.example.com\": "
        ),
        "{out}"
    );
    assert!(
        warnings[1].starts_with(
            "policy.toml:4: warning: [third-party-trusted] \"https://someone.github.io\": "
        ),
        "{out}"
    );
    // Loopback http (127.1 is 127.0.0.1) is no warning.
    assert!(!out.contains("insecure-origin-trusted"), "{out}");
    assert!(
        out.ends_with("ok (one policy for every path, 1 note, 2 warnings)\n"),
        "{out}"
    );

    let dir = std::env::temp_dir().join(format!("corsair-lint-{}-deny", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, file).unwrap();
    let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args(["lint", "--deny-warnings"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
}
