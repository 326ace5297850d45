//! Knowing before ordering: ONC's deployments of every device and site a plan needs, from the
//! cache when fresh, else from ONC (read-only discovery calls, one per device or site, one at a
//! time), then kept in the cache.
//!
//! Input: what a plan needs ([`plan::deployed::needed`]), a client (none when offline), the
//! cache (none when there is no cache folder yet, for `plan`) and the server's name. Output:
//! [`Discovered`]: the answers ([`KnownDeployments`]), how many came from ONC and from the
//! cache, and what could not be consulted. Errors: [`OncError`] from the first call that fails
//! for another reason than "ONC does not know this code" (a rejected token, ONC unreachable):
//! the caller stops before anything is ordered.
//!
//! Answers are cached for [`MAX_AGE_MS`]: deployments change when a device is recovered or
//! deployed, which ONC records within days; a week-old answer is the trade between a re-run
//! that asks nothing and a window accepted on stale facts (`run` still gets ONC's own answer
//! for data that does not exist).

use std::collections::BTreeSet;

use crate::cache::{Cache, DiscoveryRecord};
use crate::onc::discovery::parse_deployments;
use crate::onc::{DeploymentFilter, OncClient, OncError};
use crate::plan::deployed::{Deployed, KnownDeployments};
use onc_format::query;

/// How long a cached deployments answer is used without asking ONC again: seven days.
pub const MAX_AGE_MS: i64 = 7 * 24 * 3_600_000;

/// What discovery found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    pub known: KnownDeployments,
    /// Answers fetched from ONC in this call.
    pub asked: usize,
    /// Answers read from the cache.
    pub cached: usize,
    /// Devices and sites whose deployments are unknown: offline with nothing cached.
    pub not_consulted: Vec<Deployed>,
}

/// Finds the deployments of everything in `needed`. With `client = None` (offline), only the
/// cache is read, whatever the age of its answers.
pub async fn discover(
    needed: &BTreeSet<Deployed>,
    client: Option<&OncClient>,
    cache: Option<&Cache>,
    server: &str,
    now_ms: i64,
) -> Result<Discovered, OncError> {
    let mut found = Discovered::default();
    for who in needed {
        let filter = filter_of(who);
        let text = query_text(&filter);
        let fresh = cached_answer(cache, server, &text, now_ms, client.is_none());
        if let Some(answer) = fresh.as_ref().and_then(read_answer) {
            found.known.answers.insert(who.clone(), answer);
            found.cached += 1;
            continue;
        }
        let Some(client) = client else {
            found.not_consulted.push(who.clone());
            continue;
        };
        let raw = match client.deployments(&filter.params()).await {
            Ok(value) => value,
            Err(error) if is_unknown_code(&error, &filter) => serde_json::Value::Null,
            Err(error) => return Err(error),
        };
        let answer = match read_answer(&raw) {
            Some(answer) => answer,
            None => {
                return Err(OncError::InvalidResponse {
                    endpoint: crate::onc::client::endpoint::DEPLOYMENTS.to_owned(),
                    detail: parse_deployments(raw)
                        .err()
                        .unwrap_or_else(|| "unreadable deployments".into()),
                });
            }
        };
        found.asked += 1;
        keep_answer(cache, server, text, now_ms, raw);
        found.known.answers.insert(who.clone(), answer);
    }
    Ok(found)
}

/// ONC's stored answer to `query` on `server`: one younger than [`MAX_AGE_MS`], or of any age
/// when `any_age` (offline).
pub fn cached_answer(
    cache: Option<&Cache>,
    server: &str,
    query: &str,
    now_ms: i64,
    any_age: bool,
) -> Option<serde_json::Value> {
    cache?
        .read_discovery(server, query)
        .filter(|r| any_age || now_ms.saturating_sub(r.fetched_at_ms) < MAX_AGE_MS)
        .map(|record| record.answer)
}

/// Keeps ONC's answer to `query` in the cache. A cache that cannot be written costs a request
/// next time, nothing more.
pub fn keep_answer(
    cache: Option<&Cache>,
    server: &str,
    query: String,
    now_ms: i64,
    answer: serde_json::Value,
) {
    if let Some(cache) = cache {
        let _ = cache.write_discovery(&DiscoveryRecord {
            server: server.to_owned(),
            query,
            fetched_at_ms: now_ms,
            answer,
        });
    }
}

fn filter_of(who: &Deployed) -> DeploymentFilter {
    match who {
        Deployed::Device(device) => DeploymentFilter::Device(device.clone()),
        Deployed::Site { location, category } => DeploymentFilter::Site {
            location: location.clone(),
            category: category.clone(),
        },
    }
}

/// `deployments?deviceCode=…` (parameters in order): the cache's name for a query.
fn query_text(filter: &DeploymentFilter) -> String {
    let params: Vec<String> = filter
        .params()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!(
        "{}?{}",
        crate::onc::client::endpoint::DEPLOYMENTS,
        params.join("&")
    )
}

/// A stored or fetched answer: `null` is "ONC does not know the code"; a list is the
/// deployments. `None` when it is neither (a damaged record, or a strange answer).
fn read_answer(
    value: &serde_json::Value,
) -> Option<Option<Vec<onc_format::deployment::Deployment>>> {
    if value.is_null() {
        return Some(None);
    }
    parse_deployments(value.clone()).ok().map(Some)
}

/// ONC's answer for a code it does not know: 400 with errorCode 127 on the filter's code.
fn is_unknown_code(error: &OncError, filter: &DeploymentFilter) -> bool {
    let Some(parameter) = error.rejected_parameter() else {
        return false;
    };
    match filter {
        DeploymentFilter::Device(_) => parameter.eq_ignore_ascii_case(query::DEVICE_CODE),
        DeploymentFilter::Site { .. } => {
            parameter.eq_ignore_ascii_case(query::LOCATION_CODE)
                || parameter.eq_ignore_ascii_case(query::DEVICE_CATEGORY_CODE)
        }
    }
}
