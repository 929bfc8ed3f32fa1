//! What the browser will do with one of the page's requests, worked out on the server: corsair's
//! browser engine ([`Fetch`]) against the answers the API gives under the current scenario
//! ([`Scenario::answer`]). No network: the same function that answers real requests answers
//! these.

use corsair::browser::{Blocked, Browser, Credentials, Fetch, RequestInit};
use corsair::Policy;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use serde_json::{json, Value};

use super::scenario::Scenario;

/// A request the page wants to send.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The method, as the script writes it.
    pub method: String,
    /// The headers the script sets.
    pub headers: Vec<(String, String)>,
    /// The credentials mode.
    pub credentials: Credentials,
}

/// One exchange: the request the browser sends and the API's answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Whether this is the preflight.
    pub preflight: bool,
    /// The request line's method.
    pub method: String,
    /// The request headers the browser sends.
    pub request: Vec<(String, String)>,
    /// The answer's status.
    pub status: u16,
    /// The answer's CORS headers.
    pub response: Vec<(String, String)>,
    /// The server's decision, in words.
    pub decision: String,
    /// The response header the browser's verdict turned on, if any.
    pub deciding: Option<String>,
}

/// The prediction: the exchanges and the verdict.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The exchanges, preflight first.
    pub exchanges: Vec<Exchange>,
    /// `Ok(status)` when the script can read the response; the console message otherwise.
    pub verdict: Result<u16, String>,
}

/// Predicts `request` to `url` from a page of `origin` under `scenario` (whose corsair policy
/// is `policy`).
///
/// # Errors
/// When the browser would throw before sending anything (a forbidden method, a bad header);
/// the message says why.
pub fn predict(
    scenario: Scenario,
    policy: Option<&Policy>,
    origin: &str,
    url: &str,
    request: &PageRequest,
) -> Result<Prediction, String> {
    let init = RequestInit {
        method: request.method.clone(),
        headers: request.headers.clone(),
        credentials: request.credentials,
    };
    let mut fetch = Fetch::new(Browser::Chromium, origin, url, init).map_err(|e| e.to_string())?;
    let mut exchanges = Vec::new();
    // A fetch without redirects has at most two exchanges; the bound guards against a loop.
    for _ in 0..4 {
        let Some(out) = fetch.request() else { break };
        let method = Method::from_bytes(out.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        for (n, v) in &out.headers {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(v).map_err(|e| e.to_string())?;
            headers.append(name, value);
        }
        let answer = scenario.answer(policy, &method, &headers);
        let status = answer.respond.map_or(200, |s| s.as_u16());
        let response = answer
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        exchanges.push(Exchange {
            preflight: out.preflight,
            method: out.method.clone(),
            request: out.headers.clone(),
            status,
            response,
            decision: answer.decision,
            deciding: None,
        });
        if let Some(verdict) = fetch.receive(status, &answer.headers) {
            let verdict = match verdict {
                Ok(readable) => {
                    if let Some(last) = exchanges.last_mut() {
                        last.deciding = Some("access-control-allow-origin".to_owned());
                    }
                    Ok(readable.status)
                }
                Err(blocked) => {
                    if let (Some(last), Blocked::Cors(e)) = (exchanges.last_mut(), &blocked) {
                        last.deciding = Some(e.kind().header().unwrap_or("status").to_owned());
                    }
                    Err(blocked.to_string())
                }
            };
            return Ok(Prediction { exchanges, verdict });
        }
    }
    Err("the fetch did not finish in the exchanges a fetch without redirects takes".to_owned())
}

/// A shell word, quoted when it needs to be.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `corsair check` command that makes the same requests from a terminal.
pub fn check_command(origin: &str, url: &str, request: &PageRequest) -> String {
    let mut cmd = format!(
        "corsair check {} --origin {}",
        shell_word(url),
        shell_word(origin)
    );
    if !request.method.eq_ignore_ascii_case("GET") {
        cmd.push_str(" -X ");
        cmd.push_str(&shell_word(&request.method));
    }
    for (n, v) in &request.headers {
        cmd.push_str(" -H ");
        cmd.push_str(&shell_word(&format!("{n}: {v}")));
    }
    let mode = match request.credentials {
        Credentials::Omit => Some("omit"),
        Credentials::SameOrigin => None,
        Credentials::Include => Some("include"),
    };
    if let Some(mode) = mode {
        cmd.push_str(" --credentials ");
        cmd.push_str(mode);
    }
    cmd
}

/// The prediction as the page reads it.
pub fn to_json(p: &Prediction) -> Value {
    let pairs =
        |v: &[(String, String)]| -> Vec<Value> { v.iter().map(|(n, v)| json!([n, v])).collect() };
    let exchanges: Vec<Value> = p
        .exchanges
        .iter()
        .map(|e| {
            json!({
                "preflight": e.preflight,
                "method": e.method,
                "request": pairs(&e.request),
                "status": e.status,
                "response": pairs(&e.response),
                "decision": e.decision,
                "deciding": e.deciding,
            })
        })
        .collect();
    match &p.verdict {
        Ok(status) => json!({ "allowed": true, "status": status, "exchanges": exchanges }),
        Err(message) => json!({ "allowed": false, "message": message, "exchanges": exchanges }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PAGE: &str = "http://localhost:8000";
    const API: &str = "http://localhost:9000/api/endpoint";

    fn put() -> PageRequest {
        PageRequest {
            method: "PUT".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            credentials: Credentials::SameOrigin,
        }
    }

    #[test]
    fn put_without_put_is_blocked_at_the_preflight_with_chromiums_words() {
        let s = Scenario::MethodMissing;
        let p = s.policy(PAGE).unwrap();
        let got = predict(s, p.as_ref(), PAGE, API, &put()).unwrap();
        assert_eq!(got.exchanges.len(), 1);
        assert!(got.exchanges[0].preflight);
        assert_eq!(
            got.exchanges[0].deciding.as_deref(),
            Some("access-control-allow-methods")
        );
        assert_eq!(
            got.verdict.unwrap_err(),
            "Access to fetch at 'http://localhost:9000/api/endpoint' from origin \
             'http://localhost:8000' has been blocked by CORS policy: Method PUT is not allowed \
             by Access-Control-Allow-Methods in preflight response."
        );
    }

    #[test]
    fn put_under_the_correct_policy_takes_two_exchanges() {
        let s = Scenario::Correct;
        let p = s.policy(PAGE).unwrap();
        let got = predict(s, p.as_ref(), PAGE, API, &put()).unwrap();
        assert_eq!(got.exchanges.len(), 2);
        assert_eq!(got.verdict, Ok(200));
    }

    #[test]
    fn credentialed_get_under_wildcard_is_blocked() {
        let req = PageRequest {
            method: "GET".into(),
            headers: vec![],
            credentials: Credentials::Include,
        };
        let got = predict(Scenario::WildcardWithCredentials, None, PAGE, API, &req).unwrap();
        assert!(got.verdict.unwrap_err().ends_with(
            "The value of the 'Access-Control-Allow-Origin' header in the response must not be \
             the wildcard '*' when the request's credentials mode is 'include'."
        ));
    }

    #[test]
    fn the_check_command_quotes_what_the_shell_would_split() {
        let req = PageRequest {
            method: "DELETE".into(),
            headers: vec![("X-Request-Id".into(), "it's 7".into())],
            credentials: Credentials::Include,
        };
        assert_eq!(
            check_command(PAGE, API, &req),
            "corsair check http://localhost:9000/api/endpoint --origin http://localhost:8000 \
             -X DELETE -H 'X-Request-Id: it'\\''s 7' --credentials include"
        );
    }
}
