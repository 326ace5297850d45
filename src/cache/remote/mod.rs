//! The team cache: an object store (`s3://bucket/prefix`, `file:///folder`) behind the local
//! cache folder.
//!
//! Input: a cache URL ([`RemoteUrl::parse`]) and the AWS environment (the standard variables,
//! then the shared profile files, [`profile`]). Output: a [`Remote`] that the local [`Cache`]
//! writes through to and pulls from: content-addressed objects and write-once records with the
//! same layout as the folder (`objects-v1/…`, `coverage-v1/…`, `nodes-v1/…`, `discovery-v1/…`),
//! and claims on ONC nodes (`claims-v1/<node key>.json`, [`claims`]).
//! Errors: [`RemoteError`]: the URL, the operation and the object store's reason. A missing
//! object is never an error (the caller fetches again); a refused credential or permission is
//! always one ([`RemoteError::is_denied`]), so it is never mistaken for a miss.
//!
//! Why it is built this way (DVC remotes, Bazel's remote cache, sccache's S3 backend):
//! * **The local folder stays authoritative for the run.** Clips read local files, links point
//!   at local objects, and a warm re-run makes no request to the store: the store is read only
//!   for what the local cache lacks, and written once per new object or record.
//! * **Immutable, content-keyed objects and write-once records.** Objects are named by their
//!   blake3 and records by their node key (a hash of everything they depend on), so two writers
//!   can only ever write the same content: both put with create-if-absent, and the loser's
//!   "already exists" is success. Nothing is read-modify-written except claims, which use the
//!   store's compare-and-swap.
//! * **No locks on shared storage**: a claim is an object with a lease that its run renews; a
//!   run that sees it unchanged for a whole lease (on its own clock, so clocks need not agree)
//!   takes it over by compare-and-swap, with the ONC ids it carries.
//! * **Synchronous at the cache's edge**: the cache's API is synchronous (the executor calls it
//!   on blocking threads), so the store's futures run on the remote's own small runtime and the
//!   caller waits on a channel; that works from any thread, inside or outside a runtime.

pub mod claims;
pub mod doctor;
pub mod profile;
mod sync;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use serde::Serialize;

pub use claims::{ClaimAttempt, Holder, RemoteClaim};

/// The local folder of "this object is in the store" markers.
pub(crate) fn sync_dir_name() -> &'static str {
    sync::PUSHED_DIR
}

/// Where a cache lives: a local folder, or an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Folder(PathBuf),
    Remote(RemoteUrl),
}

impl CacheLocation {
    /// `s3://…` and `file://…` are stores; anything else is a folder path.
    pub fn parse(text: &str) -> Result<CacheLocation, RemoteError> {
        if text.contains("://") {
            RemoteUrl::parse(text).map(CacheLocation::Remote)
        } else {
            Ok(CacheLocation::Folder(PathBuf::from(text)))
        }
    }
}

/// A parsed cache URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub kind: StoreKind,
    /// The bucket (S3) or the folder (file).
    pub container: String,
    /// The key prefix inside it, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

/// The kinds of store a cache URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    S3,
    File,
}

const URL_EXPECTED: &str = "s3://BUCKET[/PREFIX] or file:///ABSOLUTE/FOLDER";

impl RemoteUrl {
    /// Parses `s3://bucket/prefix` or `file:///folder`. Errors name what would be valid.
    pub fn parse(text: &str) -> Result<RemoteUrl, RemoteError> {
        let bad = |reason: &str| RemoteError::BadUrl {
            url: text.to_owned(),
            reason: format!("{reason}; expected {URL_EXPECTED}"),
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // S3's bucket naming rules: 3 to 63 of lowercase letters, digits, '.', '-'.
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return Err(bad(&format!(
                    "`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, '.' or '-')"
                )));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
                return Err(bad("the prefix has an empty, `.` or `..` part"));
            }
            return Ok(RemoteUrl {
                kind: StoreKind::S3,
                container: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("a file URL needs an absolute folder (three slashes)"));
            }
            return Ok(RemoteUrl {
                kind: StoreKind::File,
                container: rest.trim_end_matches('/').to_owned(),
                prefix: String::new(),
            });
        }
        let scheme = text.split("://").next().unwrap_or_default();
        Err(bad(&format!("`{scheme}://` is not a supported store")))
    }

    /// A short, stable name for this store, for the local cache folder in front of it.
    pub fn local_name(&self) -> String {
        let hash = blake3::hash(self.to_string().as_bytes()).to_hex();
        format!("remote-{}", &hash[..12])
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StoreKind::S3 if self.prefix.is_empty() => write!(f, "s3://{}", self.container),
            StoreKind::S3 => write!(f, "s3://{}/{}", self.container, self.prefix),
            StoreKind::File => write!(f, "file://{}", self.container),
        }
    }
}

/// What went wrong with the store. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("use the cache URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    /// The store answered, or could not be reached, for `operation` on `key`.
    #[error("{operation} `{key}` in {url}: {source}{hint}", hint = hint(.source))]
    Store {
        url: String,
        operation: &'static str,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// The store cannot be set up (bad configuration, credentials that cannot be read).
    #[error("open the cache {url}: {reason}")]
    Setup { url: String, reason: String },
}

fn hint(error: &object_store::Error) -> &'static str {
    if is_denied(error) {
        " (the store refused the credentials or the permission: check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the bucket's policy; onc-pipe never treats this \
         as a cache miss)"
    } else {
        ""
    }
}

fn is_denied(error: &object_store::Error) -> bool {
    match error {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => true,
        // object_store reports a refused listing as a generic error carrying the status; the
        // status line is the only stable part of it.
        object_store::Error::Generic { .. } => {
            let text = error.to_string();
            text.contains("403 Forbidden") || text.contains("401 Unauthorized")
        }
        _ => false,
    }
}

impl RemoteError {
    /// A refused credential or permission: the run must stop, never fetch around it.
    pub fn is_denied(&self) -> bool {
        matches!(self, RemoteError::Store { source, .. } if is_denied(source))
    }
}

/// Requests made to the store, by kind, for the run record and the benchmarks.
#[derive(Debug, Default)]
pub struct RequestCounts {
    pub get: AtomicU64,
    pub head: AtomicU64,
    pub put: AtomicU64,
    pub list: AtomicU64,
    pub delete: AtomicU64,
    /// Bytes sent to and received from the store (objects and records).
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

/// A snapshot of [`RequestCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestTotals {
    pub get: u64,
    pub head: u64,
    pub put: u64,
    pub list: u64,
    pub delete: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl RequestTotals {
    /// Every request, whatever its kind.
    pub fn requests(&self) -> u64 {
        self.get + self.head + self.put + self.list + self.delete
    }
}

/// The outcome of a create-if-absent put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Written, with the version to compare-and-swap it later.
    New(object_store::UpdateVersion),
    /// Something was there already (for content-keyed names: the same content).
    Exists,
}

/// An object store with its URL, its prefix, its own runtime and its request counts.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    /// Always `Some` until dropped (then shut down without blocking: the last handle may be
    /// dropped inside the executor's runtime, where a blocking shutdown would panic).
    runtime: Option<tokio::runtime::Runtime>,
    /// Per identity, the coverage entries the store listed (range and key), read once a run.
    listings: std::sync::Mutex<std::collections::HashMap<String, Vec<sync::Listed>>>,
    counts: Arc<RequestCounts>,
    /// How long a claim lives without being renewed, in ms (see [`claims`]); set again once
    /// ONC's pace is known ([`Remote::set_lease`]).
    lease_ms: AtomicU64,
    claims: claims::ClaimBook,
    /// For a `file://` store, its folder: claims there are OS locks, as in a folder cache
    /// (the local file system has no compare-and-swap).
    lock_folder: Option<PathBuf>,
    /// The first refusal of the run ([`Remote::refused`]).
    refusal: std::sync::OnceLock<String>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// How long a claim lives without renewal, at ONC's real pace. A live run renews it every
/// third of this; a run that sees it unchanged for this long takes it over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// The shortest lease, whatever the pace: renewals come every third of it, and under load (a
/// busy store, two cores shared by many processes) a 1 s lease let a live claim be taken.
pub const MIN_LEASE: Duration = Duration::from_secs(5);

impl Remote {
    /// Opens the store named by `url`, with credentials from the AWS environment and profile
    /// files. Sends nothing: [`Remote::probe`] does.
    pub fn open(url: &RemoteUrl, lease: Duration) -> Result<Remote, RemoteError> {
        let setup = |reason: String| RemoteError::Setup {
            url: url.to_string(),
            reason,
        };
        // reqwest is built without a default TLS provider (ring, as for ONC): install it
        // before the store's client is built (a no-op when the ONC client did first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store: Arc<dyn ObjectStore> = match url.kind {
            StoreKind::S3 => {
                // Retries well inside a third of the shortest lease: a renewal that retried
                // for object_store's default 3 minutes would let a live claim expire.
                let retry = object_store::RetryConfig {
                    max_retries: 4,
                    retry_timeout: Duration::from_secs(30),
                    ..object_store::RetryConfig::default()
                };
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&url.container)
                    .with_retry(retry);
                for (key, value) in profile::settings_missing_from_env().map_err(setup)? {
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| setup(e.to_string()))?)
            }
            StoreKind::File => {
                std::fs::create_dir_all(&url.container)
                    .map_err(|e| setup(format!("create {}: {e}", url.container)))?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&url.container)
                        .map_err(|e| setup(e.to_string()))?,
                )
            }
        };
        let mut remote = Remote::with_store(store, url.to_string(), url.prefix.clone(), lease)?;
        if url.kind == StoreKind::File {
            remote.lock_folder = Some(PathBuf::from(&url.container));
        }
        Ok(remote)
    }

    /// A remote over any store (tests use the in-memory one).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        url: String,
        prefix: String,
        lease: Duration,
    ) -> Result<Remote, RemoteError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("onc-pipe-store")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Setup {
                url: url.clone(),
                reason: format!("start its runtime: {e}"),
            })?;
        Ok(Remote {
            store,
            url,
            prefix,
            runtime: Some(runtime),
            listings: std::sync::Mutex::default(),
            counts: Arc::new(RequestCounts::default()),
            lease_ms: AtomicU64::new(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)),
            claims: claims::ClaimBook::default(),
            lock_folder: None,
            refusal: std::sync::OnceLock::new(),
        })
    }

    /// How long a claim lives without renewal.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.load(Ordering::Relaxed))
    }

    /// Sets the lease: [`DEFAULT_LEASE`] on ONC's clock, which a simulator may run faster.
    /// At least [`MIN_LEASE`]: a live run must always renew within it, however slow the store
    /// or the machine (a claim taken from a live run is an order placed twice).
    pub fn set_lease(&self, lease: Duration) {
        let lease = lease.max(MIN_LEASE);
        self.lease_ms.store(
            u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A short name of this store, for the local markers of what was sent to it.
    pub(crate) fn marker_name(&self) -> String {
        blake3::hash(self.url.as_bytes()).to_hex()[..12].to_owned()
    }

    /// The store's URL, for messages (it carries no secret: credentials travel in headers).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests made so far.
    pub fn totals(&self) -> RequestTotals {
        let c = &self.counts;
        RequestTotals {
            get: c.get.load(Ordering::Relaxed),
            head: c.head.load(Ordering::Relaxed),
            put: c.put.load(Ordering::Relaxed),
            list: c.list.load(Ordering::Relaxed),
            delete: c.delete.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Checks, with one request, that the store answers and accepts the credentials: a HEAD
    /// of the cache's marker object. Missing is fine (a new cache); a refusal is an error, so a
    /// run stops before it orders anything from ONC.
    pub fn probe(&self) -> Result<(), RemoteError> {
        // A listing, not a HEAD: a bucket that does not exist answers a HEAD of a key with
        // 404, which reads as "not there yet"; a listing of it fails.
        self.list("onc-pipe-probe-v1").map(|_| ())
    }

    /// The first refusal (credentials or permission) the store gave during the run, if any:
    /// the run reports it and exits 3 even where the refused read was treated as a miss.
    pub fn refused(&self) -> Option<String> {
        self.refusal.get().cloned()
    }

    /// The full store path of a cache key (`objects-v1/ab/…`).
    /// [`Self::path`] of a request about to be sent, traced with `-vv`.
    fn request_path(&self, operation: &str, key: &str) -> StorePath {
        if crate::trace::store() {
            crate::trace::line(&format!("store {operation} {}/{key}", self.url));
        }
        self.path(key)
    }

    fn path(&self, key: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key)
        } else {
            StorePath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn error(
        &self,
        operation: &'static str,
        key: &str,
        source: object_store::Error,
    ) -> RemoteError {
        RemoteError::Store {
            url: self.url.clone(),
            operation,
            key: key.to_owned(),
            source: Box::new(source),
        }
    }

    /// Runs `future` on the remote's runtime and waits for it, from any thread.
    fn block<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let future = async move {
            let _ = tx.send(future.await);
        };
        // The runtime is only taken by `drop`, after which nothing can call this.
        if let Some(runtime) = &self.runtime {
            drop(runtime.spawn(future));
        }
        match rx.recv() {
            Ok(value) => value,
            // The task panicked (its sender dropped unsent): never expected; surface it as the
            // panic it was rather than inventing a value.
            Err(_) => panic!("a task of the cache's object store panicked"),
        }
    }

    /// The object at `key`, or `None` when there is none.
    pub fn get(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, object_store::UpdateVersion)>, RemoteError> {
        let (store, path, counts) = (
            self.store.clone(),
            self.request_path("GET", key),
            self.counts.clone(),
        );
        let result = self.block(async move {
            counts.get.fetch_add(1, Ordering::Relaxed);
            let got = store.get(&path).await?;
            let version = object_store::UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await?;
            counts
                .bytes_down
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok::<_, object_store::Error>((bytes.to_vec(), version))
        });
        match result {
            Ok(found) => Ok(Some(found)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.error("read", key, source)),
        }
    }

    /// Whether `key` exists (its size when it does).
    pub fn head(&self, key: &str) -> Result<Option<u64>, RemoteError> {
        let (store, path, counts) = (
            self.store.clone(),
            self.request_path("HEAD", key),
            self.counts.clone(),
        );
        let result = self.block(async move {
            counts.head.fetch_add(1, Ordering::Relaxed);
            store.head(&path).await
        });
        match result {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(self.error("look up", key, source)),
        }
    }

    /// Writes `bytes` at `key` with `mode`; `Ok(None)` when the mode's condition failed
    /// (create: something exists; update: the version moved on).
    fn put_mode(
        &self,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<Option<object_store::UpdateVersion>, RemoteError> {
        let (store, path, counts) = (
            self.store.clone(),
            self.request_path("PUT", key),
            self.counts.clone(),
        );
        let size = bytes.len() as u64;
        let result = self.block(async move {
            counts.put.fetch_add(1, Ordering::Relaxed);
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            let done = store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await?;
            counts.bytes_up.fetch_add(size, Ordering::Relaxed);
            Ok::<_, object_store::Error>(done)
        });
        match result {
            Ok(done) => Ok(Some(object_store::UpdateVersion::from(done))),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(None),
            Err(source) => Err(self.error("write", key, source)),
        }
    }

    /// Create-if-absent: the write-once records and objects.
    pub fn put_create(&self, key: &str, bytes: Vec<u8>) -> Result<Created, RemoteError> {
        Ok(match self.put_mode(key, bytes, PutMode::Create)? {
            Some(version) => Created::New(version),
            None => Created::Exists,
        })
    }

    /// Compare-and-swap: writes only if `key` is still at `version`; `Ok(None)` if not.
    pub fn put_update(
        &self,
        key: &str,
        bytes: Vec<u8>,
        version: object_store::UpdateVersion,
    ) -> Result<Option<object_store::UpdateVersion>, RemoteError> {
        self.put_mode(key, bytes, PutMode::Update(version))
    }

    /// Writes `bytes` at `key` whatever is there (discovery answers, which are refreshed).
    pub fn put_overwrite(&self, key: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        self.put_mode(key, bytes, PutMode::Overwrite).map(|_| ())
    }

    /// Deletes `key`; an absent key is no error.
    pub fn delete(&self, key: &str) -> Result<(), RemoteError> {
        let (store, path, counts) = (
            self.store.clone(),
            self.request_path("DELETE", key),
            self.counts.clone(),
        );
        let result = self.block(async move {
            counts.delete.fetch_add(1, Ordering::Relaxed);
            store.delete(&path).await
        });
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.error("delete", key, source)),
        }
    }

    /// The keys under `folder` (relative to the cache, e.g. `coverage-v1/<identity>`), as cache
    /// keys. One request per thousand keys.
    pub fn list(&self, folder: &str) -> Result<Vec<String>, RemoteError> {
        let (store, path, counts) = (
            self.store.clone(),
            self.request_path("LIST", folder),
            self.counts.clone(),
        );
        let result = self.block(async move {
            use futures_util::StreamExt as _;
            counts.list.fetch_add(1, Ordering::Relaxed);
            let mut listing = store.list(Some(&path));
            let mut keys = Vec::new();
            while let Some(item) = listing.next().await {
                let meta = item?;
                keys.push(meta.location.to_string());
                // S3 lists a thousand keys per page: count a request per page.
                if keys.len() % 1000 == 0 {
                    counts.list.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, object_store::Error>(keys)
        });
        let keys = result.map_err(|source| self.error("list", folder, source))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Ok(keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(&strip).map(str::to_owned))
            .collect())
    }
}
