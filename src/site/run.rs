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
    io::Read,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    path::PathBuf,
    process::{Command, ExitStatus, Output, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
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
static RUNNING: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<libc::pid_t>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called when envmod is interrupted: the programs it started must not outlive it (pip,
/// say, writing into a staging directory that is being removed).
pub(crate) fn kill_all() {
    for pgid in running().iter() {
        // SAFETY: killpg with a group this process created and has not yet reaped.
        unsafe {
            libc::killpg(*pgid, libc::SIGKILL);
        }
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
/// empty; its stdout and stderr are captured (whatever the caller set).
pub(crate) fn output(cmd: &mut Command, timeout: Timeout) -> Result<Output, RunError> {
    let limit = timeout.get();
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
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = {
        // Registered under the lock, so an interrupt cannot fall between the spawn and the
        // registration.
        let mut list = running();
        let child = cmd.spawn().map_err(|source| RunError::Start {
            program: program.clone(),
            source,
        })?;
        list.push(child.id() as libc::pid_t);
        child
    };
    let pgid = child.id() as libc::pid_t;
    let lost = |source| RunError::Output {
        program: program.clone(),
        source,
    };
    let mut streams = [
        Stream::new(child.stdout.take().map(OwnedFd::from)),
        Stream::new(child.stderr.take().map(OwnedFd::from)),
    ];
    let deadline = Instant::now() + limit;
    let mut exited = false;
    let result = loop {
        if !exited && has_exited(pgid) {
            exited = true;
            // What the program left running in its group holds the pipes: it goes too.
            kill_group(pgid);
        }
        let open: Vec<libc::pollfd> = streams
            .iter()
            .filter_map(|s| s.fd())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if exited && open.is_empty() {
            break Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(pgid);
            break Err(RunError::TimedOut {
                program: program.clone(),
                after: limit,
            });
        }
        // The leader's exit is not a poll event: look again at least every 20 ms.
        let wait = (deadline - now).min(Duration::from_millis(20));
        if open.is_empty() {
            std::thread::sleep(wait.min(Duration::from_millis(1)));
            continue;
        }
        let mut fds = open;
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as libc::c_int,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                kill_group(pgid);
                break Err(lost(e));
            }
            continue;
        }
        if n == 0 {
            continue;
        }
        for s in streams.iter_mut() {
            if let Some(fd) = s.fd()
                && fds.iter().any(|p| p.fd == fd && p.revents != 0)
                && let Err(e) = s.read_some()
            {
                kill_group(pgid);
                return finish(child, pgid, Err(lost(e)));
            }
        }
    };
    finish(
        child,
        pgid,
        result.map(|()| {
            let [out, err] = streams;
            (out.buf, err.buf)
        }),
    )
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

/// Reap the leader and forget its group.
fn finish(
    mut child: std::process::Child,
    pgid: libc::pid_t,
    result: Result<(Vec<u8>, Vec<u8>), RunError>,
) -> Result<Output, RunError> {
    // Under the lock: once reaped, the group id can be reused, and an interrupt must not
    // kill whatever has it next.
    let status: std::io::Result<ExitStatus> = {
        let mut list = running();
        let status = child.wait();
        list.retain(|p| *p != pgid);
        status
    };
    let (stdout, stderr) = result?;
    let status = status.map_err(|source| RunError::Output {
        program: format!("process {pgid}"),
        source,
    })?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A program started now and waited for later: the caller does other work meanwhile.
pub(crate) struct Started(std::thread::JoinHandle<Result<Output, RunError>>);

/// Start `cmd` (as [`output`] runs it) on a thread of its own.
pub(crate) fn start(mut cmd: Command, timeout: Timeout) -> Started {
    Started(std::thread::spawn(move || output(&mut cmd, timeout)))
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

/// Whether the leader has exited, without reaping it: until it is reaped its pid, and so
/// its group id, cannot be reused, so killing the group can only hit what it left.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid for waitid to fill in; the pid is our child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc == 0 && info.si_pid() != 0
    }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg with the group of a child not yet reaped (see `has_exited`).
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// One output pipe, read without blocking.
struct Stream {
    pipe: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl Stream {
    fn new(pipe: Option<OwnedFd>) -> Self {
        let pipe = pipe.map(std::fs::File::from);
        if let Some(p) = &pipe {
            // SAFETY: fcntl on a descriptor this process owns.
            unsafe {
                let fd = p.as_raw_fd();
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        Self {
            pipe,
            buf: Vec::new(),
        }
    }

    fn fd(&self) -> Option<libc::c_int> {
        self.pipe.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Read what is there; at the end of the stream, close it.
    fn read_some(&mut self) -> std::io::Result<()> {
        let Some(pipe) = &mut self.pipe else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return Ok(());
                }
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
