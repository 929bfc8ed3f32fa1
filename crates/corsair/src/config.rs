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
//! path = "/public"         # covers /public and /public/…, not /publicity
//! allow_origins = ["*"]
//! ```
//!
//! Keys are the builder's settings, with the same validation and the same error codes. A
//! `[[route]]` is a whole policy of its own: it does not inherit the top-level keys (so that a
//! public route can drop credentials). A route's `path` matches whole segments: `/public` (or
//! `/public/`) covers `/public` and every path below `/public/`, never `/publicity`. Requests no
//! route covers get the top-level policy; a route that an earlier one covers is never used, and is
//! an error (`route-shadowed`). An unknown key is an error that names its line and the nearest
//! known key. Every position comes from the TOML parser, so a value repeated in a comment or
//! under another key never moves the line reported.
//!
//! ```
//! use corsair::config::PolicySet;
//!
//! let set = PolicySet::from_toml(r#"
//! allow_origins = ["https://app.example.com"]
//! allow_credentials = true
//!
//! [[route]]
//! path = "/public"
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
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{ConfigError, ConfigNote, ErrorCode};
use crate::policy::set::{path_problem, shadowed_by, Prefix};
use crate::{Policy, PolicyBuilder};

pub use crate::policy::set::PolicySet;

/// How a setting's TOML value reaches the builder.
#[derive(Clone, Copy)]
enum Apply {
    /// A list of strings.
    Strings(fn(PolicyBuilder, Vec<String>) -> PolicyBuilder),
    /// A boolean.
    Flag(fn(PolicyBuilder, bool) -> PolicyBuilder),
    /// A whole number of seconds.
    Seconds(fn(PolicyBuilder, u64) -> PolicyBuilder),
    /// An HTTP status code.
    Status(fn(PolicyBuilder, u16) -> PolicyBuilder),
}

impl Apply {
    /// The TOML type, as a fix names it.
    fn expected(self) -> &'static str {
        match self {
            Apply::Strings(_) => "a list of strings, such as [\"https://app.example.com\"]",
            Apply::Flag(_) => "true or false",
            Apply::Seconds(_) => "a whole number of seconds, such as 600",
            Apply::Status(_) => "a status code, such as 204",
        }
    }
}

/// Every setting a policy (top level or route) may have: the file's key is the builder's method
/// name. The one list: the known keys, the unknown-key suggestions and the mapping to the
/// builder all come from it.
const SETTINGS: &[(&str, Apply)] = &[
    ("allow_origins", Apply::Strings(|b, v| b.allow_origins(v))),
    ("allow_methods", Apply::Strings(|b, v| b.allow_methods(v))),
    ("allow_headers", Apply::Strings(|b, v| b.allow_headers(v))),
    ("expose_headers", Apply::Strings(|b, v| b.expose_headers(v))),
    (
        "allow_credentials",
        Apply::Flag(PolicyBuilder::allow_credentials),
    ),
    (
        "max_age",
        Apply::Seconds(|b, s| b.max_age(Duration::from_secs(s))),
    ),
    (
        "allow_private_network",
        Apply::Flag(PolicyBuilder::allow_private_network),
    ),
    (
        "preflight_status",
        Apply::Status(PolicyBuilder::preflight_status),
    ),
    (
        "dangerously_allow_credentials_with_any_origin",
        Apply::Flag(PolicyBuilder::dangerously_allow_credentials_with_any_origin),
    ),
    (
        "dangerously_allow_null_origin",
        Apply::Flag(PolicyBuilder::dangerously_allow_null_origin),
    ),
    (
        "dangerously_allow_insecure_origins_with_credentials",
        Apply::Flag(PolicyBuilder::dangerously_allow_insecure_origins_with_credentials),
    ),
    (
        "dangerously_allow_private_network_with_any_origin",
        Apply::Flag(PolicyBuilder::dangerously_allow_private_network_with_any_origin),
    ),
    (
        "dangerously_allow_private_network_with_insecure_origins",
        Apply::Flag(PolicyBuilder::dangerously_allow_private_network_with_insecure_origins),
    ),
    (
        "dangerously_allow_public_suffix_subdomains",
        Apply::Flag(PolicyBuilder::dangerously_allow_public_suffix_subdomains),
    ),
];

/// The key of a route's path prefix, and of the route array.
const PATH: &str = "path";
const ROUTE: &str = "route";
/// The key of a route's own upstream (`corsair proxy`).
const UPSTREAM: &str = "upstream";

/// The keys a policy (top level or route) accepts, in documentation order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(k, _)| *k)
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

    /// The route it is in (`route 2 (/public)`), or `None` for the top level.
    pub fn section(&self) -> Option<&str> {
        self.section.as_deref()
    }

    /// The problem itself, with its code and fix.
    pub fn error(&self) -> &ConfigError {
        &self.error
    }

    /// The problem without its line: `route 2 (/public): [code] setting: "value": message Fix: …`.
    pub fn detail(&self) -> impl fmt::Display + '_ {
        Detail(self)
    }
}

struct Detail<'a>(&'a FileError);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.0.section {
            write!(f, "{s}: ")?;
        }
        let e = &self.0.error;
        write!(f, "[{}] ", e.code())?;
        if e.setting() != FILE {
            write!(f, "{}: ", e.setting())?;
        }
        if let Some(v) = e.value() {
            write!(f, "{v:?}: ")?;
        }
        write!(f, "{} Fix: {}", e.message(), e.fix())
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        write!(f, "{}", self.detail())
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

    /// The problems as a compiler prints them, one a line: `FILE:LINE: [code] … Fix: …`.
    ///
    /// ```
    /// let errors = corsair::config::PolicySet::from_toml("allow_origins = [\"null\"]\n").unwrap_err();
    /// assert!(errors.with_file("cors.toml").to_string().starts_with("cors.toml:1: [null-origin] allow_origins: \"null\": "));
    /// ```
    pub fn with_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        WithFile(self, file)
    }
}

struct WithFile<'a>(&'a FileErrors, &'a str);

impl fmt::Display for WithFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0 .0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match e.line {
                Some(l) => write!(f, "{}:{l}: {}", self.1, e.detail())?,
                None => write!(f, "{}: {}", self.1, e.detail())?,
            }
        }
        Ok(())
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

impl PolicySet {
    /// Reads a policy file.
    ///
    /// # Errors
    /// The file cannot be read (`invalid-file`, without a line), or every problem in it, with
    /// line numbers.
    pub fn load(path: &Path) -> Result<PolicySet, FileErrors> {
        PolicyFile::load(path).policies
    }

    /// Parses and validates a policy file's text.
    ///
    /// # Errors
    /// Every problem, each with its line (taken from the TOML parser's positions), code and fix.
    pub fn from_toml(source: &str) -> Result<PolicySet, FileErrors> {
        PolicyFile::parse(source).policies
    }
}

/// A policy file read in full, as `corsair lint` reads it: the policies or every problem, and
/// the notes either way (origins rewritten into the form browsers send, and every grant a
/// `dangerously_` key made).
///
/// ```
/// use corsair::config::PolicyFile;
/// use corsair::NoteCode;
///
/// let file = PolicyFile::parse("allow_origins = [\"http://127.1:8000\"]\n");
/// assert!(file.policies.is_ok());
/// assert_eq!(file.notes[0].line(), Some(1));
/// assert_eq!(file.notes[0].note().code(), NoteCode::OriginRewritten);
/// assert_eq!(file.notes[0].note().rewritten(), Some("http://127.0.0.1:8000"));
/// ```
#[derive(Debug)]
pub struct PolicyFile {
    /// The compiled policies, or every problem.
    pub policies: Result<PolicySet, FileErrors>,
    /// The notes, in file order.
    pub notes: Vec<FileNote>,
    /// Valid but risky settings, in file order: the classes `corsair audit` reports on a live
    /// server ([`crate::audit::policy_warnings`]), found in the file before it is deployed.
    pub warnings: Vec<FileWarning>,
    /// Each route's `upstream`, in route order (the index of
    /// [`PolicySet::route_index`]): where `corsair proxy` forwards that route's requests, `None`
    /// for its `--upstream`. Empty when the file has errors. Services ignore the key.
    ///
    /// ```
    /// use corsair::config::PolicyFile;
    ///
    /// let file = PolicyFile::parse(r#"
    /// allow_origins = ["https://app.example.com"]
    /// [[route]]
    /// path = "/search"
    /// upstream = "http://127.0.0.1:9002"
    /// allow_origins = ["https://app.example.com"]
    /// "#);
    /// let set = file.policies?;
    /// let route = set.route_index("/search/q").unwrap();
    /// assert_eq!(file.upstreams[route].as_ref().unwrap(), "http://127.0.0.1:9002/");
    /// # Ok::<(), corsair::config::FileErrors>(())
    /// ```
    pub upstreams: Vec<Option<http::Uri>>,
}

impl PolicyFile {
    /// Reads a policy file's text.
    pub fn parse(source: &str) -> Self {
        let mut file = read(source);
        file.notes.sort_by_key(|n| n.line.unwrap_or(0));
        file.warnings.sort_by_key(|w| w.line.unwrap_or(0));
        file
    }

    /// Reads a policy file from disk; one that cannot be read is an `invalid-file` error
    /// without a line.
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(source) => Self::parse(&source),
            Err(e) => PolicyFile {
                policies: Err(FileErrors(vec![FileError {
                    line: None,
                    section: None,
                    error: ConfigError::new(
                        ErrorCode::InvalidFile,
                        FILE,
                        Some(&path.display().to_string()),
                        format!("cannot be read: {e}."),
                        "check the path and its permissions.",
                    ),
                }])),
                notes: Vec::new(),
                warnings: Vec::new(),
                upstreams: Vec::new(),
            },
        }
    }
}

/// A warning on a policy file: a valid but risky setting, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWarning {
    line: Option<usize>,
    section: Option<String>,
    warning: crate::audit::PolicyWarning,
}

impl FileWarning {
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The route it is in, or `None` for the top level.
    pub fn section(&self) -> Option<&str> {
        self.section.as_deref()
    }

    /// The warning itself: its audit class id, the value at fault, impact and fix.
    pub fn warning(&self) -> &crate::audit::PolicyWarning {
        &self.warning
    }
}

/// A note on a policy file: something valid that lint points out, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNote {
    line: Option<usize>,
    section: Option<String>,
    note: ConfigNote,
}

impl FileNote {
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The route it is in, or `None` for the top level.
    pub fn section(&self) -> Option<&str> {
        self.section.as_deref()
    }

    /// The note itself.
    pub fn note(&self) -> &ConfigNote {
        &self.note
    }
}

impl fmt::Display for FileNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(s) = &self.section {
            write!(f, "{s}: ")?;
        }
        write!(f, "note: {}", self.note)
    }
}

/// A route as read: its prefix, its policy if valid, its upstream if any.
type ReadRoute = (Spanned<Prefix>, Option<Policy>, Option<http::Uri>);

/// The file's policies, notes, warnings and upstreams (notes and warnings not yet sorted).
fn read(source: &str) -> PolicyFile {
    let doc = match DeTable::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let error = FileError {
                line: e.span().map(|s| line_at(source, s.start)),
                section: None,
                error: ConfigError::new(
                    ErrorCode::InvalidFile,
                    FILE,
                    None,
                    format!("{}.", e.message().trim().trim_end_matches('.')),
                    "write the keys as in the documented format: lists of strings, booleans, whole numbers.",
                ),
            };
            return PolicyFile {
                policies: Err(FileErrors(vec![error])),
                notes: Vec::new(),
                warnings: Vec::new(),
                upstreams: Vec::new(),
            };
        }
    };
    let mut file = Reader {
        source,
        errors: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    };
    let top = file.policy(doc.get_ref(), None, 0);
    let mut routes: Vec<ReadRoute> = Vec::new();
    if let Some((key, value)) = doc.get_ref().get_key_value(ROUTE) {
        match value.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        if let Some(route) = file.route(t, i, item.span().start) {
                            routes.push(route);
                        }
                    } else {
                        file.type_error(key, item.span(), None, "[[route]] tables");
                    }
                }
            }
            _ => file.type_error(key, value.span(), None, "[[route]] tables"),
        }
    }
    file.shadowed_routes(&routes);
    let mut upstreams = Vec::new();
    let policies = match top {
        Some(default) if file.errors.is_empty() => {
            let mut kept = Vec::with_capacity(routes.len());
            for (p, c, u) in routes {
                if let Some(c) = c {
                    kept.push((p.into_inner(), c));
                    upstreams.push(u);
                }
            }
            Ok(PolicySet::with_routes(default, kept))
        }
        _ => {
            file.errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(FileErrors(file.errors))
        }
    };
    PolicyFile {
        policies,
        notes: file.notes,
        warnings: file.warnings,
        upstreams,
    }
}

/// The `setting` of problems that belong to the file rather than to one setting.
const FILE: &str = "policy file";

/// Where one setting's values are in the file, to place the builder's errors.
struct Entry {
    key: &'static str,
    key_span: Range<usize>,
    items: Vec<(String, Range<usize>)>,
}

/// Reads tables into builders, collecting every problem with its position.
struct Reader<'s> {
    source: &'s str,
    errors: Vec<FileError>,
    notes: Vec<FileNote>,
    warnings: Vec<FileWarning>,
}

impl Reader<'_> {
    fn push(&mut self, at: usize, section: Option<&str>, error: ConfigError) {
        self.errors.push(FileError {
            line: Some(line_at(self.source, at)),
            section: section.map(str::to_owned),
            error,
        });
    }

    fn type_error(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        at: Range<usize>,
        section: Option<&str>,
        expected: &str,
    ) {
        self.push(
            at.start,
            section,
            ConfigError::new(
                ErrorCode::InvalidFile,
                FILE,
                Some(key.get_ref()),
                format!("this key takes {expected}."),
                format!("write {key} = {expected}.", key = key.get_ref()),
            ),
        );
    }

    /// One `[[route]]`: its path, then its policy.
    fn route(&mut self, table: &DeTable<'_>, index: usize, start: usize) -> Option<ReadRoute> {
        let path = table
            .get_key_value(PATH)
            .and_then(|(_, v)| v.get_ref().as_str().map(|s| (s, v.span())));
        let name = format!(
            "route {} ({})",
            index + 1,
            path.as_ref().map_or("no path", |p| p.0)
        );
        let section = Some(name.as_str());
        let prefix = match (table.get_key_value(PATH), path) {
            (Some(_), Some((p, span))) => {
                let problem = path_problem(p);
                match problem {
                    Some(message) => {
                        self.push(
                            span.start,
                            section,
                            ConfigError::new(
                                ErrorCode::RoutePathInvalid,
                                PATH,
                                Some(p),
                                message,
                                "write a path prefix such as path = \"/public\".",
                            ),
                        );
                        None
                    }
                    None => Some(Spanned::new(span, Prefix::new(p))),
                }
            }
            (Some((key, v)), None) => {
                self.type_error(
                    key,
                    v.span(),
                    section,
                    "a path prefix string, such as \"/public\"",
                );
                None
            }
            (None, _) => {
                self.push(
                    start,
                    section,
                    ConfigError::new(
                        ErrorCode::RoutePathInvalid,
                        PATH,
                        None,
                        "a route needs the path prefix it governs.",
                        "write path = \"/public\" in this [[route]].",
                    ),
                );
                None
            }
        };
        let upstream = table
            .get_key_value(UPSTREAM)
            .and_then(|(key, v)| self.upstream(key, v, section));
        let cors = self.policy(table, section, start);
        prefix.map(|p| (p, cors, upstream))
    }

    /// A route's `upstream`: an `http://` or `https://` base URL (a path prefix allowed, no
    /// query), as `corsair proxy --upstream` takes it.
    fn upstream(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        section: Option<&str>,
    ) -> Option<http::Uri> {
        let example = "a URL such as \"http://127.0.0.1:9001\"";
        let Some(text) = value.get_ref().as_str() else {
            self.type_error(key, value.span(), section, example);
            return None;
        };
        let problem = match text.parse::<http::Uri>() {
            Err(_) => "not a URL.",
            Ok(u) if u.scheme().is_none() => "not a URL: it has no scheme.",
            Ok(u) if !matches!(u.scheme_str(), Some("http" | "https")) => {
                "the proxy reaches an upstream over http:// or https:// only."
            }
            Ok(u) if u.host().is_none_or(str::is_empty) => "the URL has no host.",
            Ok(u) if u.authority().is_some_and(|a| a.as_str().contains('@')) => {
                "an upstream URL carries no user name or password."
            }
            Ok(u) if u.query().is_some() => {
                "an upstream is a base URL: request paths and queries are appended to it, so it has no query of its own."
            }
            Ok(u) => return Some(u),
        };
        self.push(
            value.span().start,
            section,
            ConfigError::new(
                ErrorCode::UpstreamInvalid,
                UPSTREAM,
                Some(text),
                problem,
                format!("write upstream = \"http://HOST:PORT\", {example}, optionally with a path prefix."),
            ),
        );
        None
    }

    /// One policy table: every known key read into the builder, every unknown one reported,
    /// then the builder's own validation, each problem placed at its value.
    fn policy(
        &mut self,
        table: &DeTable<'_>,
        section: Option<&str>,
        start: usize,
    ) -> Option<Policy> {
        let mut builder = Policy::builder();
        let mut entries = Vec::new();
        let mut readable = true;
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let Some(&(setting, apply)) = SETTINGS.iter().find(|(k, _)| *k == name) else {
                let allowed_here = if section.is_some() {
                    name == PATH || name == UPSTREAM
                } else {
                    name == ROUTE
                };
                if allowed_here {
                    continue;
                }
                let (message, fix) = match name {
                    PATH => (
                        "`path` belongs in a [[route]] table.".to_owned(),
                        "put it under [[route]], or remove it.".to_owned(),
                    ),
                    ROUTE => (
                        "routes do not nest.".to_owned(),
                        "declare every [[route]] at the top level.".to_owned(),
                    ),
                    UPSTREAM => (
                        "`upstream` belongs in a [[route]] table: the top level's upstream is the proxy's --upstream.".to_owned(),
                        "move it under a [[route]] with its path, or give it as --upstream.".to_owned(),
                    ),
                    _ => (
                        "unknown key.".to_owned(),
                        match nearest(name) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => {
                                format!("known keys: {}.", keys().collect::<Vec<_>>().join(", "))
                            }
                        },
                    ),
                };
                self.push(
                    key.span().start,
                    section,
                    ConfigError::new(ErrorCode::UnknownKey, FILE, Some(name), message, fix),
                );
                continue;
            };
            let mut entry = Entry {
                key: setting,
                key_span: key.span(),
                items: Vec::new(),
            };
            let applied = match (apply, value.get_ref()) {
                (Apply::Strings(f), DeValue::Array(items)) => {
                    let mut strings = Vec::with_capacity(items.len());
                    for item in items {
                        match item.get_ref() {
                            DeValue::String(s) => {
                                strings.push(s.to_string());
                                entry.items.push((s.to_string(), item.span()));
                            }
                            _ => {
                                self.type_error(key, item.span(), section, apply.expected());
                                readable = false;
                            }
                        }
                    }
                    Some(f(builder.clone(), strings))
                }
                (Apply::Flag(f), DeValue::Boolean(v)) => Some(f(builder.clone(), *v)),
                (Apply::Seconds(f), DeValue::Integer(i)) => {
                    u64::from_str_radix(i.as_str(), i.radix())
                        .ok()
                        .map(|v| f(builder.clone(), v))
                }
                (Apply::Status(f), DeValue::Integer(i)) => {
                    u16::from_str_radix(i.as_str(), i.radix())
                        .ok()
                        .map(|v| f(builder.clone(), v))
                }
                _ => None,
            };
            match applied {
                Some(b) => builder = b,
                None => {
                    self.type_error(key, value.span(), section, apply.expected());
                    readable = false;
                }
            }
            entries.push(entry);
        }
        if !readable {
            return None;
        }
        let place = |setting: &str, value: Option<&str>| {
            let at = entries
                .iter()
                .find(|en: &&Entry| en.key == setting)
                .map_or(start, |en| {
                    value
                        .and_then(|v| en.items.iter().find(|(s, _)| s == v))
                        .map_or(en.key_span.start, |(_, span)| span.start)
                });
            line_at(self.source, at)
        };
        let (built, notes) = builder.build_noted();
        let notes: Vec<FileNote> = notes
            .into_iter()
            .map(|note| FileNote {
                line: Some(place(note.setting(), note.value())),
                section: section.map(str::to_owned),
                note,
            })
            .collect();
        let built = built.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| FileError {
                    line: Some(place(error.setting(), error.value())),
                    section: section.map(str::to_owned),
                    error,
                })
                .collect::<Vec<_>>()
        });
        self.notes.extend(notes);
        // A warning's value is an origin or an exposed header as written: placed at that entry.
        for warning in crate::audit::policy_warnings(&builder) {
            let setting = ["allow_origins", "expose_headers"]
                .into_iter()
                .find(|k| {
                    entries
                        .iter()
                        .any(|en| en.key == *k && en.items.iter().any(|(v, _)| *v == warning.value))
                })
                .unwrap_or("allow_origins");
            self.warnings.push(FileWarning {
                line: Some(place(setting, Some(&warning.value))),
                section: section.map(str::to_owned),
                warning,
            });
        }
        match built {
            Ok(cors) => Some(cors),
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    /// A route that an earlier route covers is never used.
    fn shadowed_routes(&mut self, routes: &[ReadRoute]) {
        for (j, (later, _, _)) in routes.iter().enumerate() {
            let earlier = routes[..j].iter().map(|(p, _, _)| p.get_ref());
            if let Some(message) = shadowed_by(earlier, later.get_ref()) {
                let path = later.get_ref().as_str();
                let section = format!("route {} ({path})", j + 1);
                self.push(
                    later.span().start,
                    Some(&section),
                    ConfigError::new(
                        ErrorCode::RouteShadowed,
                        PATH,
                        Some(path),
                        message,
                        "put the more specific route first, or remove one of them.",
                    ),
                );
            }
        }
    }
}

/// The 1-based line of a byte offset.
fn line_at(source: &str, offset: usize) -> usize {
    source
        .get(..offset.min(source.len()))
        .map_or(1, |s| s.matches('\n').count() + 1)
}

/// The known key nearest to `key` by edit distance, if it is near enough to be a typo.
fn nearest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    keys()
        .chain([PATH, ROUTE])
        .map(|k| (edit_distance(&lower, k), k))
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
        assert_eq!(set.route_prefixes().collect::<Vec<_>>(), ["/public"]);
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
    fn route_upstreams_are_base_urls_placed_by_route() {
        let file = PolicyFile::parse(
            r#"allow_origins = ["https://a.example"]
[[route]]
path = "/search"
upstream = "http://127.0.0.1:9002/v2"
allow_origins = ["https://a.example"]
[[route]]
path = "/static"
allow_origins = ["*"]
"#,
        );
        let set = file.policies.unwrap();
        assert_eq!(file.upstreams.len(), 2);
        assert_eq!(
            file.upstreams[0]
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("http://127.0.0.1:9002/v2")
        );
        assert_eq!(file.upstreams[1], None);
        assert_eq!(set.route_index("/search/q"), Some(0));
        assert_eq!(set.route_index("/searching"), None);

        let src = r#"allow_origins = ["https://a.example"]
upstream = "http://127.0.0.1:1"
[[route]]
path = "/a"
upstream = "ftp://files.example"
allow_origins = ["*"]
[[route]]
path = "/b"
upstream = "127.0.0.1:9000"
allow_origins = ["*"]
[[route]]
path = "/c"
upstream = "http://127.0.0.1:9000/?x=1"
allow_origins = ["*"]
[[route]]
path = "/d"
upstream = "http://user:pw@127.0.0.1:9000"
allow_origins = ["*"]
[[route]]
path = "/e"
upstream = "http://exa mple"
allow_origins = ["*"]
[[route]]
path = "/f"
upstream = 9000
allow_origins = ["*"]
"#;
        use ErrorCode::*;
        assert_eq!(
            problems(src),
            vec![
                (Some(2), UnknownKey),
                (Some(5), UpstreamInvalid),
                (Some(9), UpstreamInvalid),
                (Some(13), UpstreamInvalid),
                (Some(17), UpstreamInvalid),
                (Some(21), UpstreamInvalid),
                (Some(25), InvalidFile),
            ]
        );
        let errors = PolicySet::from_toml(src).unwrap_err();
        let shown: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[0],
            "line 2: [unknown-key] \"upstream\": `upstream` belongs in a [[route]] table: the top level's upstream is the proxy's --upstream. Fix: move it under a [[route]] with its path, or give it as --upstream."
        );
        assert_eq!(
            shown[1],
            "line 5: route 1 (/a): [upstream-invalid] upstream: \"ftp://files.example\": the proxy reaches an upstream over http:// or https:// only. Fix: write upstream = \"http://HOST:PORT\", a URL such as \"http://127.0.0.1:9001\", optionally with a path prefix."
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
                    keys().collect::<Vec<_>>().join(", ")
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

    /// Hole 4 of the hardening review: a route covered `/apiary` and `/api-admin` because
    /// prefixes were compared as strings. They cover whole path segments.
    #[test]
    fn routes_match_whole_segments() {
        for path in ["/api", "/api/"] {
            let set = PolicySet::from_toml(&format!(
                "allow_origins = [\"https://app.example.com\"]\nallow_credentials = true\n[[route]]\npath = \"{path}\"\nallow_origins = [\"*\"]\n"
            ))
            .unwrap();
            let public = |p: &str| !set.for_path(p).allows_credentials();
            for covered in ["/api", "/api/", "/api/users", "/api/users/1", "/api//x"] {
                assert!(public(covered), "{path} should cover {covered}");
            }
            for other in [
                "/apiary",
                "/api-admin",
                "/ap",
                "/",
                "/v1/api",
                "/API",
                "/api.json",
            ] {
                assert!(!public(other), "{path} should not cover {other}");
            }
        }
        // A `/` route would leave the top level unused: refused, on its line.
        assert_eq!(
            problems("allow_origins = [\"https://a.example\"]\nallow_credentials = true\n[[route]]\npath = \"/\"\nallow_origins = [\"*\"]\n"),
            vec![(Some(4), ErrorCode::RoutePathInvalid)]
        );
    }

    /// `corsair lint` must report a route that an earlier route shadows.
    #[test]
    fn shadowed_routes_are_reported() {
        let src = "allow_origins = [\"https://a.example\"]\n\
                   [[route]]\npath = \"/api\"\nallow_origins = [\"*\"]\n\
                   [[route]]\npath = \"/api/v1/\"\nallow_origins = [\"*\"]\n\
                   [[route]]\npath = \"/apiary\"\nallow_origins = [\"*\"]\n\
                   [[route]]\npath = \"/api/\"\nallow_origins = [\"*\"]\n";
        let e = PolicySet::from_toml(src).unwrap_err();
        let got: Vec<(Option<usize>, ErrorCode, Option<&str>)> = e
            .errors()
            .iter()
            .map(|e| (e.line(), e.error().code(), e.section()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(6), ErrorCode::RouteShadowed, Some("route 2 (/api/v1)")),
                (Some(12), ErrorCode::RouteShadowed, Some("route 4 (/api)")),
            ]
        );
        assert_eq!(
            e.errors()[0].error().message(),
            "route 1 (/api) comes first and covers every path this one does, so this route is never used."
        );
        // The specific route first is fine.
        assert!(PolicySet::from_toml(
            "allow_origins = [\"https://a.example\"]\n[[route]]\npath = \"/api/v1\"\nallow_origins = [\"*\"]\n[[route]]\npath = \"/api\"\nallow_origins = [\"*\"]\n"
        )
        .is_ok());
    }

    /// Hole 5 of the hardening review: lines were found by searching the text, so the same value
    /// in a comment or under another key moved the reported line. They come from the parser.
    #[test]
    fn lines_come_from_the_parser_not_from_searching_the_text() {
        let src = r#"# allow_origins = ["*"] would allow everyone; "null" too
expose_headers = ["*"]          # "*" here is fine without credentials
allow_methods = ["null"]        # not a method anyone sends, but a valid token
allow_origins = [
  "https://app.example.com",
  "null",
  "*",
]
allow_credentials = true
# max_age = 100000
max_age = 100000
"#;
        use ErrorCode::*;
        assert_eq!(
            problems(src),
            vec![
                (Some(2), CredentialsWithAnyExposedHeader),
                (Some(4), AnyOriginInList),
                (Some(6), NullOrigin),
                (Some(7), CredentialsWithAnyOrigin),
                (Some(11), MaxAgeTooLarge),
            ]
        );
        // The same bad origin in two routes: each reported in its own route, on its own line.
        let src = "allow_origins = [\"https://a.example\"]\n\
                   [[route]]\npath = \"/a\"\nallow_origins = [\"https://A.example\"]\n\
                   [[route]]\npath = \"/b\"\nallow_origins = [\"https://A.example\"]\n";
        let lines: Vec<_> = problems(src).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, [Some(4), Some(7)]);
    }

    #[test]
    fn wrong_types_are_reported_at_the_value() {
        use ErrorCode::*;
        assert_eq!(
            problems("allow_origins = [\"https://a.example\", 3]\nmax_age = -5\npreflight_status = 70000\nallow_credentials = \"yes\"\n"),
            vec![
                (Some(1), InvalidFile),
                (Some(2), InvalidFile),
                (Some(3), InvalidFile),
                (Some(4), InvalidFile),
            ]
        );
        let e = PolicySet::from_toml("allow_origins = [\"https://a.example\"]\nmax_age = \"10\"\n")
            .unwrap_err();
        assert_eq!(
            e.errors()[0].to_string(),
            "line 2: [invalid-file] \"max_age\": this key takes a whole number of seconds, such as 600. Fix: write max_age = a whole number of seconds, such as 600."
        );
    }

    #[test]
    fn route_paths_are_checked() {
        use ErrorCode::*;
        let src = "allow_origins = [\"https://a.example\"]\n\
                   [[route]]\nallow_origins = [\"*\"]\n\
                   [[route]]\npath = \"/api/*\"\nallow_origins = [\"*\"]\n\
                   [[route]]\npath = 5\nallow_origins = [\"*\"]\n";
        assert_eq!(
            problems(src),
            vec![
                (Some(2), RoutePathInvalid),
                (Some(5), RoutePathInvalid),
                (Some(8), InvalidFile)
            ]
        );
    }

    #[test]
    fn problems_print_as_a_compiler_prints_them() {
        let e = PolicySet::from_toml(
            "allow_origins = [\"https://a.example\"]\n[[route]]\npath = \"/p\"\nallow_origins = [\"null\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            e.with_file("cors.toml").to_string(),
            "cors.toml:4: route 1 (/p): [null-origin] allow_origins: \"null\": sandboxed iframes and file: pages of any site send the origin `null`, so allowing it allows them all. Fix: allow the real origin of the page; if you must, use dangerously_allow_null_origin."
        );
    }

    /// Every builder setting with a use in a file has its key, dangerous options included.
    #[test]
    fn dangerous_keys_reach_the_builder() {
        let set = PolicySet::from_toml(
            "allow_origins = [\"*\"]\nallow_private_network = true\ndangerously_allow_private_network_with_any_origin = true\n",
        );
        assert!(set.is_ok(), "{set:?}");
        assert_eq!(
            problems("allow_origins = [\"*\"]\nallow_private_network = true\n"),
            vec![(Some(1), ErrorCode::PrivateNetworkWithAnyOrigin)]
        );
        assert!(PolicySet::from_toml(
            "allow_origins = [\"http://printer.example\"]\nallow_private_network = true\ndangerously_allow_private_network_with_insecure_origins = true\n"
        )
        .is_ok());
        assert!(PolicySet::from_toml(
            "allow_origins = [\"https://*.vercel.app\"]\ndangerously_allow_public_suffix_subdomains = true\n"
        )
        .is_ok());
    }
}
