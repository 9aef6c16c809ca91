//! A seeded, model-based concurrency test: several clients issue random sequences of put,
//! get, range get, delete, copy, create/upload-part/complete/abort, list and delete-bucket
//! against s3d, each checking every answer against its own model of what S3 must hold;
//! the server is reopened between phases. Half the clients work in a versioned bucket, where
//! the model keeps every version and delete marker, and they also read, delete and list by
//! version id. Run against RocksDB + the filesystem and against
//! the in-memory stores (the reference implementation), it checks afterwards that every
//! acknowledged object reads back whole with its ETag, that nothing listed is missing its
//! bytes, and that no unreferenced blob outlives the grace period plus a collector run.
//!
//! `S3D_MODEL_SEEDS` (comma-separated), `S3D_MODEL_OPS` (per client and phase) and
//! `S3D_MODEL_PHASES` scale it up for soak runs (see `scripts/soak`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};

use crate::common::*;

const CLIENTS: usize = 4;
const KEYS: u64 = 6;
const MIB: usize = 1024 * 1024;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let seed = self.next();
        (0..n).map(|i| (seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9) >> 24) as u8).collect()
    }
}

#[derive(Clone, Debug)]
struct Obj {
    bytes: Vec<u8>,
    etag: String,
}

#[derive(Clone, Debug, Default)]
struct Upload {
    key: String,
    /// part number → (bytes, etag)
    parts: BTreeMap<i32, (Vec<u8>, String)>,
}

/// One version of a key in a versioned bucket: an object, or a delete marker (`None`).
#[derive(Clone, Debug)]
struct Version {
    id: String,
    obj: Option<Obj>,
}

/// What one client's bucket must hold.
#[derive(Debug, Default)]
struct Model {
    bucket: String,
    versioned: bool,
    /// The current object of every key.
    objects: BTreeMap<String, Obj>,
    /// Every version of every key, oldest first (versioned buckets only).
    versions: BTreeMap<String, Vec<Version>>,
    uploads: BTreeMap<String, Upload>,
}

impl Model {
    /// Records a write of `key` (an object, or a delete marker) answered with `version`.
    fn write(&mut self, key: &str, obj: Option<Obj>, version: Option<&str>) -> Result<(), String> {
        if self.versioned {
            let id = version.ok_or("a versioned write answered no version id")?;
            if id == "null" || self.versions.values().flatten().any(|v| v.id == id) {
                return Err(format!("version id {id} is not new"));
            }
            self.versions.entry(key.to_owned()).or_default().push(Version { id: id.to_owned(), obj: obj.clone() });
        } else if let Some(v) = version {
            return Err(format!("an unversioned bucket answered version id {v}"));
        }
        match obj {
            Some(o) => self.objects.insert(key.to_owned(), o),
            None => self.objects.remove(key),
        };
        Ok(())
    }

    /// Forgets one version of `key`; the newest remaining one becomes current.
    fn forget(&mut self, key: &str, id: &str) {
        let list = self.versions.entry(key.to_owned()).or_default();
        list.retain(|v| v.id != id);
        match list.last().and_then(|v| v.obj.clone()) {
            Some(o) => self.objects.insert(key.to_owned(), o),
            None => self.objects.remove(key),
        };
        if list.is_empty() {
            self.versions.remove(key);
        }
    }

    fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.versions.is_empty()
    }

    /// A random (key, version) of a versioned bucket.
    fn pick_version(&self, rng: &mut Rng) -> Option<(String, Version)> {
        let all: Vec<(&String, &Version)> =
            self.versions.iter().flat_map(|(k, l)| l.iter().map(move |v| (k, v))).collect();
        let (k, v) = all.get(rng.below(all.len().max(1) as u64) as usize)?;
        Some(((*k).clone(), (*v).clone()))
    }

    /// What ListObjectVersions must list: versions and delete markers (the SDK keeps them in
    /// two lists), each by key then newest first, as (key, id, ETag, IsLatest).
    fn listing(&self) -> (Vec<Listed>, Vec<Listed>) {
        let (mut versions, mut markers) = (Vec::new(), Vec::new());
        for (key, list) in &self.versions {
            for (i, v) in list.iter().rev().enumerate() {
                let etag = v.obj.as_ref().map(|o| quoted(&o.etag));
                let to = if v.obj.is_some() { &mut versions } else { &mut markers };
                to.push((key.clone(), v.id.clone(), etag, i == 0));
            }
        }
        (versions, markers)
    }
}

type Listed = (String, String, Option<String>, bool);

/// Every version and delete marker in `bucket`, paging as a client would.
async fn list_versions(s3: &Client, bucket: &str) -> (Vec<Listed>, Vec<Listed>) {
    let (mut versions, mut markers) = (Vec::new(), Vec::new());
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(7)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(id_marker.clone())
            .send()
            .await
            .expect("list versions");
        let entry = |k: Option<&str>, id: Option<&str>, etag: Option<&str>, latest: Option<bool>| {
            (k.expect("key").to_owned(), id.expect("id").to_owned(), etag.map(str::to_owned), latest == Some(true))
        };
        versions.extend(out.versions().iter().map(|v| entry(v.key(), v.version_id(), v.e_tag(), v.is_latest())));
        markers.extend(out.delete_markers().iter().map(|d| entry(d.key(), d.version_id(), None, d.is_latest())));
        if out.is_truncated() != Some(true) {
            return (versions, markers);
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        id_marker = out.next_version_id_marker().map(str::to_owned);
    }
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn no_retries(s3: Client) -> Client {
    // A retried request would hide the error it got; every answer must be the first one.
    Client::from_conf(s3.config().to_builder().retry_config(RetryConfig::disabled()).build())
}

fn size(rng: &mut Rng) -> usize {
    [0, 1, 100, 4096, 70_000, 300_000][rng.below(6) as usize]
}

/// One random operation, checked against the model.
async fn step(s3: &Client, m: &mut Model, rng: &mut Rng, trace: &mut Vec<String>) {
    let b = m.bucket.clone();
    let key = format!("k{}", rng.below(KEYS));
    let op = rng.below(100);
    trace.push(format!("op {op} key {key}"));
    let ctx = || format!("bucket {b}, trace: {:?}", &trace[trace.len().saturating_sub(8)..]);
    match op {
        0..=19 => {
            let len = size(rng);
            let bytes = rng.bytes(len);
            let out = s3.put_object().bucket(&b).key(&key).body(ByteStream::from(bytes.clone())).send().await;
            let etag = md5_hex(&bytes);
            let out = out.expect("put");
            assert_eq!(out.e_tag(), Some(quoted(&etag).as_str()), "{}", ctx());
            m.write(&key, Some(Obj { bytes, etag }), out.version_id()).unwrap_or_else(|e| panic!("{e}; {}", ctx()));
        }
        20..=27 if m.versioned => {
            let Some((key, v)) = m.pick_version(rng) else { return };
            let out = s3.get_object().bucket(&b).key(&key).version_id(&v.id).send().await;
            match (out, &v.obj) {
                (Ok(out), Some(o)) => {
                    assert_eq!((out.e_tag(), out.version_id()), (Some(quoted(&o.etag).as_str()), Some(v.id.as_str())));
                    let got = out.body.collect().await.expect("body").into_bytes();
                    assert!(got == o.bytes, "{key} version {}: wrong bytes; {}", v.id, ctx());
                }
                (Err(e), None) => {
                    assert_eq!((sdk_code(&e).as_deref(), sdk_status(&e)), (Some("MethodNotAllowed"), Some(405)));
                }
                (r, o) => {
                    panic!("get {key}@{}: {:?} but model has {:?}; {}", v.id, r.map(|_| "200"), o.is_some(), ctx())
                }
            }
        }
        20..=34 => match (s3.get_object().bucket(&b).key(&key).send().await, m.objects.get(&key)) {
            (Ok(out), Some(o)) => {
                assert_eq!(out.e_tag(), Some(quoted(&o.etag).as_str()), "{}", ctx());
                let got = out.body.collect().await.expect("body").into_bytes();
                assert!(got == o.bytes, "{key}: {} bytes read, {} expected; {}", got.len(), o.bytes.len(), ctx());
            }
            (Err(e), None) => assert_eq!(sdk_code(&e).as_deref(), Some("NoSuchKey"), "{}", ctx()),
            (r, o) => {
                panic!("get {key}: {:?} but model has {:?}; {}", r.map(|_| "200"), o.map(|o| o.bytes.len()), ctx())
            }
        },
        35..=41 => {
            let Some(o) = m.objects.get(&key).filter(|o| !o.bytes.is_empty()) else { return };
            let len = o.bytes.len() as u64;
            let start = rng.below(len);
            let end = start + rng.below(len - start);
            let out = s3.get_object().bucket(&b).key(&key).range(format!("bytes={start}-{end}")).send().await;
            let got = out.expect("range").body.collect().await.expect("body").into_bytes();
            assert!(got == o.bytes[start as usize..=end as usize], "range {start}-{end} of {key}; {}", ctx());
        }
        42..=46 if m.versioned => {
            let Some((key, v)) = m.pick_version(rng) else { return };
            let out = s3.delete_object().bucket(&b).key(&key).version_id(&v.id).send().await.expect("delete version");
            assert_eq!(out.version_id(), Some(v.id.as_str()), "{}", ctx());
            assert_eq!(out.delete_marker() == Some(true), v.obj.is_none(), "{}", ctx());
            m.forget(&key, &v.id);
        }
        42..=51 => {
            let out = s3.delete_object().bucket(&b).key(&key).send().await.expect("delete");
            if m.versioned {
                assert_eq!(out.delete_marker(), Some(true), "{}", ctx());
            }
            m.write(&key, None, out.version_id()).unwrap_or_else(|e| panic!("{e}; {}", ctx()));
        }
        52..=57 => {
            let dst = format!("k{}", rng.below(KEYS));
            let out = s3
                .copy_object()
                .bucket(&b)
                .key(&dst)
                .copy_source(format!("{b}/{key}"))
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .send()
                .await;
            match (out, m.objects.get(&key).cloned()) {
                (Ok(out), Some(o)) => {
                    let copy = Obj { etag: md5_hex(&o.bytes), bytes: o.bytes };
                    m.write(&dst, Some(copy), out.version_id()).unwrap_or_else(|e| panic!("{e}; {}", ctx()));
                }
                (Err(e), None) => assert_eq!(sdk_code(&e).as_deref(), Some("NoSuchKey"), "{}", ctx()),
                (r, o) => panic!("copy {key}: {:?} but model has {}; {}", r.map(|_| "200"), o.is_some(), ctx()),
            }
        }
        58..=63 => {
            let out = s3.create_multipart_upload().bucket(&b).key(&key).send().await.expect("create");
            let id = out.upload_id().expect("id").to_owned();
            m.uploads.insert(id, Upload { key, parts: BTreeMap::new() });
        }
        64..=75 => {
            let Some(id) = pick(rng, m.uploads.keys()) else { return };
            let n = 1 + rng.below(3) as i32;
            // Now and then a part large enough to be followed by others.
            let len = if rng.below(8) == 0 { 5 * MIB } else { size(rng) };
            let bytes = rng.bytes(len);
            let u = m.uploads.get_mut(&id).expect("upload");
            let out = s3
                .upload_part()
                .bucket(&b)
                .key(&u.key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(bytes.clone()))
                .send()
                .await
                .expect("part");
            let etag = md5_hex(&bytes);
            assert_eq!(out.e_tag(), Some(quoted(&etag).as_str()), "{}", ctx());
            u.parts.insert(n, (bytes, etag));
        }
        76..=83 => {
            let Some(id) = pick(rng, m.uploads.keys()) else { return };
            let u = m.uploads[&id].clone();
            let done: Vec<CompletedPart> = u
                .parts
                .iter()
                .map(|(n, (_, etag))| CompletedPart::builder().part_number(*n).e_tag(quoted(etag)).build())
                .collect();
            let out = s3
                .complete_multipart_upload()
                .bucket(&b)
                .key(&u.key)
                .upload_id(&id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
                .send()
                .await;
            let too_small = u.parts.values().rev().skip(1).any(|(bytes, _)| bytes.len() < 5 * MIB);
            match out {
                Err(e) if u.parts.is_empty() => {
                    assert_eq!(sdk_code(&e).as_deref(), Some("MalformedXML"), "{}", ctx());
                }
                Err(e) if too_small => assert_eq!(sdk_code(&e).as_deref(), Some("EntityTooSmall"), "{}", ctx()),
                Ok(out) if !u.parts.is_empty() && !too_small => {
                    let mut all = Md5::new();
                    for (_, etag) in u.parts.values() {
                        all.update(hex::decode(etag).expect("hex"));
                    }
                    let etag = format!("{}-{}", hex::encode(all.finalize()), u.parts.len());
                    assert_eq!(out.e_tag(), Some(quoted(&etag).as_str()), "{}", ctx());
                    let bytes: Vec<u8> = u.parts.values().flat_map(|(b, _)| b.iter().copied()).collect();
                    m.write(&u.key, Some(Obj { bytes, etag }), out.version_id())
                        .unwrap_or_else(|e| panic!("{e}; {}", ctx()));
                    m.uploads.remove(&id);
                }
                other => panic!("complete {id}: {:?}; {}", other.map(|_| "200"), ctx()),
            }
        }
        84..=89 => {
            let Some(id) = pick(rng, m.uploads.keys()) else { return };
            let key = m.uploads[&id].key.clone();
            s3.abort_multipart_upload().bucket(&b).key(&key).upload_id(&id).send().await.expect("abort");
            m.uploads.remove(&id);
        }
        90..=96 => {
            let out = s3.list_objects_v2().bucket(&b).send().await.expect("list");
            let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
            assert_eq!(keys, m.objects.keys().map(String::as_str).collect::<Vec<_>>(), "{}", ctx());
            let uploads = s3.list_multipart_uploads().bucket(&b).send().await.expect("uploads");
            let mut ids: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.upload_id()).collect();
            ids.sort_unstable();
            assert_eq!(ids, m.uploads.keys().map(String::as_str).collect::<Vec<_>>(), "{}", ctx());
            if m.versioned {
                assert_eq!(list_versions(s3, &b).await, m.listing(), "{}", ctx());
            }
        }
        _ => match s3.delete_bucket().bucket(&b).send().await {
            Ok(_) => {
                assert!(m.is_empty(), "deleted a bucket with objects or versions; {}", ctx());
                m.uploads.clear();
                create_bucket(s3, &b, m.versioned).await;
            }
            Err(e) => {
                assert!(!m.is_empty(), "{e:?}; {}", ctx());
                assert_eq!(sdk_code(&e).as_deref(), Some("BucketNotEmpty"), "{}", ctx());
            }
        },
    }
}

async fn create_bucket(s3: &Client, bucket: &str, versioned: bool) {
    s3.create_bucket().bucket(bucket).send().await.expect("bucket");
    if versioned {
        let on = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
            .build();
        s3.put_bucket_versioning().bucket(bucket).versioning_configuration(on).send().await.expect("versioning");
    }
}

fn pick<'a>(rng: &mut Rng, keys: impl ExactSizeIterator<Item = &'a String>) -> Option<String> {
    let n = keys.len() as u64;
    if n == 0 {
        return None;
    }
    let i = rng.below(n) as usize;
    keys.into_iter().nth(i).cloned()
}

/// Everything the models say is there reads back whole, and nothing else is listed.
async fn verify(s3: &Client, models: &[Model]) {
    for m in models {
        let out = s3.list_objects_v2().bucket(&m.bucket).send().await.expect("list");
        let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, m.objects.keys().map(String::as_str).collect::<Vec<_>>());
        for (key, o) in &m.objects {
            let got = s3.get_object().bucket(&m.bucket).key(key).send().await.expect("an acknowledged object");
            assert_eq!(got.e_tag(), Some(quoted(&o.etag).as_str()));
            let bytes = got.body.collect().await.expect("the whole body").into_bytes();
            assert!(bytes == o.bytes, "{}/{key}", m.bucket);
        }
        if m.versioned {
            assert_eq!(list_versions(s3, &m.bucket).await, m.listing(), "{}", m.bucket);
            for (key, v) in m.versions.iter().flat_map(|(k, l)| l.iter().map(move |v| (k, v))) {
                let Some(o) = &v.obj else { continue };
                let got = s3.get_object().bucket(&m.bucket).key(key).version_id(&v.id).send().await.expect("version");
                let bytes = got.body.collect().await.expect("the whole body").into_bytes();
                assert!(bytes == o.bytes, "{}/{key} version {}", m.bucket, v.id);
            }
        }
        let uploads = s3.list_multipart_uploads().bucket(&m.bucket).send().await.expect("uploads");
        assert_eq!(uploads.uploads().len(), m.uploads.len());
        for (id, u) in &m.uploads {
            let parts = s3.list_parts().bucket(&m.bucket).key(&u.key).upload_id(id).send().await.expect("parts");
            let etags: Vec<String> = parts.parts().iter().filter_map(|p| p.e_tag()).map(str::to_owned).collect();
            assert_eq!(etags, u.parts.values().map(|(_, e)| quoted(e)).collect::<Vec<_>>());
        }
    }
}

/// Deletes everything the models hold.
async fn clean_up(s3: &Client, models: &[Model]) {
    for m in models {
        for key in m.objects.keys().filter(|_| !m.versioned) {
            s3.delete_object().bucket(&m.bucket).key(key).send().await.expect("delete");
        }
        for (key, v) in m.versions.iter().flat_map(|(k, l)| l.iter().map(move |v| (k, v))) {
            s3.delete_object().bucket(&m.bucket).key(key).version_id(&v.id).send().await.expect("delete version");
        }
        for (id, u) in &m.uploads {
            s3.abort_multipart_upload().bucket(&m.bucket).key(&u.key).upload_id(id).send().await.expect("abort");
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seeds() -> Vec<u64> {
    match std::env::var("S3D_MODEL_SEEDS") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// The in-memory stores: the reference.
    Memory,
    /// RocksDB and the filesystem.
    Rocks,
    /// PostgreSQL and the filesystem.
    Postgres,
}

/// Runs the phases against `backend`; persistent backends are reopened between phases.
async fn run(seed: u64, backend: Backend) {
    // A server error is a finding: its cause is in the server's log.
    let _ = tracing_subscriber::fmt().with_env_filter("s3d=warn").with_test_writer().try_init();
    let ops = env_or("S3D_MODEL_OPS", 40);
    let phases = env_or("S3D_MODEL_PHASES", 3);
    let persistent = backend != Backend::Memory;
    let metadata = match backend {
        Backend::Postgres => Some(postgres_metadata().await),
        _ => None,
    };
    let configure = |c: &mut s3d::config::Config| {
        fast_gc(c);
        if let Some(m) = &metadata {
            c.metadata = m.clone();
        }
    };
    let (mut server, memory_blobs) = match backend {
        Backend::Memory => {
            let (s, blobs) = TestServer::start_memory(fast_gc).await;
            (s, Some(blobs))
        }
        _ => (TestServer::start_configured(configure).await, None),
    };
    let mut models: Vec<Model> = (0..CLIENTS)
        .map(|c| Model { bucket: format!("model-{c}"), versioned: c % 2 == 1, ..Model::default() })
        .collect();
    let setup = server.client(ALICE, Style::Path);
    for m in &models {
        create_bucket(&setup, &m.bucket, m.versioned).await;
    }
    for phase in 0..phases {
        let mut tasks = Vec::new();
        for (c, mut m) in std::mem::take(&mut models).into_iter().enumerate() {
            let style = if c % 2 == 0 { Style::Path } else { Style::VirtualHost };
            let s3 = no_retries(server.client(ALICE, style));
            let mut rng = Rng::new(seed * 1000 + phase * 100 + c as u64);
            tasks.push(tokio::spawn(async move {
                let mut trace = Vec::new();
                for _ in 0..ops {
                    step(&s3, &mut m, &mut rng, &mut trace).await;
                }
                m
            }));
        }
        for t in tasks {
            models.push(t.await.expect("client task"));
        }
        verify(&no_retries(server.client(ALICE, Style::Path)), &models).await;
        if persistent {
            // Reopen: everything acknowledged must still be there.
            server = server.restart_configured(configure).await;
            verify(&no_retries(server.client(ALICE, Style::VirtualHost)), &models).await;
        }
    }
    let s3 = no_retries(server.client(ALICE, Style::Path));
    clean_up(&s3, &models).await;
    // Nothing is referenced now: after the grace period and a collector run, no blob is left.
    let count = || match &memory_blobs {
        Some(b) => b.len(),
        None => blob_count(&server),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count() > 0 {
        assert!(std::time::Instant::now() < deadline, "{} unreferenced blobs outlived the grace period", count());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_clients_on_rocksdb_and_files() {
    for seed in seeds() {
        run(seed, Backend::Rocks).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_clients_on_postgres_and_files() {
    for seed in seeds() {
        run(seed, Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_clients_on_the_memory_model() {
    for seed in seeds() {
        run(seed, Backend::Memory).await;
    }
}
