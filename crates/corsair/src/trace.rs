//! The adapters' logging: a `debug` event for every rejected request, with its reason;
//! nothing at `info` or above.

use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::HeaderMap;

use crate::server::{Decision, Explain};

/// How adapters decide: rejection reasons are computed only when they will be used (a
/// `debug` subscriber for target `corsair` listens, or `always_explain`, e.g. for an access
/// log), and a rejection is then reported as a `debug` event. `decide` runs the engine.
pub fn decide_traced(
    headers: &HeaderMap,
    always_explain: bool,
    decide: impl FnOnce(Explain) -> Decision,
) -> Decision {
    let explain = if always_explain {
        Explain::Yes
    } else {
        Explain::if_logging()
    };
    let decision = decide(explain);
    if explain == Explain::Yes {
        rejection(&decision, headers);
    }
    decision
}

/// Emits the `debug` event for a rejected decision; does nothing for allowed ones.
fn rejection(decision: &Decision, headers: &HeaderMap) {
    if let Some(reason) = decision.rejection() {
        tracing::debug!(
            target: "corsair",
            reason = reason.as_str(),
            origin = ?headers.get(ORIGIN),
            request_method = ?headers.get(ACCESS_CONTROL_REQUEST_METHOD),
            request_headers = ?headers.get(ACCESS_CONTROL_REQUEST_HEADERS),
            "CORS request rejected"
        );
    }
}
