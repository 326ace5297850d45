//! Credentials and settings from the AWS shared profile files, for what the environment lacks.
//!
//! Input: `AWS_PROFILE` (else `default`), the credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//! else `~/.aws/credentials`) and the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
//! Output: `object_store` settings — access key, secret, session token, region, endpoint — for
//! those the `AWS_*` variables do not set (variables win, as in the AWS CLI). Errors: a profile
//! named by `AWS_PROFILE` that neither file has, or a file that exists but cannot be read,
//! naming the file: a typo in a profile name must not silently become anonymous access.
//!
//! `object_store` reads the variables but not the profile files (it leaves that to the AWS
//! SDK, which would bring a second HTTP and TLS stack): the INI subset those files use is
//! small, so it is read here.

use std::collections::HashMap;
use std::path::PathBuf;

use object_store::aws::AmazonS3ConfigKey;

/// The sections of an AWS INI file: section name → key → value.
pub(crate) fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        sections
            .entry(section.clone())
            .or_default()
            .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    sections
}

fn home_file(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aws").join(name))
}

fn read_ini(path: &Option<PathBuf>) -> Result<HashMap<String, HashMap<String, String>>, String> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(format!("read the AWS profile file {}: {e}", path.display())),
    }
}

fn env_set(names: &[&str]) -> bool {
    names
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// The profile's settings that the `AWS_*` variables leave unset.
pub fn settings_missing_from_env() -> Result<Vec<(AmazonS3ConfigKey, String)>, String> {
    let named = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let profile = named.clone().unwrap_or_else(|| "default".to_owned());
    let credentials_file = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = home_file("AWS_CONFIG_FILE", "config");
    let credentials = read_ini(&credentials_file)?;
    let config = read_ini(&config_file)?;
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let from_credentials = credentials.get(&profile);
    let from_config = config.get(&config_section);
    if named.is_some() && from_credentials.is_none() && from_config.is_none() {
        let shown = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("(no HOME)".to_owned(), |p| p.display().to_string())
        };
        return Err(format!(
            "AWS_PROFILE is `{profile}`, but neither {} nor {} has that profile",
            shown(&credentials_file),
            shown(&config_file)
        ));
    }
    let value = |key: &str| {
        from_credentials
            .and_then(|s| s.get(key))
            .or_else(|| from_config.and_then(|s| s.get(key)))
            .cloned()
    };
    let mut settings = Vec::new();
    if !env_set(&["AWS_ACCESS_KEY_ID"])
        && let (Some(id), Some(secret)) =
            (value("aws_access_key_id"), value("aws_secret_access_key"))
    {
        settings.push((AmazonS3ConfigKey::AccessKeyId, id));
        settings.push((AmazonS3ConfigKey::SecretAccessKey, secret));
        if let Some(token) = value("aws_session_token") {
            settings.push((AmazonS3ConfigKey::Token, token));
        }
    }
    if !env_set(&["AWS_REGION", "AWS_DEFAULT_REGION"])
        && let Some(region) = value("region")
    {
        settings.push((AmazonS3ConfigKey::Region, region));
    }
    if !env_set(&["AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
        && let Some(endpoint) = value("endpoint_url")
    {
        settings.push((AmazonS3ConfigKey::Endpoint, endpoint));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_keys_and_comments() {
        let parsed = parse_ini(
            "# comment\n[default]\naws_access_key_id = AKIA1\nAWS_Secret_Access_Key=s\n\n\
             [profile lab]\nregion = ca-central-1\n; other\nno equals sign\n",
        );
        assert_eq!(parsed["default"]["aws_access_key_id"], "AKIA1");
        assert_eq!(parsed["default"]["aws_secret_access_key"], "s");
        assert_eq!(parsed["profile lab"]["region"], "ca-central-1");
        assert_eq!(parsed["profile lab"].len(), 1);
    }
}
