//! The real binary: whole rendered diagnostics, formats and exit codes.

use crate::support::{Scratch, onc_pipe};

const GOOD_HEAD: &str = "#:schema ../schemas/manifest.schema.json\nversion = 1\n";

#[test]
fn typo_in_a_key_is_reported_with_position_caret_and_suggestion() {
    let scratch = Scratch::new();
    scratch.write(
        "m.toml",
        &format!("{GOOD_HEAD}[plan.a]\ndevise = \"ICLISTENHF6324\"\nrange = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }}\n"),
    );
    let output = onc_pipe(scratch.path(), &["validate", "m.toml"]);
    assert_eq!(output.code, 2);
    assert_eq!(
        output.stderr,
        "m.toml:4:1: error: unknown key `devise` in `plan.a`\n\
         4 | devise = \"ICLISTENHF6324\"\n  | ^^^^^^\n  = help: did you mean `device`?\n\n"
    );
    assert_eq!(
        output.stdout,
        "0 files valid, 1 invalid (1 error, 0 warnings)\n"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let scratch = Scratch::new();
    scratch.write(
        "m.toml",
        &format!(
            "{GOOD_HEAD}[plan.a]\ndevice = \"ICLISTENHF6324\"\n\
             range = {{ start = 2024-04-01T00:00:00, end = 2024-04-01T01:00:00Z }}\n\
             [fetch.f]\nplan = \"b\"\nproduct = \"HSD\"\nextension = \"mat\"\n\
             options = {{ dpo_spectralDataDownsample = 7 }}\n"
        ),
    );
    let output = onc_pipe(scratch.path(), &["validate", "m.toml"]);
    assert_eq!(output.code, 2);
    assert_eq!(
        output.stderr,
        "m.toml:5:19: error: `2024-04-01T00:00:00` has no UTC offset: append `Z` for UTC or an offset such as `-07:00`\n\
         5 | range = { start = 2024-04-01T00:00:00, end = 2024-04-01T01:00:00Z }\n\
         \x20 |                   ^^^^^^^^^^^^^^^^^^^\n\
         \n\
         m.toml:7:8: error: no plan stage named `b`\n\
         7 | plan = \"b\"\n\
         \x20 |        ^^^\n\
         \x20 = help: plan stages: a\n\
         \n\
         m.toml:10:42: error: invalid value `7` for `dpo_spectralDataDownsample`\n\
         10 | options = { dpo_spectralDataDownsample = 7 }\n\
         \x20  |                                          ^\n\
         \x20 = help: dpo_spectralDataDownsample takes an integer from 0 to 2\n\
         \n"
    );
}

#[test]
fn dangling_clip_reference_names_the_stage_and_suggests() {
    let scratch = Scratch::new();
    scratch.write(
        "m.toml",
        &format!(
            "{GOOD_HEAD}[plan.calls]\ndevice = \"ICLISTENHF6324\"\nwindows = [{{ timestamp = 2024-04-01T04:25:00Z }}]\n\
             [fetch.plotres]\nplan = \"calls\"\nproduct = \"HSD\"\nextension = \"mat\"\n\
             [clip.c]\nplan = \"calls\"\nfetch = [\"plotrez\"]\n"
        ),
    );
    let output = onc_pipe(
        scratch.path(),
        &["validate", "--format", "github", "m.toml"],
    );
    assert_eq!(output.code, 2);
    assert_eq!(
        output.stdout,
        "::error file=m.toml,line=12,col=10::no fetch stage named `plotrez` (help: did you mean `plotres`?)\n"
    );
}

#[test]
fn bad_csv_rows_are_all_reported_with_row_and_field() {
    let scratch = Scratch::new();
    scratch.write(
        "events.csv",
        "deviceCode,timestamp,label,download_audio\n\
         ICLISTENHF6324,2024-04-01T12:30:00Z,ok,yes\n\
         ICLISTENHF6324,2024-04-01T25:00:00Z,bad time,no\n\
         ICLISTENHF6324,2024-04-01T12:40:00Z,bad bool,perhaps\n",
    );
    let output = onc_pipe(
        scratch.path(),
        &["validate", "--format", "json", "events.csv"],
    );
    assert_eq!(output.code, 2);
    let diagnostics: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let found: Vec<(String, String, u64)> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["severity"].as_str().unwrap().to_owned(),
                d["location"]["field"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d["location"]["row"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("error".to_owned(), "timestamp".to_owned(), 2),
            ("error".to_owned(), "download_audio".to_owned(), 3),
        ]
    );
}

#[test]
fn missing_file_is_invalid_input() {
    let scratch = Scratch::new();
    let output = onc_pipe(scratch.path(), &["validate", "nope.toml"]);
    assert_eq!(output.code, 2);
    assert!(
        output
            .stderr
            .starts_with("nope.toml: error: cannot read file:"),
        "{}",
        output.stderr
    );
}

#[test]
fn request_file_runs_directly_as_the_seed_would() {
    let scratch = Scratch::new();
    scratch.write(
        "r.json",
        r#"{"defaults": {"deviceCode": "ICLISTENHF6324", "pad_seconds": 15, "download_audio": true},
            "requests": [{"timestamp": "2024-04-01T12:34:50Z", "label": "whale call 1"}]}"#,
    );
    let output = onc_pipe(scratch.path(), &["plan", "r.json", "--format", "json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let plan: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(plan["windows"][0]["clip_start"], "2024-04-01T12:34:35.000Z");
    assert_eq!(plan["windows"][0]["clip_end"], "2024-04-01T12:35:05.000Z");
    let kinds: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"product_request") && kinds.contains(&"archive_list"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "clip").count(),
        2,
        "a spectrogram and an audio clip"
    );
}

#[test]
fn plan_dot_is_a_graph() {
    let output = onc_pipe(
        &crate::support::repo(),
        &[
            "plan",
            "manifests/scenario3_explicit_windows.toml",
            "--format",
            "dot",
        ],
    );
    assert_eq!(output.code, 0);
    assert!(output.stdout.starts_with("digraph onc_pipe {"));
    // Each window is one grid-aligned five-minute slot: 3 windows -> 3 requests -> 3 files.
    assert_eq!(output.stdout.matches(" -> ").count(), 3 + 3);
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let output = onc_pipe(&crate::support::repo(), &["schema"]);
    assert_eq!(output.code, 0);
    let committed =
        std::fs::read_to_string(crate::support::repo().join("schemas/manifest.schema.json"))
            .unwrap();
    assert_eq!(output.stdout, committed);
}

#[test]
fn completions_are_valid_shell_and_know_every_command() {
    let scratch = Scratch::new();
    let bash = onc_pipe(scratch.path(), &["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    for word in [
        "run",
        "plan",
        "validate",
        "status",
        "clean",
        "cancel",
        "--shard",
        "--offline",
    ] {
        assert!(bash.stdout.contains(word), "{word} missing");
    }
    scratch.write("onc-pipe.bash", &bash.stdout);
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(scratch.path().join("onc-pipe.bash"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = onc_pipe(scratch.path(), &["completions", shell]);
        assert_eq!(script.code, 0, "{shell}: {}", script.stderr);
        assert!(script.stdout.contains("onc-pipe"), "{shell}");
    }
    let unknown = onc_pipe(scratch.path(), &["completions", "tcsh"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("possible values"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn plan_spells_json_as_every_command_does() {
    let scratch = Scratch::new();
    let manifest = std::fs::read_to_string(crate::support::repo().join("manifests/demo.toml"))
        .unwrap()
        .replace("\"../demo-data\"", "\"data\"")
        .replace("\"../.onc-pipe\"", "\"cache\"");
    scratch.write("m.toml", &manifest);
    let json = onc_pipe(scratch.path(), &["plan", "m.toml", "--json", "--offline"]);
    let format = onc_pipe(
        scratch.path(),
        &["plan", "m.toml", "--format", "json", "--offline"],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    // The same document (but the free space measured at each call, which other tests move).
    let parse = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };
    let (a, b) = (parse(&json.stdout), parse(&format.stdout));
    for part in ["manifest", "settings", "summary", "windows", "nodes"] {
        assert_eq!(a[part], b[part], "{part}");
    }
    let both = onc_pipe(
        scratch.path(),
        &["plan", "m.toml", "--json", "--format", "dot"],
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
}

#[test]
fn colour_only_when_asked_and_never_in_machine_output() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &format!("{GOOD_HEAD}[plan.a]\ndevise = 1\n"));
    // Not a terminal (the test captures stderr): plain.
    let plain = onc_pipe(scratch.path(), &["validate", "m.toml"]);
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
    let always = onc_pipe(scratch.path(), &["validate", "m.toml", "--color", "always"]);
    assert!(
        always.stderr.contains("\u{1b}[1;31merror\u{1b}[0m"),
        "{}",
        always.stderr
    );
    // Machine output stays plain whatever is asked.
    let github = onc_pipe(
        scratch.path(),
        &[
            "validate", "m.toml", "--color", "always", "--format", "github",
        ],
    );
    assert!(!github.stdout.contains('\u{1b}') && !github.stderr.contains('\u{1b}'));
    let never = onc_pipe(scratch.path(), &["validate", "m.toml", "--color", "never"]);
    assert_eq!(never.stderr, plain.stderr);
    let bad = onc_pipe(
        scratch.path(),
        &["validate", "m.toml", "--color", "sometimes"],
    );
    assert_eq!(bad.code, 2);
}
