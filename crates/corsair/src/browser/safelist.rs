//! CORS-safelisted request headers (Fetch Standard), with the differences of real browsers.
//!
//! A request whose method is safelisted and whose headers are all safelisted needs no
//! preflight. The rules, each pinned against the installed browsers by the differential suite's
//! `safelist` family:
//! - a value longer than 128 bytes is never safelisted;
//! - `accept`: no CORS-unsafe request-header byte (for Firefox, no byte above 0x7F either);
//! - `accept-language`, `content-language`: only `0-9 A-Z a-z`, space and `*,-.;=`;
//! - `content-type`: no CORS-unsafe byte (Firefox: nor above 0x7F, nor a comma, anywhere), and
//!   a MIME type whose essence is `application/x-www-form-urlencoded`, `multipart/form-data` or
//!   `text/plain`;
//! - `range`: a single `bytes=N-` or `bytes=N-M` range with N ≤ M, both below 2^64 (`bytes`
//!   matched case-sensitively; by Safari, case-insensitively);
//! - when the safelisted values add up to more than 1024 bytes, none of them is safelisted
//!   (Chromium; Firefox has no such total);
//! - Chromium also safelists the client hints `device-memory`, `dpr`, `downlink` (a number:
//!   digits, or digits, a dot and digits), `ect`, `rtt`, `save-data`, `viewport-width` and
//!   `width` when their values are well-formed; Firefox does not;
//! - a header set several times is checked as one value, the values combined with `, `, by
//!   Chromium; Firefox checks each value on its own ([`Fetch`](super::Fetch) applies this).

use super::Browser;
use crate::syntax;

/// A byte that makes a value CORS-unsafe (Fetch Standard); Firefox adds every byte above 0x7F.
fn is_cors_unsafe_byte(browser: Browser, b: u8) -> bool {
    (browser == Browser::Firefox && b > 0x7f)
        || (b < 0x20 && b != b'\t')
        || matches!(
            b,
            b'"' | b'('
                | b')'
                | b':'
                | b'<'
                | b'>'
                | b'?'
                | b'@'
                | b'['
                | b'\\'
                | b']'
                | b'{'
                | b'}'
                | 0x7f
        )
}

/// The essence (`type/subtype`, lowercase) of a MIME type, or `None` if it does not parse
/// (MIME Sniffing Standard, "parse a MIME type", parameters ignored).
pub fn mime_essence(value: &str) -> Option<String> {
    let is_http_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let s = value.trim_matches(is_http_ws);
    let (ty, rest) = s.split_once('/')?;
    if !syntax::is_token(ty.as_bytes()) {
        return None;
    }
    let sub = rest
        .split(';')
        .next()
        .unwrap_or("")
        .trim_end_matches(is_http_ws);
    if !syntax::is_token(sub.as_bytes()) {
        return None;
    }
    Some(format!(
        "{}/{}",
        ty.to_ascii_lowercase(),
        sub.to_ascii_lowercase()
    ))
}

fn is_simple_range(browser: Browser, value: &[u8]) -> bool {
    // Safari matches `bytes` case-insensitively, the others exactly.
    let unit = value.get(..6).filter(|u| match browser {
        Browser::Safari => u.eq_ignore_ascii_case(b"bytes="),
        _ => *u == b"bytes=",
    });
    let Some(rest) = unit.map(|u| &value[u.len()..]) else {
        return false;
    };
    let Some(dash) = rest.iter().position(|&b| b == b'-') else {
        return false;
    };
    let (start, end) = (&rest[..dash], &rest[dash + 1..]);
    // Both browsers read the positions as 64-bit unsigned integers: a larger one is not simple.
    let num = |d: &[u8]| {
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
    };
    let Some(first) = num(start) else {
        return false;
    };
    if end.is_empty() {
        return true;
    }
    matches!(num(end), Some(last) if first <= last)
}

/// A client hint's number as Chromium reads it: digits, or digits, a dot and digits.
fn is_number(value: &[u8]) -> bool {
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    match value.iter().position(|&b| b == b'.') {
        Some(dot) => digits(&value[..dot]) && digits(&value[dot + 1..]),
        None => digits(value),
    }
}

/// Whether `name: value` is a CORS-safelisted request header for `browser`
/// (the 1024-byte total is applied by [`unsafe_header_names`]).
pub fn is_safelisted_request_header(browser: Browser, name: &str, value: &[u8]) -> bool {
    if value.len() > 128 {
        return false;
    }
    let lang = |v: &[u8]| {
        v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b))
    };
    match name.to_ascii_lowercase().as_str() {
        "accept" => !value.iter().any(|&b| is_cors_unsafe_byte(browser, b)),
        "accept-language" | "content-language" => lang(value),
        "content-type" => {
            // Firefox reads a comma as the start of another MIME type.
            let firefox_comma = browser == Browser::Firefox && value.contains(&b',');
            !firefox_comma
                && !value.iter().any(|&b| is_cors_unsafe_byte(browser, b))
                && std::str::from_utf8(value)
                    .ok()
                    .and_then(mime_essence)
                    .is_some_and(|e| {
                        matches!(
                            e.as_str(),
                            "application/x-www-form-urlencoded"
                                | "multipart/form-data"
                                | "text/plain"
                        )
                    })
        }
        "range" => is_simple_range(browser, value),
        "device-memory" | "dpr" | "downlink" if browser == Browser::Chromium => is_number(value),
        "rtt" | "viewport-width" | "width" if browser == Browser::Chromium => {
            !value.is_empty() && value.iter().all(u8::is_ascii_digit)
        }
        "ect" if browser == Browser::Chromium => {
            matches!(value, b"slow-2g" | b"2g" | b"3g" | b"4g")
        }
        "save-data" if browser == Browser::Chromium => value == b"on",
        _ => false,
    }
}

/// The CORS-unsafe request-header names of a header list: lowercase, sorted, without
/// duplicates; forbidden names are left out (browsers drop them before sending).
pub fn unsafe_header_names<'a, I>(browser: Browser, headers: I) -> Vec<String>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut unsafe_names = Vec::new();
    let mut safe_names = Vec::new();
    let mut safelist_size = 0usize;
    for (name, value) in headers {
        if syntax::is_forbidden_request_header(name.as_bytes()) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if is_safelisted_request_header(browser, &lower, value) {
            safelist_size += value.len();
            safe_names.push(lower);
        } else {
            unsafe_names.push(lower);
        }
    }
    if safelist_size > 1024 && browser != Browser::Firefox {
        unsafe_names.append(&mut safe_names);
    }
    unsafe_names.sort();
    unsafe_names.dedup();
    unsafe_names
}

/// The methods a browser sends without a preflight: `GET`, `HEAD` and `POST` (compared
/// case-sensitively, after [`normalize_method`]).
pub fn is_safelisted_method(method: &str) -> bool {
    crate::syntax::is_safelisted_method(method.as_bytes())
}

/// A method as browsers send it: `fetch()` upper-cases only DELETE, GET, HEAD, OPTIONS, POST
/// and PUT (case-insensitively); every other method is sent as written, so `patch` stays
/// `patch`.
///
/// ```
/// use corsair::browser::safelist::normalize_method;
/// assert_eq!(normalize_method("delete"), "DELETE");
/// assert_eq!(normalize_method("patch"), "patch");
/// ```
pub fn normalize_method(method: &str) -> &str {
    crate::syntax::normalize_method(method)
}

/// Whether exposing this response header would change nothing for a script: a CORS-safelisted
/// response header (`Cache-Control`, `Content-Language`, `Content-Length`, `Content-Type`,
/// `Expires`, `Last-Modified`, `Pragma`), which scripts always read, or `Set-Cookie` and
/// `Set-Cookie2`, which they never read. Compared case-insensitively.
///
/// ```
/// use corsair::browser::safelist::is_exposure_moot;
/// assert!(is_exposure_moot("Content-Type"));
/// assert!(is_exposure_moot("set-cookie"));
/// assert!(!is_exposure_moot("x-request-id"));
/// ```
pub fn is_exposure_moot(name: &str) -> bool {
    crate::syntax::SAFELISTED_RESPONSE_HEADERS
        .iter()
        .chain(crate::syntax::FORBIDDEN_RESPONSE_HEADERS.iter())
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether scripts may not set this request header (a forbidden request header of the Fetch
/// Standard: `Cookie`, `Origin`, `Host`, `Proxy-*`, `Sec-*` …): `fetch()` drops it silently and
/// the browser sends its own value, if any. Compared case-insensitively.
///
/// ```
/// use corsair::browser::safelist::is_forbidden_request_header;
/// assert!(is_forbidden_request_header("Cookie"));
/// assert!(!is_forbidden_request_header("Authorization"));
/// ```
pub fn is_forbidden_request_header(name: &str) -> bool {
    crate::syntax::is_forbidden_request_header(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows pinned against Chromium 156 (and Firefox 153 where marked the same).
    #[test]
    fn safelist_table() {
        let long = "a".repeat(129);
        let l128 = "a".repeat(128);
        let rows: &[(&str, &str, bool, bool)] = &[
            // name, value, Chromium, Firefox
            ("accept", "a\"b", false, false),
            ("accept", &long, false, false),
            ("accept", &l128, true, true),
            ("accept-language", "en_US", false, false),
            ("accept-language", "en-US;q=0.5, *", true, true),
            ("content-language", "de(x)", false, false),
            ("content-type", "text/plain; charset=utf-8", true, true),
            ("content-type", "text/plain;", true, true),
            ("content-type", "Text/Plain", true, true),
            ("content-type", "text/plain ; x=y", true, true),
            (
                "content-type",
                "multipart/form-data; boundary=x",
                true,
                true,
            ),
            ("content-type", "application/json", false, false),
            ("content-type", "text/plain; a=\"b(c)\"", false, false),
            ("content-type", "text / plain", false, false),
            ("range", "bytes=0-", true, true),
            ("range", "bytes=0-1", true, true),
            ("range", "bytes=0-1,2-3", false, false),
            ("range", "bytes=-5", false, false),
            ("range", "bytes=5-1", false, false),
            // Positions past 2^64 - 1 (pinned by the differential suite's `safelist` family).
            ("range", "bytes=18446744073709551615-", true, true),
            ("range", "bytes=18446744073709551616-", false, false),
            ("range", "bytes=0-99999999999999999999", false, false),
            ("range", "bytes = 0-1", false, false),
            ("range", "Bytes=0-1", false, false),
            ("dpr", "2", true, false),
            ("dpr", "abc", false, false),
            ("dpr", "2.5", true, false),
            ("dpr", ".5", false, false),
            ("dpr", "5.", false, false),
            ("dpr", "1.2.3", false, false),
            ("dpr", "1e3", false, false),
            ("accept", "a\u{e9}b", true, false),
            ("content-type", "text/plain;a=b,c", true, false),
            ("content-type", "text/plain;a=\u{e9}", true, false),
            ("device-memory", "0.5", true, false),
            ("width", "100", true, false),
            ("x-custom", "1", false, false),
            ("authorization", "t", false, false),
        ];
        for &(name, value, chromium, firefox) in rows {
            assert_eq!(
                is_safelisted_request_header(Browser::Chromium, name, value.as_bytes()),
                chromium,
                "chromium {name}: {value}"
            );
            assert_eq!(
                is_safelisted_request_header(Browser::Firefox, name, value.as_bytes()),
                firefox,
                "firefox {name}: {value}"
            );
        }
    }

    #[test]
    fn safari_matches_the_range_unit_case_insensitively() {
        // The differential suite's safelist cases s117 and s118: WebKit sends these without a
        // preflight; Chromium and Firefox preflight them.
        for value in ["Bytes=0-1", "BYTES=0-"] {
            let v = value.as_bytes();
            assert!(
                is_safelisted_request_header(Browser::Safari, "range", v),
                "{value}"
            );
            assert!(
                !is_safelisted_request_header(Browser::Chromium, "range", v),
                "{value}"
            );
            assert!(
                !is_safelisted_request_header(Browser::Firefox, "range", v),
                "{value}"
            );
        }
        assert!(!is_safelisted_request_header(
            Browser::Safari,
            "range",
            b"items=0-1"
        ));
    }

    #[test]
    fn unsafe_names_are_sorted_lowercase_and_bounded_in_total() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            pairs
                .iter()
                .map(|(n, v)| (*n, v.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            unsafe_header_names(
                Browser::Chromium,
                h(&[
                    ("X-B", "1"),
                    ("x-a", "1"),
                    ("Accept", "x"),
                    ("cookie", "c"),
                    ("x-a", "2")
                ])
            ),
            ["x-a", "x-b"]
        );
        // Combined safelisted values over 1024 bytes make every one of them unsafe.
        let digits: &'static str = Box::leak("1".repeat(128).into_boxed_str());
        let text: &'static str = Box::leak("a".repeat(120).into_boxed_str());
        let mut many = vec![
            ("accept", text),
            ("accept-language", text),
            ("content-language", text),
        ];
        for n in [
            "dpr",
            "device-memory",
            "downlink",
            "rtt",
            "viewport-width",
            "width",
        ] {
            many.push((n, digits));
        }
        let names = unsafe_header_names(Browser::Chromium, h(&many));
        assert_eq!(names.len(), 9, "{names:?}");
        // Under the bound, all of them stay safelisted.
        let names = unsafe_header_names(Browser::Chromium, h(&many[..6]));
        assert!(names.is_empty(), "{names:?}");
        // Firefox has no total: nine Accept values of 128 bytes (1152) stay safelisted.
        let a128: &'static str = Box::leak("a".repeat(128).into_boxed_str());
        let nine = vec![("accept", a128); 9];
        assert!(unsafe_header_names(Browser::Firefox, h(&nine)).is_empty());
        assert_eq!(unsafe_header_names(Browser::Chromium, h(&nine)), ["accept"]);
    }

    #[test]
    fn mime_essence_parsing() {
        assert_eq!(
            mime_essence(" Text/Plain ; charset=x").as_deref(),
            Some("text/plain")
        );
        assert_eq!(mime_essence("text/plain;").as_deref(), Some("text/plain"));
        assert_eq!(mime_essence("text"), None);
        assert_eq!(mime_essence("text/"), None);
        assert_eq!(mime_essence("te xt/plain"), None);
    }
}
