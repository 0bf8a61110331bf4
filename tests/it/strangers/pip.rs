//! The pip packages of a lock file or a bundle that someone else wrote: a lock's pip entry is
//! a wheel at a URL or a path beside the lock, with the sha256 it must have, never a line
//! for pip to interpret; a bundle carries its wheels, so `--offline` needs nothing else; an
//! interrupted bundle leaves nothing behind; a changed archive is named as one.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::common::{self, MODULE_PYTHON, TestEnv, channel, ok, stderr};

fn create(t: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["create", "--site-python", MODULE_PYTHON];
    all.extend_from_slice(args);
    t.run(&all)
}

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

/// A lock (pixi.lock v7) with no conda packages and one pip entry per `(location, name,
/// version, sha256)`.
fn lock(channel: &Path, entries: &[(&str, &str, &str, Option<&str>)]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut text = format!(
        "version: 7\nplatforms:\n- name: linux-64\nenvironments:\n  default:\n    channels:\n    - url: {}\n    packages:\n      linux-64:\n",
        channel::channel_url(channel)
    );
    for (location, ..) in entries {
        text.push_str(&format!("      - pypi: {}\n", quote(location)));
    }
    text.push_str("packages:\n");
    for (location, name, version, sha256) in entries {
        text.push_str(&format!(
            "- pypi: {}\n  name: {name}\n  version: '{version}'\n",
            quote(location)
        ));
        if let Some(sha256) = sha256 {
            text.push_str(&format!("  sha256: {sha256}\n"));
        }
    }
    text
}

/// The 1-based line of `text` that holds `needle`, last match (the package entry).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or_else(|| panic!("{needle:?} not in\n{text}"))
}

fn sha256_file(path: &Path) -> String {
    channel::sha256_hex(std::fs::read(path).unwrap())
}

/// A copy of `wheel` at `out` whose module says `VALUE = 'tampered'` (and runs nothing else).
fn tampered_copy(wheel: &Path, out: &Path) {
    let script = r#"
import sys, zipfile
src, dst = sys.argv[1:3]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("/__init__.py"):
            data = b"VALUE = 'tampered'\ndef main():\n    print(VALUE)\n"
        zout.writestr(item, data)
"#;
    let tmp = out.with_extension("tmp");
    ok(&Command::new(MODULE_PYTHON)
        .args(["-c", script])
        .arg(wheel)
        .arg(&tmp)
        .output()
        .unwrap());
    std::fs::rename(tmp, out).unwrap();
}

/// A project directory whose setup.py, if anything runs it, writes `marker`.
fn hostile_project(dir: &Path, marker: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("setup.py"),
        format!(
            "import pathlib\npathlib.Path({:?}).write_text('setup.py ran')\nfrom setuptools import setup\nsetup(name='evil', version='1.0', py_modules=[])\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

/// `evil-1.0.tar.gz` of [`hostile_project`], in `dir`.
fn hostile_sdist(dir: &Path, marker: &Path) -> PathBuf {
    let project = hostile_project(&dir.join("evil-1.0"), marker);
    std::fs::write(
        project.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    )
    .unwrap();
    let out = dir.join("evil-1.0.tar.gz");
    ok(&Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg("evil-1.0")
        .output()
        .unwrap());
    out
}

#[test]
fn a_locks_pip_entries_that_are_options_trees_or_unhashed_are_refused_by_line() {
    let t = TestEnv::with_channel();
    let marker = t.path().join("setup-py-ran");
    let project = hostile_project(&t.path().join("project"), &marker);
    // What a plain `name==version` entry would fetch, unverified, if pip were asked.
    let wheels = t.path().join("findlinks");
    std::fs::create_dir_all(&wheels).unwrap();
    common::build_wheel(&wheels, "shared_tool", "1.0");
    let chan = t.path().join("channel");
    let dir_entry = format!("-e {}", project.display());
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    // (location, name, sha256, what the error's line holds)
    let cases: [(String, &str, Option<&str>, &str); 5] = [
        (dir_entry, "evil", None, "-e"),
        (
            "--index-url=http://127.0.0.1:9/simple".into(),
            "evil",
            Some(&a),
            "--index-url",
        ),
        ("-r /etc/passwd".into(), "evil", Some(&b), "-r /etc/passwd"),
        (
            "shared_tool==1.0".into(),
            "shared_tool",
            None,
            "shared_tool==1.0",
        ),
        (project.display().to_string(), "evil", Some(&c), "project"),
    ];
    for (i, (location, name, sha, needle)) in cases.iter().enumerate() {
        let text = lock(&chan, &[(location, name, "1.0", *sha)]);
        let path = t.path().join(format!("hostile{i}.lock"));
        std::fs::write(&path, &text).unwrap();
        let env = format!("h{i}");
        let out = t
            .envmod()
            .args(["create", "--site-python", MODULE_PYTHON, "-n", &env, "-f"])
            .arg(&path)
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", &wheels)
            .output()
            .unwrap();
        let err = refused(&out);
        let line = line_of(&text, needle);
        assert!(
            err.contains(&format!("{}, line {line}", path.display())),
            "{location}: the line is not named: {err}"
        );
        assert!(!err.contains("root:x:0:0"), "{err}");
        assert!(!marker.exists(), "{location}: setup.py ran");
        nothing_made(&t, &env);
    }
}

#[test]
fn a_locked_sdist_whose_hash_differs_never_runs_its_setup_py() {
    let t = TestEnv::with_channel();
    let marker = t.path().join("setup-py-ran");
    let sdist = hostile_sdist(&t.path().join("dl"), &marker);
    let text = lock(
        &t.path().join("channel"),
        &[(
            url::Url::from_file_path(&sdist).unwrap().as_ref(),
            "evil",
            "1.0",
            Some(&"0".repeat(64)),
        )],
    );
    let path = t.path().join("sdist.lock");
    std::fs::write(&path, text).unwrap();
    let err = refused(&create(&t, &["-n", "sd", "-f", path.to_str().unwrap()]));
    assert!(!marker.exists(), "setup.py ran: {err}");
    assert!(err.contains("evil"), "{err}");
    nothing_made(&t, "sd");
}

#[test]
fn a_relative_pip_location_is_found_beside_the_lock_and_checked_against_its_hash() {
    let t = TestEnv::with_channel();
    let lock_dir = t.path().join("shared");
    let wheel = common::build_wheel(
        &{
            let d = lock_dir.join("wheels");
            std::fs::create_dir_all(&d).unwrap();
            d
        },
        "shared_tool",
        "1.0",
    );
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    // The same relative path from where the user happens to run envmod holds another wheel.
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("wheels")).unwrap();
    tampered_copy(&wheel, &elsewhere.join("wheels").join(&name));

    let relative = format!("wheels/{name}");
    let text = lock(
        &t.path().join("channel"),
        &[(&relative, "shared_tool", "1.0", Some(&sha256_file(&wheel)))],
    );
    let path = lock_dir.join("env.lock");
    std::fs::write(&path, &text).unwrap();
    let out = t
        .envmod()
        .args(["create", "--site-python", MODULE_PYTHON, "-n", "rel", "-f"])
        .arg(&path)
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    ok(&out);
    let prefix = t.envs_dir().join("rel");
    let module =
        std::fs::read_to_string(site_packages(&prefix).join("shared_tool/__init__.py")).unwrap();
    assert!(module.contains("hello from shared_tool 1.0"), "{module}");
    let hello = ok(&Command::new(prefix.join("bin/shared_tool-hello"))
        .output()
        .unwrap());
    assert_eq!(hello, "hello from shared_tool 1.0\n");

    // The environment exports to a lock that names the same wheel, with its hash.
    let again = t.path().join("again.lock");
    let out = t.run(&[
        "export",
        "-n",
        "rel",
        "--format",
        "lock",
        "-o",
        again.to_str().unwrap(),
    ]);
    ok(&out);
    assert!(!stderr(&out).contains("no sha256"), "{}", stderr(&out));
    let exported = std::fs::read_to_string(&again).unwrap();
    assert!(exported.contains(&sha256_file(&wheel)), "{exported}");
    assert!(exported.contains(&*wheel.to_string_lossy()), "{exported}");

    // The wheel beside the lock changed after it was locked: refused, named as tampered.
    tampered_copy(&wheel, &wheel);
    let err = refused(&t.run(&["create", "-n", "rel2", "-f", path.to_str().unwrap()]));
    assert!(err.contains(&name), "{err}");
    assert!(err.contains("sha256") && err.contains("tampered"), "{err}");
    nothing_made(&t, "rel2");
}

/// A bundle of an environment with two pip-installed wheels: one installed from its file
/// (pip recorded where), one found by name (pip recorded nothing, and its wheel is gone).
#[test]
fn a_bundle_carries_its_pip_wheels_and_installs_them_with_no_network() {
    let t = TestEnv::with_channel();
    let wheels = t.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let by_path = common::build_wheel(&wheels, "shared_tool", "1.0");
    let findlinks = t.path().join("findlinks");
    std::fs::create_dir_all(&findlinks).unwrap();
    common::build_wheel(&findlinks, "other_tool", "2.0");

    ok(&create(&t, &["-n", "bp", "alpha"]));
    let prefix = t.envs_dir().join("bp");
    let python = prefix.join("bin/python");
    for args in [
        vec![by_path.display().to_string()],
        vec![
            "--find-links".into(),
            findlinks.display().to_string(),
            "other_tool".into(),
        ],
    ] {
        ok(&Command::new(&python)
            .args(["-m", "pip", "install", "--no-input", "--no-index"])
            .args(&args)
            .output()
            .unwrap());
    }
    std::fs::remove_dir_all(&findlinks).unwrap();
    let modules = |prefix: &Path| -> Vec<Vec<u8>> {
        ["shared_tool", "other_tool"]
            .iter()
            .map(|m| std::fs::read(site_packages(prefix).join(m).join("__init__.py")).unwrap())
            .collect()
    };
    let before = modules(&prefix);

    let bundle = t.path().join("bp.tar");
    ok(&t.run(&[
        "export",
        "-n",
        "bp",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    ok(&t.run(&["delete", "-n", "bp", "--yes"]));
    // The original wheel is replaced by a tampered one, the channel and caches are gone,
    // and every way to the network is closed.
    tampered_copy(&by_path, &by_path);
    std::fs::remove_dir_all(t.path().join("channel")).unwrap();
    std::fs::remove_dir_all(t.home.join(".cache")).ok();
    let offline = |name: &str, bundle: &Path| {
        t.envmod()
            .args([
                "create",
                "--site-python",
                MODULE_PYTHON,
                "--offline",
                "-n",
                name,
                "-f",
            ])
            .arg(bundle)
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("PIP_FIND_LINKS", "http://127.0.0.1:9/links")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    ok(&offline("bp", &bundle));
    assert_eq!(modules(&prefix), before, "not the bundled wheels");
    for (script, want) in [
        ("shared_tool-hello", "hello from shared_tool 1.0\n"),
        ("other_tool-hello", "hello from other_tool 2.0\n"),
    ] {
        let path = prefix.join("bin").join(script);
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            first.lines().next().unwrap(),
            format!("#!{}/bin/python", prefix.display())
        );
        assert_eq!(ok(&Command::new(&path).output().unwrap()), want);
    }

    // A wheel changed inside the bundle is refused before anything is built.
    let changed = t.path().join("changed.tar");
    let script = r#"
import io, sys, tarfile
src, dst = sys.argv[1:3]
found = False
with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as tout:
    for m in tin.getmembers():
        data = tin.extractfile(m).read() if m.isfile() else None
        if m.name.startswith("pip/other_tool-"):
            found = True
            data = bytearray(data)
            data[len(data) // 2] ^= 0x01
            data = bytes(data)
        tout.addfile(m, io.BytesIO(data) if data is not None else None)
assert found, "no pip/other_tool wheel in the bundle"
"#;
    ok(&Command::new(MODULE_PYTHON)
        .args(["-c", script])
        .arg(&bundle)
        .arg(&changed)
        .output()
        .unwrap());
    let err = refused(&offline("bp2", &changed));
    assert!(
        err.contains("other_tool") && err.contains("tampered"),
        "{err}"
    );
    nothing_made(&t, "bp2");
}

/// The names in `dir` that an interrupted bundle would leave.
fn bundle_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.contains("envmod-bundle")
                        || n.contains("envmod-tmp")
                        || n.contains("envmod-removing")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_interrupted_bundle_leaves_nothing_and_doctor_names_what_a_kill_left() {
    let t = TestEnv::with_channel();
    let wheels = t.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let wheel = common::build_wheel(&wheels, "shared_tool", "1.0");
    ok(&create(&t, &["-n", "src", "alpha", "gamma"]));
    ok(&Command::new(t.envs_dir().join("src/bin/python"))
        .args(["-m", "pip", "install", "--no-input", "--no-index"])
        .arg(&wheel)
        .output()
        .unwrap());
    let out_dir = t.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bundle = out_dir.join("src.tar");
    ok(&t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let good = std::fs::read(&bundle).unwrap();

    // SIGTERM from outside, at staggered moments, and at a named point inside the work.
    let run = |args: &[&str], delay_ms: Option<u64>, point: Option<(&str, &str)>| {
        let mut cmd = t.envmod();
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some((var, name)) = point {
            cmd.env(var, name);
        }
        let child = cmd.spawn().unwrap();
        if let Some(ms) = delay_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            // SAFETY: a signal to the child this test started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        child.wait_with_output().unwrap()
    };
    let create_args = [
        "create",
        "--site-python",
        MODULE_PYTHON,
        "-n",
        "again",
        "-f",
        bundle.to_str().unwrap(),
    ];
    let export_args = [
        "export",
        "-n",
        "src",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ];
    let mut interrupted = 0;
    for delay in [None, Some(20), Some(60), Some(120), Some(250)] {
        for (args, point) in [
            (&create_args[..], "bundle:unpacking"),
            (&export_args[..], "bundle:writing"),
        ] {
            let term = delay.is_none().then_some(("ENVMOD_TEST_TERM_AT", point));
            let out = run(args, delay, term);
            if !out.status.success() {
                interrupted += 1;
                let err = stderr(&out);
                // A signal that arrives before envmod has set up its handler (a loaded
                // machine, 20 ms) ends it as the default action does, before it made anything.
                use std::os::unix::process::ExitStatusExt;
                let before_handler = out.status.signal() == Some(libc::SIGTERM) && err.is_empty();
                assert!(
                    before_handler || err.contains("interrupted"),
                    "{args:?} {delay:?}: {} {err}",
                    out.status
                );
            }
            assert_eq!(
                bundle_leftovers(&t.envs_dir()),
                Vec::<String>::new(),
                "{args:?} {delay:?}"
            );
            assert_eq!(
                bundle_leftovers(&out_dir),
                Vec::<String>::new(),
                "{args:?} {delay:?}"
            );
            if t.envs_dir().join("again").exists() {
                ok(&t.run(&["delete", "-n", "again", "--yes"]));
            }
            // An export either finished or left the old bundle as it was.
            assert_eq!(std::fs::read(&bundle).unwrap().len(), good.len());
        }
    }
    assert!(interrupted >= 2, "only {interrupted} runs were interrupted");

    // A SIGKILL cannot clean up: doctor names what it left.
    let out = run(
        &create_args,
        None,
        Some(("ENVMOD_TEST_KILL_AT", "bundle:unpacking")),
    );
    assert!(!out.status.success());
    let left = bundle_leftovers(&t.envs_dir());
    assert_eq!(left.len(), 1, "{left:?}");
    let report = common::stdout(&t.run(&["doctor"]));
    let path = t.envs_dir().join(&left[0]);
    assert!(
        report.contains(&path.display().to_string()) && report.contains("rm -rf"),
        "{report}"
    );
}

/// A channel whose repodata gives alpha 2.0 a sha256 its archive does not have.
#[test]
fn a_package_whose_hash_differs_is_named_as_possibly_tampered() {
    let t = TestEnv::with_channel();
    let chan = t.path().join("channel");
    let other = t.path().join("other");
    channel::write_channel(
        &other,
        &[channel::noarch_python("alpha", "2.0", &[])
            .with_file("site-packages/alpha/extra.py", "X = 1\n")],
    );
    let archive = "noarch/alpha-2.0-pyhd8ed1ab_0.conda";
    std::fs::copy(other.join(archive), chan.join(archive)).unwrap();
    let err = refused(&create(&t, &["-n", "tam", "alpha"]));
    assert!(err.contains("alpha-2.0"), "{err}");
    assert!(err.contains("sha256") && err.contains("differs"), "{err}");
    assert!(err.contains("tampered"), "{err}");
    nothing_made(&t, "tam");

    // The same archive, changed after an environment was built from it, in a bundle.
    let clean = TestEnv::with_channel();
    ok(&create(&clean, &["-n", "b", "alpha"]));
    let chan = clean.path().join("channel");
    std::fs::copy(other.join(archive), chan.join(archive)).unwrap();
    std::fs::remove_dir_all(clean.home.join(".cache")).ok();
    let out = clean.path().join("b.tar");
    let err = refused(&clean.run(&[
        "export",
        "-n",
        "b",
        "--format",
        "bundle",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert!(
        err.contains("alpha-2.0") && err.contains("differs") && err.contains("tampered"),
        "{err}"
    );
    assert!(!out.exists());
}
