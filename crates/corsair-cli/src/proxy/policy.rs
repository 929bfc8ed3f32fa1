//! The proxy's policy and upstreams: from a policy file, or from the command line's flags.

use std::path::Path;
use std::sync::Arc;

use corsair::config::{PolicyFile, PolicySet};
use corsair::Policy;
use http::{HeaderValue, Uri};

use super::ProxyArgs;
use crate::error::Error;

/// The policies and the routes' own upstreams, replaced together on a reload.
#[derive(Debug)]
pub struct Routing {
    /// The policies by path.
    pub policies: PolicySet,
    /// Each route's own upstream, in route order; `None`: `--upstream`.
    upstreams: Vec<Option<Arc<Upstream>>>,
}

impl Routing {
    /// Where a request for `path` goes: the upstream of the route whose policy it gets (the
    /// first that covers it, on whole segments), else `default` (`--upstream`). Shared: a
    /// request keeps its upstream past a reload for a reference count, not a copy.
    pub fn upstream<'a>(&'a self, path: &str, default: &'a Arc<Upstream>) -> &'a Arc<Upstream> {
        self.policies
            .route_index(path)
            .and_then(|i| self.upstreams.get(i)?.as_ref())
            .unwrap_or(default)
    }

    /// The upstreams the routes name.
    pub fn route_upstreams(&self) -> impl Iterator<Item = &Uri> {
        self.upstreams.iter().flatten().map(|u| &u.uri)
    }
}

/// An upstream's base URL, with the `Host` its requests carry, written once rather than once a
/// request.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The base URL (`http://` or `https://`, optionally with a path prefix).
    pub uri: Uri,
    /// Its host, and its port unless the scheme's default: what an HTTP client puts in `Host`.
    pub(super) host: Option<HeaderValue>,
    /// Its idle connections, each worker's apart (shared by the clones of this upstream; a
    /// reload makes new ones).
    pub(super) pool: std::sync::Arc<super::pool::Pool>,
}

impl Upstream {
    /// The upstream at `uri`, reached by `workers` workers.
    pub fn new(uri: Uri, workers: usize) -> Self {
        let secure = uri.scheme_str() == Some("https");
        let host = uri.host().and_then(|host| match uri.port_u16() {
            Some(443) if secure => HeaderValue::from_str(host).ok(),
            Some(80) if !secure => HeaderValue::from_str(host).ok(),
            Some(port) => HeaderValue::from_str(&format!("{host}:{port}")).ok(),
            None => HeaderValue::from_str(host).ok(),
        });
        Upstream {
            uri,
            host,
            pool: std::sync::Arc::new(super::pool::Pool::new(workers)),
        }
    }
}

/// A policy file's policies and upstreams (their pools for `workers` workers), or its problems,
/// printable as they are.
pub(super) fn from_file(path: &Path, workers: usize) -> Result<Routing, String> {
    let file = PolicyFile::load(path);
    match file.policies {
        Ok(policies) => Ok(Routing {
            policies,
            upstreams: file
                .upstreams
                .into_iter()
                .map(|u| u.map(|u| Arc::new(Upstream::new(u, workers))))
                .collect(),
        }),
        Err(e) => Err(e.with_file(&path.display().to_string()).to_string()),
    }
}

/// The policies and upstreams from the arguments.
///
/// # Errors
/// The policy file's or the origins' problems, printable as they are.
pub fn routing(args: &ProxyArgs) -> Result<Routing, Error> {
    let flags: Vec<(&str, &str)> = [
        (
            !args.allow_methods.is_empty(),
            "--allow-method",
            "allow_methods",
        ),
        (
            !args.allow_headers.is_empty(),
            "--allow-header",
            "allow_headers",
        ),
        (
            !args.expose_headers.is_empty(),
            "--expose-header",
            "expose_headers",
        ),
        (
            args.allow_credentials,
            "--allow-credentials",
            "allow_credentials",
        ),
    ]
    .into_iter()
    .filter(|(on, _, _)| *on)
    .map(|(_, flag, key)| (flag, key))
    .collect();
    match (&args.config, args.allow_origins.is_empty()) {
        (Some(path), _) if args.dev => Err(Error::Usage(format!(
            "--dev works with --allow-origin, not with --config: keep --config {} and set allow_methods = [\"*\"], allow_headers = [\"*\"] and allow_credentials = true in the file, or keep --dev with --allow-origin ORIGIN and drop --config",
            path.display()
        ))),
        (Some(path), false) => Err(Error::Usage(format!(
            "give either --config or --allow-origin, not both: keep --config {} and list the origins in its allow_origins, or keep --allow-origin and drop --config",
            path.display()
        ))),
        (Some(path), true) if !flags.is_empty() => Err(Error::Usage(format!(
            "{} work with --allow-origin, not with --config: set {} in {} instead",
            flags.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", "),
            flags.iter().map(|(_, k)| *k).collect::<Vec<_>>().join(", "),
            path.display()
        ))),
        (Some(path), true) => from_file(path, args.workers).map_err(Error::Config),
        (None, true) => Err(Error::Usage(if args.dev {
            "--dev needs the page's origin: add --allow-origin ORIGIN, e.g. --allow-origin http://localhost:8000".to_owned()
        } else {
            "give a policy: --config FILE or --allow-origin ORIGIN (the page's origin, e.g. --allow-origin http://localhost:8000)".to_owned()
        })),
        (None, false) => {
            let mut b = Policy::builder()
                .allow_origins(args.allow_origins.iter().cloned())
                .allow_methods(args.allow_methods.iter().cloned())
                .allow_headers(args.allow_headers.iter().cloned())
                .expose_headers(args.expose_headers.iter().cloned())
                .allow_credentials(args.allow_credentials);
            if args.dev {
                b = b
                    .allow_methods(["*"])
                    .allow_headers(["*"])
                    .allow_credentials(true);
            }
            let built = b
                .build()
                .map(PolicySet::single)
                .map_err(|e| Error::Config(flag_errors(&e)))?;
            // Accepted but worth a look, e.g. --allow-method patch: on standard error.
            for n in b.notes() {
                let value = n.value().map(|v| format!("{v:?}: ")).unwrap_or_default();
                eprintln!(
                    "note: {} [{}]: {value}{}",
                    flag_of(n.setting()),
                    n.code(),
                    n.message()
                );
            }
            Ok(Routing {
                policies: built,
                upstreams: Vec::new(),
            })
        }
    }
}

/// The flag that sets a builder setting, or the setting's name when no flag does.
fn flag_of(setting: &str) -> &str {
    match setting {
        "allow_origins" => "--allow-origin",
        "allow_methods" => "--allow-method",
        "allow_headers" => "--allow-header",
        "expose_headers" => "--expose-header",
        "allow_credentials" => "--allow-credentials",
        other => other,
    }
}

/// A policy's problems, then which flag sets each setting named, and what to do about a
/// `dangerously_` option (which has no flag).
fn flag_errors(errors: &corsair::ConfigErrors) -> String {
    let mut out = errors.to_string();
    let mut named: Vec<&str> = Vec::new();
    for e in errors.errors() {
        if !named.contains(&e.setting()) {
            named.push(e.setting());
        }
    }
    for setting in named {
        let flag = flag_of(setting);
        if flag != setting {
            out.push_str(&format!("\n{setting} is {flag} on the command line"));
        }
    }
    if errors
        .errors()
        .iter()
        .any(|e| e.fix().contains("dangerously_"))
    {
        out.push_str("\ndangerously_ options have no flag: write a policy file with that key set to true and pass it with --config FILE");
    }
    out
}
