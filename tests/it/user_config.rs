//! The user config file (`$XDG_CONFIG_HOME/onc-pipe/config.toml`): where the cache and the
//! token come from, in the documented order; a bad file's error names its line and column; a
//! token others can read is a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::Ran;
use crate::support::Scratch;

/// `onc-pipe` with a config home of the test's own and nothing from the caller's environment
/// that would choose a cache or a token; `env` adds variables.
fn onc_pipe(dir: &Path, config_home: &Path, env: &[(&str, &str)], args: &[&str]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
    command
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("ONC_PIPE_CONFIG")
        .env_remove("ONC_PIPE_CACHE")
        .env_remove("ONC_TOKEN")
        .env_remove("ONC_BASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn manifest(cache: Option<&str>) -> String {
    let cache = cache
        .map(|c| format!("[output]\ncache = \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        r#"version = 1

[onc]
base_url = "simulator"

[onc.simulator]
time_scale = 0.002

{cache}
[plan.events]
device = "ICLISTENHF6324"
windows = [{{ start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z }}]

[fetch.audio]
plan = "events"
archive = "flac"
"#
    )
}

/// `cache dir`'s answer, as a path.
fn cache_dir(ran: &Ran) -> PathBuf {
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    PathBuf::from(ran.stdout.trim())
}

fn write_config(home: &Path, text: &str, mode: u32) -> PathBuf {
    let folder = home.join("onc-pipe");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

#[test]
fn the_cache_comes_from_flag_then_environment_then_manifest_then_config() {
    let scratch = Scratch::new();
    let home = scratch.path().join("home");
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("bare.toml"), manifest(None)).unwrap();
    std::fs::write(work.join("own.toml"), manifest(Some("project-cache"))).unwrap();
    let ask = |env: &[(&str, &str)], args: &[&str]| cache_dir(&onc_pipe(&work, &home, env, args));

    // No config: `.onc-pipe` beside the manifest.
    assert_eq!(
        ask(&[], &["cache", "dir", "bare.toml"]),
        work.join(".onc-pipe")
    );
    write_config(&home, "cache = \"shared-cache\"\n", 0o600);
    let from_config = home.join("onc-pipe").join("shared-cache");
    // The config's personal default, relative to its own folder ...
    assert_eq!(ask(&[], &["cache", "dir", "bare.toml"]), from_config);
    assert_eq!(
        ask(&[], &["cache", "dir"]),
        from_config,
        "without a manifest too"
    );
    // ... but a manifest's own `output.cache` wins over it,
    assert_eq!(
        ask(&[], &["cache", "dir", "own.toml"]),
        work.join("project-cache")
    );
    // the environment over the manifest, and the flag over everything.
    let env = [("ONC_PIPE_CACHE", "env-cache")];
    assert_eq!(
        ask(&env, &["cache", "dir", "own.toml"]),
        work.join("env-cache")
    );
    assert_eq!(
        ask(
            &env,
            &["cache", "dir", "own.toml", "--cache-dir", "flag-cache"]
        ),
        work.join("flag-cache")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_environment_then_dotenv_then_config() {
    let simulator = crate::run::simulator(onc_sim::SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..onc_sim::SimConfig::default()
    })
    .await;
    let scratch = Scratch::new();
    let home = scratch.path().join("home");
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let text =
        manifest(Some("cache")).replace("\"simulator\"", &format!("\"{}\"", simulator.base_url));
    std::fs::write(work.join("m.toml"), text).unwrap();
    // The simulator refuses tokens starting with "invalid": a refusal proves which was sent.
    write_config(&home, "token = \"invalid-from-config\"\n", 0o600);
    let plan = |env: Vec<(&'static str, &'static str)>| {
        let (work, home) = (work.clone(), home.clone());
        tokio::task::spawn_blocking(move || onc_pipe(&work, &home, &env, &["plan", "m.toml"]))
    };
    let refused = plan(vec![]).await.unwrap();
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused the token"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("invalid-from-config"));
    let env = plan(vec![("ONC_TOKEN", "from-env")]).await.unwrap();
    assert_eq!(env.code, 0, "the environment wins: {}", env.stderr);
    std::fs::write(work.join(".env"), "ONC_TOKEN=from-dotenv\n").unwrap();
    let dotenv = plan(vec![]).await.unwrap();
    assert_eq!(dotenv.code, 0, "./.env wins: {}", dotenv.stderr);
    simulator.stop().await;
}

#[test]
fn a_bad_config_names_its_line_and_a_readable_token_warns() {
    let scratch = Scratch::new();
    let home = scratch.path().join("home");
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("m.toml"), manifest(Some("cache"))).unwrap();
    let path = write_config(&home, "cache = \"c\"\ncahce = \"x\"\n", 0o600);
    let bad = onc_pipe(&work, &home, &[], &["cache", "dir", "m.toml"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains(&format!("{}:2:1", path.display()))
            && bad.stderr.contains("unknown field `cahce`")
            && bad.stderr.contains("keep_runs"),
        "{}",
        bad.stderr
    );
    // validate reads no config: CI checking manifests does not depend on someone's home.
    let validate = onc_pipe(&work, &home, &[], &["validate", "m.toml"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);

    write_config(&home, "keep_runs = -3\n", 0o600);
    let negative = onc_pipe(&work, &home, &[], &["cache", "size", "m.toml"]);
    assert_eq!(negative.code, 2, "{}", negative.stderr);
    assert!(
        negative.stderr.contains(":1:13") && negative.stderr.contains("at least 1"),
        "{}",
        negative.stderr
    );

    write_config(&home, "token = \"t0k3n\"\n", 0o644);
    let loose = onc_pipe(&work, &home, &[], &["cache", "dir", "m.toml"]);
    assert_eq!(loose.code, 0, "{}", loose.stderr);
    if cfg!(unix) {
        assert!(
            loose.stderr.contains("other users can read it (mode 0644)")
                && loose.stderr.contains("chmod 600"),
            "{}",
            loose.stderr
        );
    }
    assert!(!loose.stderr.contains("t0k3n"));
    write_config(&home, "token = \"t0k3n\"\n", 0o600);
    let tight = onc_pipe(&work, &home, &[], &["cache", "dir", "m.toml"]);
    assert!(!tight.stderr.contains("chmod"), "{}", tight.stderr);
}

#[test]
fn run_records_are_pruned_to_keep_runs() {
    let scratch = Scratch::new();
    let home = scratch.path().join("home");
    let work = scratch.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("m.toml"), manifest(Some("cache"))).unwrap();
    write_config(&home, "keep_runs = 2\n", 0o600);
    let mut written = Vec::new();
    for _ in 0..3 {
        let ran = onc_pipe(&work, &home, &[], &["run", "m.toml", "--quiet"]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let mut names: Vec<String> = std::fs::read_dir(work.join("cache/runs"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        written.push(names.last().cloned().unwrap());
        assert!(names.len() <= 2, "{names:?}");
    }
    let mut left: Vec<String> = std::fs::read_dir(work.join("cache/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, written[1..], "the two newest");
}
