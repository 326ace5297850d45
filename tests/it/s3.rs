//! A real S3-compatible server on loopback for the tests: moto's server (PyPI `moto[server]`,
//! pinned in [`MOTO_REQUIREMENT`]), run from a Python venv, no docker.
//!
//! - The venv is `target/moto-venv` (or `ONC_PIPE_MOTO_VENV`). `.ci/run` creates it before the
//!   tests; when it is absent the first test that needs it installs it, under a file lock so
//!   that parallel test processes (nextest runs each test as its own process) install once.
//! - Each [`MotoServer`] is its own process on a port the OS picks, with its own state: tests
//!   share nothing and clean nothing up.
//! - Authentication is always on (moto accepts any credentials by default): the server is
//!   started by `tests/moto/server.py`, which creates an IAM user with an access key allowed
//!   `s3:*` and then turns moto's IAM checks on for every request. Only that key, signed with
//!   its secret, gets in: an unknown key gets 403 `InvalidAccessKeyId`, a wrong secret 403
//!   `SignatureDoesNotMatch`, an unsigned request 403 `AccessDenied`.
//!
//! Known differences from S3 that tests should not rely on: moto does not check the payload
//! against a signed `x-amz-content-sha256`, a PUT sent as a form
//! (`Content-Type: application/x-www-form-urlencoded`) is stored empty, and presigned URLs are
//! not supported while authentication is on.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::repo;

/// What pip installs into the venv. The pin keeps the server's behaviour (and the install's
/// download) fixed; a change here reinstalls, as the venv's marker file then differs.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.6";

/// Environment variable naming the venv to use (made if absent) instead of `target/moto-venv`.
pub const VENV_ENV: &str = "ONC_PIPE_MOTO_VENV";

/// Written in the venv once pip succeeded; holds [`MOTO_REQUIREMENT`].
const MARKER: &str = "onc-pipe-moto-installed";

/// Longest wait for the server's first line: a cold start compiles moto's bytecode (~5 s).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The region every client is told; moto's IAM user lives in its default account, any region.
pub const REGION: &str = "us-east-1";

/// A moto server on 127.0.0.1, killed on drop.
pub struct MotoServer {
    child: Child,
    /// Held open: the server exits when it closes, even if this process is killed.
    stdin: Option<ChildStdin>,
    port: u16,
    access_key_id: String,
    secret_access_key: String,
    python: PathBuf,
    /// The server's stderr, quoted in errors.
    log: tempfile::NamedTempFile,
    buckets: AtomicU64,
}

impl MotoServer {
    /// Installs moto if needed, starts a server, and returns once it answers with
    /// authentication on.
    pub fn start() -> Result<Self, String> {
        let venv = ensure_venv()?;
        let python = venv_python(&venv);
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("moto log file: {e}"))?;
        let stderr = log.reopen().map_err(|e| format!("moto log file: {e}"))?;
        let mut command = Command::new(&python);
        command
            .arg(repo().join("tests/moto/server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        scrub_aws_env(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", python.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("moto server: no stdout pipe".into());
        };

        // The first line says the server is up; read it on a thread so a hung start times out.
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = send.send(read);
        });
        let line = match receive.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match other {
                    Ok(Ok(_)) => "exited before it was ready".to_owned(),
                    Ok(Err(e)) => format!("reading its stdout: {e}"),
                    Err(_) => format!("not ready after {START_TIMEOUT:?}"),
                };
                return Err(format!(
                    "moto server {why}; its stderr:\n{}",
                    read_log(log.path())
                ));
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .map_err(|e| format!("moto server's first line {line:?}: {e}"))?;
        let field = |name: &str| {
            ready[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("moto server's first line lacks {name}: {line}"))
        };
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("moto server's first line lacks port: {line}"))?;
        Ok(Self {
            access_key_id: field("access_key_id")?,
            secret_access_key: field("secret_access_key")?,
            child,
            stdin,
            port,
            python,
            log,
            buckets: AtomicU64::new(0),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The harness's access key id and secret, the only credentials the server accepts.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.access_key_id, &self.secret_access_key)
    }

    /// What an S3 client needs in its environment to reach this server. `object_store`'s
    /// `AmazonS3Builder::from_env` reads every `AWS_*` variable whose lower-cased name is one of
    /// its config keys: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`, the same key; set only one),
    /// `AWS_ALLOW_HTTP`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`. A client
    /// run with these should not also inherit `AWS_SESSION_TOKEN` or `AWS_PROFILE` from the host.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with(&self.access_key_id, &self.secret_access_key)
    }

    /// [`env`](Self::env) with the right key id and a wrong secret: 403 SignatureDoesNotMatch.
    pub fn wrong_credentials_env(&self) -> Vec<(String, String)> {
        self.env_with(
            &self.access_key_id,
            "wrong-secret-0123456789abcdefghijklmnopq",
        )
    }

    /// [`env`](Self::env) with a key id the server never issued: 403 InvalidAccessKeyId.
    pub fn unknown_key_env(&self) -> Vec<(String, String)> {
        self.env_with("AKIAUNKNOWNONCPIPE00", &self.secret_access_key)
    }

    fn env_with(&self, key_id: &str, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL", &self.endpoint()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates a bucket with a name no other bucket of this server has, and returns the name.
    pub fn create_bucket(&self) -> Result<String, String> {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        let name = format!("onc-test-{}-{n}", std::process::id());
        let reply = self.request(&S3Request::new("create_bucket", &name))?;
        if reply.status == 200 {
            Ok(name)
        } else {
            Err(format!("creating bucket {name}: {reply:?}"))
        }
    }

    /// One request signed by boto3 (an independent signer) with the harness's credentials.
    pub fn request(&self, request: &S3Request) -> Result<S3Reply, String> {
        self.request_as(request, &self.access_key_id, &self.secret_access_key)
    }

    /// One request signed by boto3 with the given credentials.
    pub fn request_as(
        &self,
        request: &S3Request,
        key_id: &str,
        secret: &str,
    ) -> Result<S3Reply, String> {
        let arg = json!({
            "endpoint": self.endpoint(),
            "access_key_id": key_id,
            "secret_access_key": secret,
            "op": request.op,
            "bucket": request.bucket,
            "key": request.key,
            "body": request.body,
            "if_match": request.if_match,
            "if_none_match": request.if_none_match,
        });
        let mut command = Command::new(&self.python);
        command
            .arg(repo().join("tests/moto/s3_op.py"))
            .arg(arg.to_string());
        scrub_aws_env(&mut command);
        let output = command
            .output()
            .map_err(|e| format!("running {}: {e}", self.python.display()))?;
        if !output.status.success() {
            return Err(format!(
                "s3_op.py {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let out: Value =
            serde_json::from_str(&stdout).map_err(|e| format!("s3_op.py said {stdout:?}: {e}"))?;
        let text = |name: &str| out[name].as_str().map(str::to_owned);
        Ok(S3Reply {
            status: out["status"].as_u64().unwrap_or(0),
            code: text("code"),
            etag: text("etag"),
            body: text("body"),
            keys: out["keys"].as_array().map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            }),
            seconds: out["seconds"].as_f64().unwrap_or(f64::NAN),
        })
    }

    /// How many requests reached moto since the server was ready (the harness's own start-up
    /// requests and refused unsigned ones are not counted).
    pub fn request_count(&self) -> Result<u64, String> {
        let stats = self.stats()?;
        stats["total"]
            .as_u64()
            .ok_or_else(|| format!("moto stats without total: {stats}"))
    }

    /// The server's request counts: `{"total": N, "by_method": {"GET": n, ...}}`.
    pub fn stats(&self) -> Result<Value, String> {
        // A plain HTTP/1.0 GET: the stats path is answered by tests/moto/server.py itself, and
        // a blocking client here keeps the helper usable outside an async runtime.
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("connecting to moto: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        write!(
            stream,
            "GET /__onc_stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .map_err(|e| format!("asking moto for stats: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("reading moto's stats: {e}"))?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).map_err(|e| format!("moto stats {response:?}: {e}"))
    }

    /// The server's stderr so far (warnings and tracebacks), for failure messages.
    pub fn log(&self) -> String {
        read_log(self.log.path())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One S3 operation for [`MotoServer::request`]: `op` is create_bucket, put, get, head, delete
/// or list (`key` as the prefix).
#[derive(Debug, Clone, Default)]
pub struct S3Request {
    pub op: String,
    pub bucket: String,
    pub key: Option<String>,
    pub body: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

impl S3Request {
    pub fn new(op: &str, bucket: &str) -> Self {
        Self {
            op: op.to_owned(),
            bucket: bucket.to_owned(),
            ..Self::default()
        }
    }

    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    pub fn if_match(mut self, etag: &str) -> Self {
        self.if_match = Some(etag.to_owned());
        self
    }

    pub fn if_none_match(mut self, etag: &str) -> Self {
        self.if_none_match = Some(etag.to_owned());
        self
    }
}

/// The answer to an [`S3Request`]: HTTP status, S3 error code, ETag, object text, listed keys.
#[derive(Debug, Clone)]
pub struct S3Reply {
    pub status: u64,
    pub code: Option<String>,
    pub etag: Option<String>,
    pub body: Option<String>,
    pub keys: Option<Vec<String>>,
    /// The request's own time, measured in the Python process around the boto3 call.
    pub seconds: f64,
}

/// The venv holding moto, made and installed once (under a file lock) if it is not ready.
pub fn ensure_venv() -> Result<PathBuf, String> {
    let venv =
        std::env::var_os(VENV_ENV).map_or_else(|| repo().join("target/moto-venv"), PathBuf::from);
    if installed(&venv) {
        return Ok(venv);
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    // Beside the venv, not in it: the venv may not exist yet, and a half-made one may be
    // remade. The OS lock dies with its process, so a killed install does not wedge others.
    let lock_path = venv.with_extension("lock");
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    // Another process may have installed it while this one waited.
    if installed(&venv) {
        return Ok(venv);
    }
    let started = Instant::now();
    if !venv_python(&venv).exists() {
        let python = if cfg!(windows) { "python" } else { "python3" };
        run(Command::new(python).arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv_python(&venv)).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        MOTO_REQUIREMENT,
    ]))?;
    fs::write(venv.join(MARKER), MOTO_REQUIREMENT)
        .map_err(|e| format!("writing {}: {e}", venv.join(MARKER).display()))?;
    eprintln!(
        "installed {MOTO_REQUIREMENT} into {} in {:.1?}",
        venv.display(),
        started.elapsed()
    );
    Ok(venv)
}

fn installed(venv: &Path) -> bool {
    fs::read_to_string(venv.join(MARKER)).is_ok_and(|text| text.trim() == MOTO_REQUIREMENT)
        && venv_python(venv).exists()
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Keeps the host's AWS settings (a profile, a session token, a config file naming another
/// endpoint) out of the Python side, so the server and boto3 see only what the test passes.
fn scrub_aws_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
    command
        .env("AWS_CONFIG_FILE", null)
        .env("AWS_SHARED_CREDENTIALS_FILE", null);
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"))
}

// ---- tests ----------------------------------------------------------------------------------

fn server() -> MotoServer {
    match MotoServer::start() {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

fn ok<T>(result: Result<T, String>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

/// Right credentials read and write; a wrong secret and an unknown key are refused with S3's
/// 403 codes, whoever signs (boto3 here), for writes, reads, listings and bucket creation.
#[test]
fn credentials_are_checked() {
    let moto = server();
    let bucket = ok(moto.create_bucket());
    let put = ok(moto.request(
        &S3Request::new("put", &bucket)
            .key("a/b c.txt")
            .body("hello"),
    ));
    assert_eq!(put.status, 200, "{put:?}; moto's stderr:\n{}", moto.log());
    let get = ok(moto.request(&S3Request::new("get", &bucket).key("a/b c.txt")));
    assert_eq!((get.status, get.body.as_deref()), (200, Some("hello")));
    let list = ok(moto.request(&S3Request::new("list", &bucket).key("a/")));
    assert_eq!(list.keys, Some(vec!["a/b c.txt".to_owned()]));

    let (key_id, _) = moto.credentials();
    let env_value = |env: &[(String, String)], name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let wrong = moto.wrong_credentials_env();
    let unknown = moto.unknown_key_env();
    assert_eq!(env_value(&wrong, "AWS_ACCESS_KEY_ID"), key_id);
    for (env, code) in [
        (&wrong, "SignatureDoesNotMatch"),
        (&unknown, "InvalidAccessKeyId"),
    ] {
        let id = env_value(env, "AWS_ACCESS_KEY_ID");
        let secret = env_value(env, "AWS_SECRET_ACCESS_KEY");
        for request in [
            S3Request::new("put", &bucket).key("a/b c.txt").body("evil"),
            S3Request::new("get", &bucket).key("a/b c.txt"),
            S3Request::new("list", &bucket),
            S3Request::new("create_bucket", "onc-test-intruder"),
        ] {
            let reply = ok(moto.request_as(&request, &id, &secret));
            assert_eq!(
                (reply.status, reply.code.as_deref()),
                (403, Some(code)),
                "{request:?}"
            );
        }
    }
    // The refused PUT did not land.
    let get = ok(moto.request(&S3Request::new("get", &bucket).key("a/b c.txt")));
    assert_eq!(get.body.as_deref(), Some("hello"));

    let delete = ok(moto.request(&S3Request::new("delete", &bucket).key("a/b c.txt")));
    assert_eq!(delete.status, 204);
    let list = ok(moto.request(&S3Request::new("list", &bucket)));
    assert_eq!(list.keys, Some(vec![]));
}

/// An unsigned request is refused (403), and answered by neither moto nor its counter.
#[test]
fn unsigned_requests_are_refused() {
    let moto = server();
    let bucket = ok(moto.create_bucket());
    let mut stream = ok(TcpStream::connect(("127.0.0.1", moto.port)).map_err(|e| e.to_string()));
    ok(write!(
        stream,
        "GET /{bucket}/x HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .map_err(|e| e.to_string()));
    let mut response = String::new();
    ok(stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string()));
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("<Code>AccessDenied</Code>"), "{response}");
}

/// S3 conditional writes, which our cache's claims rely on: `If-None-Match: *` refuses to
/// overwrite (412), `If-Match` with a stale ETag refuses (412), with the current one succeeds.
#[test]
fn conditional_puts() {
    let moto = server();
    let bucket = ok(moto.create_bucket());
    let put = |body: &str| S3Request::new("put", &bucket).key("claim").body(body);

    let first = ok(moto.request(&put("one").if_none_match("*")));
    assert_eq!(first.status, 200, "{first:?}");
    let again = ok(moto.request(&put("two").if_none_match("*")));
    assert_eq!(
        (again.status, again.code.as_deref()),
        (412, Some("PreconditionFailed"))
    );

    let stale = ok(first.etag.clone().ok_or("no etag".to_owned()));
    let second = ok(moto.request(&put("three").if_match(&stale)));
    assert_eq!(second.status, 200, "{second:?}");
    let late = ok(moto.request(&put("four").if_match(&stale)));
    assert_eq!(
        (late.status, late.code.as_deref()),
        (412, Some("PreconditionFailed"))
    );
    let get = ok(moto.request(&S3Request::new("get", &bucket).key("claim")));
    assert_eq!(get.body.as_deref(), Some("three"));
}

/// The stats path counts what reached moto; the env is what `object_store` reads.
#[test]
fn stats_and_env() {
    let moto = server();
    assert_eq!(ok(moto.request_count()), 0);
    let bucket = ok(moto.create_bucket());
    ok(moto.request(&S3Request::new("put", &bucket).key("k").body("v")));
    assert_eq!(ok(moto.request_count()), 2);
    let env = moto.env();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ALLOW_HTTP"
        ]
    );
    assert!(env.contains(&("AWS_ENDPOINT_URL".to_owned(), moto.endpoint())));
}

/// Start, and a PUT and a GET, timed (printed; nothing asserted on speed: the machine is shared).
#[test]
fn timings() {
    let started = Instant::now();
    let moto = server();
    let start = started.elapsed();
    let bucket = ok(moto.create_bucket());
    let round_trip = Instant::now();
    let put = ok(moto.request(&S3Request::new("put", &bucket).key("k").body("v")));
    let get = ok(moto.request(&S3Request::new("get", &bucket).key("k")));
    assert_eq!(get.body.as_deref(), Some("v"));
    eprintln!(
        "moto: start {start:.2?}; PUT+GET {:.1} ms on the wire, {:.2?} with two boto3 processes",
        (put.seconds + get.seconds) * 1000.0,
        round_trip.elapsed()
    );
}
