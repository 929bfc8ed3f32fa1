//! Hot reconfiguration: a handle whose policy can be replaced while requests are being served.
//!
//! Reads are lock-free (`arc-swap`): a request sees either the old policy or the new one, whole,
//! never a mix, and a swap never waits for requests in flight.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderMap, Method};

use crate::policy::Compiled;
use crate::server::{self, Decision, Explain};
use crate::Cors;

/// A policy that can be replaced atomically while serving. Clones share the same policy.
///
/// ```
/// use corsair::{Cors, CorsHandle};
///
/// let handle = CorsHandle::new(Cors::builder().allow_origins(["https://a.example"]).build()?);
/// // Later, from any thread, e.g. when a configuration file changes:
/// handle.store(Cors::builder().allow_origins(["https://b.example"]).build()?);
/// # Ok::<(), corsair::ConfigErrors>(())
/// ```
#[derive(Clone)]
pub struct CorsHandle {
    shared: Arc<ArcSwap<Compiled>>,
}

impl CorsHandle {
    /// A handle serving `cors` until the next [`store`](Self::store).
    pub fn new(cors: Cors) -> Self {
        CorsHandle {
            shared: Arc::new(ArcSwap::new(cors.inner)),
        }
    }

    /// Replaces the policy. Requests already decided keep their decision; every later request
    /// sees `cors`.
    pub fn store(&self, cors: Cors) {
        self.shared.store(cors.inner);
    }

    /// The policy in force now.
    pub fn load(&self) -> Cors {
        Cors {
            inner: self.shared.load_full(),
        }
    }

    /// Decides with the policy in force now; see [`Cors::decide`].
    pub fn decide(&self, method: &Method, headers: &HeaderMap) -> Decision {
        server::decide(&self.shared.load(), method, headers, Explain::Yes)
    }

    /// Decides with the policy in force now; see [`Cors::decide_for`].
    pub fn decide_for(&self, method: &Method, headers: &HeaderMap, explain: Explain) -> Decision {
        server::decide(&self.shared.load(), method, headers, explain)
    }
}

impl fmt::Debug for CorsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CorsHandle")
            .field(&**self.shared.load())
            .finish()
    }
}

impl From<Cors> for CorsHandle {
    fn from(cors: Cors) -> Self {
        CorsHandle::new(cors)
    }
}
