//! Conda packages through rattler, from a local channel the tests build: solved, installed,
//! loaded with real module systems, changed atomically, and killed at awkward moments.

use crate::common;

use std::{os::unix::fs::MetadataExt, path::Path};

use common::{Ms, TestEnv, channel, ok, sh, stderr, stdout};

fn prefix(t: &TestEnv, name: &str) -> std::path::PathBuf {
    t.envs_dir().join(name)
}

fn conda_meta(t: &TestEnv, name: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(prefix(t, name).join("conda-meta"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn site_packages(t: &TestEnv, name: &str) -> std::path::PathBuf {
    prefix(t, name).join("lib/python3.11/site-packages")
}

#[test]
fn site_create_with_packages_loads_in_lmod_and_tcl() {
    for ms in Ms::BOTH {
        let t = TestEnv::with_channel();
        let out = t.module_shell(
            ms,
            "module load gcc/12.2 python/3.11\nenvmod create -n sci alpha beta",
        );
        ok(&out);
        let meta = conda_meta(&t, "sci");
        assert!(meta.iter().any(|m| m.starts_with("alpha-2.0-")), "{meta:?}");
        assert!(meta.iter().any(|m| m.starts_with("beta-1.0-")), "{meta:?}");
        assert!(
            !meta.iter().any(|m| m.starts_with("python-")),
            "site Python was installed as a package: {meta:?}"
        );
        assert!(site_packages(&t, "sci").join("alpha/__init__.py").is_file());
        assert!(
            !prefix(&t, "sci").join("CACHEDIR.TAG").exists(),
            "CACHEDIR.TAG would make backups skip the env"
        );

        let script = format!(
            "module use {}\nmodule load sci/py3.11 || exit 9\npython -c 'import alpha, beta; print(alpha.VERSION, beta.VERSION, alpha.__file__)'\nalpha-cli hello\necho \"$LOADEDMODULES\"",
            sh(&t.module_root().display().to_string())
        );
        let text = ok(&t.module_shell(ms, &script));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("2.0 1.0 "), "{text}");
        assert!(
            lines[0].contains(&site_packages(&t, "sci").display().to_string()),
            "{text}"
        );
        assert_eq!(lines[1], "alpha-cli ran 2.0 hello", "{text}");
        assert!(lines[2].contains("gcc/12.2"), "{text}");
    }
}

#[test]
fn conda_python_create_names_the_module_after_its_version() {
    for ms in Ms::BOTH {
        let t = TestEnv::with_channel();
        ok(&t.module_shell(ms, "envmod create -n py312 --python 3.12 alpha"));
        let meta = conda_meta(&t, "py312");
        assert!(
            meta.iter().any(|m| m.starts_with("python-3.12.0-")),
            "{meta:?}"
        );
        assert!(
            prefix(&t, "py312")
                .join("lib/python3.12/site-packages/alpha/__init__.py")
                .is_file()
        );
        assert!(
            !prefix(&t, "py312").join("pyvenv.cfg").exists(),
            "a conda-Python env is not a venv"
        );
        let script = format!(
            "module use {}\nmodule load py312/py3.12 || exit 9\ncommand -v python\npython -c 'import alpha; print(alpha.VERSION)'",
            sh(&t.module_root().display().to_string())
        );
        let text = ok(&t.module_shell(ms, &script));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            prefix(&t, "py312").join("bin/python").display().to_string()
        );
        assert_eq!(lines[1], "2.0");
        let list: serde_json::Value =
            serde_json::from_str(&ok(&t.envmod().args(["list", "--json"]).output().unwrap()))
                .unwrap();
        assert_eq!(list[0]["python"], "3.12.0");
        assert_eq!(list[0]["python_mode"], "conda");
        // Changing a conda-Python env keeps its Python.
        ok(&t
            .envmod()
            .args(["install", "-n", "py312", "beta"])
            .output()
            .unwrap());
        ok(&t
            .envmod()
            .args(["remove", "-n", "py312", "beta"])
            .output()
            .unwrap());
        let meta = conda_meta(&t, "py312");
        assert!(
            meta.iter().any(|m| m.starts_with("python-3.12.0-")),
            "{meta:?}"
        );
        assert!(!meta.iter().any(|m| m.starts_with("beta-")), "{meta:?}");
    }
}

#[test]
fn install_and_remove_keep_specs_and_update_extensions() {
    let t = TestEnv::with_channel();
    ok(&t.module_shell(Ms::Lmod, "envmod create -q -n work 'alpha<2'"));
    let lua = t.module_root().join("work/py3.11.lua");
    assert!(
        std::fs::read_to_string(&lua)
            .unwrap()
            .contains("extensions(\"alpha/1.0\")")
    );

    ok(&t
        .envmod()
        .args(["install", "-n", "work", "beta"])
        .output()
        .unwrap());
    let meta = conda_meta(&t, "work");
    assert!(
        meta.iter().any(|m| m.starts_with("alpha-1.0-")),
        "the earlier spec alpha<2 was dropped: {meta:?}"
    );
    assert!(meta.iter().any(|m| m.starts_with("beta-1.0-")), "{meta:?}");
    let text = std::fs::read_to_string(&lua).unwrap();
    assert!(
        text.contains("extensions(\"alpha/1.0, beta/1.0\")"),
        "{text}"
    );
    let spider = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule spider beta",
            sh(&t.module_root().display().to_string())
        ),
    );
    assert!(
        stderr(&spider).contains("work/py3.11"),
        "module spider beta did not find the env:\n{}",
        stderr(&spider)
    );

    // A new spec for the same package replaces the old one.
    ok(&t
        .envmod()
        .args(["install", "-n", "work", "alpha>=2"])
        .output()
        .unwrap());
    assert!(
        conda_meta(&t, "work")
            .iter()
            .any(|m| m.starts_with("alpha-2.0-"))
    );

    ok(&t
        .envmod()
        .args(["remove", "-n", "work", "beta"])
        .output()
        .unwrap());
    let meta = conda_meta(&t, "work");
    assert!(!meta.iter().any(|m| m.starts_with("beta-")), "{meta:?}");
    assert!(!site_packages(&t, "work").join("beta").exists());
    let text = std::fs::read_to_string(&lua).unwrap();
    assert!(text.contains("extensions(\"alpha/2.0\")"), "{text}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(prefix(&t, "work").join(".envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["specs"], serde_json::json!(["alpha>=2"]));

    // Removing something still needed, or not there at all, changes nothing.
    ok(&t
        .envmod()
        .args(["install", "-n", "work", "beta"])
        .output()
        .unwrap());
    let out = t
        .envmod()
        .args(["remove", "-n", "work", "alpha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("still needed"), "{}", stderr(&out));
    let out = t
        .envmod()
        .args(["remove", "-n", "work", "nosuchpkg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not installed"), "{}", stderr(&out));
    assert!(
        conda_meta(&t, "work")
            .iter()
            .any(|m| m.starts_with("alpha-2.0-"))
    );
}

#[test]
fn unsatisfiable_requests_explain_and_change_nothing() {
    let t = TestEnv::with_channel();
    let out = t
        .envmod()
        .args(["create", "-n", "bad", "--module-system", "lmod", "delta"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot be installed together")
            && err.contains("delta")
            && err.contains("alpha"),
        "{err}"
    );
    assert!(!prefix(&t, "bad").exists());
    assert!(!t.module_root().join("bad").exists());

    let out = t
        .envmod()
        .args(["create", "-n", "bad2", "needs-new-python"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("python"), "{}", stderr(&out));

    ok(&t
        .envmod()
        .args(["create", "-n", "keep", "--module-system", "lmod", "alpha"])
        .output()
        .unwrap());
    let before = snapshot_tree(&prefix(&t, "keep"));
    let lua_before = std::fs::read_to_string(t.module_root().join("keep/py3.11.lua")).unwrap();
    let out = t
        .envmod()
        .args(["install", "-n", "keep", "delta"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot be installed together"),
        "{}",
        stderr(&out)
    );
    assert_eq!(before, snapshot_tree(&prefix(&t, "keep")));
    assert_eq!(
        lua_before,
        std::fs::read_to_string(t.module_root().join("keep/py3.11.lua")).unwrap()
    );
}

#[test]
fn bad_channels_are_one_line_errors_naming_the_channel() {
    let t = TestEnv::with_channel();
    let out = t
        .envmod()
        .args(["create", "-n", "x", "-c", "./no-such-dir", "alpha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).contains("no-such-dir"), "{}", stderr(&out));

    // A channel without noarch/.
    let broken = t.path().join("broken");
    std::fs::create_dir_all(broken.join("linux-64")).unwrap();
    std::fs::copy(
        t.path().join("channel/linux-64/repodata.json"),
        broken.join("linux-64/repodata.json"),
    )
    .unwrap();
    let out = t
        .envmod()
        .args(["create", "-n", "x", "-c"])
        .arg(&broken)
        .arg("alpha")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.contains("broken") && line.contains("noarch"),
        "{}",
        stderr(&out)
    );

    // An unreachable URL.
    let out = t
        .envmod()
        .args([
            "create",
            "-n",
            "x",
            "-c",
            "http://127.0.0.1:9/nowhere",
            "alpha",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        error_line(&out).contains("127.0.0.1:9/nowhere"),
        "{}",
        stderr(&out)
    );
    assert!(!prefix(&t, "x").exists());
}

#[test]
fn activate_d_variables_follow_module_load_and_unload() {
    for ms in Ms::BOTH {
        let t = TestEnv::with_channel();
        ok(&t.module_shell(ms, "envmod create -q -n act gamma"));
        let p = prefix(&t, "act");
        assert_eq!(
            std::fs::read_to_string(p.join("etc/foo.conf"))
                .unwrap()
                .lines()
                .nth(1)
                .unwrap(),
            format!("prefix = {}", p.display()),
            "the prefix placeholder must name the final prefix, not the staging directory"
        );
        let script = format!(
            "module use {}\nmodule load act/py3.11 || exit 9\necho \"home=$FOO_HOME act=$FOO_ACTIVATED\"\nmodule unload act\necho \"home=${{FOO_HOME-unset}} act=${{FOO_ACTIVATED-unset}}\"",
            sh(&t.module_root().display().to_string())
        );
        let text = ok(&t.module_shell(ms, &script));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("home={}/share/foo act=yes", p.display()),
            "{ms:?}"
        );
        assert_eq!(lines[1], "home=unset act=unset", "{ms:?}");
    }
}

#[test]
fn environments_share_files_through_the_package_cache() {
    let t = TestEnv::with_channel();
    ok(&t
        .envmod()
        .args(["create", "-n", "one", "alpha"])
        .output()
        .unwrap());
    ok(&t
        .envmod()
        .args(["create", "-n", "two", "alpha"])
        .output()
        .unwrap());
    let ino = |name: &str| {
        std::fs::metadata(site_packages(&t, name).join("alpha/__init__.py"))
            .unwrap()
            .ino()
    };
    assert_eq!(
        ino("one"),
        ino("two"),
        "the two envs do not share the cached file"
    );
    let cached = t.home.join(".cache/rattler/cache/pkgs");
    assert!(cached.is_dir(), "package cache not in pkgs_dirs default");
}

#[test]
fn index_serves_a_directory_and_offline_uses_only_the_cache() {
    let t = TestEnv::new();
    // A plain directory of packages, indexed by envmod itself.
    let built = channel::standard_channel(&t.path().join("built"));
    let served = t.path().join("served");
    for sub in ["noarch", "linux-64"] {
        std::fs::create_dir_all(served.join(sub)).unwrap();
        for e in std::fs::read_dir(built.join(sub)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conda") || name.ends_with(".tar.bz2") {
                std::fs::copy(e.path(), served.join(sub).join(&name)).unwrap();
            }
        }
    }
    assert!(!served.join("noarch/repodata.json").exists());
    ok(&t.envmod().args(["index"]).arg(&served).output().unwrap());
    assert!(served.join("noarch/repodata.json").is_file());
    ok(&t
        .envmod()
        .args(["create", "-n", "local", "-c"])
        .arg(&served)
        .arg("beta")
        .output()
        .unwrap());

    // The same channel over HTTP on loopback: online once, to fill the caches.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(common::MODULE_PYTHON)
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut online = None;
    for _ in 0..50 {
        let out = t
            .envmod()
            .args(["create", "-n", "online", "-c", &url, "beta"])
            .output()
            .unwrap();
        if out.status.success() {
            online = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(online.is_some(), "could not create from the HTTP channel");

    // Server gone: --offline works from the caches…
    ok(&t
        .envmod()
        .args(["create", "-n", "offline", "--offline", "-c", &url, "beta"])
        .output()
        .unwrap());
    assert!(
        site_packages(&t, "offline")
            .join("beta/__init__.py")
            .is_file()
    );
    // …a package never downloaded cannot be had, and nothing is left behind…
    let out = t
        .envmod()
        .args(["create", "-n", "never", "--offline", "-c", &url, "gamma"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).contains("offline"), "{}", stderr(&out));
    assert!(!prefix(&t, "never").exists());
    // …and without --offline the dead channel is named in one line.
    let out = t
        .envmod()
        .args(["create", "-n", "never", "-c", &url, "beta"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        error_line(&out).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn parallel_creates_with_packages_make_exactly_one_env() {
    let t = TestEnv::with_channel();
    let outputs = t.run_at_once(
        8,
        &[
            "create",
            "-n",
            "same",
            "--module-system",
            "lmod",
            "alpha",
            "beta",
            "gamma",
        ],
    );
    assert_eq!(outputs.iter().filter(|o| o.status.success()).count(), 1);
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let err = stderr(o);
        assert!(
            err.contains("another envmod process") || err.contains("already exists"),
            "unclear: {err}"
        );
    }
    assert!(
        conda_meta(&t, "same")
            .iter()
            .any(|m| m.starts_with("gamma-"))
    );
    assert!(t.module_root().join("same/py3.11.lua").is_file());
}

/// Every point of `create` and `install` at which a SIGKILL leaves something to check.
#[test]
fn kill_9_leaves_no_half_made_env_and_no_orphan_modulefile() {
    let t = TestEnv::with_channel();
    let lua = |name: &str| t.module_root().join(format!("{name}/py3.11.lua"));
    for point in ["create:staged", "create:installed", "create:renamed"] {
        let out = t
            .envmod()
            .args([
                "create",
                "-n",
                "killed",
                "--module-system",
                "lmod",
                "alpha",
                "gamma",
            ])
            .env("ENVMOD_TEST_KILL_AT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: not killed");
        let p = prefix(&t, "killed");
        if p.exists() {
            // Only after the rename: then the env is whole.
            assert_eq!(
                point, "create:renamed",
                "half-made env after a kill at {point}"
            );
            assert!(
                site_packages(&t, "killed")
                    .join("gamma/__init__.py")
                    .is_file()
            );
            ok(&t
                .envmod()
                .args(["module", "-n", "killed", "--module-system", "lmod"])
                .output()
                .unwrap());
            ok(&t
                .envmod()
                .args(["delete", "-n", "killed", "-y"])
                .output()
                .unwrap());
        } else {
            assert!(
                !lua("killed").exists(),
                "orphan modulefile after a kill at {point}"
            );
        }
        // The next command works, and cleans what the killed one left.
        ok(&t
            .envmod()
            .args(["create", "-n", "killed", "--module-system", "lmod", "alpha"])
            .output()
            .unwrap());
        ok(&t
            .envmod()
            .args(["delete", "-n", "killed", "-y"])
            .output()
            .unwrap());
    }

    ok(&t
        .envmod()
        .args(["create", "-n", "live", "--module-system", "lmod", "alpha"])
        .output()
        .unwrap());
    for point in ["change:cloned", "change:installed", "change:exchanged"] {
        let out = t
            .envmod()
            .args(["install", "-n", "live", "beta", "gamma"])
            .env("ENVMOD_TEST_KILL_AT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: not killed");
        let meta = conda_meta(&t, "live");
        let has_beta = meta.iter().any(|m| m.starts_with("beta-"));
        let beta_files = site_packages(&t, "live").join("beta/__init__.py").is_file();
        assert_eq!(
            has_beta, beta_files,
            "{point}: conda-meta and files disagree"
        );
        assert_eq!(
            has_beta,
            point == "change:exchanged",
            "{point}: neither the old env nor the new one"
        );
        let manifest =
            std::fs::read_to_string(prefix(&t, "live").join(".envmod/manifest.json")).unwrap();
        assert_eq!(
            manifest.contains("\"beta\""),
            has_beta,
            "{point}: manifest disagrees with the env"
        );
        assert!(lua("live").is_file());
        // The next command works, from whichever state the kill left.
        if has_beta {
            ok(&t
                .envmod()
                .args(["remove", "-n", "live", "beta", "gamma"])
                .output()
                .unwrap());
        } else {
            ok(&t
                .envmod()
                .args(["install", "-n", "live", "beta"])
                .output()
                .unwrap());
            ok(&t
                .envmod()
                .args(["remove", "-n", "live", "beta"])
                .output()
                .unwrap());
        }
    }
    let leftovers: Vec<String> = std::fs::read_dir(t.envs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging") || n.contains("trash"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A kill at a random moment of a real create: whatever is left is consistent.
#[test]
fn kill_9_at_random_moments_of_create() {
    let t = TestEnv::with_channel();
    for delay_ms in [5u64, 20, 40, 80, 160] {
        let mut child = t
            .envmod()
            .args([
                "create",
                "-n",
                "rnd",
                "--module-system",
                "lmod",
                "alpha",
                "beta",
                "gamma",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let p = prefix(&t, "rnd");
        if p.exists() {
            assert!(
                p.join(".envmod/manifest.json").is_file(),
                "env without manifest after {delay_ms} ms"
            );
            assert!(
                site_packages(&t, "rnd").join("gamma/__init__.py").is_file(),
                "half-made env after {delay_ms} ms"
            );
            ok(&t
                .envmod()
                .args(["delete", "-n", "rnd", "-y"])
                .output()
                .unwrap());
        } else {
            assert!(
                !t.module_root().join("rnd/py3.11.lua").exists(),
                "orphan modulefile after {delay_ms} ms"
            );
        }
    }
}

fn snapshot_tree(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((
                e.path().strip_prefix(root).unwrap().display().to_string(),
                m.len(),
            ));
        }
    }
    out.sort();
    out
}

/// The `error:` line of a failed command; there is exactly one.
fn error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{err}");
    assert!(stdout(out).is_empty(), "errors go to stderr");
    lines[0].to_string()
}

#[test]
fn progress_is_plain_lines_when_piped_and_silent_with_q() {
    let t = TestEnv::with_channel();
    let out = t
        .envmod()
        .args(["create", "-n", "loud", "alpha", "beta"])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "", "create printed data on stdout");
    let err = stderr(&out);
    assert!(err.contains("Loading repodata from"), "{err}");
    assert!(err.lines().any(|l| l.trim() == "+ alpha 2.0"), "{err}");
    assert!(err.lines().any(|l| l.trim() == "+ beta 1.0"), "{err}");
    assert!(
        !err.contains('\r') && !err.contains("\x1b["),
        "progress bars drawn on a pipe:\n{err:?}"
    );

    let out = t
        .envmod()
        .args(["-q", "create", "-n", "quiet", "alpha", "beta"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(stderr(&out), "", "-q printed something");
    assert_eq!(stdout(&out), "");
}

#[test]
fn virtual_packages_are_detected_and_conda_override_is_honoured() {
    let t = TestEnv::new();
    let chan = t.path().join("vchan");
    channel::write_channel(
        &chan,
        &[
            channel::linux64("needs-glibc", "1.0", "h0_0", &["__glibc >=2.17"]),
            channel::linux64("needs-cuda", "1.0", "h0_0", &["__cuda >=12"]),
        ],
    );
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    // The real glibc of this machine satisfies __glibc >=2.17…
    ok(&t
        .envmod()
        .args(["create", "-n", "g", "needs-glibc"])
        .output()
        .unwrap());
    // …and an override below it does not.
    let out = t
        .envmod()
        .args(["create", "-n", "g2", "needs-glibc"])
        .env("CONDA_OVERRIDE_GLIBC", "2.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("__glibc"), "{}", stderr(&out));
    // No GPU here: __cuda only exists when overridden.
    let out = t
        .envmod()
        .args(["create", "-n", "c", "needs-cuda"])
        .env_remove("CONDA_OVERRIDE_CUDA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("__cuda"), "{}", stderr(&out));
    ok(&t
        .envmod()
        .args(["create", "-n", "c", "needs-cuda"])
        .env("CONDA_OVERRIDE_CUDA", "12.4")
        .output()
        .unwrap());
}

#[test]
fn progress_bars_on_a_terminal() {
    let t = TestEnv::with_channel();
    let envmod = assert_cmd::cargo::cargo_bin("envmod");
    // `script` gives envmod a pseudo-terminal, as an interactive shell would.
    let cmd = format!(
        "{} create -n tty alpha beta",
        sh(&envmod.display().to_string())
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .envs(t.vars())
        .env("TERM", "xterm-256color")
        .current_dir(t.path())
        .output()
        .expect("script(1) from util-linux");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains('\u{1b}'), "no terminal drawing:\n{text:?}");
    assert!(
        !text.lines().any(|l| l.trim() == "+ alpha 2.0"),
        "plain lines on a terminal:\n{text}"
    );
    assert!(
        text.contains("module load tty/py3.11") || text.contains("envmod install -n tty"),
        "{text}"
    );
    assert!(site_packages(&t, "tty").join("beta/__init__.py").is_file());
}

/// Ctrl-C (SIGINT) at several moments of a real create: the staging directory is removed,
/// and whatever is left is nothing or a whole environment.
#[test]
fn ctrl_c_during_create_leaves_nothing_half_made() {
    let t = TestEnv::with_channel();
    let mut interrupted = 0;
    for delay_ms in [5u64, 15, 30, 60, 120, 240] {
        let child = t
            .envmod()
            .args([
                "create",
                "-n",
                "intr",
                "--module-system",
                "lmod",
                "alpha",
                "beta",
                "gamma",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let leftovers: Vec<String> = std::fs::read_dir(t.envs_dir())
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !leftovers.iter().any(|n| n.contains("staging")),
            "staging left after Ctrl-C at {delay_ms} ms: {leftovers:?}"
        );
        let p = prefix(&t, "intr");
        if out.status.success() {
            assert!(t.module_root().join("intr/py3.11.lua").is_file());
        } else if std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(libc::SIGINT) {
            // Interrupted while the process was still starting, before any work.
            interrupted += 1;
            assert!(!p.exists(), "env created before the handler was installed");
            assert!(!t.module_root().join("intr/py3.11.lua").exists());
        } else {
            interrupted += 1;
            assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
            assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
            if p.exists() {
                assert!(
                    site_packages(&t, "intr")
                        .join("gamma/__init__.py")
                        .is_file(),
                    "half-made env"
                );
            } else {
                assert!(
                    !t.module_root().join("intr/py3.11.lua").exists(),
                    "orphan modulefile"
                );
            }
        }
        if p.exists() {
            ok(&t
                .envmod()
                .args(["delete", "-n", "intr", "-y"])
                .output()
                .unwrap());
        }
    }
    assert!(
        interrupted > 0,
        "no create was interrupted; the delays are too long for this machine"
    );
}

/// Package records follow the umask like every other file envmod writes, so a group can
/// share an environment (umask 002) and students can read a course environment (022).
#[test]
fn package_records_follow_the_umask() {
    use std::os::unix::{fs::PermissionsExt, process::CommandExt};
    let t = TestEnv::with_channel();
    let run = |umask: libc::mode_t, args: &[&str]| {
        let mut cmd = t.envmod();
        cmd.args(args);
        // SAFETY: umask is async-signal-safe and only changes the child.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        ok(&cmd.args(["-q"]).output().unwrap());
    };
    let modes = |name: &str| -> Vec<(String, u32)> {
        conda_meta(&t, name)
            .into_iter()
            .map(|f| {
                let m = std::fs::metadata(prefix(&t, name).join("conda-meta").join(&f))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777;
                (f, m)
            })
            .collect()
    };
    for (umask, want, name) in [
        (0o002, 0o664, "lab"),
        (0o022, 0o644, "course"),
        (0o077, 0o600, "own"),
    ] {
        run(
            umask,
            &["create", "-n", name, "--module-system", "none", "alpha<2"],
        );
        run(umask, &["install", "-n", name, "beta"]);
        let got = modes(name);
        assert_eq!(got.len(), 2, "{got:?}");
        for (file, mode) in got {
            assert_eq!(
                mode, want,
                "{name}: conda-meta/{file} is {mode:o} under umask {umask:03o}"
            );
        }
    }
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let t = TestEnv::with_channel();
    let out = t.module_shell(
        Ms::Lmod,
        "module load gcc/12.2\nenvmod create -q -n dry --dry-run 'alpha<2'",
    );
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("would install: alpha 1.0"), "{text}");
    assert!(text.contains("modules: gcc/12.2"), "{text}");
    assert!(text.contains("dry/py3.11.lua"), "{text}");
    assert!(!prefix(&t, "dry").exists(), "a dry run created the env");
    assert!(
        !t.module_root().join("dry").exists(),
        "a dry run wrote a modulefile"
    );
    let leftovers: Vec<_> = std::fs::read_dir(t.envs_dir())
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a dry run left {leftovers:?}");

    ok(&t.module_shell(Ms::Lmod, "envmod create -q -n work 'alpha<2'"));
    // The names and sizes of every file, and when the two files every change rewrites
    // were last written.
    let state = || {
        let mtime = |p: &Path| {
            let m = p.metadata().unwrap();
            (m.mtime(), m.mtime_nsec())
        };
        (
            snapshot_tree(&prefix(&t, "work")),
            snapshot_tree(&t.module_root()),
            mtime(&prefix(&t, "work").join(".envmod/manifest.json")),
            mtime(&t.module_root().join("work/py3.11.lua")),
        )
    };
    let before = state();
    let out = t
        .envmod()
        .args(["install", "-n", "work", "--dry-run", "beta"])
        .output()
        .unwrap();
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("would install: beta 1.0"), "{text}");
    assert!(text.contains("would remove: nothing"), "{text}");
    assert_eq!(state(), before, "install --dry-run changed the env");
    assert!(
        !conda_meta(&t, "work")
            .iter()
            .any(|m| m.starts_with("beta-"))
    );

    let out = t
        .envmod()
        .args(["remove", "-n", "work", "--dry-run", "alpha"])
        .output()
        .unwrap();
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("would remove: alpha 1.0"), "{text}");
    assert_eq!(state(), before, "remove --dry-run changed the env");
}
