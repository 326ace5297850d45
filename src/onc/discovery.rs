//! ONC's discovery services as typed calls: the deployments of a device or at a site.
//!
//! Input: a [`DeploymentFilter`]. Output: ONC's deployments as [`Deployment`]s (a 404, "valid
//! filters, nothing matched", is an empty list). Errors: [`OncError`]; an unknown device or
//! location code is ONC's 400 with errorCode 127 naming the parameter, which
//! [`OncError::rejected_parameter`] reports, so a caller can say which code ONC does not know.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::api::codes;
use super::client::OncClient;
use super::error::OncError;
use onc_format::deployment::Deployment;
use onc_format::query;
use onc_format::stamp::parse_onc_date;

/// Whose deployments to ask for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeploymentFilter {
    /// Every deployment of one device.
    Device(String),
    /// Every deployment of a device category at one location.
    Site { location: String, category: String },
}

impl DeploymentFilter {
    /// The query parameters ONC's `deployments` service takes for this filter.
    pub fn params(&self) -> BTreeMap<String, String> {
        match self {
            DeploymentFilter::Device(device) => {
                BTreeMap::from([(query::DEVICE_CODE.to_owned(), device.clone())])
            }
            DeploymentFilter::Site { location, category } => BTreeMap::from([
                (query::LOCATION_CODE.to_owned(), location.clone()),
                (query::DEVICE_CATEGORY_CODE.to_owned(), category.clone()),
            ]),
        }
    }
}

/// One entry of ONC's `deployments` answer (fields onc-pipe reads; others are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentJson {
    device_code: String,
    #[serde(default)]
    location_code: String,
    #[serde(default)]
    device_category_code: String,
    begin: String,
    #[serde(default)]
    end: Option<String>,
}

impl OncClient {
    /// The deployments matching `filter`, in ONC's order. Errors: the call's, or
    /// [`OncError::InvalidResponse`] for an answer that is not a list of deployments with
    /// readable dates.
    pub async fn deployments_of(
        &self,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, OncError> {
        let endpoint = super::client::endpoint::DEPLOYMENTS;
        let value = self.deployments(&filter.params()).await?;
        parse_deployments(value).map_err(|detail| OncError::InvalidResponse {
            endpoint: endpoint.to_owned(),
            detail,
        })
    }
}

/// ONC's `deployments` JSON → deployments. Errors name the entry and what is wrong with it.
pub fn parse_deployments(value: Value) -> Result<Vec<Deployment>, String> {
    let entries: Vec<DeploymentJson> =
        serde_json::from_value(value).map_err(|e| format!("not a list of deployments: {e}"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let begin_ms = parse_onc_date(&entry.begin)
                .ok_or_else(|| format!("deployment {i}: `begin` is not a date: {}", entry.begin))?;
            let end_ms = match entry.end.as_deref() {
                None | Some("") => None,
                Some(text) => Some(
                    parse_onc_date(text)
                        .ok_or_else(|| format!("deployment {i}: `end` is not a date: {text}"))?,
                ),
            };
            Ok(Deployment {
                device: entry.device_code,
                location: entry.location_code,
                category: entry.device_category_code,
                begin_ms,
                end_ms,
            })
        })
        .collect()
}

impl OncError {
    /// The parameter ONC rejected as an invalid value (400, errorCode 127), e.g. `deviceCode`
    /// for a device it does not know.
    pub fn rejected_parameter(&self) -> Option<&str> {
        match self {
            OncError::Onc {
                status: 400,
                errors,
                ..
            } => errors
                .iter()
                .find(|e| e.error_code == codes::INVALID_VALUE)
                .map(|e| e.parameter.as_str()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_parse_with_open_ends_and_extra_fields() {
        let parsed = parse_deployments(json!([
            {"deviceCode": "ICLISTENHF1251", "locationCode": "BACAX", "deviceCategoryCode": "HYDROPHONE",
             "begin": "2020-01-01T00:00:00.000Z", "end": "2023-06-15T18:00:00.000Z", "lat": 48.3},
            {"deviceCode": "ICLISTENHF6406", "locationCode": "BACAX", "deviceCategoryCode": "HYDROPHONE",
             "begin": "2023-06-15T18:00:00.000Z", "end": null}
        ]))
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].end_ms, Some(1_686_852_000_000));
        assert_eq!(parsed[1].end_ms, None);
        assert_eq!(parsed[1].location, "BACAX");
    }

    #[test]
    fn a_bad_answer_says_which_entry() {
        let error =
            parse_deployments(json!([{"deviceCode": "X", "begin": "yesterday"}])).unwrap_err();
        assert_eq!(error, "deployment 0: `begin` is not a date: yesterday");
        assert!(parse_deployments(json!({"oops": 1})).is_err());
    }
}
