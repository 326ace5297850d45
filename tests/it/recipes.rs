//! The cluster recipes in `examples/` (README, "Clusters and teams"), run or read as far as this
//! machine allows: the Slurm scripts' bodies run with bash under faked SLURM_* variables against
//! the simulator (and `submit.sh` against a fake `sbatch`, for the afterok chain); the
//! Kubernetes Jobs are parsed as YAML and their commands parsed by onc-pipe's own command line;
//! the Snakefile is dry-run by snakemake when it is installed, else only read.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

use crate::run::{TOKEN, fast_simulator};
use crate::shards::{manifest, outputs, unsharded};
use crate::support::{Scratch, repo};

fn example(path: &str) -> PathBuf {
    repo().join("examples").join(path)
}

/// The task count of a script's `#SBATCH --array=A-B` line.
fn array_tasks(script: &Path) -> u32 {
    let text = std::fs::read_to_string(script).unwrap();
    let range = text
        .lines()
        .find_map(|line| line.strip_prefix("#SBATCH --array="))
        .unwrap_or_else(|| panic!("{} has no #SBATCH --array", script.display()));
    let (first, last) = range.split_once('-').unwrap();
    last.trim().parse::<u32>().unwrap() - first.trim().parse::<u32>().unwrap() + 1
}

/// Runs a Slurm script's body with bash as array task `id` of `count`, from `dir`.
fn slurm_task(script: &Path, dir: &Path, id: u32, count: u32, token: bool) -> crate::run::Ran {
    let mut command = Command::new("bash");
    command
        .arg(script)
        .current_dir(dir)
        .env_remove("ONC_BASE_URL")
        .env_remove("ONC_TOKEN")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_STEP")
        .env("ONC_PIPE", env!("CARGO_BIN_EXE_onc-pipe"))
        .env("MANIFEST", "m.toml")
        .env("ONC_PIPE_CACHE", dir.join("shared-cache"))
        .env("SLURM_ARRAY_TASK_ID", (10 + id).to_string())
        .env("SLURM_ARRAY_TASK_MIN", "10")
        .env("SLURM_ARRAY_TASK_COUNT", count.to_string());
    if token {
        command.env("ONC_TOKEN", TOKEN);
    }
    let output = command.output().unwrap();
    crate::run::Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slurm_scripts_fetch_then_clip_to_the_unsharded_outputs() {
    let (expected, _) = unsharded().await;
    let (fetch, clip) = (example("slurm/fetch.sbatch"), example("slurm/clip.sbatch"));
    let (fetch_tasks, clip_tasks) = (array_tasks(&fetch), array_tasks(&clip));
    assert_eq!(
        fetch_tasks, 4,
        "the fetch phase keeps a capped number of tasks"
    );
    assert!(
        clip_tasks > fetch_tasks,
        "the clip phase may use more tasks"
    );
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let dir = scratch.path().to_path_buf();
    // The tasks one after another: a folder cache takes one run at a time (`--array=0-3%1`).
    let (fetched, clipped) = tokio::task::spawn_blocking(move || {
        let fetched: Vec<_> = (0..fetch_tasks)
            .map(|id| slurm_task(&fetch, &dir, id, fetch_tasks, true))
            .collect();
        let clipped: Vec<_> = (0..clip_tasks)
            .map(|id| slurm_task(&clip, &dir, id, clip_tasks, false))
            .collect();
        (fetched, clipped)
    })
    .await
    .unwrap();
    for (id, ran) in fetched.iter().chain(&clipped).enumerate() {
        assert_eq!(ran.code, 0, "task {id}: {}", ran.stderr);
    }
    assert!(
        scratch.path().join("shared-cache").is_dir(),
        "ONC_PIPE_CACHE is the cache"
    );
    assert!(!scratch.path().join("cache").exists());
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    assert_eq!(stats.files_served_again, 0, "{stats:?}");
    sim.stop().await;
}

#[test]
fn submit_chains_the_clip_phase_after_the_fetch_phase() {
    let scratch = Scratch::new();
    let log = scratch.path().join("sbatch.log");
    // A fake sbatch: logs its arguments, answers job ids as `sbatch --parsable` does.
    let fake = scratch.write(
        "sbatch",
        &format!(
            "#!/bin/bash\necho \"$*\" >> '{}'\nif [[ \"$*\" == *afterok* ]]; then echo 1002; else echo '1001;cluster'; fi\n",
            log.display()
        ),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ran = Command::new("bash")
        .arg(example("slurm/submit.sh"))
        .env("SBATCH", &fake)
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].ends_with("fetch.sbatch"), "{calls:?}");
    assert!(
        calls[1].contains("--dependency=afterok:1001 ") && calls[1].ends_with("clip.sbatch"),
        "{calls:?}"
    );
}

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(example(path)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "{path}: one Job");
    docs.remove(0)
}

/// The container's environment as (name, value or secret reference).
fn env_of(container: &Yaml) -> Vec<(String, String)> {
    container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|var| {
            let name = var["name"].as_str().unwrap().to_owned();
            let value = match var["value"].as_str() {
                Some(value) => value.to_owned(),
                None => format!(
                    "secret:{}/{}",
                    var["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap(),
                    var["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap()
                ),
            };
            (name, value)
        })
        .collect()
}

#[test]
fn the_kubernetes_jobs_are_indexed_and_name_their_shard_count() {
    for (path, phase, token) in [
        ("kubernetes/fetch-job.yaml", "--fetch-only", true),
        ("kubernetes/clip-job.yaml", "--offline", false),
    ] {
        let job = load(path);
        assert_eq!(job["kind"].as_str(), Some("Job"), "{path}");
        let spec = &job["spec"];
        assert_eq!(spec["completionMode"].as_str(), Some("Indexed"), "{path}");
        let completions = spec["completions"].as_i64().unwrap();
        let container = &spec["template"]["spec"]["containers"][0];
        let env = env_of(container);
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(
            get("ONC_PIPE_SHARDS"),
            Some(completions.to_string()),
            "{path}"
        );
        assert!(
            get("ONC_PIPE_CACHE").unwrap().starts_with("s3://"),
            "{path}"
        );
        assert_eq!(
            get("ONC_TOKEN"),
            token.then(|| "secret:onc-token/token".to_owned()),
            "{path}: the token from a Secret, and only where ONC is asked"
        );
        let mut argv: Vec<String> = container["command"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        argv.extend(
            container["args"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned()),
        );
        assert_eq!(argv[0], "onc-pipe");
        let line = argv.join(" ");
        assert!(line.contains("run /manifest/m.toml --shard auto"), "{line}");
        assert!(line.contains(phase), "{line}");
        assert!(line.contains("--cache-dir $(ONC_PIPE_CACHE)"), "{line}");
        // onc-pipe's own command line accepts it, as Kubernetes expands it.
        let expanded: Vec<String> = argv
            .iter()
            .map(|a| a.replace("$(ONC_PIPE_CACHE)", &get("ONC_PIPE_CACHE").unwrap()))
            .collect();
        let cli =
            onc_pipe::cli::Cli::try_parse_from(&expanded).unwrap_or_else(|e| panic!("{path}: {e}"));
        match cli.command {
            onc_pipe::cli::Command::Run {
                shard: Some(onc_pipe::shard::ShardArg::Auto),
                fetch_only,
                offline,
                ..
            } => assert_eq!((fetch_only, offline), (token, !token), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    let fetch = load("kubernetes/fetch-job.yaml");
    let clip = load("kubernetes/clip-job.yaml");
    assert!(
        clip["spec"]["completions"].as_i64() > fetch["spec"]["completions"].as_i64(),
        "the clip phase may use more shards than the fetch phase"
    );
}

#[test]
fn the_snakefile_calls_onc_pipe_in_two_phases() {
    let snakefile = example("snakemake/Snakefile");
    let text = std::fs::read_to_string(&snakefile).unwrap();
    let fetch = "{ONC_PIPE} run {input} --shard {wildcards.k}/{SHARDS} --fetch-only --json --no-progress > {output}";
    let clip = "{ONC_PIPE} run {input.manifest} --offline --json --no-progress > {output}";
    assert!(text.contains(fetch), "{text}");
    assert!(text.contains(clip), "{text}");
    assert!(
        text.contains("expand(\"onc-pipe/fetch-{k}.json\""),
        "{text}"
    );
    // The commands as Snakemake fills them in are onc-pipe command lines.
    for line in [
        "onc-pipe run m.toml --shard 1/2 --fetch-only --json --no-progress",
        "onc-pipe run m.toml --offline --json --no-progress",
    ] {
        onc_pipe::cli::Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{e}"));
    }
    // Snakemake itself, when this machine has it: a dry run must plan the three rules.
    let empty = Scratch::new();
    let Ok(dry) = Command::new("snakemake")
        .args(["-n", "--cores", "1", "-s"])
        .arg(&snakefile)
        .current_dir(empty.path())
        .output()
    else {
        eprintln!("snakemake is not installed: the Snakefile was only read");
        return;
    };
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("MissingInputException")
            || dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
}
