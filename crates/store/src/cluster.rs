//! A PostgreSQL server that Tally starts itself.
//!
//! `tally serve` without `DATABASE_URL` runs its own cluster under `./tally-data/`, and every test
//! binary runs a throwaway one. Both use the system's PostgreSQL binaries, because shipping or
//! downloading a server is not possible on the machines Tally targets.
//!
//! Two details decide how this is written:
//! - `initdb` refuses to run as root, so when Tally runs as root the server runs as the
//!   `postgres` user (or `nobody`), with the data directory chowned to it.
//! - The server must not outlive Tally (a killed test run must not leave servers behind), so the
//!   child asks the kernel for `SIGINT` when its parent dies (`PR_SET_PDEATHSIG`). That signal is
//!   tied to the *thread* that forked, so children are forked from one long-lived thread.

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, geteuid};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The superuser created by `initdb`; it bootstraps the owner role and nothing else.
pub const SUPERUSER: &str = "tally_super";
/// The non-superuser role that owns the schema and runs migrations.
pub const OWNER: &str = "tally_owner";
/// The database Tally uses inside a managed cluster.
pub const DATABASE: &str = "tally";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found: install them (Debian: apt-get install postgresql) or set DATABASE_URL to an existing server"
    )]
    BinariesNotFound,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("PostgreSQL did not accept connections within {0:?}: {1}")]
    StartTimeout(Duration, String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Settings of a serving cluster beyond PostgreSQL's defaults, which are sized for a tiny
/// machine. Measured on the 2-core box with `tally bench ingest`: once the events table and its
/// seven indexes outgrow the default 128 MB of shared buffers, every insert touches pages that
/// must be read back from the OS cache and dirty pages written out, and each checkpoint (every
/// 5 minutes by default, or every 1 GB of WAL) makes the next change of every page log a
/// full-page image. Fewer, larger checkpoints trade a longer crash recovery (minutes at most)
/// for that WAL volume; durability is untouched (`fsync` and `synchronous_commit` stay on).
const SERVING_SETTINGS: [&str; 3] = [
    "max_wal_size=4GB",
    "checkpoint_timeout=15min",
    "checkpoint_completion_target=0.9",
];

/// A quarter of the machine's memory, between 128 MB and 2 GB: PostgreSQL's own guidance for a
/// dedicated server, capped because the managed cluster shares the machine with Tally.
fn shared_buffers_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    (total_kb / 1024 / 4).clamp(128, 2048)
}

/// How a cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` on: what `serve` always uses.
    Full,
    /// `fsync=off`: only for throwaway test clusters, whose data nobody needs after a crash.
    Throwaway,
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub data_dir: PathBuf,
    /// TCP port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    pub durability: Durability,
    /// Where to look for binaries first (`TALLY_PG_BINDIR`); falls back to discovery.
    pub bindir: Option<PathBuf>,
}

/// A running server. Dropping it stops the server (fast shutdown, which is still clean: a
/// checkpoint is written and nothing committed is lost).
pub struct LocalCluster {
    pid: Pid,
    port: u16,
    data_dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl LocalCluster {
    /// Creates the cluster on first use (data persists afterwards) and starts the server.
    pub fn start(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let bindir = match &opts.bindir {
            Some(dir) => check_bindir(dir).ok_or(ClusterError::BinariesNotFound)?,
            None => find_bindir().ok_or(ClusterError::BinariesNotFound)?,
        };
        let runner = RunAs::for_current_process();
        let data_dir = absolute(&opts.data_dir)?;
        runner.check_reachable(&data_dir)?;
        let pgdata = pg_dir(&data_dir);
        fs::create_dir_all(&pgdata).map_err(io_err(&pgdata))?;
        runner.own(&data_dir)?;
        runner.own(&pgdata)?;
        fs::set_permissions(&pgdata, fs::Permissions::from_mode(0o700)).map_err(io_err(&pgdata))?;

        if !pgdata.join("PG_VERSION").exists() {
            let mut initdb = runner.command(bindir.join("initdb"));
            initdb.arg("--pgdata").arg(&pgdata).args([
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]);
            if opts.durability == Durability::Throwaway {
                initdb.arg("--no-sync");
            }
            run_to_end(&mut initdb, "initdb")?;
        }

        let port = match opts.port {
            Some(p) => p,
            None => free_port().map_err(io_err(&data_dir))?,
        };
        let log_path = data_dir.join("postgres.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = runner.command(bindir.join("postgres"));
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // No Unix socket: its path would have to be writable by the server user and short.
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"]);
        match opts.durability {
            Durability::Throwaway => {
                cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
            }
            Durability::Full => {
                cmd.args(["-c", &format!("shared_buffers={}MB", shared_buffers_mb())])
                    .args(SERVING_SETTINGS.iter().flat_map(|s| ["-c", s]));
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_err(&log_path))?)
            .stderr(log);
        let child = spawn_tied_to_process(cmd).map_err(|e| ClusterError::Command {
            what: "postgres".into(),
            detail: e.to_string(),
        })?;
        let cluster = Self {
            pid: Pid::from_raw(child.id() as i32),
            port,
            data_dir,
            child: Mutex::new(Some(child)),
        };
        cluster.wait_ready(&bindir, &log_path, log_offset)?;
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for `user` on `database` (trust authentication on loopback).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{user}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    fn wait_ready(&self, bindir: &Path, log: &Path, offset: u64) -> Result<(), ClusterError> {
        let limit = Duration::from_secs(60);
        let started = Instant::now();
        let isready = bindir.join("pg_isready");
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(ClusterError::Command {
                    what: "postgres".into(),
                    detail: format!("exited with {status}: {}", log_tail(log, offset)),
                });
            }
            let ready = Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", SUPERUSER, "-d", "postgres"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(ClusterError::StartTimeout(limit, log_tail(log, offset)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn try_exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.child.lock().ok()?;
        guard.as_mut()?.try_wait().ok().flatten()
    }

    /// Fast shutdown: disconnects clients, writes a checkpoint, exits. Idempotent.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        let _ = kill(self.pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(pid = %self.pid, "PostgreSQL did not stop within 30 s; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where PostgreSQL's own files live inside a Tally data directory.
pub fn pg_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pg")
}

/// Whether the server `data_directory` names (PostgreSQL's `SHOW data_directory`) is the one
/// of Tally's `data_dir`: the same directory, whichever symlinks or relative paths lead there.
pub fn serves_data_dir(data_directory: &Path, data_dir: &Path) -> bool {
    match (
        fs::canonicalize(data_directory),
        fs::canonicalize(pg_dir(data_dir)),
    ) {
        (Ok(served), Ok(ours)) => served == ours,
        _ => false,
    }
}

/// Finds a directory with `initdb`, `postgres` and `pg_isready`: `pg_config --bindir`, then the
/// newest `/usr/lib/postgresql/*/bin` (Debian puts them there, off `PATH`), then `PATH`.
pub fn find_bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().map(|(_, p)| p))
        .chain(on_path)
        .find_map(|dir| check_bindir(&dir))
}

fn check_bindir(dir: &Path) -> Option<PathBuf> {
    ["initdb", "postgres", "pg_isready"]
        .iter()
        .all(|b| dir.join(b).is_file())
        .then(|| dir.to_path_buf())
}

/// The unprivileged user the server runs as.
struct RunAs {
    ids: Option<(u32, u32)>,
}

impl RunAs {
    fn for_current_process() -> Self {
        if !geteuid().is_root() {
            return Self { ids: None };
        }
        let user = User::from_name("postgres")
            .ok()
            .flatten()
            .or_else(|| User::from_name("nobody").ok().flatten());
        Self {
            ids: user.map(|u| (u.uid.as_raw(), u.gid.as_raw())),
        }
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
            // initdb and postgres read $HOME-free configuration; a root cwd they cannot read
            // would only produce noise.
            cmd.current_dir("/");
        }
        cmd
    }

    /// The server user must be able to traverse every ancestor of the data directory; a
    /// project under `/root` (mode 700) is the usual trap, and PostgreSQL's own error for it
    /// ("could not change directory") does not say what to do.
    fn check_reachable(&self, dir: &Path) -> Result<(), ClusterError> {
        let Some((uid, _)) = self.ids else {
            return Ok(());
        };
        for ancestor in dir.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(ancestor) else {
                continue;
            };
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != uid && meta.mode() & 0o001 == 0 {
                return Err(ClusterError::Command {
                    what: "preparing the data directory".into(),
                    detail: format!(
                        "the PostgreSQL server runs as an unprivileged user (uid {uid}) because Tally runs as root, and it cannot enter {}; choose a data directory elsewhere with --data-dir (e.g. /var/lib/tally) or set DATABASE_URL",
                        ancestor.display()
                    ),
                });
            }
        }
        Ok(())
    }

    fn own(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))?;
        }
        Ok(())
    }
}

fn run_to_end(cmd: &mut Command, what: &str) -> Result<(), ClusterError> {
    let out = cmd.output().map_err(|e| ClusterError::Command {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(ClusterError::Command {
        what: what.into(),
        detail: format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Forks `cmd` from a thread that lives as long as the process, with `PR_SET_PDEATHSIG` set in
/// the child after its uid change (a credential change clears the setting).
fn spawn_tied_to_process(mut cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tally-pg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the PostgreSQL spawner thread");
        Mutex::new(tx)
    });
    // SAFETY: prctl and getppid are async-signal-safe; nothing allocates between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                // The parent already died between fork and prctl.
                return Err(std::io::Error::other(
                    "parent exited before the server started",
                ));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn absolute(path: &Path) -> Result<PathBuf, ClusterError> {
    std::path::absolute(path).map_err(io_err(path))
}

fn log_tail(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
