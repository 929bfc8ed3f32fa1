//! The README's `corsair …` command lines, run as written against local servers (ports adapted):
//! commands in `sh` blocks must work, commands in `console` blocks must print what is shown
//! (every line shown, in order; `...` stands for lines left out). `$ cat FILE` in a console block
//! shows a file: it is written before the commands after it run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::collections::HashMap;

use axum::routing::get;
use axum::{Json, Router};
use common::{closed_port, corsair, raw, serve, stderr, stdout, Proxy};
use corsair::tower::CorsLayer;
use corsair::Policy;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The explainer's example, examples/seed.rs, on a port of its own: `GET /api`, allowing
/// pages from `http://localhost:8000`.
async fn seed() -> u16 {
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api",
            get(|| async { Json(serde_json::json!({ "msg": "success" })) }),
        )
        .layer(CorsLayer::new(cors));
    let base = serve(app).await;
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A fenced block: its language and lines.
fn blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), Vec::new())),
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (Some((_, lines)), None) => lines.push(line.to_owned()),
            (None, None) => {}
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for the README's quoting (single quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

struct Run {
    api: u16,
    dir: std::path::PathBuf,
    /// `--listen` port as written → the port the proxy really listens on.
    listen: HashMap<String, u16>,
    proxies: Vec<Proxy>,
    ran: usize,
}

impl Run {
    /// The README's addresses, mapped onto the servers of this test.
    fn adapt(&self, s: &str) -> String {
        let mut s = s
            .replace("localhost:9000", &format!("localhost:{}", self.api))
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{}", self.api))
            .replace("10.0.0.5:9000", &format!("127.0.0.1:{}", self.api));
        for (written, port) in &self.listen {
            s = s.replace(
                &format!("localhost:{written}"),
                &format!("127.0.0.1:{port}"),
            );
        }
        s
    }

    /// Runs one `corsair …` line; returns what it printed (stdout then stderr).
    async fn run(&mut self, line: &str) -> String {
        let mut args = words(&self.adapt(line));
        assert_eq!(args.remove(0), "corsair", "{line}");
        for a in &mut args {
            if a.ends_with(".toml") && !a.contains('/') {
                *a = self.dir.join(&*a).to_str().unwrap().to_owned();
            }
        }
        self.ran += 1;
        if args[0] == "proxy" {
            let at = args.iter().position(|a| a == "--listen").unwrap() + 1;
            let written = args[at].rsplit(':').next().unwrap().to_owned();
            let port = closed_port();
            // The form stays as written (a port alone, or an address), on a free port.
            args[at] = if args[at].contains(':') {
                format!("127.0.0.1:{port}")
            } else {
                port.to_string()
            };
            let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            let proxy = Proxy::start(&args);
            let r = raw(
                &proxy.addr,
                "GET",
                "/api",
                &[("Origin", "http://localhost:8000")],
            )
            .await;
            assert_eq!(r.status, 200, "{line}: {}", r.body);
            assert_eq!(
                r.get("access-control-allow-origin"),
                Some("http://localhost:8000"),
                "{line}"
            );
            self.listen.insert(written, port);
            self.proxies.push(proxy);
            return String::new();
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = corsair(&args).await;
        let code = o.status.code();
        let printed = stdout(&o) + &stderr(&o);
        // check: 0 allowed, 1 blocked; lint: 1 problems found. Never a usage error unless the
        // README shows one.
        assert!(
            matches!(code, Some(0 | 1)) || printed.starts_with("error: "),
            "{line}: exit {code:?}: {printed}"
        );
        printed
    }
}

/// Each line of `expected` appears in `actual`, in order (`...` skips).
fn shown_in_order(expected: &[String], actual: &str, context: &str) {
    let mut rest = actual.lines();
    for want in expected
        .iter()
        .filter(|l| l.trim() != "..." && !l.trim().is_empty())
    {
        assert!(
            rest.any(|got| got == want.as_str()),
            "{context}: the README shows {want:?}, not printed (in order) in:\n{actual}"
        );
    }
}

#[tokio::test]
async fn every_corsair_line_of_the_readme_runs_as_shown() {
    let dir = std::env::temp_dir().join(format!("corsair-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = readme();
    // The policy file the proxy's production line names is the README's example file.
    let (_, toml) = blocks(&text)
        .into_iter()
        .find(|(lang, lines)| lang == "toml" && lines.iter().any(|l| l.starts_with("[[route]]")))
        .unwrap();
    std::fs::write(dir.join("cors.toml"), toml.join("\n")).unwrap();
    let mut run = Run {
        api: seed().await,
        dir: dir.clone(),
        listen: HashMap::new(),
        proxies: Vec::new(),
        ran: 0,
    };
    for (lang, lines) in blocks(&text) {
        match lang.as_str() {
            "sh" => {
                for line in lines.iter().filter(|l| l.starts_with("corsair ")) {
                    let line = line.split("  #").next().unwrap().trim();
                    if line == "corsair --help" {
                        let o = corsair(&["--help"]).await;
                        assert_eq!(o.status.code(), Some(0));
                        run.ran += 1;
                    } else {
                        run.run(line).await;
                    }
                }
            }
            "console" => {
                // Commands with the output shown after them; `$ cat FILE` writes FILE.
                let mut i = 0;
                while i < lines.len() {
                    let command = lines[i].strip_prefix("$ ").unwrap_or_else(|| {
                        panic!("console block line {:?} is not a command", lines[i])
                    });
                    let end = lines[i + 1..]
                        .iter()
                        .position(|l| l.starts_with("$ "))
                        .map_or(lines.len(), |p| i + 1 + p);
                    let shown = &lines[i + 1..end];
                    if let Some(file) = command.strip_prefix("cat ") {
                        std::fs::write(dir.join(file), shown.join("\n") + "\n").unwrap();
                    } else {
                        let printed = run.run(command).await;
                        let printed = printed
                            .replace(dir.to_str().unwrap(), "")
                            .replace("/cors.toml", "cors.toml");
                        let shown: Vec<String> = shown.iter().map(|l| run.adapt(l)).collect();
                        shown_in_order(&shown, &printed, command);
                    }
                    i = end;
                }
            }
            _ => {}
        }
    }
    assert!(
        run.ran >= 9,
        "only {} corsair lines found in the README",
        run.ran
    );
}

#[test]
fn the_readme_says_how_to_get_the_command_and_what_the_example_is_first() {
    let text = readme();
    let install = text
        .find("cargo install --path crates/corsair-cli")
        .unwrap();
    let run_from_checkout = text.find("cargo run --release -- check").unwrap();
    let first_command = text
        .lines()
        .scan(0, |at, l| {
            let start = *at;
            *at += l.len() + 1;
            Some((start, l))
        })
        .find(|(_, l)| {
            let l = l.strip_prefix("$ ").unwrap_or(l);
            [
                "corsair check",
                "corsair proxy",
                "corsair lint",
                "corsair --help",
            ]
            .iter()
            .any(|c| l.starts_with(c))
        })
        .map(|(at, _)| at)
        .unwrap();
    assert!(install < first_command && run_from_checkout > install);

    // "The explainer's example" is defined where it is first named: the file, the API's port
    // and the page origin it allows.
    let first = text.find("the explainer's example").unwrap();
    let paragraph_end = first + text[first..].find("\n\n").unwrap();
    let paragraph_start = text[..first].rfind("\n\n").unwrap();
    let paragraph = &text[paragraph_start..paragraph_end];
    for needed in [
        "examples/seed.rs",
        "localhost:9000",
        "http://localhost:8000",
    ] {
        assert!(paragraph.contains(needed), "{needed} not in {paragraph}");
    }
}
