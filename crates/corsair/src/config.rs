//! Policy files (feature `serde`): the TOML format `corsair proxy` and services share.
//!
//! ```toml
//! allow_origins = ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
//! allow_methods = ["GET", "POST", "PUT", "DELETE"]
//! allow_headers = ["Content-Type", "Authorization"]   # ["*"] for any
//! expose_headers = ["X-Request-Id"]
//! allow_credentials = true
//! max_age = 600            # seconds
//! allow_private_network = false
//! preflight_status = 204
//!
//! [[route]]                # a path prefix with its own policy; the first match wins
//! path = "/public/"
//! allow_origins = ["*"]
//! ```
//!
//! Keys are the builder's settings, with the same validation and the same error codes. A
//! `[[route]]` is a whole policy of its own: it does not inherit the top-level keys (so that a
//! public route can drop credentials). Requests whose path starts with no route's `path` get the
//! top-level policy. An unknown key is an error that names its line and the nearest known key.
//!
//! ```
//! use corsair::config::PolicySet;
//!
//! let set = PolicySet::from_toml(r#"
//! allow_origins = ["https://app.example.com"]
//! allow_credentials = true
//!
//! [[route]]
//! path = "/public/"
//! allow_origins = ["*"]
//! "#)?;
//! assert!(set.for_path("/api/users").allows_credentials());
//! assert!(!set.for_path("/public/logo.png").allows_credentials());
//!
//! let errors = PolicySet::from_toml("allow_origin = [\"https://a.example\"]\n").unwrap_err();
//! assert_eq!(
//!     errors.errors()[0].to_string(),
//!     "line 1: [unknown-key] \"allow_origin\": unknown key. Fix: did you mean `allow_origins`?"
//! );
//! # Ok::<(), corsair::config::FileErrors>(())
//! ```

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{ConfigError, ErrorCode};
use crate::{Cors, CorsBuilder};

/// The keys of a policy (top level or route).
pub const KEYS: [&str; 11] = [
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "allow_credentials",
    "max_age",
    "allow_private_network",
    "preflight_status",
    "dangerously_allow_credentials_with_any_origin",
    "dangerously_allow_null_origin",
    "dangerously_allow_insecure_origins_with_credentials",
];

#[derive(Deserialize, Default)]
struct RawPolicy {
    allow_origins: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_headers: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    allow_credentials: Option<bool>,
    max_age: Option<u64>,
    allow_private_network: Option<bool>,
    preflight_status: Option<u16>,
    dangerously_allow_credentials_with_any_origin: Option<bool>,
    dangerously_allow_null_origin: Option<bool>,
    dangerously_allow_insecure_origins_with_credentials: Option<bool>,
    path: Option<String>,
    route: Option<Vec<RawPolicy>>,
    /// Keys that are not settings, filled from the untyped parse (serde's `flatten` would lose
    /// the spans of type errors).
    #[serde(skip)]
    unknown: Vec<String>,
}

impl RawPolicy {
    fn builder(&self) -> CorsBuilder {
        let mut b = Cors::builder();
        if let Some(v) = &self.allow_origins {
            b = b.allow_origins(v.iter().cloned());
        }
        if let Some(v) = &self.allow_methods {
            b = b.allow_methods(v.iter().cloned());
        }
        if let Some(v) = &self.allow_headers {
            b = b.allow_headers(v.iter().cloned());
        }
        if let Some(v) = &self.expose_headers {
            b = b.expose_headers(v.iter().cloned());
        }
        if let Some(v) = self.allow_credentials {
            b = b.allow_credentials(v);
        }
        if let Some(v) = self.max_age {
            b = b.max_age(Duration::from_secs(v));
        }
        if let Some(v) = self.allow_private_network {
            b = b.allow_private_network(v);
        }
        if let Some(v) = self.preflight_status {
            b = b.preflight_status(v);
        }
        if let Some(v) = self.dangerously_allow_credentials_with_any_origin {
            b = b.dangerously_allow_credentials_with_any_origin(v);
        }
        if let Some(v) = self.dangerously_allow_null_origin {
            b = b.dangerously_allow_null_origin(v);
        }
        if let Some(v) = self.dangerously_allow_insecure_origins_with_credentials {
            b = b.dangerously_allow_insecure_origins_with_credentials(v);
        }
        b
    }
}

/// One problem in a policy file: the builder's error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    line: Option<usize>,
    section: Option<String>,
    error: ConfigError,
}

impl FileError {
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The route it is in (`route 2 (/public/)`), or `None` for the top level.
    pub fn section(&self) -> Option<&str> {
        self.section.as_deref()
    }

    /// The problem itself, with its code and fix.
    pub fn error(&self) -> &ConfigError {
        &self.error
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(s) = &self.section {
            write!(f, "{s}: ")?;
        }
        let e = &self.error;
        write!(f, "[{}] ", e.code())?;
        if e.setting() != "policy file" {
            write!(f, "{}: ", e.setting())?;
        }
        if let Some(v) = e.value() {
            write!(f, "{v:?}: ")?;
        }
        write!(f, "{} Fix: {}", e.message(), e.fix())
    }
}

/// Every problem of a policy file; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileErrors(Vec<FileError>);

impl FileErrors {
    /// The problems, in file order.
    pub fn errors(&self) -> &[FileError] {
        &self.0
    }
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

/// A compiled policy file: the top-level policy and the route policies, by path prefix.
#[derive(Clone, Debug)]
pub struct PolicySet {
    default: Cors,
    routes: Vec<(String, Cors)>,
}

impl PolicySet {
    /// One policy for every path.
    pub fn single(cors: Cors) -> Self {
        PolicySet {
            default: cors,
            routes: Vec::new(),
        }
    }

    /// Reads a policy file.
    ///
    /// # Errors
    /// The file cannot be read, or every problem in it, with line numbers.
    pub fn load(path: &Path) -> Result<PolicySet, FileErrors> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            FileErrors(vec![FileError {
                line: None,
                section: None,
                error: ConfigError::new(
                    ErrorCode::InvalidFile,
                    "policy file",
                    Some(&path.display().to_string()),
                    format!("cannot be read: {e}."),
                    "check the path and its permissions.",
                ),
            }])
        })?;
        Self::from_toml(&source)
    }

    /// Parses and validates a policy file's text.
    ///
    /// # Errors
    /// Every problem, each with its line, code and fix.
    pub fn from_toml(source: &str) -> Result<PolicySet, FileErrors> {
        let mut raw: RawPolicy = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| line_at(source, s.start));
            FileErrors(vec![FileError {
                line,
                section: None,
                error: ConfigError::new(
                    ErrorCode::InvalidFile,
                    "policy file",
                    None,
                    format!("{}.", e.message().trim_end_matches('.')),
                    "write the keys as in the documented format: lists of strings, booleans, whole numbers.",
                ),
            }])
        })?;
        // Unknown keys, from an untyped parse (it succeeds wherever the typed one did).
        if let Ok(table) = toml::from_str::<toml::Table>(source) {
            let unknown = |t: &toml::Table, extra: &str| -> Vec<String> {
                t.keys()
                    .filter(|k| !KEYS.contains(&k.as_str()) && k.as_str() != extra)
                    .cloned()
                    .collect()
            };
            raw.unknown = unknown(&table, "route");
            raw.unknown.retain(|k| k != "path");
            if let (Some(toml::Value::Array(tables)), Some(routes)) =
                (table.get("route"), raw.route.as_mut())
            {
                for (t, r) in tables.iter().zip(routes.iter_mut()) {
                    if let toml::Value::Table(t) = t {
                        r.unknown = unknown(t, "path");
                        r.unknown.retain(|k| k != "route");
                    }
                }
            }
        }
        let sections = sections(source);
        let mut errors = Vec::new();
        let check = |raw: &RawPolicy, index: Option<usize>, errors: &mut Vec<FileError>| {
            let (start, end) = sections
                .get(index.map_or(0, |i| i + 1))
                .copied()
                .unwrap_or((0, source.len()));
            let text = &source[start..end];
            let section = index.map(|i| {
                format!(
                    "route {} ({})",
                    i + 1,
                    raw.path.as_deref().unwrap_or("no path")
                )
            });
            let at = |needle: &str| text.find(needle).map(|o| line_at(source, start + o));
            for key in &raw.unknown {
                errors.push(FileError {
                    line: key_line(text, key).map(|o| line_at(source, start + o)),
                    section: section.clone(),
                    error: ConfigError::new(
                        ErrorCode::UnknownKey,
                        "policy file",
                        Some(key),
                        "unknown key.",
                        match nearest(key) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!("known keys: {}.", KEYS.join(", ")),
                        },
                    ),
                });
            }
            if index.is_none() && raw.path.is_some() {
                errors.push(FileError {
                    line: key_line(text, "path").map(|o| line_at(source, start + o)),
                    section: None,
                    error: ConfigError::new(
                        ErrorCode::UnknownKey,
                        "policy file",
                        Some("path"),
                        "`path` belongs in a [[route]] table.",
                        "put it under [[route]], or remove it.",
                    ),
                });
            }
            if index.is_some() {
                match raw.path.as_deref() {
                    Some(p) if p.starts_with('/') => {}
                    other => errors.push(FileError {
                        line: key_line(text, "path")
                            .map(|o| line_at(source, start + o))
                            .or_else(|| Some(line_at(source, start))),
                        section: section.clone(),
                        error: ConfigError::new(
                            ErrorCode::RoutePathInvalid,
                            "path",
                            other,
                            "a route needs a path prefix starting with `/`.",
                            "write path = \"/public/\".",
                        ),
                    }),
                }
                if raw.route.is_some() {
                    errors.push(FileError {
                        line: Some(line_at(source, start)),
                        section: section.clone(),
                        error: ConfigError::new(
                            ErrorCode::UnknownKey,
                            "policy file",
                            Some("route"),
                            "routes do not nest.",
                            "declare every [[route]] at the top level.",
                        ),
                    });
                }
            }
            match raw.builder().build() {
                Ok(cors) => Some(cors),
                Err(es) => {
                    for e in es {
                        let line = e
                            .value()
                            .and_then(|v| at(&format!("\"{v}\"")))
                            .or_else(|| {
                                key_line(text, e.setting()).map(|o| line_at(source, start + o))
                            })
                            .or_else(|| Some(line_at(source, start)));
                        errors.push(FileError {
                            line,
                            section: section.clone(),
                            error: e,
                        });
                    }
                    None
                }
            }
        };
        let default = check(&raw, None, &mut errors);
        let mut routes = Vec::new();
        for (i, r) in raw.route.iter().flatten().enumerate() {
            if let Some(cors) = check(r, Some(i), &mut errors) {
                routes.push((r.path.clone().unwrap_or_default(), cors));
            }
        }
        match default {
            Some(default) if errors.is_empty() => Ok(PolicySet { default, routes }),
            _ => {
                errors.sort_by_key(|e| e.line.unwrap_or(0));
                Err(FileErrors(errors))
            }
        }
    }

    /// The policy for a request path: the first route whose `path` prefixes it, else the
    /// top-level policy.
    pub fn for_path(&self, path: &str) -> &Cors {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(&self.default, |(_, cors)| cors)
    }

    /// The route prefixes, in order.
    pub fn route_prefixes(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| p.as_str())
    }
}

/// The 1-based line of a byte offset.
fn line_at(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The byte ranges of the top level and of each `[[route]]` table, in order.
fn sections(source: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        if line.trim_start().starts_with("[[route]]") {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(source.len());
        out.push((s, e));
    }
    out
}

/// The offset of the line defining `key` in `text`, if any.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let bare = t.trim_start_matches('"');
        if bare.starts_with(key)
            && bare[key.len()..]
                .trim_start_matches('"')
                .trim_start()
                .starts_with('=')
        {
            return Some(offset + (line.len() - t.len()));
        }
        offset += line.len();
    }
    None
}

/// The known key nearest to `key` by edit distance, if it is near enough to be a typo.
fn nearest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    KEYS.iter()
        .chain(["path", "route"].iter())
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"allow_origins = ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
allow_methods = ["GET", "POST", "PUT", "DELETE"]
allow_headers = ["Content-Type", "Authorization"]   # ["*"] for any
expose_headers = ["X-Request-Id"]
allow_credentials = true
max_age = 600            # seconds
allow_private_network = false
preflight_status = 204

[[route]]                # optional; a path prefix with its own policy; first match wins, else the top level
path = "/public/"
allow_origins = ["*"]
"#;

    #[test]
    fn the_documented_example_loads() {
        let set = PolicySet::from_toml(GOOD).unwrap();
        assert!(set.for_path("/api").allows_credentials());
        assert!(!set.for_path("/public/x").allows_credentials());
        assert_eq!(set.route_prefixes().collect::<Vec<_>>(), ["/public/"]);
    }

    fn problems(source: &str) -> Vec<(Option<usize>, ErrorCode)> {
        PolicySet::from_toml(source)
            .unwrap_err()
            .errors()
            .iter()
            .map(|e| (e.line(), e.error().code()))
            .collect()
    }

    #[test]
    fn every_problem_with_its_line() {
        let src = r#"allow_origins = [
  "https://app.example.com/",
  "null",
]
allow_credentials = true
alow_methods = ["PUT"]
max_age = 100000

[[route]]
path = "public"
allow_origins = ["*"]
allow_credentials = true
"#;
        use ErrorCode::*;
        assert_eq!(
            problems(src),
            vec![
                (Some(2), OriginTrailingSlash),
                (Some(3), NullOrigin),
                (Some(6), UnknownKey),
                (Some(7), MaxAgeTooLarge),
                (Some(10), RoutePathInvalid),
                (Some(11), CredentialsWithAnyOrigin),
            ]
        );
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let e =
            PolicySet::from_toml("allow_origins = [\"https://a.example\"]\nmax-age = 5\nfoo = 1\n")
                .unwrap_err();
        let lines: Vec<String> = e.errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "line 2: [unknown-key] \"max-age\": unknown key. Fix: did you mean `max_age`?",
                format!(
                    "line 3: [unknown-key] \"foo\": unknown key. Fix: known keys: {}.",
                    KEYS.join(", ")
                )
                .as_str(),
            ]
        );
    }

    #[test]
    fn syntax_and_type_errors_have_lines() {
        assert_eq!(
            problems("allow_origins = [\"https://a.example\"]\nmax_age = \"ten\"\n"),
            vec![(Some(2), ErrorCode::InvalidFile)]
        );
        // An unterminated array is reported where it opens.
        assert_eq!(
            problems("allow_origins = [\n"),
            vec![(Some(1), ErrorCode::InvalidFile)]
        );
        assert_eq!(
            problems("allow_origins = \"https://a.example\"\n"),
            vec![(Some(1), ErrorCode::InvalidFile)]
        );
    }

    #[test]
    fn routes_do_not_inherit() {
        let set = PolicySet::from_toml(
            "allow_origins = [\"https://a.example\"]\nallow_methods = [\"PUT\"]\n[[route]]\npath = \"/p/\"\nallow_origins = [\"https://b.example\"]\n",
        )
        .unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("origin", "https://a.example".parse().unwrap());
        let d = set.for_path("/p/x").decide(&http::Method::GET, &h);
        assert!(d.rejection().is_some());
    }
}
