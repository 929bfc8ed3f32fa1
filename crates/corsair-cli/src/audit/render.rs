//! The audit's report, for people and for machines.

use corsair::audit::{EngineVerdict, Exchange, Finding};
use serde_json::{json, Value};

use super::Report;
use crate::check::{engine_name, visible};

/// The report as text: each finding with its severity, origin, evidence (the offending header
/// marked), impact and fix.
pub fn human(r: &Report) -> String {
    let mut out = format!("corsair audit {}\n", r.target);
    if r.findings.is_empty() {
        out.push_str(&format!(
            "\nNo finding: no crafted origin can read this response ({} requests).\n",
            r.requests
        ));
    }
    for f in &r.findings {
        let class = f.class();
        let origin = if f.origin.is_empty() {
            "(none)"
        } else {
            &f.origin
        };
        out.push_str(&format!(
            "\n[{}] {}  origin {}{}\n",
            f.severity,
            f.id,
            origin,
            if f.credentials { "  with cookies" } else { "" }
        ));
        if !f.note.is_empty() {
            out.push_str(&format!("  {}\n", visible(&f.note)));
        }
        if f.engines.iter().any(|e| !e.readable) {
            for e in &f.engines {
                out.push_str(&engine(e));
            }
        }
        out.push_str(&format!("  Impact: {}.\n", class.impact));
        for e in &f.exchanges {
            out.push_str(&exchange(e, f.culprit));
        }
        out.push_str(&format!("  Fix: {}.\n", class.fix));
        if !f.policy.is_empty() {
            out.push_str("  Policy:\n");
            for line in f.policy.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    if r.skipped > 0 {
        out.push_str(&format!(
            "\n{} probes not sent: the budget of {} requests ran out (raise --max-requests).\n",
            r.skipped, r.requests
        ));
    }
    out
}

fn exchange(e: &Exchange, culprit: &str) -> String {
    let mut out = format!("  > {} {}\n", e.method, e.url);
    for (k, v) in &e.request_headers {
        out.push_str(&format!("  >   {k}: {}\n", visible(v)));
    }
    out.push_str(&format!("  < {}\n", e.status));
    let mut marked = false;
    for (k, v) in &e.response_headers {
        let mark = if k == culprit {
            marked = true;
            "   <-- here"
        } else {
            ""
        };
        out.push_str(&format!("  <   {k}: {}{mark}\n", visible(v)));
    }
    if !marked {
        out.push_str(&format!("  <   ({culprit} is missing)   <-- here\n"));
    }
    out
}

/// One engine's verdict on a finding's read: `Chromium: reads it`, or its words, their later
/// lines indented.
fn engine(e: &EngineVerdict) -> String {
    let words = if e.readable {
        "reads it"
    } else {
        e.message.as_str()
    };
    format!(
        "  {}: {}\n",
        engine_name(e.browser),
        words
            .split('\n')
            .map(visible)
            .collect::<Vec<_>>()
            .join("\n    ")
    )
}

fn pairs(h: &[(String, String)]) -> Value {
    Value::Array(h.iter().map(|(k, v)| json!([k, v])).collect())
}

/// One finding as JSON.
pub fn finding(f: &Finding) -> Value {
    let class = f.class();
    json!({
        "id": f.id,
        "severity": f.severity.as_str(),
        "origin": f.origin,
        "credentials": f.credentials,
        "evidence": {
            "exchanges": f.exchanges.iter().map(|e| json!({
                "request": { "method": e.method, "url": e.url, "headers": pairs(&e.request_headers) },
                "response": { "status": e.status, "headers": pairs(&e.response_headers) },
            })).collect::<Vec<_>>(),
            "culprit": f.culprit,
            "note": f.note,
            "engines": f.engines.iter().map(|e| json!({
                "browser": engine_name(e.browser).to_ascii_lowercase(),
                "readable": e.readable,
                "message": (!e.readable).then_some(&e.message),
            })).collect::<Vec<_>>(),
        },
        "impact": class.impact,
        "fix": { "policy": f.policy, "words": class.fix },
    })
}

/// The report as one JSON object: `{"version": 1, "target", "findings": [...]}`.
pub fn json(r: &Report) -> Value {
    json!({
        "version": 1,
        "target": r.target,
        "findings": r.findings.iter().map(finding).collect::<Vec<_>>(),
        "requests": r.requests,
        "skipped": r.skipped,
    })
}
