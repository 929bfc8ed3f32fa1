//! Helpers shared by the integration tests.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Header lines as (name, value) pairs.
#[allow(dead_code)]
pub type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// A header map from (name, value) pairs, in order, repeats kept.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}
