//! `envmod update`: a newer version appears in the channel; `--dry-run` names the move and
//! changes nothing, `update` makes it through the same atomic swap as `install`, the
//! modulefile still loads, and a second update has nothing to do. On a terminal and a pipe.

use crate::common;

use common::{Ms, TestEnv, channel, ok, sh, stderr, stdout};

/// The version of alpha that the env `g` holds, from its `conda-meta`.
fn alpha_in(t: &TestEnv) -> Vec<String> {
    let meta = t.envs_dir().join("g/conda-meta");
    let mut found: Vec<String> = std::fs::read_dir(&meta)
        .expect("conda-meta")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("alpha-"))
        .collect();
    found.sort();
    found
}

#[test]
fn update_moves_to_a_new_version_after_a_dry_run_names_it() {
    let t = TestEnv::new();
    let dir = t.path().join("channel");
    channel::write_channel(
        &dir,
        &[
            channel::noarch_python("alpha", "1.0", &[]),
            channel::python(),
        ],
    );
    t.set_site_config(&format!("channels: [{}]\n", dir.display()));
    ok(&t.module_shell(
        Ms::Lmod,
        "module load python/3.11 || exit 8\nenvmod create -q -n g alpha",
    ));
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // Nothing newer yet.
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");

    channel::write_channel(&dir, &[channel::noarch_python("alpha", "2.0", &[])]);

    // A dry run, through a pipe: the move on stdout, and nothing changed.
    let out = t.run(&["update", "-n", "g", "--all", "--dry-run"]);
    let text = ok(&out);
    assert!(text.contains("alpha 1.0 → 2.0"), "stdout:\n{text}");
    assert!(!text.contains('\x1b'), "colour through a pipe:\n{text}");
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // The same on a terminal.
    let pty = t.run_on_pty(&["update", "-n", "g", "alpha", "--dry-run"]);
    let shown = stdout(&pty);
    assert!(pty.status.success(), "{shown}");
    assert!(shown.contains("alpha 1.0 → 2.0"), "terminal:\n{shown}");
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // The update itself, on a terminal.
    let pty = t.run_on_pty(&["update", "-n", "g", "alpha"]);
    let shown = stdout(&pty);
    assert!(pty.status.success(), "{shown}");
    assert!(shown.contains("alpha 1.0 → 2.0"), "terminal:\n{shown}");
    assert_eq!(alpha_in(&t), ["alpha-2.0-pyhd8ed1ab_0.json"]);

    let loaded = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load g/py3.11 || exit 9\npython -c 'import alpha; print(alpha.VERSION)'",
            sh(&t.module_root().display().to_string())
        ),
    );
    assert_eq!(ok(&loaded).trim(), "2.0");

    // Through a pipe, again: nothing left to move, and nothing changed.
    let before = std::fs::metadata(t.envs_dir().join("g/conda-meta")).unwrap();
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    assert!(!err.contains('\x1b'), "colour through a pipe:\n{err}");
    let after = std::fs::metadata(t.envs_dir().join("g/conda-meta")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino(), "the tree was swapped anyway");
}

#[test]
fn update_refuses_a_package_the_env_does_not_have() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-q", "-n", "g", "alpha=1.0"]));
    let out = t.run(&["update", "-n", "g", "gamma"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("gamma is not installed in g"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn an_env_that_requests_nothing_has_nothing_to_update_without_reading_a_channel() {
    let t = TestEnv::new();
    // A channel that cannot be read: a solve would fail on it.
    t.set_site_config("channels: [https://channel.invalid/none]\n");
    ok(&t.run(&["create", "-q", "-n", "e"]));
    let out = t.run(&["update", "-n", "e", "--all"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    assert!(!err.contains("channel.invalid"), "{err}");
}

/// A real CPython: its executable, its standard library and its `X.Y`.
struct Cpython {
    exe: std::path::PathBuf,
    stdlib: std::path::PathBuf,
    minor: String,
}

fn ask(python: &std::path::Path) -> Option<Cpython> {
    let out = std::process::Command::new(python)
        .args([
            "-I",
            "-S",
            "-c",
            "import os, sys, sysconfig\nprint(os.path.realpath(sys.executable))\nprint(sysconfig.get_path('stdlib'))\nprint('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let found = Cpython {
        exe: lines.next()?.into(),
        stdlib: lines.next()?.into(),
        minor: lines.next()?.to_string(),
    };
    out.status.success().then_some(found)
}

/// A CPython whose minor version is not `than`'s: `ENVMOD_TEST_OTHER_PYTHON`, else a
/// `python3.N` on PATH or one that pyenv or uv installed.
fn other_python(than: &Cpython) -> Cpython {
    let hint = "this test needs a second CPython minor version beside /usr/bin/python3.11: build one with pyenv (`pyenv install 3.12`) or install one with uv, or export ENVMOD_TEST_OTHER_PYTHON=/path/to/python3.12";
    if let Some(p) = std::env::var_os("ENVMOD_TEST_OTHER_PYTHON") {
        let found = ask(p.as_ref()).unwrap_or_else(|| panic!("{p:?} does not run; {hint}"));
        assert_ne!(found.minor, than.minor, "{p:?} is {}; {hint}", than.minor);
        return found;
    }
    let mut candidates = Vec::new();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        candidates.extend((6..=20).map(|n| dir.join(format!("python3.{n}"))));
    }
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    for installs in [
        home.join(".pyenv/versions"),
        home.join(".local/share/uv/python"),
    ] {
        if let Ok(entries) = std::fs::read_dir(installs) {
            candidates.extend(entries.filter_map(|e| Some(e.ok()?.path().join("bin/python3"))));
        }
    }
    candidates.sort();
    candidates
        .iter()
        .filter(|p| p.exists())
        .filter_map(|p| ask(p))
        .find(|p| p.minor != than.minor && p.minor.starts_with("3."))
        .unwrap_or_else(|| panic!("{hint}"))
}

/// Make `dir` a Python installation of `python`'s version, in place, as a site upgrades
/// /opt/python: `dir/bin/python3` a copy of its executable (so that it, not a link to
/// elsewhere, is the real path envmod records), its standard library beside it.
fn install_site_python(dir: &std::path::Path, python: &Cpython) {
    let bin = dir.join("bin/python3");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    let stdlib = dir.join(format!("lib/python{}", python.minor));
    for old in [&bin, &stdlib] {
        let _ = std::fs::remove_file(old);
    }
    std::fs::copy(&python.exe, &bin).unwrap();
    std::os::unix::fs::symlink(&python.stdlib, stdlib).unwrap();
}

#[test]
fn update_refuses_when_the_site_python_moved_to_another_minor_version() {
    let debian = ask(common::MODULE_PYTHON.as_ref()).expect("/usr/bin/python3.11 runs");
    let other = other_python(&debian);
    let t = TestEnv::with_channel();
    let site = t.path().join("opt-python");
    install_site_python(&site, &debian);
    let python = site.join("bin/python3");
    let config = std::fs::read_to_string(&t.site_config).unwrap();
    t.set_site_config(&format!("{config}python: {}\n", python.display()));
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "g",
        "--module-system",
        "lmod",
        "alpha=1.0",
    ]));
    let manifest = t.envs_dir().join("g/.envmod/manifest.json");
    let recorded = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        recorded.contains(&python.display().to_string()),
        "not made on {}:\n{recorded}",
        python.display()
    );
    let modulefile = t.module_root().join(format!("g/py{}.lua", debian.minor));
    let module_before = std::fs::read(&modulefile).expect("the modulefile");

    // A patch release in its place (the peers' CPython, 3.11.7 where pyenv built it) is
    // the same Python: update goes on.
    let patch = ask(&common::peers_python()).expect("the peers' python runs");
    assert_eq!(patch.minor, debian.minor, "the peers' python is not 3.11");
    install_site_python(&site, &patch);
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    install_site_python(&site, &debian);

    // The site replaces its Python, in place, by another minor version.
    install_site_python(&site, &other);
    let conda_meta = t.envs_dir().join("g/conda-meta");
    use std::os::unix::fs::MetadataExt;
    let tree_before = std::fs::metadata(&conda_meta).unwrap().ino();

    let out = t.run(&["update", "-n", "g", "--all"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one error and its hint:\n{err}");
    assert!(
        lines[0].contains(&format!("made on {}", site_version(&recorded)))
            && lines[0].contains("nothing was changed"),
        "{err}"
    );
    assert!(
        lines[1].contains("envmod export -n g") && lines[1].contains("envmod create -f"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "colour through a pipe:\n{err}");

    // On a terminal, the same refusal.
    let pty = t.run_on_pty(&["update", "-n", "g", "alpha"]);
    let shown = stdout(&pty);
    assert!(!pty.status.success(), "{shown}");
    assert!(
        shown.contains("envmod export -n g") && shown.contains("envmod create -f"),
        "terminal:\n{shown}"
    );

    // Nothing changed: the manifest, the tree and the modulefile, which still loads.
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), recorded);
    assert_eq!(std::fs::metadata(&conda_meta).unwrap().ino(), tree_before);
    assert_eq!(std::fs::read(&modulefile).unwrap(), module_before);
    let loaded = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load g/py{} || exit 9\ncommand -v python",
            sh(&t.module_root().display().to_string()),
            debian.minor
        ),
    );
    assert_eq!(
        ok(&loaded).trim(),
        t.envs_dir().join("g/bin/python").display().to_string()
    );
}

/// The full version of the site Python a manifest records.
fn site_version(manifest: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(manifest).unwrap();
    json["python"]["version"]
        .as_str()
        .expect("python.version")
        .to_string()
}

#[test]
fn update_with_nothing_to_move_finishes_outputs_an_interrupted_command_left_pending() {
    let t = TestEnv::with_channel();
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "g",
        "--module-system",
        "lmod",
        "alpha",
    ]));
    let modulefile = t.module_root().join("g/py3.11.lua");
    let manifest = t.envs_dir().join("g/.envmod/manifest.json");
    let out = t
        .envmod()
        .args(["install", "-q", "-n", "g", "beta"])
        .env("ENVMOD_TEST_KILL_AT", "change:exchanged")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("\"outputs_pending\": true")
    );
    let stale = std::fs::read_to_string(&modulefile).unwrap();
    assert!(!stale.contains("beta/1.0"), "{stale}");

    // A dry run leaves them pending.
    ok(&t.run(&["update", "-n", "g", "--all", "--dry-run"]));
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("\"outputs_pending\": true")
    );

    use std::os::unix::fs::MetadataExt;
    let tree_before = std::fs::metadata(t.envs_dir().join("g/conda-meta"))
        .unwrap()
        .ino();
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    assert!(err.contains("finishing the modulefile"), "{err}");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(!text.contains("outputs_pending"), "still pending:\n{text}");
    let finished = std::fs::read_to_string(&modulefile).unwrap();
    assert!(finished.contains("beta/1.0"), "not finished:\n{finished}");
    // Finishing the outputs is no reason to clone the tree.
    assert_eq!(
        std::fs::metadata(t.envs_dir().join("g/conda-meta"))
            .unwrap()
            .ino(),
        tree_before,
        "the tree was swapped"
    );
}
