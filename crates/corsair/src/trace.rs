//! The adapters' logging: a `debug` event for every rejected request, with its reason;
//! nothing at `info` or above.

use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::HeaderMap;

use crate::server::Decision;

/// Emits the `debug` event for a rejected decision; does nothing for allowed ones.
pub fn rejection(decision: &Decision, headers: &HeaderMap) {
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
