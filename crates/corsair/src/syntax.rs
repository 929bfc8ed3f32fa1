//! The lexical rules that both engines share: HTTP tokens, comma-separated header lists,
//! methods and header names, as the Fetch Standard and RFC 9110 define them.
//!
//! Everything here works on bytes, in one pass, and allocates nothing.

/// `TCHAR[b]` says whether byte `b` may appear in an HTTP token (RFC 9110 `tchar`): one load per
/// byte instead of a chain of comparisons.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = matches!(c,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
            | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        b += 1;
    }
    t
};

/// Whether `b` may appear in an HTTP token (RFC 9110 `tchar`).
#[inline]
pub(crate) const fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Whether `s` is a non-empty HTTP token: the grammar of method names and header names.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether `b` is HTTP optional whitespace (space or horizontal tab).
#[inline]
pub(crate) const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One element of a comma-separated header list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListItem<'a> {
    /// A well-formed token (whitespace already trimmed).
    Token(&'a [u8]),
    /// An element that is not a token (for example `x y` or `a/b`).
    Invalid(&'a [u8]),
}

/// Why a header list could not be read within its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListError {
    /// The combined value is longer than the bound given to [`for_each_list_item`].
    TooLong,
    /// There are more elements (empty ones included) than the bound allows.
    TooManyItems,
}

/// Calls `f` on every non-empty element of a comma-separated list spread over one or more
/// header lines, as the Fetch Standard's "get, decode, and split" does: elements are separated
/// by commas, surrounded by optional whitespace, and empty elements are skipped.
///
/// The work is bounded: each line's length is added up before the line is read, and once the
/// combined length exceeds `max_len` bytes or the number of elements (empty ones included) exceeds
/// `max_items`, reading stops with an error (`f` may have seen earlier elements by then).
/// `f` returns `false` to stop early; the function then returns `Ok(false)`.
pub(crate) fn for_each_list_item<'a, I, F>(
    lines: I,
    max_len: usize,
    max_items: usize,
    mut f: F,
) -> Result<bool, ListError>
where
    I: IntoIterator<Item = &'a [u8]>,
    F: FnMut(ListItem<'a>) -> bool,
{
    let mut total = 0usize;
    let mut items = 0usize;
    for line in lines {
        total = total.saturating_add(line.len());
        if total > max_len {
            return Err(ListError::TooLong);
        }
        // One pass per line: find each element's non-whitespace span and check it is a token.
        let mut start = usize::MAX; // first non-OWS byte of the element, if any
        let mut end = 0; // one past its last non-OWS byte
        let mut token = true;
        let mut i = 0;
        while i <= line.len() {
            let b = if i < line.len() { line[i] } else { b',' };
            if b == b',' {
                items += 1;
                if items > max_items {
                    return Err(ListError::TooManyItems);
                }
                if start != usize::MAX {
                    let item = &line[start..end];
                    let item = if token {
                        ListItem::Token(item)
                    } else {
                        ListItem::Invalid(item)
                    };
                    if !f(item) {
                        return Ok(false);
                    }
                }
                start = usize::MAX;
                token = true;
            } else if !is_ows(b) {
                if start == usize::MAX {
                    start = i;
                } else if end != i {
                    // Whitespace inside the element: not a token.
                    token = false;
                }
                token &= is_tchar(b);
                end = i + 1;
            }
            i += 1;
        }
    }
    Ok(true)
}

/// The methods whose names a browser upper-cases (Fetch Standard, "normalize a method").
/// Every other method is sent exactly as the script wrote it: `patch` stays `patch`.
pub(crate) const NORMALIZED_METHODS: [&str; 6] =
    ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

/// Normalizes a method name as a browser does: the six names of [`NORMALIZED_METHODS`] are
/// matched case-insensitively and upper-cased; any other name is returned as it is.
pub(crate) fn normalize_method(method: &str) -> &str {
    NORMALIZED_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or(method)
}

/// Whether `method` (already normalized) is CORS-safelisted: GET, HEAD or POST.
/// The comparison is case-sensitive, as in the Fetch Standard.
#[inline]
pub(crate) fn is_safelisted_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"POST")
}

/// Whether a method is forbidden: browsers refuse to send CONNECT, TRACE and TRACK
/// (compared case-insensitively).
pub(crate) fn is_forbidden_method(method: &[u8]) -> bool {
    [&b"CONNECT"[..], b"TRACE", b"TRACK"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// The forbidden request-header names of the Fetch Standard, lowercase. Scripts cannot set them,
/// so they never appear in `Access-Control-Request-Headers`.
pub(crate) const FORBIDDEN_REQUEST_HEADERS: [&str; 21] = [
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "connection",
    "content-length",
    "cookie",
    "cookie2",
    "date",
    "dnt",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "referer",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
];

/// Whether a request-header name is forbidden (Fetch Standard): one of
/// [`FORBIDDEN_REQUEST_HEADERS`] or any name starting with `proxy-` or `sec-`,
/// compared case-insensitively.
pub(crate) fn is_forbidden_request_header(name: &[u8]) -> bool {
    let starts = |p: &[u8]| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p);
    starts(b"proxy-")
        || starts(b"sec-")
        || FORBIDDEN_REQUEST_HEADERS
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether a header name belongs to the CORS protocol: any name starting with
/// `access-control-`, compared case-insensitively. Browsers send the request ones themselves
/// and servers the response ones; neither belongs in a policy's lists of headers a script may
/// send or read.
pub(crate) fn is_cors_protocol_header(name: &[u8]) -> bool {
    const PREFIX: &[u8] = b"access-control-";
    name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// The forbidden response-header names: scripts can never read them, exposed or not.
pub(crate) const FORBIDDEN_RESPONSE_HEADERS: [&str; 2] = ["set-cookie", "set-cookie2"];

/// The CORS-safelisted response-header names: scripts can always read them.
pub(crate) const SAFELISTED_RESPONSE_HEADERS: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(lines: &[&str], max_len: usize, max_items: usize) -> Result<Vec<String>, ListError> {
        let mut out = Vec::new();
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        for_each_list_item(lines.iter().copied(), max_len, max_items, |item| {
            out.push(match item {
                ListItem::Token(t) => String::from_utf8_lossy(t).into_owned(),
                ListItem::Invalid(t) => format!("!{}", String::from_utf8_lossy(t)),
            });
            true
        })?;
        Ok(out)
    }

    #[test]
    fn list_parsing_follows_get_decode_split() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["a,b"], &["a", "b"]),
            (&[" a ,\tb\t"], &["a", "b"]),
            (&["a,,b,"], &["a", "b"]),
            (&[",,,"], &[]),
            (&[""], &[]),
            (&["a", "b, c"], &["a", "b", "c"]),
            (&["x y, z"], &["!x y", "z"]),
            (&["a/b"], &["!a/b"]),
            (&["*"], &["*"]),
        ];
        for (lines, want) in cases {
            let got = collect(lines, 1000, 1000).unwrap();
            assert_eq!(&got, want, "lines {lines:?}");
        }
    }

    #[test]
    fn list_parsing_is_bounded() {
        assert_eq!(collect(&["abcd"], 3, 10), Err(ListError::TooLong));
        assert_eq!(collect(&["ab", "cd"], 3, 10), Err(ListError::TooLong));
        assert_eq!(collect(&[",,,"], 100, 3), Err(ListError::TooManyItems));
        assert_eq!(collect(&["a,b,c"], 5, 3).unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn method_normalization_matches_fetch() {
        let table = [
            ("get", "GET"),
            ("Delete", "DELETE"),
            ("options", "OPTIONS"),
            ("put", "PUT"),
            ("patch", "patch"),
            ("PATCH", "PATCH"),
            ("Propfind", "Propfind"),
        ];
        for (input, want) in table {
            assert_eq!(normalize_method(input), want, "{input}");
        }
    }

    #[test]
    fn forbidden_names() {
        for h in [
            "Cookie",
            "HOST",
            "proxy-authorization",
            "Sec-Fetch-Mode",
            "origin",
        ] {
            assert!(is_forbidden_request_header(h.as_bytes()), "{h}");
        }
        for h in [
            "x-custom",
            "authorization",
            "content-type",
            "secret",
            "proxyish",
        ] {
            assert!(!is_forbidden_request_header(h.as_bytes()), "{h}");
        }
        for m in ["CONNECT", "trace", "Track"] {
            assert!(is_forbidden_method(m.as_bytes()), "{m}");
        }
        assert!(!is_forbidden_method(b"PATCH"));
        assert!(is_safelisted_method(b"GET"));
        assert!(!is_safelisted_method(b"get"));
        assert!(!is_safelisted_method(b"PUT"));
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"X-Custom_1"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token("é".as_bytes()));
    }
}
