//! Hot reconfiguration: a handle whose policies can be replaced while requests are being served.
//!
//! Reads are lock-free (`arc-swap`): a request sees either the old policies or the new ones,
//! whole, never a mix, and a swap never waits for requests in flight.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::PolicySet;

/// Policies that can be replaced atomically while serving: one [`Cors`](crate::Cors) or a whole
/// [`PolicySet`] with routes. Clones share the same policies. The tower layer
/// (`CorsLayer::reloadable`) and `corsair proxy` read through one of these.
///
/// ```
/// use corsair::{Cors, CorsHandle};
/// use http::{HeaderMap, Method};
///
/// let handle = CorsHandle::new(Cors::builder().allow_origins(["https://a.example"]).build()?);
/// // Later, from any thread, e.g. when a configuration file changes:
/// handle.store(Cors::builder().allow_origins(["https://b.example"]).build()?);
///
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "https://b.example".parse()?);
/// let decision = handle.load().for_path("/").decide(&Method::GET, &headers);
/// assert!(decision.headers().allow_origin().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CorsHandle {
    shared: Arc<ArcSwap<PolicySet>>,
}

impl CorsHandle {
    /// A handle serving `policies` (a [`Cors`](crate::Cors) or a [`PolicySet`]) until the next
    /// [`store`](Self::store).
    pub fn new(policies: impl Into<PolicySet>) -> Self {
        CorsHandle {
            shared: Arc::new(ArcSwap::from_pointee(policies.into())),
        }
    }

    /// Replaces the policies. Requests already decided keep their decision; every later request
    /// sees `policies`.
    pub fn store(&self, policies: impl Into<PolicySet>) {
        self.shared.store(Arc::new(policies.into()));
    }

    /// The policies in force now.
    pub fn load(&self) -> Arc<PolicySet> {
        self.shared.load_full()
    }

    /// The policies in force now, without touching the reference count: for the request path.
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<PolicySet>> {
        self.shared.load()
    }
}

impl fmt::Debug for CorsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CorsHandle")
            .field(&**self.shared.load())
            .finish()
    }
}

impl From<crate::Cors> for CorsHandle {
    fn from(cors: crate::Cors) -> Self {
        CorsHandle::new(cors)
    }
}

impl From<PolicySet> for CorsHandle {
    fn from(set: PolicySet) -> Self {
        CorsHandle::new(set)
    }
}
