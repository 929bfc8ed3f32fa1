//! The report, for people and for machines.

use serde_json::{json, Value};

use super::{engine_name, EngineVerdict, Exchange, Report};

/// "Chromium", "Chromium and Firefox", "Chromium, Firefox and Safari".
fn names(engines: &[&EngineVerdict]) -> String {
    let names: Vec<&str> = engines.iter().map(|e| engine_name(e.browser)).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Where the engines checked disagree, one line: `allowed in Chromium and Firefox, blocked in
/// Safari: …` (each blocking message once); `None` when they agree.
pub fn engines_differ(r: &Report) -> Option<String> {
    let (allowed, blocked): (Vec<&EngineVerdict>, Vec<&EngineVerdict>) =
        r.engines.iter().partition(|e| e.allowed);
    if allowed.is_empty() || blocked.is_empty() {
        // All block: they may still say it differently.
        let mut messages: Vec<&Option<String>> = blocked.iter().map(|e| &e.message).collect();
        messages.dedup();
        if allowed.is_empty() && messages.len() > 1 {
            let parts: Vec<String> = blocked
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        engine_name(e.browser),
                        visible(&e.message.as_deref().unwrap_or("blocked").replace('\n', " "))
                    )
                })
                .collect();
            return Some(format!(
                "blocked in {}, for different reasons: {}",
                names(&blocked),
                parts.join("; ")
            ));
        }
        return None;
    }
    let mut out = format!("allowed in {}, blocked in ", names(&allowed));
    let mut groups: Vec<(Option<String>, Vec<&EngineVerdict>)> = Vec::new();
    for e in &blocked {
        match groups.iter_mut().find(|(m, _)| *m == e.message) {
            Some((_, g)) => g.push(e),
            None => groups.push((e.message.clone(), vec![e])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(m, g)| match m {
            Some(m) => format!("{}: {}", names(g), visible(&m.replace('\n', " "))),
            None => names(g),
        })
        .collect();
    out.push_str(&parts.join("; blocked in "));
    Some(out)
}

/// The report as text: verdict, console message, the exchanges like the network tab with the
/// offending header marked, and the fixes.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    let verdict = if r.allowed { "ALLOWED" } else { "BLOCKED" };
    out.push_str(&format!("{verdict}  {}\n", r.summary));
    if r.engines.len() > 1 {
        match engines_differ(r) {
            Some(line) => out.push_str(&format!(
                "\nEngines differ: {line}\n  (the report below is {}'s; --browser narrows the check to one engine)\n",
                engine_name(r.engines[0].browser)
            )),
            None => {
                let all: Vec<&EngineVerdict> = r.engines.iter().collect();
                out.push_str(&format!("Same verdict in {}.\n", names(&all)));
            }
        }
    }
    if !r.dropped.is_empty() {
        out.push_str("\nNot sent (as a browser would not send them):\n");
        for (name, why) in &r.dropped {
            out.push_str(&format!("  {name}: {why}\n"));
        }
    }
    if let Some(m) = &r.message {
        out.push_str(&format!("\nConsole:\n  {}\n", visible(m)));
    }
    for (i, e) in r.exchanges.iter().enumerate() {
        let culprit = r
            .culprit
            .as_ref()
            .filter(|(at, _)| *at == i)
            .map(|(_, h)| h.as_str());
        out.push('\n');
        out.push_str(&exchange(e, culprit));
    }
    if r.allowed {
        if let Some(s) = r.status {
            out.push_str(&format!("\nThe script can read the response (status {s})"));
            if r.exposed.is_empty() {
                out.push_str(".\n");
            } else {
                out.push_str(&format!(" and these headers: {}.\n", r.exposed.join(", ")));
            }
        }
    }
    if !r.notes.is_empty() {
        out.push_str("\nNote:\n");
        for n in &r.notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    if !r.server_fix.is_empty() {
        out.push_str("\nFix on the server:\n");
        for f in &r.server_fix {
            out.push_str(&format!("  {f}\n"));
        }
    }
    if !r.request_fix.is_empty() {
        out.push_str(if r.allowed {
            "\nNote on the request:\n"
        } else {
            "\nOr change the request:\n"
        });
        for f in &r.request_fix {
            out.push_str(&format!("  {f}\n"));
        }
    }
    out
}

fn exchange(e: &Exchange, culprit: Option<&str>) -> String {
    let mut out = format!(
        "> {} {}{}\n",
        e.method,
        e.url,
        if e.preflight { "   (preflight)" } else { "" }
    );
    for (k, v) in &e.request_headers {
        out.push_str(&format!(">   {k}: {}\n", visible(v)));
    }
    out.push_str(&format!("< {}\n", e.status));
    let mut marked = false;
    for (k, v) in &e.response_headers {
        let mark = if culprit == Some(k.as_str()) {
            marked = true;
            "   <-- here"
        } else {
            ""
        };
        out.push_str(&format!("<   {}: {}{mark}\n", visible(k), visible(v)));
    }
    if let Some(c) = culprit.filter(|_| !marked) {
        out.push_str(&format!("<   ({c} is missing)   <-- here\n"));
    }
    out
}

/// Control characters (but tab) written `\u000B`, as Chromium's log writes them in console
/// messages, so that a vertical tab or a NUL in a header shows instead of acting on the
/// terminal.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\u{:04X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn pairs(h: &[(String, String)]) -> Value {
    Value::Array(h.iter().map(|(k, v)| json!([k, v])).collect())
}

/// The version of the JSON output; fields are documented in docs/JSON.md.
pub const JSON_VERSION: u32 = 1;

/// A usage or network error as one JSON object: `version`, `allowed`, `error` and `message`.
pub fn json_error(message: &str) -> Value {
    json!({
        "version": JSON_VERSION,
        "allowed": false,
        "error": "usage-or-network",
        "message": message,
    })
}

/// The report as one JSON object (documented in docs/JSON.md).
pub fn json(r: &Report) -> Value {
    json!({
        "version": JSON_VERSION,
        "allowed": r.engines.iter().all(|e| e.allowed) && r.allowed,
        "engines": r.engines.iter().map(|e| json!({
            "browser": engine_name(e.browser).to_ascii_lowercase(),
            "allowed": e.allowed,
            "status": e.status,
            "exposed": e.exposed,
            "error": e.error,
            "message": e.message,
        })).collect::<Vec<_>>(),
        "preflight": r.preflight,
        "message": r.message,
        "error": r.error,
        "status": r.status,
        "exposed": r.exposed,
        "exchanges": r.exchanges.iter().map(|e| json!({
            "preflight": e.preflight,
            "request": { "method": e.method, "url": e.url, "headers": pairs(&e.request_headers) },
            "response": { "status": e.status, "headers": pairs(&e.response_headers) },
        })).collect::<Vec<_>>(),
        "culprit": r.culprit.as_ref().map(|(_, h)| h),
        "fix": { "server": r.server_fix, "request": r.request_fix },
        "dropped": r.dropped.iter().map(|(name, reason)| json!({ "name": name, "reason": reason })).collect::<Vec<_>>(),
        "notes": r.notes,
        "server": r.server,
    })
}
