//! Hot reconfiguration: a handle whose policies can be replaced while requests are being served.
//!
//! Reads are lock-free (`arc-swap`): a request sees either the old policies or the new ones,
//! whole, never a mix, and a swap never waits for requests in flight.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::PolicySet;

/// Policies that can be replaced atomically while serving: one [`Policy`](crate::Policy) or a whole
/// [`PolicySet`] with routes. Clones share the same policies. The tower layer
/// (`CorsLayer::reloadable`), the actix-web middleware (`actix::Cors::reloadable`) and
/// `corsair proxy` read through one of these.
///
/// ```
/// use corsair::{Policy, PolicyHandle};
/// use http::{HeaderMap, Method};
///
/// let handle = PolicyHandle::new(Policy::builder().allow_origins(["https://a.example"]).build()?);
/// // Later, from any thread, e.g. when a configuration file changes:
/// handle.store(Policy::builder().allow_origins(["https://b.example"]).build()?);
///
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "https://b.example".parse()?);
/// let decision = handle.load().for_path("/").decide(&Method::GET, &headers);
/// assert!(decision.headers().allow_origin().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PolicyHandle {
    shared: Arc<ArcSwap<PolicySet>>,
}

impl PolicyHandle {
    /// A handle serving `policies` (a [`Policy`](crate::Policy) or a [`PolicySet`]) until the next
    /// [`store`](Self::store).
    pub fn new(policies: impl Into<PolicySet>) -> Self {
        PolicyHandle {
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
    #[cfg(any(feature = "tower", feature = "actix"))]
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<PolicySet>> {
        self.shared.load()
    }
}

impl fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PolicyHandle")
            .field(&**self.shared.load())
            .finish()
    }
}

impl From<crate::Policy> for PolicyHandle {
    fn from(cors: crate::Policy) -> Self {
        PolicyHandle::new(cors)
    }
}

impl From<PolicySet> for PolicyHandle {
    fn from(set: PolicySet) -> Self {
        PolicyHandle::new(set)
    }
}
