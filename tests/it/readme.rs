//! Every example in the README works: each TOML manifest validates (with the repository's
//! request files beside it), and each `onc-pipe` command line in a shell block parses with the
//! real command-line parser and names files that exist.

use clap::Parser;
use onc_pipe::cli::Cli;

use crate::support::{Scratch, onc_pipe, repo};

/// The bodies of the README's fenced blocks of `language`, with the line each starts on.
fn blocks(language: &str) -> Vec<(usize, String)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in readme.lines().enumerate() {
        if current.is_some() && line.starts_with("```") {
            found.extend(current.take());
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        } else if line.trim_end() == format!("```{language}") {
            current = Some((number + 2, String::new()));
        }
    }
    found
}

#[test]
fn every_readme_manifest_validates() {
    let (configs, manifests): (Vec<_>, Vec<_>) = blocks("toml")
        .into_iter()
        .partition(|(_, body)| body.starts_with("# user config:"));
    assert!(!manifests.is_empty());
    // User config file examples: read as onc-pipe reads the file.
    assert!(!configs.is_empty());
    for (line, body) in configs {
        let scratch = Scratch::new();
        let path = scratch.write("config.toml", &body);
        let read = onc_pipe::config::load_from(&path);
        assert!(
            matches!(read, Ok(Some(_))),
            "README.md:{line}: the user config example is not valid: {read:?}"
        );
    }
    for (line, body) in manifests {
        assert!(
            body.contains("version = 1"),
            "README.md:{line}: a TOML example that is not a whole manifest"
        );
        let scratch = Scratch::new();
        std::fs::create_dir_all(scratch.path().join("requests")).unwrap();
        for entry in std::fs::read_dir(repo().join("manifests/requests")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                scratch
                    .path()
                    .join("requests")
                    .join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        scratch.write("example.toml", &body);
        let ran = onc_pipe(scratch.path(), &["validate", "example.toml"]);
        assert_eq!(
            ran.code, 0,
            "README.md:{line}: the example manifest does not validate:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn every_readme_command_line_parses_and_names_files_that_exist() {
    let mut checked = 0;
    for (line, body) in blocks("sh") {
        for (offset, text) in body.lines().enumerate() {
            let at = line + offset;
            let command = text.split(" #").next().unwrap_or_default().trim();
            // `VAR=value onc-pipe ...` and `cargo run [--release] -- ...` run onc-pipe too.
            let words: Vec<&str> = command
                .split_whitespace()
                .skip_while(|word| word.contains('=') && !word.starts_with('-'))
                .collect();
            let args: Vec<&str> = match words.as_slice() {
                ["onc-pipe", rest @ ..] => rest.to_vec(),
                ["cargo", "run", rest @ ..] => match rest.iter().position(|w| *w == "--") {
                    Some(dash) => rest[dash + 1..].to_vec(),
                    None => continue,
                },
                _ => continue,
            };
            let parsed = Cli::try_parse_from(std::iter::once("onc-pipe").chain(args.clone()));
            assert!(
                parsed.is_ok(),
                "README.md:{at}: `{command}` does not parse: {}",
                parsed.err().map(|e| e.to_string()).unwrap_or_default()
            );
            for file in args.iter().filter(|a| a.starts_with("manifests/")) {
                assert!(
                    repo().join(file).is_file(),
                    "README.md:{at}: {file} does not exist"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} command lines found");
}
