//! What envmod reads and runs: only regular files, read within a limit; external programs
//! with a timeout that covers their output, found on absolute PATH entries only; module
//! names that the module system finds on MODULEPATH, never paths; `export -o` onto regular
//! files only; and files that parse in time linear in their size.

use std::{
    os::unix::{fs::FileTypeExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::common::{self, MODULE_PYTHON, Ms, TestEnv, ok, sh, stderr};

/// What a finished run left: its output and how large it grew.
struct Finished {
    out: Output,
    /// Peak resident memory, in KiB.
    max_rss_kib: i64,
    /// CPU time, user and system: what the work cost, however loaded the machine is.
    cpu: Duration,
}

/// Runs argv[2:] as its child, writes that child's peak resident memory (KiB) to argv[1],
/// and ends as the child did.
const MEASURE: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    try:
        # As the command would have started: a path as it is, a name on PATH.
        (os.execv if "/" in sys.argv[2] else os.execvp)(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
"#;

/// Run `cmd` in a process group of its own, for at most `limit`. A run that does not end
/// in time is killed with its whole group and fails the test: a hang is the defect.
fn within(cmd: &mut Command, limit: Duration, what: &str) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let rss_path = dir.path().join("rss");
    // The kernel counts the memory of the process a child was forked from into the child's
    // peak (it is recorded at exec), and this test process holds every test of the suite.
    // So a small Python starts the command and reports the peak of that grandchild alone.
    let mut wrapped = Command::new("/usr/bin/python3");
    wrapped
        .arg("-c")
        .arg(MEASURE)
        .arg(&rss_path)
        .arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    // Reaped by wait4 below, which also reports what the run cost.
    #[allow(clippy::zombie_processes)]
    let child = wrapped
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, with valid pointers to locals.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid {
            break;
        }
        if started.elapsed() > limit {
            // SAFETY: the group of a child this test started.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            panic!(
                "{what}: still running after {limit:?}, killed\n--- stderr\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    // Whatever the run left in its group (a child holding a pipe) goes with it.
    // SAFETY: as above; ESRCH when nothing is left.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    use std::os::unix::process::ExitStatusExt;
    Finished {
        out: Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        },
        max_rss_kib: std::fs::read_to_string(&rss_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(usage.ru_maxrss),
        cpu,
    }
}

#[track_caller]
fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        common::stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert!(
        err.lines().filter(|l| l.starts_with("error:")).count() == 1,
        "one error line expected: {err}"
    );
    err
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "{path:?}");
}

fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

fn write_exe(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const QUICK: Duration = Duration::from_secs(30);

/// Item 6: a FIFO or a device as `-f`, as `--module-map` or as a config file ends envmod
/// at once with a one-line error that names the file; a file beyond the size limit too.
#[test]
fn fifos_devices_and_huge_files_are_refused_as_inputs() {
    let t = TestEnv::with_channel();
    let fifo = t.path().join("env.yml");
    mkfifo(&fifo);
    let fifo_s = fifo.display().to_string();
    for args in [
        vec!["create", "-n", "a", "-f", &fifo_s],
        vec!["create", "-n", "a", "-f", "/dev/zero"],
    ] {
        let mut cmd = t.envmod();
        cmd.args(&args);
        // Reading /dev/zero to the end would take all memory; cap it, so that the run
        // before the fix ends in an allocation failure rather than in the machine's OOM.
        // SAFETY: setrlimit between fork and exec only touches the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 4 << 30,
                    rlim_max: 4 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
        let run = within(&mut cmd, QUICK, &args.join(" "));
        let err = fails(&run.out);
        assert!(
            err.contains("not a regular file") && err.contains(args[4]),
            "{args:?}: {err}"
        );
        assert!(!t.envs_dir().join("a").exists());
    }

    let yml = t.path().join("ok.yml");
    std::fs::write(&yml, "name: a\ndependencies: [alpha]\n").unwrap();
    let map = t.path().join("map.yml");
    mkfifo(&map);
    let run = within(
        t.envmod().args([
            "create",
            "-n",
            "a",
            "-f",
            &yml.display().to_string(),
            "--module-map",
            &map.display().to_string(),
        ]),
        QUICK,
        "--module-map FIFO",
    );
    let err = fails(&run.out);
    assert!(
        err.contains("not a regular file") && err.contains("map.yml"),
        "{err}"
    );

    let user_config = t.home.join(".config/envmod/config.yaml");
    std::fs::create_dir_all(user_config.parent().unwrap()).unwrap();
    mkfifo(&user_config);
    let run = within(t.envmod().args(["list"]), QUICK, "config FIFO");
    let err = fails(&run.out);
    assert!(
        err.contains("not a regular file") && err.contains("config.yaml"),
        "{err}"
    );
    std::fs::remove_file(&user_config).unwrap();

    // 1 GiB of nothing: refused by its size, before a byte is read.
    let huge = t.path().join("huge.yml");
    sparse(&huge, 1 << 30);
    let run = within(
        t.envmod()
            .args(["create", "-n", "a", "-f", &huge.display().to_string()]),
        QUICK,
        "a 1 GiB -f",
    );
    let err = fails(&run.out);
    assert!(
        err.contains("huge.yml") && err.contains("MiB"),
        "the error names the file and the limit: {err}"
    );
    assert!(run.max_rss_kib < 200 * 1024, "{} KiB", run.max_rss_kib);
}

/// Item 6: a FIFO that a group member plants at the modulefile path (envmod reads the head
/// of an existing modulefile to see whether it wrote it), or in place of a manifest, does
/// not hang envmod: the modulefile is not envmod's, the manifest is damaged.
#[test]
fn fifos_planted_at_a_modulefile_or_a_manifest_do_not_hang_envmod() {
    let t = TestEnv::new();
    let dir = t.module_root().join("planted");
    std::fs::create_dir_all(&dir).unwrap();
    mkfifo(&dir.join("py3.11.lua"));
    let run = within(
        t.envmod()
            .args(["create", "-n", "planted", "--module-system", "lmod"]),
        QUICK,
        "create with a FIFO at the modulefile",
    );
    let err = fails(&run.out);
    assert!(err.contains("not written by envmod"), "{err}");
    assert!(!t.envs_dir().join("planted").exists());

    ok(&t.run(&["create", "-q", "-n", "hurt", "--module-system", "lmod"]));
    let manifest = t.envs_dir().join("hurt/.envmod/manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    let run = within(
        t.envmod().args(["list"]),
        QUICK,
        "list with a FIFO manifest",
    );
    let list = ok(&run.out);
    assert!(list.contains("hurt") && list.contains("damaged"), "{list}");
    let run = within(
        t.envmod().args(["export", "-n", "hurt"]),
        QUICK,
        "export with a FIFO manifest",
    );
    let err = fails(&run.out);
    assert!(err.contains("not a regular file"), "{err}");
}

/// Item 6: doctor reads a bounded prefix of the shell start-up files (a 2 GiB ~/.bashrc
/// costs no 2 GB of memory, and its `conda initialize` block is still found), and a FIFO
/// there does not hang it.
#[test]
fn doctor_reads_start_up_files_within_bounds() {
    let t = TestEnv::new();
    let bashrc = t.home.join(".bashrc");
    mkfifo(&bashrc);
    let run = within(
        t.envmod().args(["doctor"]),
        QUICK,
        "doctor with a FIFO .bashrc",
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", stderr(&run.out));
    std::fs::remove_file(&bashrc).unwrap();

    {
        use std::io::Write;
        let mut f = std::fs::File::create(&bashrc).unwrap();
        f.write_all(b"# >>> conda initialize >>>\n# <<< conda initialize <<<\n")
            .unwrap();
        f.set_len(2 << 30).unwrap();
    }
    let run = within(
        t.envmod().args(["doctor", "--json"]),
        QUICK,
        "doctor with a 2 GiB .bashrc",
    );
    let text = common::stdout(&run.out);
    assert!(
        text.contains("\"conda-init\""),
        "{text}{}",
        stderr(&run.out)
    );
    assert!(
        run.max_rss_kib < 300 * 1024,
        "doctor grew to {} MiB reading ~/.bashrc",
        run.max_rss_kib / 1024
    );
}

/// Item 6: a `quota` that leaves a child holding its output, or that hangs, does not hang
/// doctor past its timeout; nor does a site Python that hangs.
#[test]
fn doctor_does_not_hang_on_quota_or_a_site_python() {
    let t = TestEnv::new();
    let bin = t.path().join("bin");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    write_exe(
        &bin.join("quota"),
        "#!/bin/sh\nsleep 600 &\necho 'Disk quotas for user x (uid 1): none'\nexit 0\n",
    );
    let run = within(
        t.envmod().args(["doctor"]).env("PATH", &path),
        QUICK,
        "doctor with a quota that leaves a child",
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", stderr(&run.out));

    write_exe(&bin.join("quota"), "#!/bin/sh\nsleep 600\n");
    let run = within(
        t.envmod()
            .args(["doctor"])
            .env("PATH", &path)
            .env("ENVMOD_TEST_QUOTA_MS", "500"),
        QUICK,
        "doctor with a quota that hangs",
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", stderr(&run.out));
    std::fs::remove_file(bin.join("quota")).unwrap();

    // An environment on a copy of the interpreter, which then hangs.
    let site_python = t.path().join("apps/bin/python3.11");
    std::fs::create_dir_all(site_python.parent().unwrap()).unwrap();
    std::fs::copy(MODULE_PYTHON, &site_python).unwrap();
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "hangs",
        "--site-python",
        &site_python.display().to_string(),
    ]));
    std::fs::remove_file(&site_python).unwrap();
    write_exe(&site_python, "#!/bin/sh\nsleep 600\n");
    let run = within(
        t.envmod()
            .args(["doctor"])
            .env("ENVMOD_TEST_PROBE_TIMEOUT_MS", "500"),
        QUICK,
        "doctor with a site Python that hangs",
    );
    let text = common::stdout(&run.out);
    assert!(
        text.contains("hangs: its site Python") && text.contains("did not answer"),
        "{text}"
    );
}

/// Item 6: a module command that hangs ends with a message, not a hang.
#[test]
fn a_hanging_module_command_times_out() {
    let t = TestEnv::new();
    let cmd = t.path().join("bin/lmod");
    write_exe(&cmd, "#!/bin/sh\nsleep 600\n");
    let yml = t.path().join("env.yml");
    std::fs::write(
        &yml,
        "name: m\ndependencies: []\nenvmod:\n  envmod_version: 0.1.0\n  platform: linux-64\n  python: {mode: site, version: 3.11.2}\n  modules: [gcc/12.2]\n",
    )
    .unwrap();
    let run = within(
        t.envmod()
            .args(["create", "-f", &yml.display().to_string()])
            .env("LMOD_CMD", &cmd)
            .env("ENVMOD_TEST_MODULE_MS", "500"),
        QUICK,
        "create -f with a hanging module command",
    );
    let err = fails(&run.out);
    assert!(err.contains("did not answer"), "{err}");
    assert!(!t.envs_dir().join("m").exists());
}

/// Item 6: programs are looked up on absolute PATH entries only; a relative entry (or an
/// empty one, which means the working directory) is where a stranger's files are.
#[test]
fn programs_are_found_only_on_absolute_path_entries() {
    let t = TestEnv::new();
    let marker = t.path().join("ran");
    let planted = format!(
        "#!/bin/sh\ntouch {}\nexec {MODULE_PYTHON} \"$@\"\n",
        sh(&marker.display().to_string())
    );
    write_exe(&t.path().join("bin/python3"), &planted);
    write_exe(&t.path().join("python3"), &planted);
    write_exe(
        &t.path().join("bin/quota"),
        &format!("#!/bin/sh\ntouch {}\n", sh(&marker.display().to_string())),
    );
    for (name, path) in [("rel", "bin:/usr/bin:/bin"), ("empty", ":/usr/bin:/bin")] {
        ok(&t
            .envmod()
            .args(["create", "-q", "-n", name])
            .env("PATH", path)
            .output()
            .unwrap());
        let run = within(
            t.envmod().args(["doctor"]).env("PATH", path),
            QUICK,
            "doctor",
        );
        assert!(run.out.status.code().is_some());
        assert!(
            !marker.exists(),
            "PATH {path:?}: a program in the working directory ran"
        );
    }
}

/// Item 7: `export -o` writes regular files only. As root, a device node (one made here and
/// /dev/full itself), a FIFO, a socket and a symlink are refused and left as they were; a
/// replaced file keeps its mode.
#[test]
fn export_writes_only_regular_files() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs as root, as the defect did"
    );
    let t = TestEnv::new();
    ok(&t.run(&["create", "-q", "-n", "x"]));
    let dev = t.path().join("full");
    let st = Command::new("mknod")
        .args([dev.as_os_str(), "c".as_ref(), "1".as_ref(), "7".as_ref()])
        .status()
        .unwrap();
    assert!(st.success());
    let fifo = t.path().join("fifo");
    mkfifo(&fifo);
    let sock = t.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let target = t.path().join("precious");
    std::fs::write(&target, "precious\n").unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let kind = |p: &Path| {
        let ft = p.symlink_metadata().unwrap().file_type();
        (
            ft.is_char_device(),
            ft.is_fifo(),
            ft.is_socket(),
            ft.is_symlink(),
        )
    };
    let dev_full = PathBuf::from("/dev/full");
    for (path, format) in [
        (&dev, "yml"),
        (&dev, "lock"),
        (&fifo, "yml"),
        (&sock, "yml"),
        (&link, "yml"),
        (&dev_full, "yml"),
    ] {
        let before = kind(path);
        let run = within(
            t.envmod().args([
                "export",
                "-n",
                "x",
                "--format",
                format,
                "-o",
                &path.display().to_string(),
            ]),
            QUICK,
            "export -o",
        );
        let err = fails(&run.out);
        assert!(
            err.contains("not a regular file") || err.contains("symbolic link"),
            "{path:?}: {err}"
        );
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_eq!(kind(path), before, "{path:?} was replaced");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");

    let private = t.path().join("env.yml");
    std::fs::write(&private, "old\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&t.run(&["export", "-n", "x", "-o", &private.display().to_string()]));
    let meta = private.metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert!(
        std::fs::read_to_string(&private)
            .unwrap()
            .contains("envmod")
    );
}

fn section(modules: &[&str]) -> String {
    let list: Vec<String> = modules.iter().map(|m| format!("    - {m}\n")).collect();
    format!(
        "name: m\ndependencies: []\nenvmod:\n  envmod_version: 0.1.0\n  platform: linux-64\n  python:\n    mode: site\n    version: 3.11.2\n  modules:\n{}",
        list.concat()
    )
}

/// Item 4: a module in a file's `envmod:` section, or a `module_map` value, that is a path
/// (absolute, with `.` or `..` or empty components) is refused on both module systems,
/// naming the file's line or the map key; nothing is created.
#[test]
fn module_paths_from_files_and_maps_are_refused_on_both_systems() {
    let t = TestEnv::new();
    let real = t.site_modules.join("gcc/12.2").display().to_string();
    let yml = t.path().join("env.yml");
    let map = t.path().join("map.yml");
    for ms in Ms::BOTH {
        for bad in [
            real.as_str(),
            "../site-modules/gcc/12.2",
            "gcc/../gcc/12.2",
            "gcc/./12.2",
            "gcc//12.2",
            "gcc/12.2/",
        ] {
            std::fs::write(&yml, section(&["openmpi/4.1", bad])).unwrap();
            let out = t.module_shell(
                ms,
                &format!(
                    "module load python/3.11\nenvmod create -f {}",
                    sh(&yml.display().to_string())
                ),
            );
            let err = fails(&out);
            assert!(
                err.contains("env.yml, line 11") && err.contains(bad),
                "{ms:?} {bad}: {err}"
            );
            assert!(!t.envs_dir().join("m").exists(), "{ms:?} {bad}: created");
        }
        std::fs::write(&yml, section(&["gcc/12.2"])).unwrap();
        std::fs::write(&map, format!("gcc/12.2: {}\n", sh(&real))).unwrap();
        let out = t.module_shell(
            ms,
            &format!(
                "module load python/3.11\nenvmod create -f {} --module-map {}",
                sh(&yml.display().to_string()),
                sh(&map.display().to_string())
            ),
        );
        let err = fails(&out);
        assert!(
            err.contains("gcc/12.2") && err.contains(&real) && err.contains("module map"),
            "{ms:?}: {err}"
        );
        assert!(!t.envs_dir().join("m").exists(), "{ms:?}: created");
    }
    // A good file still builds, on both.
    std::fs::write(&yml, section(&["gcc/12.2"])).unwrap();
    for ms in Ms::BOTH {
        ok(&t.module_shell(
            ms,
            &format!(
                "module load python/3.11\nenvmod create -q -n m-{} -f {}",
                ms.flag(),
                sh(&yml.display().to_string())
            ),
        ));
    }
}

/// Item 4: a module the user loaded by path (Environment Modules allows it; Lmod 8.6 does
/// not) is not recorded: the modulefile would run a file at that path on every load.
#[test]
fn modules_loaded_by_path_are_not_recorded() {
    let t = TestEnv::new();
    let real = t.site_modules.join("gcc/12.2").display().to_string();
    let out = t.module_shell(
        Ms::Tcl,
        &format!(
            "module load python/3.11 {}\necho \"LOADED=$LOADEDMODULES\"\nenvmod create -n bypath",
            sh(&real)
        ),
    );
    let text = ok(&out);
    assert!(
        text.contains(&format!("LOADED=python/3.11:{real}")),
        "{text}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("not recording {real}")) && err.contains("module use"),
        "{err}"
    );
    let manifest =
        std::fs::read_to_string(t.envs_dir().join("bypath/.envmod/manifest.json")).unwrap();
    assert!(!manifest.contains(&real), "{manifest}");
    assert!(manifest.contains("python/3.11"), "{manifest}");
}

/// Item 9: a deeply nested file and a file of 200 000 dependencies are read in time linear
/// in their size (or refused at once), not in minutes.
#[test]
fn deep_and_long_files_are_read_in_linear_time() {
    let t = TestEnv::new();
    let nested = t.path().join("nested.yml");
    std::fs::write(
        &nested,
        format!(
            "name: n\ndependencies: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    )
    .unwrap();
    let unclosed = t.path().join("unclosed.yml");
    std::fs::write(
        &unclosed,
        format!("name: n\nchannels: {}\n", "[".repeat(200_000)),
    )
    .unwrap();
    // A Python no site has, so that envmod stops right after reading and planning the
    // 200 000 specs, before any solve.
    let mut long = String::from("name: n\ndependencies:\n");
    for i in 0..200_000 {
        long.push_str(&format!("  - p{i}\n"));
    }
    long.push_str("envmod:\n  envmod_version: 0.1.0\n  platform: linux-64\n  python: {mode: site, version: 2.7.18}\n");
    let many = t.path().join("many.yml");
    std::fs::write(&many, long).unwrap();

    for (file, expect) in [
        (&nested, "nested"),
        (&unclosed, "nested"),
        (&many, "built for Python 2.7"),
    ] {
        let run = within(
            t.envmod()
                .args(["create", "-f", &file.display().to_string()]),
            Duration::from_secs(60),
            &file.display().to_string(),
        );
        let err = fails(&run.out);
        assert!(err.contains(expect), "{file:?}: {err}");
        assert!(
            run.cpu < Duration::from_secs(10),
            "{file:?} took {:?} of CPU time",
            run.cpu
        );
    }
}
