//! CSV request-file fuzz target: any text → `manifest::requests::parse_requests` (the seed
//! tool's CSV format, comma- or tab-separated, and Raven selection tables, read both as sniffed
//! and as Raven whatever the header) must return requests and diagnostics, never panic. Every request returned
//! must be well formed (a window that does not end before it starts, padding >= 0, a device or
//! a site, `output_name`/`output_tag` already sanitised: at most 120 safe characters, no `..`),
//! and every diagnostic must render.

#![no_main]

use libfuzzer_sys::fuzz_target;
use onc_pipe::manifest::requests::{RequestFormat, parse_requests, sanitise_name};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut requests, mut diagnostics) = parse_requests("fuzz.csv", text, RequestFormat::Csv);
    let (raven_requests, raven_diagnostics) =
        parse_requests("fuzz.txt", text, RequestFormat::Raven);
    requests.extend(raven_requests);
    diagnostics.extend(raven_diagnostics);
    for request in &requests {
        assert!(request.end >= request.start, "{request:?}");
        assert!(
            request.pad_before_ms >= 0 && request.pad_after_ms >= 0,
            "{request:?}"
        );
        assert!(
            !request.device.is_empty() || request.site.is_some(),
            "{request:?}"
        );
        for name in [&request.output_name, &request.output_tag]
            .into_iter()
            .flatten()
        {
            // Sanitising is idempotent, so a sanitised name comes back unchanged.
            assert_eq!(sanitise_name(name).as_deref(), Some(name.as_str()));
        }
    }
    for diagnostic in &diagnostics {
        let _ = diagnostic.render_human();
        let _ = diagnostic.render_github();
    }
});
