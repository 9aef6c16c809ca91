//! Test support (not part of the server): a throwaway PostgreSQL server for the tests of the
//! PostgreSQL metadata store, started from the distribution's binaries in a temporary
//! directory on 127.0.0.1 and a port of its own.
//!
//! The server runs under a small shell that holds a pipe from the test process and stops the
//! server by its PID (fast shutdown) when the pipe closes: when [`TestPostgres`] is dropped
//! or stopped, and also when the test process exits or dies, however it ends.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A PostgreSQL server for tests.
pub struct TestPostgres {
    root: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// Run the server as this user (when the tests run as root, which PostgreSQL refuses).
    run_as: Option<String>,
    /// Remove `root` when the server stops (the process-wide instance is never dropped).
    remove_on_exit: bool,
    /// fsync and synchronous commits as in production (benchmarks); off for tests.
    durable: bool,
    server: Mutex<Option<Child>>,
    databases: AtomicUsize,
}

/// The directory with `initdb` and `postgres`: `S3D_TEST_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("S3D_TEST_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "PostgreSQL server binaries not found under /usr/lib/postgresql (install the postgresql \
         package, as scripts/test does, or set S3D_TEST_PG_BINDIR)"
            .to_owned()
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn id_of(user: &str, flag: &str) -> Result<u32, String> {
    let out = Command::new("id").args([flag, user]).output().map_err(|e| format!("id: {e}"))?;
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| format!("no user {user} to run PostgreSQL as"))
}

impl TestPostgres {
    /// The process-wide server, started on first use; it stops when the process exits.
    pub fn shared() -> &'static TestPostgres {
        static ONE: OnceLock<TestPostgres> = OnceLock::new();
        ONE.get_or_init(|| match TestPostgres::start_with(true) {
            Ok(pg) => pg,
            Err(e) => panic!("cannot start the test PostgreSQL server: {e}"),
        })
    }

    /// A server of its own (for tests that stop and restart it).
    pub fn start() -> Result<TestPostgres, String> {
        TestPostgres::start_with(false)
    }

    /// A server of its own with PostgreSQL's durable defaults (fsync, synchronous commit), for
    /// benchmarks that compare it with a store that syncs too.
    pub fn start_durable() -> Result<TestPostgres, String> {
        let mut pg = TestPostgres::prepare(false)?;
        pg.durable = true;
        pg.resume()?;
        Ok(pg)
    }

    fn start_with(remove_on_exit: bool) -> Result<TestPostgres, String> {
        let pg = TestPostgres::prepare(remove_on_exit)?;
        pg.resume()?;
        Ok(pg)
    }

    /// An initialised data directory and a port; not started.
    fn prepare(remove_on_exit: bool) -> Result<TestPostgres, String> {
        let bin = bin_dir()?;
        let root = std::env::temp_dir().join(format!("s3d-test-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(root.join("socket")).map_err(|e| format!("{}: {e}", root.display()))?;
        let root_user = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let run_as = if root_user {
            let (uid, gid) = (id_of("postgres", "-u")?, id_of("postgres", "-g")?);
            for d in [root.clone(), root.join("socket")] {
                std::os::unix::fs::chown(&d, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", d.display()))?;
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let pg = TestPostgres {
            root,
            bin,
            port: free_port()?,
            run_as,
            remove_on_exit,
            durable: false,
            server: Mutex::new(None),
            databases: AtomicUsize::new(0),
        };
        pg.initdb()?;
        Ok(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups", "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn initdb(&self) -> Result<(), String> {
        let base = |c: &mut Command| {
            c.arg("-D").arg(self.data()).args(["-U", "s3d", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        };
        // A collation that does not sort by bytes (ICU's en-US), so that the tests prove key
        // order does not depend on it; the default where ICU is not available.
        let mut icu = self.command("initdb");
        base(&mut icu);
        icu.args(["--locale-provider=icu", "--icu-locale=en-US", "--locale=C.UTF-8"]);
        if icu.output().map(|o| o.status.success()).unwrap_or(false) {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(self.data());
        let mut plain = self.command("initdb");
        base(&mut plain);
        let out = plain.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// Starts the server (again) on the same data and port, and waits until it accepts
    /// connections.
    pub fn resume(&self) -> Result<(), String> {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if server.is_some() {
            return Ok(());
        }
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.root.join("socket").display()))
            .args(["-c", "max_connections=300", "-c", "log_min_messages=fatal"]);
        if !self.durable {
            // Speed over durability: these databases live for one test run.
            postgres.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        let program = postgres.get_program().to_owned();
        let args: Vec<_> = postgres.get_args().map(|a| a.to_owned()).collect();
        // The shell stops the server by PID once stdin closes, then removes the directory of
        // a process-wide instance.
        let script = r#"remove="$1"; shift; "$@" & pid=$!; read _; kill -INT "$pid" 2>/dev/null; wait "$pid"; [ -n "$remove" ] && rm -rf "$remove"; exit 0"#;
        let remove = if self.remove_on_exit { self.root.as_os_str().to_owned() } else { Default::default() };
        let child = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(remove)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        *server = Some(child);
        drop(server);
        self.wait_ready()
    }

    /// Whether the server answers: `postmaster.pid` says "ready" and the port accepts.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid_file = self.data().join("postmaster.pid");
        loop {
            let ready = std::fs::read_to_string(&pid_file).is_ok_and(|s| s.lines().any(|l| l.trim() == "ready"))
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the test PostgreSQL server did not become ready within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown) and waits for it; [`resume`](Self::resume) starts it
    /// again with its data.
    pub fn pause(&self) {
        let child = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"stop\n");
            }
            let _ = child.wait();
        }
        // The server is gone once it has removed its pid file.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.data().join("postmaster.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://s3d@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; its URL.
    pub async fn database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), self.databases.fetch_add(1, Ordering::Relaxed));
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await.expect("connect to postgres");
        let task = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        drop(client);
        let _ = task.await;
        self.url(&name)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.pause();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
