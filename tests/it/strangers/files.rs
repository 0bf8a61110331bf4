//! Files a stranger wrote, and files a group member can put in an environment, that envmod
//! reads, fetches or unpacks: a pip RECORD that lies about a file, a lock whose wheel is an
//! endless download or whose package is a FIFO, a bundle whose members carry modes that lock
//! their owner out, and a channel directory with links and FIFOs in it. Each must end in
//! bounded time and memory with a one-line error that names the file, and leave nothing.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::common::{self, MODULE_PYTHON, TestEnv, channel, ok, stderr};

fn site_packages(prefix: &Path) -> PathBuf {
    prefix.join("lib/python3.11/site-packages")
}

/// The refusal of `out`: a failure with a one-line error and a hint.
#[track_caller]
fn refused(out: &Output) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "envmod accepted it:\n{err}\n{}",
        common::stdout(out)
    );
    assert_ne!(out.status.code(), Some(101), "envmod panicked:\n{err}");
    let error_lines = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(error_lines, 1, "{err}");
    assert!(err.contains("hint:"), "no hint: {err}");
    err
}

/// Nothing of `name` exists: no environment, no staging or unpacked bundle beside it, no
/// modulefile.
#[track_caller]
fn nothing_made(t: &TestEnv, name: &str) {
    assert!(!t.envs_dir().join(name).exists(), "{name} was created");
    let left: Vec<String> = std::fs::read_dir(t.envs_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".envmod-lock"))
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left beside the environments: {left:?}");
    assert!(
        !t.module_root().join(name).exists(),
        "a modulefile for {name}"
    );
}

/// The most memory `pid` has used so far, in MiB.
fn peak_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Run `cmd` to the end, or kill it once it has run for `limit` and fail the test, saying
/// how long it ran and how much memory it took (`what` says what it was doing).
#[track_caller]
fn within(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("envmod starts");
    let mut peak = 0;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        peak = peak.max(peak_mib(child.id()));
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {} s (at least {peak} MiB of memory); killed\nstderr:\n{}",
                limit.as_secs(),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------- pip RECORD (bundle)

/// An environment `name` with `shared_tool` 1.0 pip-installed by name from a directory that
/// is then removed, so a bundle must rebuild its wheel from the installed files.
fn env_with_rebuilt_wheel(t: &TestEnv, name: &str) -> PathBuf {
    let links = t.path().join(format!("links-{name}"));
    std::fs::create_dir_all(&links).unwrap();
    common::build_wheel(&links, "shared_tool", "1.0");
    ok(&t.run(&[
        "create",
        "--site-python",
        MODULE_PYTHON,
        "-n",
        name,
        "alpha",
    ]));
    let prefix = t.envs_dir().join(name);
    ok(&Command::new(prefix.join("bin/python"))
        .args(["-m", "pip", "install", "--no-input", "--no-index"])
        .arg("--find-links")
        .arg(&links)
        .arg("shared_tool")
        .output()
        .unwrap());
    std::fs::remove_dir_all(&links).unwrap();
    prefix
}

fn export_bundle(t: &TestEnv, name: &str, out: &Path) -> Command {
    let mut cmd = t.envmod();
    cmd.args(["export", "-n", name, "--format", "bundle", "-o"])
        .arg(out);
    cmd
}

/// The RECORD line of a file of `bytes`, as pip writes it.
fn record_line(path: &str, bytes: &[u8]) -> String {
    let script = "import base64,hashlib,sys; d=sys.stdin.buffer.read(); print(base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode())";
    let mut child = Command::new(MODULE_PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let digest = ok(&child.wait_with_output().unwrap());
    format!("{path},sha256={},{}\n", digest.trim(), bytes.len())
}

#[test]
fn a_record_that_lies_about_a_file_is_refused_at_once_naming_the_file() {
    let t = TestEnv::with_channel();
    let prefix = env_with_rebuilt_wheel(&t, "w");
    let site = site_packages(&prefix);
    let record = site.join("shared_tool-1.0.dist-info/RECORD");
    let original = std::fs::read_to_string(&record).unwrap();
    let bundle = t.path().join("w.tar");

    // A 3 GiB sparse file that RECORD says holds five bytes.
    let huge = site.join("shared_tool/data.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    std::fs::write(
        &record,
        format!(
            "{original}{}",
            record_line("shared_tool/data.bin", b"small")
        ),
    )
    .unwrap();
    let out = within(
        export_bundle(&t, "w", &bundle),
        Duration::from_secs(30),
        "export of a RECORD listing a 3 GiB file",
    );
    let err = refused(&out);
    assert!(err.contains("shared_tool/data.bin"), "{err}");
    assert!(err.contains("RECORD"), "{err}");
    assert!(!bundle.exists(), "a bundle was written");

    // The same size as RECORD says, other bytes.
    std::fs::remove_file(&huge).unwrap();
    std::fs::write(&record, &original).unwrap();
    let module = site.join("shared_tool/__init__.py");
    let mut bytes = std::fs::read(&module).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&module, &bytes).unwrap();
    let err = refused(&t.run(&[
        "export",
        "-n",
        "w",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    assert!(err.contains("shared_tool/__init__.py"), "{err}");
    assert!(err.contains("sha256"), "{err}");
    assert!(!bundle.exists(), "a bundle was written");
    bytes[0] ^= 0x20;
    std::fs::write(&module, &bytes).unwrap();

    // A link out of the environment, where RECORD lists a file, is never followed, even
    // when what it points to has the recorded bytes.
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("__init__.py"), &bytes).unwrap();
    std::fs::remove_file(&module).unwrap();
    std::os::unix::fs::symlink(outside.join("__init__.py"), &module).unwrap();
    let err = refused(&t.run(&[
        "export",
        "-n",
        "w",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    assert!(err.contains("shared_tool/__init__.py"), "{err}");
    assert!(err.contains("link"), "{err}");
    std::fs::remove_file(&module).unwrap();
    std::fs::rename(site.join("shared_tool"), t.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&outside, site.join("shared_tool")).unwrap();
    let err = refused(&t.run(&[
        "export",
        "-n",
        "w",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    assert!(err.contains("link"), "{err}");
    assert!(!bundle.exists(), "a bundle was written");

    // Put back as pip installed it, the environment bundles and installs again.
    std::fs::remove_file(site.join("shared_tool")).unwrap();
    std::fs::rename(t.path().join("moved"), site.join("shared_tool")).unwrap();
    std::fs::write(&module, &bytes).unwrap();
    ok(&t.run(&[
        "export",
        "-n",
        "w",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    ok(&t.run(&[
        "create",
        "--site-python",
        MODULE_PYTHON,
        "--offline",
        "-n",
        "w2",
        "-f",
        bundle.to_str().unwrap(),
    ]));
    let again =
        std::fs::read(site_packages(&t.envs_dir().join("w2")).join("shared_tool/__init__.py"))
            .unwrap();
    assert_eq!(again, bytes);
}

// ------------------------------------------------------------- downloads without end

/// A local HTTP server this test starts, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// `mode`: `endless` streams zeros for ever, `trickle` sends a byte every 200 ms,
    /// `huge` announces a 64 GiB body and streams zeros.
    fn start(mode: &str) -> Self {
        let script = r#"
import http.server, socketserver, sys, time
mode = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "huge":
            self.send_header("Content-Length", str(64 << 30))
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            while True:
                if mode == "trickle":
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.2)
                else:
                    self.wfile.write(chunk)
        except Exception:
            pass
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingTCPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, mode])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (apt-get install python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the test server did not start: {line:?}"));
        Self { child, port }
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lock with one pip entry, `location`, for `foo` 1.0 (no conda packages).
fn pip_lock(chan: &Path, location: &str) -> String {
    format!(
        "version: 7\nplatforms:\n- name: linux-64\nenvironments:\n  default:\n    channels:\n    - url: {url}\n    packages:\n      linux-64:\n      - pypi: {location}\npackages:\n- pypi: {location}\n  name: foo\n  version: '1.0'\n  sha256: {sha}\n",
        url = channel::channel_url(chan),
        sha = "0".repeat(64),
    )
}

#[test]
fn a_locked_wheel_that_never_ends_is_refused_by_size_or_time_naming_its_url() {
    let t = TestEnv::with_channel();
    let chan = t.path().join("channel");
    let wheel = "foo-1.0-py3-none-any.whl";
    // (server, the test's limit on size and time, what the error says)
    let cases = [
        (
            "endless",
            &[("ENVMOD_TEST_WHEEL_BYTES", "16777216")][..],
            "larger than",
        ),
        ("huge", &[][..], "larger than"),
        (
            "trickle",
            &[("ENVMOD_TEST_WHEEL_DOWNLOAD_MS", "3000")][..],
            "seconds",
        ),
    ];
    for (i, (mode, limits, want)) in cases.into_iter().enumerate() {
        let server = Server::start(mode);
        let url = server.url(wheel);
        let path = t.path().join(format!("{mode}.lock"));
        std::fs::write(&path, pip_lock(&chan, &url)).unwrap();
        let name = format!("d{i}");
        let mut cmd = t.envmod();
        cmd.args(["create", "--site-python", MODULE_PYTHON, "-n", &name, "-f"])
            .arg(&path)
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .envs(limits.iter().copied());
        let out = within(cmd, Duration::from_secs(30), &format!("{mode} download"));
        let err = refused(&out);
        assert!(err.contains(&url), "{mode}: the URL is not named: {err}");
        assert!(err.contains(want), "{mode}: {err}");
        assert!(
            err.contains(&format!("{}, line ", path.display())),
            "{mode}: {err}"
        );
        nothing_made(&t, &name);
    }
}

// --------------------------------------------------------------- FIFOs in a lock

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn a_lock_whose_package_or_wheel_is_a_fifo_is_refused_before_anything_is_fetched() {
    let t = TestEnv::with_channel();
    ok(&t.run(&[
        "create",
        "--site-python",
        MODULE_PYTHON,
        "-n",
        "src",
        "alpha",
    ]));
    let exported = t.path().join("src.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "lock",
        "-o",
        exported.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&exported).unwrap();
    let archive = t
        .path()
        .join("channel/noarch/alpha-2.0-pyhd8ed1ab_0.conda")
        .display()
        .to_string();
    assert!(text.contains(&archive), "{text}");
    // The package is not in the cache, so it would be read from where the lock says.
    std::fs::remove_dir_all(t.home.join(".cache")).unwrap();

    let evil = t.path().join("evilchan/noarch");
    std::fs::create_dir_all(&evil).unwrap();
    let fifo = evil.join("alpha-2.0-pyhd8ed1ab_0.conda");
    mkfifo(&fifo);
    let linked = t.path().join("evilchan/linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&fifo, linked.join("alpha-2.0-pyhd8ed1ab_0.conda")).unwrap();
    let dir = t.path().join("evilchan/dir/alpha-2.0-pyhd8ed1ab_0.conda");
    std::fs::create_dir_all(&dir).unwrap();
    let conda_cases = [
        fifo.display().to_string(),
        url::Url::from_file_path(&fifo).unwrap().to_string(),
        linked
            .join("alpha-2.0-pyhd8ed1ab_0.conda")
            .display()
            .to_string(),
        dir.display().to_string(),
    ];
    for (i, location) in conda_cases.iter().enumerate() {
        let edited = text.replace(&archive, location);
        let path = t.path().join(format!("fifo{i}.lock"));
        std::fs::write(&path, &edited).unwrap();
        let name = format!("f{i}");
        let mut cmd = t.envmod();
        cmd.args(["create", "--site-python", MODULE_PYTHON, "-n", &name, "-f"])
            .arg(&path);
        let out = within(
            cmd,
            Duration::from_secs(30),
            &format!("create -f with {location}"),
        );
        let err = refused(&out);
        let line = edited
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(location.as_str()))
            .map(|(i, _)| i + 1)
            .last()
            .unwrap();
        assert!(
            err.contains(&format!("{}, line {line}", path.display())),
            "{location}: the line is not named: {err}"
        );
        assert!(err.contains("not a regular file"), "{location}: {err}");
        nothing_made(&t, &name);
    }

    // A pip wheel at a FIFO beside a real package: refused before the package is fetched.
    let wheel_fifo = evil.join("foo-1.0-py3-none-any.whl");
    mkfifo(&wheel_fifo);
    let wheel_at = wheel_fifo.display().to_string();
    let conda_line = format!("      - conda: {archive}\n");
    assert!(text.contains(&conda_line), "{text}");
    let pip_text = format!(
        "{}- pypi: {wheel_at}\n  name: foo\n  version: '1.0'\n  sha256: {}\n",
        text.replace(
            &conda_line,
            &format!("{conda_line}      - pypi: {wheel_at}\n")
        ),
        "0".repeat(64)
    );
    let path = t.path().join("pipfifo.lock");
    std::fs::write(&path, &pip_text).unwrap();
    let mut cmd = t.envmod();
    cmd.args(["create", "--site-python", MODULE_PYTHON, "-n", "pf", "-f"])
        .arg(&path);
    let out = within(cmd, Duration::from_secs(30), "create -f with a FIFO wheel");
    let err = refused(&out);
    assert!(err.contains("not a regular file"), "{err}");
    let line = pip_text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(&wheel_at))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap();
    assert!(
        err.contains(&format!("{}, line {line}", path.display())),
        "{err}"
    );
    let fetched: Vec<String> = std::fs::read_dir(t.home.join(".cache/rattler/cache/pkgs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("alpha"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        fetched.is_empty(),
        "fetched before the lock was checked: {fetched:?}"
    );
    nothing_made(&t, "pf");
}

// ------------------------------------------------------------ bundle member modes

/// A copy of `bundle` at `out` whose directories come first with mode 0000, and whose
/// files have mode 0000 or 04777: modes no unpacked bundle should keep.
fn with_hostile_modes(bundle: &Path, out: &Path) {
    let script = r#"
import io, sys, tarfile
src, dst = sys.argv[1:3]
with tarfile.open(src) as tin:
    members = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in tin.getmembers()]
dirs = set()
for m, _ in members:
    parts = m.name.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        dirs.add("/".join(parts[:i]))
with tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as tout:
    for d in sorted(dirs):
        info = tarfile.TarInfo(d)
        info.type = tarfile.DIRTYPE
        info.mode = 0
        tout.addfile(info)
    for i, (m, data) in enumerate(members):
        m.mode = 0 if i % 2 else 0o4777
        tout.addfile(m, io.BytesIO(data))
"#;
    ok(&Command::new(MODULE_PYTHON)
        .args(["-c", script])
        .arg(bundle)
        .arg(out)
        .output()
        .unwrap());
}

/// The `.envmod-bundle-*` directories in `dir`.
fn unpacked_bundles(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".envmod-bundle-")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_bundle_is_unpacked_with_modes_envmod_chooses_and_leftovers_can_be_removed() {
    let user = "envmod-instructor";
    let t = TestEnv::owned_by(user);
    let chan = channel::standard_channel(&t.path().join("channel"));
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    let run = |args: &[&str]| t.envmod_as(user, args);
    let mut create = vec![
        "create",
        "--site-python",
        MODULE_PYTHON,
        "-n",
        "src",
        "alpha",
        "gamma",
    ];
    ok(&run(&create));
    let bundle = t.path().join("src.tar");
    ok(&run(&[
        "export",
        "-n",
        "src",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let hostile = t.path().join("hostile.tar");
    with_hostile_modes(&bundle, &hostile);
    common::run_ok("chown", &[Path::new(&format!("{user}:")), &hostile]);

    create = vec![
        "create",
        "--site-python",
        MODULE_PYTHON,
        "-n",
        "copy",
        "-f",
        hostile.to_str().unwrap(),
    ];
    let out = run(&create);
    assert!(
        out.status.success(),
        "a bundle with odd member modes was refused:\n{}\nleft: {:?}",
        stderr(&out),
        unpacked_bundles(&t.envs_dir())
    );
    assert!(unpacked_bundles(&t.envs_dir()).is_empty());
    let prefix = t.envs_dir().join("copy");
    let init = site_packages(&prefix).join("alpha/__init__.py");
    let mode = init.metadata().unwrap().permissions().mode();
    assert_eq!(
        mode & 0o7000,
        0,
        "a set-id bit came from the bundle: {mode:o}"
    );
    assert_eq!(mode & 0o400, 0o400, "{mode:o}");

    // What a killed unpack leaves can be removed with doctor's own words.
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "env", "-i"]);
    for (k, v) in t.vars() {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(["PATH=/usr/bin:/bin", "ENVMOD_TEST_KILL_AT=bundle:unpacking"])
        .arg(t.path().join("bin/envmod"))
        .args([
            "create",
            "--site-python",
            MODULE_PYTHON,
            "-n",
            "killed",
            "-f",
        ])
        .arg(&hostile)
        .current_dir(t.path());
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let left = unpacked_bundles(&t.envs_dir());
    assert_eq!(left.len(), 1, "{left:?}");
    // And so can one that an older envmod left with a member's mode 0000.
    let old = t.envs_dir().join(".envmod-bundle-old123");
    ok(&common::bash_as(
        Some(user),
        &format!(
            "mkdir -p {0}/pkgs/noarch && echo x > {0}/pkgs/noarch/a && chmod 0 {0}/pkgs/noarch {0}/pkgs",
            common::sh(&old.display().to_string())
        ),
        &t.vars(),
        t.path(),
    ));
    let report = common::stdout(&run(&["doctor"]));
    for dir in [&left[0], &old] {
        let shown = dir.display().to_string();
        let fix = report
            .lines()
            .filter(|l| l.contains(&shown))
            .find_map(|l| {
                l.split_once("; fix: ")
                    .map(|(_, fix)| fix.trim().to_string())
            })
            .unwrap_or_else(|| panic!("doctor names no fix for {shown}:\n{report}"));
        let out = common::bash_as(Some(user), &fix, &t.vars(), t.path());
        assert!(
            out.status.success() && !dir.exists(),
            "doctor's fix `{fix}` did not remove {shown}: {}",
            stderr(&out)
        );
    }
}

// ------------------------------------------------------------------------- index

#[test]
fn index_refuses_a_linked_subdir_and_names_what_it_cannot_read() {
    let t = TestEnv::new();
    let chan = t.path().join("chan");
    channel::write_channel(
        &chan,
        &[
            channel::noarch_python("alpha", "1.0", &[]),
            channel::noarch_python("gamma", "1.0", &[]),
            channel::linux64("libbar", "1.0", "h0_0", &[]),
        ],
    );
    for sub in ["noarch", "linux-64"] {
        let _ = std::fs::remove_file(chan.join(sub).join("repodata.json"));
    }
    // linux-64 lives elsewhere, linked into the channel.
    let real = t.path().join("real-linux-64");
    std::fs::rename(chan.join("linux-64"), &real).unwrap();
    std::os::unix::fs::symlink(&real, chan.join("linux-64")).unwrap();
    let out = t.run(&["index", chan.to_str().unwrap()]);
    let err = refused(&out);
    assert!(
        err.contains(&chan.join("linux-64").display().to_string()),
        "{err}"
    );
    assert!(err.contains("symbolic link"), "{err}");

    // Back as a directory; noarch holds a FIFO, a dangling link and a directory named as
    // packages, and a link to a package kept elsewhere.
    std::fs::remove_file(chan.join("linux-64")).unwrap();
    std::fs::rename(&real, chan.join("linux-64")).unwrap();
    let noarch = chan.join("noarch");
    mkfifo(&noarch.join("zfifo-1.0-0.conda"));
    std::os::unix::fs::symlink("/nonexistent/x.conda", noarch.join("zdangling-1.0-0.conda"))
        .unwrap();
    std::fs::create_dir(noarch.join("zdir-1.0-0.tar.bz2")).unwrap();
    let kept = t.path().join("kept");
    std::fs::create_dir_all(&kept).unwrap();
    let gamma = "gamma-1.0-pyhd8ed1ab_0.conda";
    std::fs::rename(noarch.join(gamma), kept.join(gamma)).unwrap();
    std::os::unix::fs::symlink(kept.join(gamma), noarch.join(gamma)).unwrap();

    let mut cmd = t.envmod();
    cmd.args(["index", chan.to_str().unwrap()]);
    let out = within(
        cmd,
        Duration::from_secs(30),
        "index of a channel with a FIFO",
    );
    let err = refused(&out);
    for (name, kind) in [
        ("zfifo-1.0-0.conda", "FIFO"),
        ("zdangling-1.0-0.conda", "does not exist"),
        ("zdir-1.0-0.tar.bz2", "directory"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} is not named: {err}"));
        assert!(line.contains(kind), "{name}: {line}");
    }
    let repodata = std::fs::read_to_string(noarch.join("repodata.json")).unwrap();
    assert!(repodata.contains("alpha-1.0"), "{repodata}");
    assert!(
        repodata.contains(gamma),
        "a linked package was left out: {repodata}"
    );
    assert!(!repodata.contains("zfifo"), "{repodata}");
    let linux = std::fs::read_to_string(chan.join("linux-64/repodata.json")).unwrap();
    assert!(linux.contains("libbar-1.0"), "{linux}");

    // Links to directories elsewhere in the channel are no packages, and no reason to stop.
    std::fs::remove_file(noarch.join("zfifo-1.0-0.conda")).unwrap();
    std::fs::remove_file(noarch.join("zdangling-1.0-0.conda")).unwrap();
    std::fs::remove_dir(noarch.join("zdir-1.0-0.tar.bz2")).unwrap();
    std::os::unix::fs::symlink(&kept, chan.join("docs")).unwrap();
    std::os::unix::fs::symlink(&kept, noarch.join("more")).unwrap();
    std::fs::remove_file(noarch.join("repodata.json")).unwrap();
    ok(&t.run(&["index", chan.to_str().unwrap()]));
    let repodata = std::fs::read_to_string(noarch.join("repodata.json")).unwrap();
    assert!(
        repodata.contains("alpha-1.0") && repodata.contains(gamma),
        "{repodata}"
    );
}
