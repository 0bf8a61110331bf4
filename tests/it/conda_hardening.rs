//! The conda engine at its edges: damaged archives and records, full disks, credentials in
//! channel URLs, odd channel and spec arguments, killed extractions, and terminals.

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
};

use common::{TestEnv, channel, ok, stderr, stdout};

fn prefix(t: &TestEnv, name: &str) -> PathBuf {
    t.envs_dir().join(name)
}

/// The `error:` line of a failed command; there is exactly one.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{err}");
    lines[0].to_string()
}

fn manifest_specs(t: &TestEnv, name: &str) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(prefix(t, name).join(".envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["specs"].clone()
}

/// Every regular file under `root`, recursively, without following links.
fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

fn files_containing(root: &Path, needle: &str) -> Vec<PathBuf> {
    all_files(root)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn index_skips_damaged_archives_names_them_and_indexes_the_rest() {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("chan"));
    let bad_conda = chan.join("noarch/broken-1.0-pyhd8ed1ab_0.conda");
    let bad_bz2 = chan.join("linux-64/broken2-1.0-h0_0.tar.bz2");
    std::fs::write(&bad_conda, b"PK\x03\x04 this is not a zip archive").unwrap();
    std::fs::write(&bad_bz2, b"BZh91AY&SY truncated").unwrap();
    // A stale index must not keep serving what is gone: alpha 1.0 goes away.
    std::fs::remove_file(chan.join("noarch/alpha-1.0-pyhd8ed1ab_0.conda")).unwrap();

    let out = t.run(&["index", "./chan"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "a panic:\n{err}");
    for bad in [&bad_conda, &bad_bz2] {
        let name = bad.file_name().unwrap().to_string_lossy();
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning:") && l.contains(name.as_ref())),
            "no warning names {name}:\n{err}"
        );
        assert!(bad.is_file(), "the user's file {name} was removed");
    }
    let line = error_line(&out);
    assert!(line.contains("skipped 2 damaged"), "{line}");
    assert!(
        err.contains("hint:") && err.contains("remove or rebuild"),
        "{err}"
    );

    let noarch = std::fs::read_to_string(chan.join("noarch/repodata.json")).unwrap();
    assert!(noarch.contains("alpha-2.0-pyhd8ed1ab_0.conda"), "{noarch}");
    assert!(noarch.contains("beta-1.0-pyhd8ed1ab_0.tar.bz2"), "{noarch}");
    assert!(!noarch.contains("alpha-1.0-"), "{noarch}");
    assert!(!noarch.contains("broken"), "{noarch}");
    let linux = std::fs::read_to_string(chan.join("linux-64/repodata.json")).unwrap();
    assert!(linux.contains("libfoo-1.2.0"), "{linux}");
    assert!(!linux.contains("broken2"), "{linux}");
    let hidden: Vec<_> = std::fs::read_dir(&chan)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left behind in the channel: {hidden:?}");

    // The channel serves what was good.
    ok(&t.run(&["create", "-n", "x", "-c", "./chan", "alpha", "beta"]));

    // Once the damaged files are gone, indexing succeeds.
    std::fs::remove_file(&bad_conda).unwrap();
    std::fs::remove_file(&bad_bz2).unwrap();
    let out = t.run(&["index", "./chan"]);
    ok(&out);
    assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
}

// needs the pipeline wiring
#[test]
fn channel_and_build_string_specs_are_replaced_removed_and_advertised() {
    let t = TestEnv::with_channel();
    let chan = channel::channel_url(&t.path().join("channel"));
    let chan = chan.as_str().trim_end_matches('/');
    ok(&t
        .envmod()
        .args(["create", "-n", "s", "--module-system", "lmod"])
        .arg(format!("{chan}::alpha"))
        .output()
        .unwrap());
    let lua = t.module_root().join("s/py3.11.lua");
    let text = std::fs::read_to_string(&lua).unwrap();
    assert!(text.contains("extensions(\"alpha/2.0\")"), "{text}");

    // conda's name=version=build form replaces the channel-qualified spec.
    ok(&t.run(&["install", "-n", "s", "alpha=1.0=pyhd8ed1ab_0"]));
    assert_eq!(
        manifest_specs(&t, "s"),
        serde_json::json!(["alpha=1.0=pyhd8ed1ab_0"])
    );
    let text = std::fs::read_to_string(&lua).unwrap();
    assert!(text.contains("extensions(\"alpha/1.0\")"), "{text}");

    ok(&t.run(&["install", "-n", "s", &format!("{chan}::beta")]));
    let text = std::fs::read_to_string(&lua).unwrap();
    assert!(
        text.contains("extensions(\"alpha/1.0, beta/1.0\")"),
        "{text}"
    );
    let out = t.run(&["remove", "-n", "s", "beta"]);
    ok(&out);
    assert!(!stderr(&out).contains("still needed"), "{}", stderr(&out));
    assert_eq!(
        manifest_specs(&t, "s"),
        serde_json::json!(["alpha=1.0=pyhd8ed1ab_0"])
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "this test needs a small tmpfs to fill, and mounting one failed (it needs root or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes that no compressor shrinks, so the archive and the installed file are both big.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_full_disk_is_named_and_not_blamed_on_the_channel() {
    let t = TestEnv::new();
    let chan = t.path().join("bigchan");
    channel::write_channel(
        &chan,
        &[channel::linux64("big", "1.0", "h0_0", &[])
            .with_file("share/big/blob.bin", incompressible(3 << 20))],
    );
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    let envs = t.envs_dir();
    let _tmpfs = Tmpfs::mount(&envs, "1M");

    let out = t.run(&["create", "-n", "full", "big"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("disk is full"), "{line}");
    assert!(line.contains(&envs.display().to_string()), "{line}");
    assert!(
        !stderr(&out).contains("check the channel"),
        "{}",
        stderr(&out)
    );
    assert!(!prefix(&t, "full").exists());
}

/// `python3 -m http.server` on a free port, serving `dir`; it ignores credentials, which is
/// all a test of where credentials end up needs.
/// A channel server that, like a private mirror, answers only requests that carry the
/// credentials: HTTP basic auth as `user:password`, or a `/t/TOKEN/` path prefix.
struct HttpServer {
    child: Child,
    port: u16,
}

const AUTH_SERVER: &str = r#"
import base64, http.server, sys
port, user, password, token = sys.argv[1:5]
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
prefix = f"/t/{token}/"

class Handler(http.server.SimpleHTTPRequestHandler):
    def allowed(self):
        if self.path.startswith(prefix):
            self.path = self.path[len(prefix) - 1:]
            return True
        if self.headers.get("Authorization") == basic:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="chan"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self):
        if self.allowed():
            super().do_GET()

    def do_HEAD(self):
        if self.allowed():
            super().do_HEAD()

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
"#;

impl HttpServer {
    fn start(dir: &Path, user: &str, password: &str, token: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(common::MODULE_PYTHON)
            .args(["-c", AUTH_SERVER, &port.to_string(), user, password, token])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the channel server starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn channel_credentials_never_reach_output_or_files() {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("channel"));
    let secret = "s3cretPW";
    let token = "tk-s3cret-token";
    let server = HttpServer::start(&chan, "alice", secret, token);
    let with_password = format!("http://alice:{secret}@127.0.0.1:{}/", server.port);
    let with_token = format!("http://127.0.0.1:{}/t/{token}/", server.port);

    // The server refuses anonymous requests, so a success proves the credentials were sent.
    let anonymous = format!("http://127.0.0.1:{}/", server.port);
    let out = t.run(&["create", "-n", "anon", "-c", &anonymous, "alpha"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));

    let out = t.run(&["create", "-n", "p", "-c", &with_password, "alpha"]);
    ok(&out);
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    let out = t.run(&["install", "-n", "p", "-c", &with_password, "beta"]);
    ok(&out);
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    let out = t.run(&["create", "-n", "tk", "-c", &with_token, "alpha", "beta"]);
    ok(&out);
    assert!(!stdout(&out).contains(token) && !stderr(&out).contains(token));
    for name in ["p", "tk"] {
        assert!(
            prefix(&t, name)
                .join("conda-meta/beta-1.0-pyhd8ed1ab_0.json")
                .is_file(),
            "beta is not installed in {name}"
        );
    }

    // Unreachable channels fail, and the failure does not print the secret either.
    for channel in [
        format!("https://alice:{secret}@127.0.0.1:9/chan"),
        format!("https://127.0.0.1:9/t/{token}/chan"),
    ] {
        for extra in [&[][..], &["--offline"][..]] {
            let out = t
                .envmod()
                .args(["create", "-n", "q", "-c", &channel, "alpha"])
                .args(extra)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(!all.contains(secret) && !all.contains(token), "{all}");
            assert!(
                all.contains("127.0.0.1:9"),
                "the channel is not named:\n{all}"
            );
        }
    }
    // Everything envmod and rattler wrote: environments, modulefiles, the package cache and
    // the repodata cache beside it (`*.info.json` records the URL it fetched).
    let cache = all_files(&t.home);
    assert!(
        cache
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".info.json")),
        "no repodata cache under {}",
        t.home.display()
    );
    for needle in [secret, token] {
        let leaked = files_containing(&t.home, needle);
        assert!(leaked.is_empty(), "{needle} is stored in {leaked:?}");
    }
}

#[test]
fn empty_and_control_character_channels_are_usage_errors() {
    let t = TestEnv::with_channel();
    for channel in ["", "conda-forge\nrm -rf ~", "chan\u{1b}[2J"] {
        let out = t.run(&["create", "-n", "c", "-c", channel, "alpha"]);
        assert_eq!(out.status.code(), Some(2), "{channel:?}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("channel"), "{line}");
        assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
        assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
        assert!(!prefix(&t, "c").exists());
    }
}

// needs the pipeline wiring
#[test]
fn an_empty_channel_list_is_a_usage_error() {
    let t = TestEnv::new();
    t.set_site_config("channels: []\n");
    let out = t.run(&["create", "-n", "c", "alpha"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(error_line(&out).contains("no channels"), "{}", stderr(&out));
}

// needs the pipeline wiring
#[test]
fn a_damaged_package_record_is_named_with_the_fix() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "d", "alpha"]));
    let record = prefix(&t, "d").join("conda-meta/alpha-2.0-pyhd8ed1ab_0.json");
    assert!(record.is_file());
    std::fs::write(&record, "").unwrap();
    let out = t.run(&["install", "-n", "d", "beta"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("alpha-2.0-pyhd8ed1ab_0.json"), "{line}");
    assert!(stderr(&out).contains("envmod delete"), "{}", stderr(&out));
}

#[test]
fn killed_extractions_are_cleaned_from_the_package_cache() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "first", "alpha"]));
    let lock = all_files(&t.home)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == ".cache.lock"))
        .expect("the package cache has its lock file");
    let cache = lock.parent().unwrap().to_path_buf();
    let entry = cache.join("alpha-2.0-pyhd8ed1ab_0");
    assert!(entry.join("info/index.json").is_file());
    // What a SIGKILL during extraction leaves: the temporary directory beside the entry.
    let leftover = cache.join(".alpha-2.0-pyhd8ed1ab_0Xy7Q2p");
    std::fs::create_dir_all(leftover.join("site-packages/alpha")).unwrap();
    std::fs::write(leftover.join("site-packages/alpha/__init__.py"), "half").unwrap();

    ok(&t.run(&["create", "-n", "second", "alpha", "beta"]));
    assert!(!leftover.exists(), "the leftover extraction is still there");
    assert!(entry.join("info/index.json").is_file());
    assert!(
        cache
            .join("beta-1.0-pyhd8ed1ab_0/info/index.json")
            .is_file()
    );
}

#[test]
fn remove_on_a_terminal_says_what_it_removed() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "t", "alpha", "beta"]));
    let out = t.run_on_pty(&["remove", "-n", "t", "beta"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("nothing to change"), "{text}");
    assert!(text.contains("removed beta 1.0"), "{text}");
    assert!(
        !prefix(&t, "t")
            .join("lib/python3.11/site-packages/beta")
            .exists()
    );
}
