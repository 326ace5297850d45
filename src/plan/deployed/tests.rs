//! Windows against deployments: inside, partly outside, outside (with the deployments named),
//! unknown codes, and site windows split at a swap.

use super::*;
use crate::manifest::{Severity, load_manifest_text};
use crate::plan::plan_manifest;
use onc_format::stamp::parse_onc_date;

fn ms(text: &str) -> i64 {
    parse_onc_date(text).unwrap()
}

fn deployment(device: &str, location: &str, begin: &str, end: Option<&str>) -> Deployment {
    Deployment {
        device: device.into(),
        location: location.into(),
        category: "HYDROPHONE".into(),
        begin_ms: ms(begin),
        end_ms: end.map(ms),
    }
}

fn planned(text: &str) -> (Loaded, Plan) {
    let (parsed, diagnostics) = load_manifest_text("m.toml", text);
    assert!(
        !diagnostics.iter().any(Diagnostic::is_error),
        "{diagnostics:?}"
    );
    let (manifest, spans) = parsed.unwrap();
    let loaded = Loaded {
        file: "m.toml".into(),
        path: "m.toml".into(),
        text: text.into(),
        manifest,
        spans,
    };
    let (plan, diagnostics) = plan_manifest(&loaded);
    assert!(
        !diagnostics.iter().any(Diagnostic::is_error),
        "{diagnostics:?}"
    );
    (loaded, plan.unwrap())
}

fn known(entries: Vec<(Deployed, Option<Vec<Deployment>>)>) -> KnownDeployments {
    KnownDeployments {
        answers: entries.into_iter().collect(),
    }
}

const SEVIP: &str = "2021-03-01T00:00:00Z";

#[test]
fn a_window_before_the_deployment_is_an_error_naming_the_window_and_the_deployments() {
    let (loaded, mut plan) = planned(
        r#"version = 1
[plan.early]
device = "ICLISTENHF6324"
windows = [
  { start = 2024-04-01T00:00:00Z, duration = "5m" },
  { start = 2020-06-01T00:00:00Z, duration = "10m" },
]
"#,
    );
    let device = Deployed::Device("ICLISTENHF6324".into());
    let known = known(vec![(
        device,
        Some(vec![deployment("ICLISTENHF6324", "SEVIP", SEVIP, None)]),
    )]);
    let diagnostics = apply(&loaded, &mut plan, &known);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let d = &diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(
        d.message,
        "window 2020-06-01T00:00:00.000Z to 2020-06-01T00:10:00.000Z is outside every deployment of ICLISTENHF6324"
    );
    assert_eq!(
        d.help.as_deref(),
        Some(
            "ICLISTENHF6324 was deployed at SEVIP since 2021-03-01T00:00:00.000Z (still deployed)"
        )
    );
    match &d.location {
        Location::Text { line, .. } => assert_eq!(*line, 6, "the second window's line"),
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.windows[0].location.as_deref(), Some("SEVIP"));
}

#[test]
fn a_window_across_a_gap_is_a_warning_with_the_uncovered_time() {
    let (loaded, mut plan) = planned(
        r#"version = 1
[plan.gap]
device = "ICLISTENHF1951"
range = { start = 2022-08-31T23:00:00Z, end = 2022-09-01T01:00:00Z }
"#,
    );
    let known = known(vec![(
        Deployed::Device("ICLISTENHF1951".into()),
        Some(vec![
            deployment(
                "ICLISTENHF1951",
                "FGPD",
                "2020-06-01T00:00:00Z",
                Some("2022-09-01T00:00:00Z"),
            ),
            deployment("ICLISTENHF1951", "FGPD", "2023-03-01T00:00:00Z", None),
        ]),
    )]);
    let diagnostics = apply(&loaded, &mut plan, &known);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].severity, Severity::Warning);
    assert_eq!(
        diagnostics[0].message,
        "window 2022-08-31T23:00:00.000Z to 2022-09-01T01:00:00.000Z is partly outside the deployments of ICLISTENHF1951: 60 min not covered (2022-09-01T00:00:00.000Z to 2022-09-01T01:00:00.000Z)"
    );
}

#[test]
fn an_unknown_device_is_reported_once_per_stage() {
    let (loaded, mut plan) = planned(
        r#"version = 1
[plan.typo]
device = "ICLISTENHF9999"
windows = [{ timestamp = 2024-04-01T00:00:00Z }, { timestamp = 2024-04-02T00:00:00Z }]
"#,
    );
    let known = known(vec![(Deployed::Device("ICLISTENHF9999".into()), None)]);
    let diagnostics = apply(&loaded, &mut plan, &known);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(
        diagnostics[0].message,
        "ONC does not know device `ICLISTENHF9999`"
    );
}

#[test]
fn a_site_window_across_a_swap_becomes_one_window_per_device() {
    let (loaded, mut plan) = planned(
        r#"version = 1
[plan.site]
location = "BACAX"
range = { start = 2023-06-15T17:00:00Z, end = 2023-06-15T19:00:00Z }
"#,
    );
    assert!(plan.windows.is_empty());
    assert_eq!(plan.site_windows.len(), 1);
    assert_eq!(plan.site_windows[0].category, "HYDROPHONE");
    let swap = "2023-06-15T18:00:00Z";
    let known = known(vec![(
        Deployed::Site {
            location: "BACAX".into(),
            category: "HYDROPHONE".into(),
        },
        Some(vec![
            deployment(
                "ICLISTENHF1251",
                "BACAX",
                "2020-01-01T00:00:00Z",
                Some(swap),
            ),
            deployment("ICLISTENHF6406", "BACAX", swap, None),
        ]),
    )]);
    let diagnostics = apply(&loaded, &mut plan, &known);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let resolved: Vec<_> = plan
        .windows
        .iter()
        .map(|w| {
            (
                w.device.as_str(),
                rfc3339(w.start),
                rfc3339(w.end),
                w.location.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        resolved,
        [
            (
                "ICLISTENHF1251",
                "2023-06-15T17:00:00.000Z".to_owned(),
                "2023-06-15T18:00:00.000Z".to_owned(),
                Some("BACAX")
            ),
            (
                "ICLISTENHF6406",
                "2023-06-15T18:00:00.000Z".to_owned(),
                "2023-06-15T19:00:00.000Z".to_owned(),
                Some("BACAX")
            ),
        ]
    );
    assert!(plan.site_windows.is_empty());
}

#[test]
fn a_site_not_consulted_is_an_error_and_an_unknown_site_is_named() {
    let text = r#"version = 1
[plan.site]
location = "BACAXX"
windows = [{ timestamp = 2023-06-15T17:00:00Z }]
"#;
    let (loaded, mut plan) = planned(text);
    let diagnostics = apply(&loaded, &mut plan, &KnownDeployments::default());
    assert_eq!(
        diagnostics[0].message,
        "which HYDROPHONE at BACAXX was deployed is unknown"
    );

    let (loaded, mut plan) = planned(text);
    let site = Deployed::Site {
        location: "BACAXX".into(),
        category: "HYDROPHONE".into(),
    };
    let diagnostics = apply(&loaded, &mut plan, &known(vec![(site, None)]));
    assert_eq!(
        diagnostics[0].message,
        "ONC does not know location `BACAXX`"
    );
    assert!(plan.windows.is_empty());
}

#[test]
fn device_and_location_together_or_neither_are_errors() {
    for (stage, expected) in [
        (
            "device = \"ICLISTENHF6324\"\nlocation = \"BACAX\"",
            "gives both `device` and `location`",
        ),
        (
            "location = \"BAC AX\"",
            "does not look like an ONC location code",
        ),
    ] {
        let text = format!(
            "version = 1\n[plan.s]\n{stage}\nrange = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }}\n"
        );
        let (parsed, _) = load_manifest_text("m.toml", &text);
        let (manifest, spans) = parsed.unwrap();
        let loaded = Loaded {
            file: "m.toml".into(),
            path: "m.toml".into(),
            text: text.clone(),
            manifest,
            spans,
        };
        let (plan, diagnostics) = plan_manifest(&loaded);
        assert!(plan.is_none());
        assert!(
            diagnostics.iter().any(|d| d.message.contains(expected)),
            "{expected}: {diagnostics:?}"
        );
    }
}
