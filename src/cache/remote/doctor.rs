//! `onc-pipe doctor --cache URL`: does this store do what a team cache needs?
//!
//! Input: an opened [`Remote`]. Output: a [`Diagnosis`] — one line per capability (reach and
//! credentials, create-if-absent, list-after-write, compare-and-swap), and the mode the cache
//! can run in. Errors: none of its own; what the store refuses is a failed check, with the
//! store's words. It writes a few small objects under `doctor/<random>/` and deletes them.
//!
//! Stores differ here (S3 gained conditional writes in 2024; some S3-compatible servers still
//! ignore `If-None-Match`, and then two writers can silently replace each other's claims), so
//! a lab checks its bucket once, before relying on it.

use super::{Created, Remote, RemoteError};

/// One capability and what the store did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Every check and the verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnosis {
    pub store: String,
    pub checks: Vec<Check>,
    /// How claims work on this store, or why it cannot hold a team cache.
    pub mode: String,
    pub usable: bool,
}

impl Diagnosis {
    /// Lines for a terminal.
    pub fn text(&self) -> String {
        let mut out = format!("store: {}\n", self.store);
        for check in &self.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("  {mark} {}: {}\n", check.name, check.detail));
        }
        out.push_str(&format!("mode: {}\n", self.mode));
        out
    }
}

fn failed(error: &RemoteError) -> String {
    error.to_string()
}

/// Runs the checks against `remote`.
pub fn diagnose(remote: &Remote) -> Diagnosis {
    let mut checks = Vec::new();
    let mut push = |name, ok, detail: String| checks.push(Check { name, ok, detail });
    let folder = format!(
        "doctor/{}",
        &blake3::hash(
            format!("{} {:?}", std::process::id(), std::time::SystemTime::now()).as_bytes()
        )
        .to_hex()[..16]
    );
    let key = format!("{folder}/probe.json");
    let file_store = remote.lock_folder.is_some();

    let reach = remote.probe();
    push(
        "reach and credentials",
        reach.is_ok(),
        reach
            .as_ref()
            .map_or_else(failed, |()| "the store answers and accepts them".into()),
    );
    if reach.is_err() {
        return verdict(remote, checks, false, false);
    }

    let created = remote.put_create(&key, b"{\"n\":1}".to_vec());
    let again = remote.put_create(&key, b"{\"n\":2}".to_vec());
    let create_ok = matches!(
        (&created, &again),
        (Ok(Created::New(_)), Ok(Created::Exists))
    );
    push(
        "create-if-absent",
        create_ok,
        match (&created, &again) {
            (Err(e), _) | (_, Err(e)) => failed(e),
            (Ok(Created::New(_)), Ok(Created::Exists)) => {
                "a second create of the same name is refused".into()
            }
            _ => "a second create replaced the first: this store ignores If-None-Match, so \
                  writers could replace each other's records"
                .into(),
        },
    );

    let listed = remote.list(&folder);
    let list_ok = matches!(&listed, Ok(keys) if keys.iter().any(|k| k == &key));
    push(
        "list-after-write",
        list_ok,
        match &listed {
            Err(e) => failed(e),
            Ok(_) if list_ok => "a new object is listed at once".into(),
            Ok(_) => "a new object is not listed yet: other runs would miss fresh entries".into(),
        },
    );

    let cas_ok = match &created {
        Ok(Created::New(version)) if !file_store => {
            let stale = version.clone();
            let swapped = remote.put_update(&key, b"{\"n\":3}".to_vec(), version.clone());
            let refused = remote.put_update(&key, b"{\"n\":4}".to_vec(), stale);
            let ok = matches!((&swapped, &refused), (Ok(Some(_)), Ok(None)));
            push(
                "compare-and-swap",
                ok,
                match (&swapped, &refused) {
                    (Err(e), _) | (_, Err(e)) => failed(e),
                    _ if ok => "an update at a stale version is refused".into(),
                    _ => "an update at a stale version was accepted: two runs could both \
                          take over a claim"
                        .into(),
                },
            );
            ok
        }
        _ if file_store => {
            push(
                "compare-and-swap",
                true,
                "not offered by a local file system; claims are OS locks in the folder instead"
                    .into(),
            );
            true
        }
        _ => {
            push(
                "compare-and-swap",
                false,
                "not tried: create-if-absent failed".into(),
            );
            false
        }
    };
    let _ = remote.delete(&key);
    verdict(remote, checks, create_ok && list_ok, cas_ok)
}

fn verdict(remote: &Remote, checks: Vec<Check>, writes_ok: bool, cas_ok: bool) -> Diagnosis {
    let usable = checks.iter().all(|c| c.ok) && writes_ok && cas_ok;
    let mode = if !usable {
        "not usable as a team cache (see the failed checks); a folder cache still works".into()
    } else if remote.lock_folder.is_some() {
        "team cache; claims are OS locks (flock) in the shared folder, so its file system must \
         honour flock between machines (local disks and NFSv4 do; check Lustre and NFSv3 mounts)"
            .into()
    } else {
        format!(
            "team cache; claims by create-if-absent with a {} s lease renewed by compare-and-swap",
            remote.lease().as_secs()
        )
    };
    Diagnosis {
        store: remote.url().to_owned(),
        checks,
        mode,
        usable,
    }
}
