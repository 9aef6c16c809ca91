//! A bucket's CORS configuration and how a cross-origin request is matched against it, as
//! S3 does: the first rule whose origins, methods and headers all allow the request applies.
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html>

use serde::{Deserialize, Serialize};

/// Up to 100 rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfiguration {
    pub rules: Vec<CorsRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    /// `GET`, `PUT`, `HEAD`, `POST`, `DELETE`.
    pub allowed_methods: Vec<String>,
    /// Origins, each with at most one `*` standing for any run of characters.
    pub allowed_origins: Vec<String>,
    /// Request headers a preflight may ask for, each with at most one `*`.
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may show the page.
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

/// Whether `value` matches `pattern`, in which one `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.is_char_boundary(head.len())
                && value.is_char_boundary(value.len() - tail.len())
                && eq(&value[..head.len()], head)
                && eq(&value[value.len() - tail.len()..], tail)
        }
    }
}

impl CorsRule {
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| wildcard_match(o, origin, false))
    }

    pub fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods.iter().any(|m| m == method)
    }

    /// Whether every header a preflight asks for is allowed (names compare without case).
    pub fn allows_headers<'a>(&self, mut requested: impl Iterator<Item = &'a str>) -> bool {
        requested.all(|h| self.allowed_headers.iter().any(|a| wildcard_match(a, h, true)))
    }

    /// Whether the rule allows any origin (`*`), which is then what the response names.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

impl CorsConfiguration {
    /// The first rule that allows `origin` to use `method` with `headers`.
    pub fn find(&self, origin: &str, method: &str, headers: &[&str]) -> Option<&CorsRule> {
        self.rules
            .iter()
            .find(|r| r.allows_origin(origin) && r.allows_method(method) && r.allows_headers(headers.iter().copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            ..CorsRule::default()
        }
    }

    #[test]
    fn wildcards_match_one_run_of_characters() {
        assert!(wildcard_match("https://*.example.com", "https://app.example.com", false));
        assert!(!wildcard_match("https://*.example.com", "https://example.com", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("x-amz-*", "X-Amz-Date", true));
        assert!(!wildcard_match("x-amz-*", "X-Amz-Date", false));
        assert!(!wildcard_match("ab*ba", "aba", false), "head and tail may not overlap");
        assert!(!wildcard_match("é*", "e\u{301}x", false));
    }

    #[test]
    fn the_first_rule_allowing_everything_asked_applies() {
        let config = CorsConfiguration {
            rules: vec![
                rule(&["https://a.example"], &["PUT"], &["content-type"]),
                rule(&["https://*.example"], &["GET", "PUT"], &["*"]),
                rule(&["*"], &["GET"], &[]),
            ],
        };
        let find = |o, m, h: &[&str]| config.find(o, m, h).map(|r| r.allowed_origins[0].clone());
        assert_eq!(find("https://a.example", "PUT", &["Content-Type"]), Some("https://a.example".into()));
        assert_eq!(find("https://a.example", "PUT", &["x-amz-date"]), Some("https://*.example".into()));
        assert_eq!(find("https://b.example", "DELETE", &[]), None);
        assert_eq!(find("http://other", "GET", &[]), Some("*".into()));
        assert_eq!(find("http://other", "GET", &["x-custom"]), None, "no rule allows the header");
    }
}
