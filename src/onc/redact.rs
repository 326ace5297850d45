//! Keeping the ONC token secret.
//!
//! Input: the token, URLs and free text (server error bodies, `reqwest` error messages).
//! Output: a [`Token`] that never prints itself, and copies of URLs or text with the secret
//! replaced by `REDACTED`. Nothing here fails.
//!
//! ONC authenticates with a `token=` query parameter on every call, so every URL the client
//! builds carries the secret. Anything that might reach a log, an error or a run record goes
//! through [`redact_url`] or [`redact_text`] first.

use std::fmt;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// The ONC API token. `Debug` and `Display` print `Token(***)`; only [`Token::expose`] gives the
/// secret, and the client calls it in exactly one place (building a request's query).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token as given (the caller decides where it comes from, e.g. `ONC_TOKEN`).
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    /// The secret itself, for the query string of a request. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the token is the empty string (useful for "no token configured" checks).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        Token(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Replaces the value of every `token=` query parameter in `url` with `REDACTED`.
///
/// The parameter name matches case-insensitively and also in percent-encoded spellings
/// (`%74oken=`), because a server decodes those to `token` too. The value runs to the next `&`,
/// `#`, `;` or to the end; it is replaced even when empty. Works on any text containing URLs, not
/// only on a bare URL (a value also stops at whitespace and quotes).
pub fn redact_url(url: &str) -> String {
    let bytes = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    // `copied` is the index up to which `url` has been copied into `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A parameter name starts at the beginning or right after a separator.
        let at_boundary = i == 0 || is_name_boundary(bytes[i - 1]);
        if !at_boundary || !is_name_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let name_end = i + bytes[i..].iter().take_while(|b| is_name_byte(**b)).count();
        if name_end < bytes.len() && bytes[name_end] == b'=' && is_token_name(&url[i..name_end]) {
            let value_start = name_end + 1;
            let value_end = value_start
                + bytes[value_start..]
                    .iter()
                    .take_while(|b| !is_value_end(**b))
                    .count();
            out.push_str(&url[copied..value_start]);
            out.push_str(REDACTED);
            copied = value_end;
            i = value_end;
        } else {
            i = name_end.max(i + 1);
        }
    }
    out.push_str(&url[copied..]);
    out
}

/// Removes `token` from `text`: every raw occurrence of the secret becomes `REDACTED`, and so
/// does the value of any `token=` parameter (see [`redact_url`]), whoever's token it is.
///
/// Used on server error bodies (which might echo the request) and on transport error messages.
pub fn redact_text(text: &str, token: &Token) -> String {
    let secret = token.expose();
    // An empty secret would "match" between every character.
    let replaced = if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, REDACTED)
    };
    redact_url(&replaced)
}

/// Bytes that may appear in a (possibly percent-encoded) parameter name.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'%' | b'_' | b'-' | b'.')
}

/// Bytes after which a new parameter name may start. Letters, digits and name punctuation are
/// excluded so that `mytoken=` or `csrf_token=` are not taken for `token=`.
fn is_name_boundary(b: u8) -> bool {
    !is_name_byte(b) && b != b'='
}

/// Bytes that end a parameter value.
fn is_value_end(b: u8) -> bool {
    matches!(
        b,
        b'&' | b'#' | b';' | b'"' | b'\'' | b'<' | b'>' | b'`' | b')' | b']' | b'}' | b','
    ) || b.is_ascii_whitespace()
}

/// Whether a raw parameter name decodes to `token`, ignoring ASCII case.
fn is_token_name(raw: &str) -> bool {
    let decoded = percent_decode(raw);
    decoded.eq_ignore_ascii_case(onc_format::query::TOKEN.as_bytes())
}

/// Percent-decoding of a short name; invalid escapes are kept literally. Hand-written because the
/// crate has no URL-decoding dependency of its own and this is six lines.
fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0f3c9a2e-1234-4bcd-9ef0-123456789abc";

    #[test]
    fn token_never_prints_itself() {
        let token = Token::new(SECRET);
        assert_eq!(format!("{token}"), "Token(***)");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert_eq!(format!("{:?}", Some(&token)), "Some(Token(***))");
        assert_eq!(token.expose(), SECRET);
    }

    #[test]
    fn redact_url_table() {
        let cases: &[(&str, &str)] = &[
            (
                "https://data.oceannetworks.ca/api/archivefile/device?token=abc&deviceCode=X",
                "https://data.oceannetworks.ca/api/archivefile/device?token=REDACTED&deviceCode=X",
            ),
            (
                "https://h/api/x?deviceCode=X&token=abc",
                "https://h/api/x?deviceCode=X&token=REDACTED",
            ),
            (
                "https://h/api/x?deviceCode=X&token=abc#frag",
                "https://h/api/x?deviceCode=X&token=REDACTED#frag",
            ),
            (
                "https://h/api/x?TOKEN=abc&Token=def&tOkEn=ghi",
                "https://h/api/x?TOKEN=REDACTED&Token=REDACTED&tOkEn=REDACTED",
            ),
            (
                "https://h/api/x?%74oken=abc&tok%65n=def&%54%4F%4B%45%4E=ghi",
                "https://h/api/x?%74oken=REDACTED&tok%65n=REDACTED&%54%4F%4B%45%4E=REDACTED",
            ),
            ("https://h/api/x?token=", "https://h/api/x?token=REDACTED"),
            (
                "https://h/api/x?token=&a=1",
                "https://h/api/x?token=REDACTED&a=1",
            ),
            ("token=abc", "token=REDACTED"),
            ("https://h/api/x?a=1", "https://h/api/x?a=1"),
            ("https://h/api/x", "https://h/api/x"),
            (
                "https://h/api/x?mytoken=abc&csrf_token=def&token2=ghi",
                "https://h/api/x?mytoken=abc&csrf_token=def&token2=ghi",
            ),
            ("https://h/api/x?a=token=abc", "https://h/api/x?a=token=abc"),
            (
                "https://h/api/x?token=a%20b%26c&b=2",
                "https://h/api/x?token=REDACTED&b=2",
            ),
            (
                "error for url (https://h/api/x?token=abc): boom",
                "error for url (https://h/api/x?token=REDACTED): boom",
            ),
            (
                "see \"https://h/?token=abc\" and 'https://h/?token=def'",
                "see \"https://h/?token=REDACTED\" and 'https://h/?token=REDACTED'",
            ),
            ("a&token=abc;b=1", "a&token=REDACTED;b=1"),
            ("émoji ✓ ?token=ü✓&x=é", "émoji ✓ ?token=REDACTED&x=é"),
            ("?token=abc&token=def", "?token=REDACTED&token=REDACTED"),
            ("%", "%"),
            ("%7", "%7"),
            ("=", "="),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(&redact_url(input), expected, "input: {input}");
        }
    }

    #[test]
    fn redact_text_removes_raw_token_and_parameters() {
        let token = Token::new(SECRET);
        let text = format!("bad token {SECRET} in {{\"token\":\"{SECRET}\"}} and ?token=other");
        let redacted = redact_text(&text, &token);
        assert!(!redacted.contains(SECRET), "{redacted}");
        assert!(!redacted.contains("other"), "{redacted}");
        assert_eq!(
            redacted,
            "bad token REDACTED in {\"token\":\"REDACTED\"} and ?token=REDACTED"
        );
    }

    #[test]
    fn redact_text_with_empty_token_is_identity_apart_from_parameters() {
        let token = Token::new("");
        assert_eq!(redact_text("hello", &token), "hello");
        assert_eq!(redact_text("x?token=1", &token), "x?token=REDACTED");
    }
}
