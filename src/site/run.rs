//! The one way envmod runs an external program. Every program it runs can hang: a site
//! Python waiting on a licence server, a module command on a dead NFS mount, `quota` asking
//! an rpc.rquotad that never answers. A timeout on the wait alone is not enough, because a
//! program can exit and leave a child holding its output pipe open, and reading that output
//! to the end then waits for the child. So the timeout covers the output too, each program
//! runs in a process group of its own, and the whole group is killed when its leader exits
//! or when time is up. An interrupt of envmod kills the groups still running.
//!
//! Programs are found on the absolute entries of PATH only, and the programs envmod runs
//! get a PATH without the others: a relative entry (or an empty one, which means the
//! working directory) finds whatever a stranger left in the directory envmod runs in.

use std::{
    ffi::{OsStr, OsString},
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::Mutex,
    time::Duration,
};

use nix::{
    errno::Errno,
    sys::{
        signal::{Signal, killpg},
        wait::{Id, WaitPidFlag, WaitStatus, waitid},
    },
    unistd::Pid,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    runtime::{Handle, RuntimeFlavor},
    signal::unix::{SignalKind, signal},
};

use crate::failpoint;

/// How long a program may take, and the name under which a test build shortens it
/// (`ENVMOD_TEST_<NAME>_MS`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeout {
    name: &'static str,
    default: Duration,
}

impl Timeout {
    pub(crate) const fn new(name: &'static str, default: Duration) -> Self {
        Self { name, default }
    }

    pub(crate) fn get(self) -> Duration {
        failpoint::timeout_ms(self.name).map_or(self.default, Duration::from_millis)
    }
}

/// The site Python answering a few questions about itself.
pub(crate) const SITE_PYTHON: Timeout = Timeout::new("PROBE_TIMEOUT", Duration::from_secs(30));
/// A module command: `is-avail`, or loading a stack in a scratch shell.
pub(crate) const MODULE: Timeout = Timeout::new("MODULE", Duration::from_secs(60));
/// `quota`, which over NFS asks the server. A diagnosis that hangs is worse than one without
/// quotas.
pub(crate) const QUOTA: Timeout = Timeout::new("QUOTA", Duration::from_secs(5));
/// pip installing a pip section, or compileall over an environment: long, but not for ever.
pub(crate) const LONG: Timeout = Timeout::new("LONG", Duration::from_secs(2 * 3600));
/// An environment's activate.d scripts, run to learn what they set.
pub(crate) const SCRIPTS: Timeout = Timeout::new("SCRIPTS", Duration::from_secs(120));
/// An interpreter asked whether it can import a module.
pub(crate) const IMPORT: Timeout = Timeout::new("IMPORT", Duration::from_secs(60));

/// The most of each output stream that is kept; the rest is read and dropped, so that the
/// program never blocks on a full pipe.
const OUTPUT_LIMIT: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("cannot run {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not answer within {} s", after.as_secs_f32())]
    TimedOut { program: String, after: Duration },
    #[error("lost the output of {program}: {source}")]
    Output {
        program: String,
        source: std::io::Error,
    },
}

impl RunError {
    pub(crate) fn timed_out(&self) -> bool {
        matches!(self, RunError::TimedOut { .. })
    }
}

/// The process groups running now, killed if envmod is interrupted.
static RUNNING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<Pid>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called when envmod is interrupted: the programs it started must not outlive it (pip,
/// say, writing into a staging directory that is being removed).
pub(crate) fn kill_all() {
    for pgid in running().iter() {
        kill_group(*pgid);
    }
}

/// `PATH` without its relative and empty entries.
pub(crate) fn absolute_path_entries(path: &OsStr) -> OsString {
    let kept: Vec<PathBuf> = std::env::split_paths(path)
        .filter(|p| p.is_absolute())
        .collect();
    std::env::join_paths(kept).unwrap_or_default()
}

/// The program called `name` on the absolute entries of `path_var`.
pub(crate) fn find_program(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    let path = absolute_path_entries(OsStr::new(path_var?));
    which::which_in(name, Some(path), "/").ok()
}

/// Run `cmd` to its end, or for at most `timeout`, and collect what it printed. Its stdin is
/// empty; its stdout and stderr are captured (whatever the caller set). `cmd` is used up:
/// what is left in it is a bare command of the same program.
///
/// The callers are synchronous code; inside envmod's runtime this blocks the worker it
/// runs on (as `block_in_place`), elsewhere it runs on a runtime of its own.
pub(crate) fn output(cmd: &mut Command, timeout: Timeout) -> Result<Output, RunError> {
    let (cmd, program) = prepare(cmd);
    block_on(Handle::try_current().ok(), run(cmd, program, timeout.get()))
}

/// [`output`] as a method, for a `Command` built in one chain.
pub(crate) trait OutputWithin {
    fn output_within(&mut self, timeout: Timeout) -> Result<Output, RunError>;
}

impl OutputWithin for Command {
    fn output_within(&mut self, timeout: Timeout) -> Result<Output, RunError> {
        output(self, timeout)
    }
}

/// A program started now and waited for later: the caller does other work meanwhile.
pub(crate) struct Started(std::thread::JoinHandle<Result<Output, RunError>>);

/// Start `cmd` (as [`output`] runs it) on a thread of its own.
pub(crate) fn start(mut cmd: Command, timeout: Timeout) -> Started {
    let (cmd, program) = prepare(&mut cmd);
    let handle = Handle::try_current().ok();
    let limit = timeout.get();
    Started(std::thread::spawn(move || {
        block_on(handle, run(cmd, program, limit))
    }))
}

impl Started {
    pub(crate) fn wait(self) -> Result<Output, RunError> {
        self.0.join().unwrap_or_else(|_| {
            Err(RunError::Output {
                program: "a program".into(),
                source: std::io::Error::other("the thread that ran it panicked"),
            })
        })
    }
}

/// The tokio command for `cmd`, with the PATH, the pipes and the process group every
/// program gets, and the name errors give it.
fn prepare(cmd: &mut Command) -> (tokio::process::Command, String) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let explicit_path = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| v.map(OsStr::to_os_string));
    // The child's PATH: the one given to it, or this process's, which it would inherit.
    if let Some(path) = match explicit_path {
        Some(set) => set,
        None => std::env::var_os("PATH"),
    } {
        cmd.env("PATH", absolute_path_entries(&path));
    }
    let bare = Command::new(cmd.get_program());
    let mut cmd = tokio::process::Command::from(std::mem::replace(cmd, bare));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    (cmd, program)
}

/// Run `fut` to its end from synchronous code: on the multi-threaded runtime `handle`, if
/// there is one, else on a runtime made for it (a current-thread runtime cannot be blocked
/// on from inside itself, so that case gets a thread too).
fn block_on<T: Send>(handle: Option<Handle>, fut: impl Future<Output = T> + Send) -> T {
    match handle {
        Some(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        Some(_) => std::thread::scope(|s| {
            s.spawn(|| own_runtime().block_on(fut))
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        }),
        None => own_runtime().block_on(fut),
    }
}

fn own_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime needs only an epoll descriptor")
}

/// Run the prepared `cmd`: its output is read while it runs, its group is killed when the
/// leader exits (what it left there holds the pipes) or when `limit` is up, and the leader
/// is reaped last, so that until then its group id cannot be reused and killing the group
/// can only hit what the program left.
async fn run(
    mut cmd: tokio::process::Command,
    program: String,
    limit: Duration,
) -> Result<Output, RunError> {
    // Before the spawn, so that the leader's exit cannot come before the watch on it.
    let mut sigchld = signal(SignalKind::child()).ok();
    let (mut child, pgid) = {
        // Registered under the lock, so an interrupt cannot fall between the spawn and the
        // registration.
        let mut list = running();
        let child = cmd.spawn().map_err(|source| RunError::Start {
            program: program.clone(),
            source,
        })?;
        // A child not yet waited for always has its pid; without one there is no group
        // to kill (and group 0 would be envmod's own).
        let Some(pid) = child.id() else {
            return Err(RunError::Start {
                program,
                source: std::io::Error::other("it started without a process id"),
            });
        };
        let pgid = Pid::from_raw(pid as i32);
        list.push(pgid);
        (child, pgid)
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let lost = |source| RunError::Output {
        program: program.clone(),
        source,
    };
    let work = async {
        let leader = async {
            exited(pgid, &mut sigchld).await;
            kill_group(pgid);
            Ok::<(), std::io::Error>(())
        };
        let (out, err, ()) = tokio::try_join!(drain(stdout), drain(stderr), leader)?;
        Ok((out, err))
    };
    let result = match tokio::time::timeout(limit, work).await {
        Ok(read) => read.map_err(lost),
        Err(_) => Err(RunError::TimedOut {
            program: program.clone(),
            after: limit,
        }),
    };
    if result.is_err() {
        kill_group(pgid);
    }
    exited(pgid, &mut sigchld).await;
    // Under the lock: once reaped, the group id can be reused, and an interrupt must not
    // kill whatever has it next.
    let status = {
        let mut list = running();
        let status = child.try_wait();
        list.retain(|p| *p != pgid);
        status
    };
    let (stdout, stderr) = result?;
    let status = status
        .and_then(|s| s.ok_or_else(|| std::io::Error::other("it had not exited")))
        .map_err(lost)?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Wait until the leader `pid` has exited, without reaping it. SIGCHLD says when to look;
/// a look every 50 ms covers a signal that went to another waiter.
async fn exited(pid: Pid, sigchld: &mut Option<tokio::signal::unix::Signal>) {
    while !has_exited(pid) {
        match sigchld {
            Some(s) => {
                let _ = tokio::time::timeout(Duration::from_millis(50), s.recv()).await;
            }
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Whether the leader has exited, without reaping it: until it is reaped its pid, and so
/// its group id, cannot be reused.
fn has_exited(pid: Pid) -> bool {
    match waitid(
        Id::Pid(pid),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
    ) {
        Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => false,
        // Exited, or no longer a child of ours to wait for.
        Ok(_) | Err(_) => true,
    }
}

fn kill_group(pgid: Pid) {
    // ESRCH: the group is already empty.
    let _ = killpg(pgid, Signal::SIGKILL);
}

/// Read one output pipe to its end, keeping at most [`OUTPUT_LIMIT`] bytes; the rest is read
/// and dropped, so that the program never blocks on a full pipe.
async fn drain(pipe: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let Some(mut pipe) = pipe else {
        return Ok(buf);
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{path::Path, time::Instant};

    use super::*;

    const SHORT: Timeout = Timeout::new("RUN_TEST_UNUSED", Duration::from_millis(1500));

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn collects_both_streams_and_the_status() {
        let out = output(&mut sh("echo out; echo err >&2; exit 3"), SHORT).unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_child_left_holding_the_output_is_killed_with_its_group() {
        let started = Instant::now();
        let out = output(&mut sh("sleep 60 & echo done"), SHORT).unwrap();
        assert_eq!(out.stdout, b"done\n");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_program_that_hangs_is_killed_at_the_timeout() {
        let started = Instant::now();
        let err = output(&mut sh("sleep 60; echo never"), SHORT).unwrap_err();
        assert!(err.timed_out(), "{err}");
        assert!(
            err.to_string().contains("did not answer within 1.5 s"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_program_that_hangs_while_writing_is_killed_and_named() {
        let started = Instant::now();
        let err = output(&mut sh("while :; do echo more; done"), SHORT).unwrap_err();
        assert!(err.timed_out(), "{err}");
        assert_eq!(err.to_string(), "/bin/sh did not answer within 1.5 s");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn runs_from_either_runtime_and_from_none() {
        let run = || output(&mut sh("echo $$"), SHORT).unwrap().status.success();
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        assert!(multi.block_on(async { tokio::spawn(async move { run() }).await.unwrap() }));
        assert!(multi.block_on(async { run() }));
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert!(single.block_on(async { run() }));
        let probe = multi.block_on(async { start(sh("echo started"), SHORT) });
        assert_eq!(probe.wait().unwrap().stdout, b"started\n");
        assert!(run());
    }

    /// Every program envmod runs goes through [`output`] or [`start`]: a `Command` run any
    /// other way has no time limit.
    #[test]
    fn no_program_is_run_another_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension() != Some(OsStr::new("rs")) || path.ends_with("site/run.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
                for (n, line) in code.lines().enumerate() {
                    if [".output()", ".status()", ".spawn()", "tokio::process"]
                        .iter()
                        .any(|call| line.contains(call))
                    {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "run these with site::run::output (or start), which has a time limit:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn large_output_does_not_block_the_program() {
        let out = output(&mut sh("head -c 3000000 /dev/zero"), SHORT).unwrap();
        assert_eq!(out.stdout.len(), 3_000_000);
    }

    #[test]
    fn relative_path_entries_are_dropped() {
        let kept = absolute_path_entries(OsStr::new("bin::/usr/bin:./x:/bin:"));
        assert_eq!(kept, OsStr::new("/usr/bin:/bin"));
        let out = output(
            sh("printf %s \"$PATH\"").env("PATH", "rel:/usr/bin::/bin"),
            SHORT,
        )
        .unwrap();
        assert_eq!(out.stdout, b"/usr/bin:/bin");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("planted"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("planted"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let rel = format!("{}:.", dir.path().display());
        assert_eq!(
            find_program("planted", Some(&rel)),
            Some(dir.path().join("planted"))
        );
        assert_eq!(find_program("sh", Some("planted-dir:.")), None);
    }
}
