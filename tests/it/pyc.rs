//! Compiled `.pyc` files and user installs: envmod compiles by default only the environments
//! whose users cannot write the cache, leaves no bytecode of a file it unlinks (so an upgrade
//! never runs the old code), and pip's `--user` lands in the loaded environment, not in
//! `~/.local`, where the environment does not look.

use crate::common;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use common::{TestEnv, channel, ok, sh, stderr};

/// `stale` 1.0 and 2.0 (noarch) and `stalebin` 1.0 and 2.0 (built for linux-64, as every
/// package with a compiled extension is): the same `stale/core.py` path, of the same size and
/// (the builder's fixed) mtime, whose code differs; the case where Python trusts a `.pyc` left
/// from the old version. rattler removes a noarch package's directory when only
/// `__pycache__` is left in it, never a linux-64 package's.
fn stale_packages() -> Vec<channel::Pkg> {
    let mut pkgs = Vec::new();
    for v in ["1.0", "2.0"] {
        let code = format!("RAN = 'core {v}'\n");
        pkgs.push(
            channel::noarch_python("stale", v, &[]).with_file("site-packages/stale/core.py", &code),
        );
        pkgs.push(
            channel::linux64("stalebin", v, "h0_0", &["python >=3.8"])
                .with_file("lib/python3.11/site-packages/stale/__init__.py", "")
                .with_file("lib/python3.11/site-packages/stale/core.py", &code)
                .with_file(
                    "lib/python3.11/site-packages/stale/_speedups.so",
                    b"\x7fELF not really\n",
                ),
        );
    }
    pkgs
}

fn site_packages(prefix: &Path) -> PathBuf {
    prefix.join("lib/python3.11/site-packages")
}

/// The `.pyc` files under `dir`, relative to it.
fn compiled(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "pyc") {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

fn timed(t: &TestEnv, args: &[&str]) -> std::time::Duration {
    let started = Instant::now();
    ok(&t.run(args));
    started.elapsed()
}

#[test]
fn auto_compiles_only_where_users_cannot_write_the_cache() {
    let t = TestEnv::with_channel_of(stale_packages());
    let envs = t.envs_dir();
    // A private environment: Python writes the cache itself at the first import.
    let plain = timed(&t, &["create", "-n", "private", "alpha", "beta"]);
    assert_eq!(compiled(&envs.join("private")), Vec::<String>::new());
    let forced = timed(
        &t,
        &["create", "-n", "forced", "--compile", "alpha", "beta"],
    );
    assert!(
        compiled(&site_packages(&envs.join("forced")))
            .contains(&"alpha/__pycache__/__init__.cpython-311.pyc".to_string()),
        "--compile did not compile"
    );
    eprintln!("create alpha beta: {plain:.2?} without compiling, {forced:.2?} with");

    // A shared environment's users cannot write it: compiled at create and at every change.
    ok(&t.run(&["create", "-n", "course", "--shared", "alpha"]));
    let course = site_packages(&envs.join("course"));
    assert!(
        compiled(&course).contains(&"alpha/__pycache__/__init__.cpython-311.pyc".to_string()),
        "{:?}",
        compiled(&course)
    );
    ok(&t.run(&["install", "-n", "course", "gamma"]));
    assert!(
        compiled(&course).contains(&"gamma/__pycache__/__init__.cpython-311.pyc".to_string()),
        "install into a shared env did not compile: {:?}",
        compiled(&course)
    );
    ok(&t.run(&["install", "-n", "private", "gamma"]));
    assert_eq!(compiled(&envs.join("private")), Vec::<String>::new());
    // Sharing an environment later compiles what it holds.
    ok(&t.run(&["share", "-n", "private"]));
    assert!(
        compiled(&site_packages(&envs.join("private")))
            .contains(&"gamma/__pycache__/__init__.cpython-311.pyc".to_string()),
        "share did not compile: {:?}",
        compiled(&envs.join("private"))
    );
    // An environment in a directory of shared environments is for others too.
    let dir = t.path().join("course-envs");
    std::fs::create_dir(&dir).unwrap();
    t.set_site_config(&format!(
        "channels: [{}]\nshared_envs_dirs: [{}]\n",
        t.path().join("channel").display(),
        dir.display()
    ));
    ok(&t.run(&["create", "-p", dir.join("cs101").to_str().unwrap(), "alpha"]));
    assert!(
        !compiled(&dir.join("cs101")).is_empty(),
        "an env in shared_envs_dirs was not compiled"
    );
    // The setting: off for everyone, and named in `envmod config`.
    let off = t
        .envmod()
        .env("ENVMOD_COMPILE_PYC", "false")
        .args(["create", "-n", "off", "--shared", "alpha"])
        .output()
        .unwrap();
    ok(&off);
    assert_eq!(compiled(&envs.join("off")), Vec::<String>::new());
    let config = ok(&t.run(&["config"]));
    let line = config
        .lines()
        .find(|l| l.contains("compile_pyc"))
        .unwrap_or_default();
    assert!(line.contains("auto"), "{config}");
    let bad = t
        .envmod()
        .env("ENVMOD_COMPILE_PYC", "sometimes")
        .args(["config"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("auto"), "{}", stderr(&bad));
}

/// Import `stale.core` with the environment's Python, letting Python write its cache.
fn ran(prefix: &Path) -> String {
    let out = std::process::Command::new(prefix.join("bin/python"))
        .args(["-c", "import stale.core; print(stale.core.RAN)"])
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONPYCACHEPREFIX")
        .output()
        .unwrap();
    ok(&out).trim().to_string()
}

#[test]
fn an_upgrade_or_a_remove_leaves_no_bytecode_behind() {
    let t = TestEnv::with_channel_of(stale_packages());
    for (name, compile, pkg) in [
        ("own", "--compile", "stale"),
        ("python", "--no-compile", "stale"),
        ("own-bin", "--compile", "stalebin"),
        ("python-bin", "--no-compile", "stalebin"),
    ] {
        ok(&t.run(&["create", "-n", name, compile, &format!("{pkg}=1.0")]));
        let prefix = t.envs_dir().join(name);
        // `own`: envmod compiled it; `python`: the first import writes the cache.
        assert_eq!(ran(&prefix), "core 1.0");
        let core = site_packages(&prefix).join("stale/__pycache__");
        assert!(
            compiled(&core).contains(&"core.cpython-311.pyc".to_string()),
            "{name}: {:?}",
            compiled(&core)
        );
        let old = std::fs::metadata(site_packages(&prefix).join("stale/core.py")).unwrap();
        ok(&t.run(&["install", "-n", name, "--no-compile", &format!("{pkg}=2.0")]));
        let new = std::fs::metadata(site_packages(&prefix).join("stale/core.py")).unwrap();
        // The case where only the unlink can help: Python checks size and mtime alone.
        assert_eq!(
            (old.len(), old.modified().unwrap()),
            (new.len(), new.modified().unwrap()),
            "the test needs a new core.py of the old size and mtime"
        );
        assert_eq!(ran(&prefix), "core 2.0", "{name}: the old bytecode ran");
        ok(&t.run(&["remove", "-n", name, pkg]));
        let left = compiled(&site_packages(&prefix));
        assert!(
            !left.iter().any(|p| p.starts_with("stale/")),
            "{name}: bytecode left after remove: {left:?}"
        );
        assert!(
            !site_packages(&prefix).join("stale").exists(),
            "{name}: the package's directory stayed"
        );
    }
}

#[test]
fn pip_user_installs_go_into_the_loaded_environment() {
    let t = TestEnv::with_channel_of(stale_packages());
    ok(&t.module_shell(
        common::Ms::Lmod,
        "module load python/3.11\nenvmod create -n web",
    ));
    let prefix = t.envs_dir().join("web");
    let wheels = t.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    let flag = common::build_wheel(&wheels, "byflag", "1.0");
    let var = common::build_wheel(&wheels, "byvar", "1.0");
    for (how, script) in [
        (
            "bin/activate",
            format!(". {}/bin/activate", sh(&prefix.display().to_string())),
        ),
        (
            "module load",
            format!(
                "module use {}\nmodule load web/py3.11 || exit 9",
                sh(&t.module_root().display().to_string())
            ),
        ),
    ] {
        let script = format!(
            "{script}\npip install -q --no-index --user {} || exit 1\nPIP_USER=1 python -m pip install -q --no-index {} || exit 2\npython -c 'import byflag, byvar; print(byflag.__file__); print(byvar.__file__)'",
            sh(&flag.display().to_string()),
            sh(&var.display().to_string()),
        );
        let out = t.module_shell(common::Ms::Lmod, &script);
        let text = ok(&out);
        for line in text.lines() {
            assert!(
                line.starts_with(&site_packages(&prefix).display().to_string()),
                "{how}: {text}"
            );
        }
        assert!(
            !t.home.join(".local/lib").exists(),
            "{how}: pip installed into ~/.local"
        );
        ok(&std::process::Command::new(prefix.join("bin/pip"))
            .args(["uninstall", "-q", "-y", "byflag", "byvar"])
            .output()
            .unwrap());
    }
}
