//! Everything that can go wrong talking to ONC, in one enum for the layer.
//!
//! Input: ONC's error envelopes and statuses, `reqwest`'s errors, local I/O. Output:
//! [`OncError`], whose messages read after "failed to", name the service (never a URL) and are
//! redacted of the token; whether each error is worth retrying; and whether it is fatal to the
//! whole run ([`TokenRejected`]: a 401 means no other call can succeed either).

use std::path::PathBuf;

use onc_format::query;

use super::api::{OncErrorDetail, codes};
use super::redact::{Token, redact_text};
use super::retry::{Transience, classify_io, classify_status};

/// Everything that can go wrong talking to ONC. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum OncError {
    /// ONC rejected the request with its error envelope (usually 400).
    #[error("call ONC {endpoint} (HTTP {status}): {}", describe_details(.errors))]
    Onc {
        status: u16,
        errors: Vec<OncErrorDetail>,
        endpoint: String,
    },
    /// 400 without an `errors` key: ONC's answer to downloading from a cancelled run.
    #[error("download from ONC {endpoint}: the run was cancelled")]
    CancelledRun { endpoint: String },
    /// 401: missing or invalid token. Fatal to the run, not only to the call: see
    /// [`OncError::token_rejected`].
    #[error(
        "authenticate with ONC {endpoint}: the token was rejected (HTTP 401){}",
        describe_unauthorized(.errors)
    )]
    Unauthorized {
        endpoint: String,
        errors: Vec<OncErrorDetail>,
    },
    /// Any other unexpected status.
    #[error("call ONC {endpoint}: HTTP {status}{}", excerpt_suffix(.body_excerpt))]
    Http {
        status: u16,
        endpoint: String,
        /// Redacted, at most 300 characters.
        body_excerpt: String,
    },
    /// The connection failed, timed out or was reset (transient).
    #[error("reach ONC {endpoint} after {attempts} attempt(s): {source_text}")]
    Transport {
        endpoint: String,
        /// The redacted text of the `reqwest` error and its causes, without the URL.
        source_text: String,
        attempts: u32,
    },
    /// A request that could not be sent and will not work on retry (e.g. a redirect loop).
    #[error("send a request to ONC {endpoint}: {source_text}")]
    Request {
        endpoint: String,
        source_text: String,
    },
    /// The body ended before `Content-Length` bytes (transient).
    #[error("download from ONC {endpoint}: body truncated at {received} of {expected} bytes")]
    Truncated {
        endpoint: String,
        expected: u64,
        received: u64,
    },
    #[error("write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A body that is not the JSON ONC documents.
    #[error("understand ONC's answer from {endpoint}: {detail}")]
    InvalidResponse { endpoint: String, detail: String },
    #[error("use ONC base URL `{url}`: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    /// The HTTP client itself could not be built (TLS set-up, user agent).
    #[error("build the HTTP client: {detail}")]
    Client { detail: String },
}

fn describe_details(errors: &[OncErrorDetail]) -> String {
    if errors.is_empty() {
        return "no error details".to_string();
    }
    errors
        .iter()
        .map(|e| {
            let message = if e.error_message.is_empty() {
                "(no message)"
            } else {
                e.error_message.as_str()
            };
            if e.parameter.is_empty() {
                format!("{message} (code {})", e.error_code)
            } else {
                format!(
                    "{message} (parameter `{}`, code {})",
                    e.parameter, e.error_code
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_unauthorized(errors: &[OncErrorDetail]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", describe_details(errors))
    }
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

/// ONC refused the token (401): every other call of the run would be refused too, so a run
/// stops at the first one instead of failing each node. Carries ONC's answer (already redacted)
/// and the service that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRejected {
    pub endpoint: String,
    pub errors: Vec<OncErrorDetail>,
}

impl std::fmt::Display for TokenRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP 401 from {}", self.endpoint)?;
        if !self.errors.is_empty() {
            write!(f, ": {}", describe_details(&self.errors))?;
        }
        Ok(())
    }
}

impl OncError {
    /// The token was refused (401, whatever ONC's error code: 127 for a bad token, 128 for a
    /// missing one). `None` for every other error, which concerns one call only.
    pub fn token_rejected(&self) -> Option<TokenRejected> {
        match self {
            OncError::Unauthorized { endpoint, errors } => Some(TokenRejected {
                endpoint: endpoint.clone(),
                errors: errors.clone(),
            }),
            _ => None,
        }
    }

    /// Whether sending the same request again may succeed (see the table in `retry.rs`).
    pub fn is_transient(&self) -> bool {
        match self {
            OncError::Onc { status, .. } | OncError::Http { status, .. } => {
                classify_status(*status) == Transience::Transient
            }
            OncError::Transport { .. } | OncError::Truncated { .. } => true,
            OncError::CancelledRun { .. }
            | OncError::Unauthorized { .. }
            | OncError::Request { .. }
            | OncError::Io { .. }
            | OncError::InvalidResponse { .. }
            | OncError::InvalidBaseUrl { .. }
            | OncError::Client { .. } => false,
        }
    }

    /// ONC no longer (or never) knew the dpRequestId/dpRunId: 400 with code 127 on one of them.
    /// The pipeline submits the request again.
    pub fn is_unknown_id(&self) -> bool {
        match self {
            OncError::Onc { status, errors, .. } => {
                *status == 400
                    && errors.iter().any(|e| {
                        e.error_code == codes::INVALID_VALUE
                            && (e.parameter.eq_ignore_ascii_case(query::DP_REQUEST_ID)
                                || e.parameter.eq_ignore_ascii_case(query::DP_RUN_ID))
                    })
            }
            _ => false,
        }
    }

    /// The ONC service the error came from, when there is one.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            OncError::Onc { endpoint, .. }
            | OncError::CancelledRun { endpoint }
            | OncError::Unauthorized { endpoint, .. }
            | OncError::Http { endpoint, .. }
            | OncError::Transport { endpoint, .. }
            | OncError::Request { endpoint, .. }
            | OncError::Truncated { endpoint, .. }
            | OncError::InvalidResponse { endpoint, .. } => Some(endpoint),
            OncError::Io { .. } | OncError::InvalidBaseUrl { .. } | OncError::Client { .. } => None,
        }
    }
}

/// Turns a `reqwest` error into an [`OncError`]: URL stripped, text redacted, the whole cause
/// chain kept (the top-level message alone says little: "error sending request").
pub(crate) fn reqwest_error(err: reqwest::Error, endpoint: &str, token: &Token) -> OncError {
    let transience = classify_io(&err);
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let source_text = redact_text(&text, token);
    match transience {
        Transience::Transient => OncError::Transport {
            endpoint: endpoint.to_string(),
            source_text,
            attempts: 1,
        },
        Transience::Permanent => OncError::Request {
            endpoint: endpoint.to_string(),
            source_text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(code: i64, message: &str) -> OncErrorDetail {
        OncErrorDetail {
            error_code: code,
            error_message: message.into(),
            parameter: "token".into(),
        }
    }

    /// A 401 is fatal to the run, with ONC's words; a 400 on the same parameter concerns one call.
    #[test]
    fn only_a_401_rejects_the_token() {
        let unauthorized = OncError::Unauthorized {
            endpoint: "dataProductDelivery/request".into(),
            errors: vec![detail(127, "Invalid token")],
        };
        let rejected = unauthorized.token_rejected().unwrap();
        assert_eq!(
            rejected.to_string(),
            "HTTP 401 from dataProductDelivery/request: Invalid token (parameter `token`, code 127)"
        );
        let bare = OncError::Unauthorized {
            endpoint: "archivefile/device".into(),
            errors: Vec::new(),
        };
        assert_eq!(
            bare.token_rejected().unwrap().to_string(),
            "HTTP 401 from archivefile/device"
        );
        let bad_request = OncError::Onc {
            status: 400,
            errors: vec![detail(127, "Invalid token")],
            endpoint: "dataProductDelivery/request".into(),
        };
        assert_eq!(bad_request.token_rejected(), None);
    }
}
