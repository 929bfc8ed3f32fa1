//! The browser side: how a browser evaluates a cross-origin `fetch()`, following the Fetch
//! Standard and, where they differ, what the installed Chromium, Firefox ESR and WebKitGTK
//! (Safari's engine, for [`Browser::Safari`]) do.
//!
//! - [`Fetch`]: one fetch, step by step (preflight, CORS check, redirects, exposed headers);
//! - [`CorsError`]: why a request is blocked, printed as Chromium's console message, and in each
//!   browser's own words by [`CorsError::console_message`];
//! - [`safelist`]: which request headers need no preflight;
//! - [`PreflightCache`]: each browser's preflight cache (max-age, caps, what an entry keeps).

mod cache;
mod error;
mod fetch;
mod header_order;
pub mod safelist;

pub use cache::{
    effective_max_age, reads_preflight_cache, writes_preflight_cache, PreflightCache,
    PreflightResult,
};
pub use error::{AccessCheck, CorsError, CorsErrorKind};
pub(crate) use fetch::{combined, isomorphic, values, Fields};
pub use fetch::{
    network_words, normalize_header_value, Blocked, Fetch, InvalidRequest, Outgoing, Readable,
    RequestBody, RequestInit, MAX_REDIRECTS,
};

/// The browser whose behaviour to follow where browsers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Browser {
    /// Chromium and Chrome (the default: its messages are the ones corsair prints).
    #[default]
    Chromium,
    /// Firefox.
    Firefox,
    /// Safari, as WebKitGTK (its engine) behaves.
    Safari,
}

impl Browser {
    /// Every engine, in the order corsair reports them: Chromium, Firefox, Safari.
    pub const ALL: [Browser; 3] = [Browser::Chromium, Browser::Firefox, Browser::Safari];

    /// Whether the browser preflights every later cross-origin hop of a request it preflighted
    /// once, or whose headers as the script set them needed a preflight (Firefox and Safari),
    /// where Chromium preflights a hop only when the redirected request needs it.
    pub(crate) const fn repeats_preflights(self) -> bool {
        matches!(self, Browser::Firefox | Browser::Safari)
    }

    /// The longest a preflight answer is cached, in seconds.
    pub const fn max_age_cap(self) -> u64 {
        match self {
            Browser::Chromium => 7_200,
            Browser::Firefox => 86_400,
            Browser::Safari => 600,
        }
    }
}

/// A request's credentials mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Credentials {
    /// Never send cookies or HTTP authentication.
    Omit,
    /// Only to the page's own origin (the default of `fetch()`).
    #[default]
    SameOrigin,
    /// Always, and require `Access-Control-Allow-Credentials: true` across origins.
    Include,
}

impl std::str::FromStr for Credentials {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "omit" => Ok(Credentials::Omit),
            "same-origin" => Ok(Credentials::SameOrigin),
            "include" => Ok(Credentials::Include),
            other => Err(format!(
                "{other:?} is not a credentials mode: use omit, same-origin or include"
            )),
        }
    }
}
