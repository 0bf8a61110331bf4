//! Sharing environments between sites: `envmod export` and `envmod create -f`, with real
//! module systems, the env's own pip, and the files other tools read.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Ms, TestEnv, channel, ok, sh, stderr};

/// A test world whose site config points at a freshly built standard channel, and a
/// directory of wheels for pip (found through `PIP_FIND_LINKS`, with no index).
fn world() -> (TestEnv, PathBuf) {
    let t = TestEnv::with_channel();
    let wheels = t.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    common::build_wheel(&wheels, "shared_tool", "1.0");
    (t, wheels)
}

fn pip_env(wheels: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PIP_NO_INDEX", "1".to_string()),
        ("PIP_FIND_LINKS", wheels.display().to_string()),
    ]
}

fn shell(t: &TestEnv, ms: Ms, wheels: &Path, script: &str) -> std::process::Output {
    let vars = pip_env(wheels);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.module_shell_with(ms, script, &vars)
}

/// `fields` of every conda package record in the env, space-separated, one line each, sorted.
fn conda_meta(prefix: &Path, fields: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(prefix.join("conda-meta")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let values: Vec<&str> = fields
            .iter()
            .map(|f| v[f].as_str().unwrap_or("-"))
            .collect();
        out.push(values.join(" "));
    }
    out.sort();
    out
}

/// `name version build sha256` of every conda package in the env, sorted.
fn conda_records(prefix: &Path) -> Vec<String> {
    conda_meta(prefix, &["name", "version", "build", "sha256"])
}

fn module_use(t: &TestEnv) -> String {
    format!("module use {}", sh(&t.module_root().display().to_string()))
}

/// What a user checks after `module load`: the modules, the variables, the conda package,
/// the pip package and its console script.
fn loaded_view(t: &TestEnv, ms: Ms, wheels: &Path, module: &str) -> String {
    let script = format!(
        "{}\nmodule load {module} || exit 9\necho \"modules=$LOADEDMODULES\"\necho \"gcc=${{FAKE_GCC_VERSION:-}} foo=${{FOO_ACTIVATED:-}} home=${{FOO_HOME:-}} course=${{COURSE_ID:-}}\"\npython -c 'import alpha, shared_tool; print(alpha.VERSION, shared_tool.VALUE)'\nshared_tool-hello",
        module_use(t)
    );
    ok(&shell(t, ms, wheels, &script))
}

#[test]
fn export_delete_create_rebuilds_the_same_env_in_site_mode() {
    for ms in Ms::BOTH {
        let (t, wheels) = world();
        let prefix = t.envs_dir().join("rt");
        // A course env: conda packages, a variable of its own, a pip-installed wheel with a
        // console script, built on gcc and the site Python.
        let setup = format!(
            "module load gcc/12.2 python/3.11\nenvmod create -n rt alpha gamma || exit 1\n{}\nmodule load rt/py3.11\npip install --no-input shared_tool || exit 2",
            module_use(&t)
        );
        ok(&shell(&t, ms, &wheels, &setup));
        let state = prefix.join("conda-meta/state");
        std::fs::write(&state, r#"{"env_vars": {"COURSE_ID": "cs101"}}"#).unwrap();
        ok(&t.run(&["module", "-n", "rt"]));
        let before_records = conda_records(&prefix);
        let before_view = loaded_view(&t, ms, &wheels, "rt/py3.11");

        let exported = t.path().join("rt.yml");
        ok(&t.run(&["export", "-n", "rt", "-o", exported.to_str().unwrap()]));
        let text = std::fs::read_to_string(&exported).unwrap();
        for needle in [
            "name: rt",
            "- alpha",
            "- gamma",
            "- shared_tool==1.0",
            "COURSE_ID: \"cs101\"",
            "FOO_ACTIVATED: \"yes\"",
            "- gcc/12.2",
            "mode: site",
            "platform: linux-64",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(
            !text.contains(&*prefix.to_string_lossy()),
            "the export names this site's prefix:\n{text}"
        );

        ok(&t.run(&["delete", "-n", "rt", "--yes"]));
        assert!(!prefix.exists());
        // Rebuilt from a clean shell: the modules come from the file, not from the shell.
        let rebuild = format!(
            "module load python/3.11\nenvmod create -f {} || exit 1",
            sh(&exported.display().to_string())
        );
        let out = shell(&t, ms, &wheels, &rebuild);
        ok(&out);

        assert_eq!(conda_records(&prefix), before_records);
        let after_view = loaded_view(&t, ms, &wheels, "rt/py3.11");
        assert_eq!(after_view, before_view);
        assert!(after_view.contains("gcc=12.2 foo=yes"), "{after_view}");
        assert!(after_view.contains("course=cs101"), "{after_view}");
        assert!(
            after_view.contains("hello from shared_tool 1.0"),
            "{after_view}"
        );
        // The script pip wrote runs from the final prefix, not the staging directory.
        let script = std::fs::read_to_string(prefix.join("bin/shared_tool-hello")).unwrap();
        let first = script.lines().next().unwrap();
        assert_eq!(first, format!("#!{}/bin/python", prefix.display()));
    }
}

/// Site B: a module tree with another gcc than site A's, and nothing else.
fn site_b(t: &TestEnv) -> PathBuf {
    let root = t.path().join("site-b-modules");
    std::fs::create_dir_all(root.join("gcc")).unwrap();
    std::fs::write(
        root.join("gcc/12.3"),
        "#%Module1.0\nmodule-whatis \"fake gcc 12.3\"\nsetenv FAKE_GCC_VERSION 12.3\n",
    )
    .unwrap();
    root
}

fn nothing_created(t: &TestEnv, name: &str) {
    assert!(!t.envs_dir().join(name).exists(), "{name} was created");
    assert!(
        !t.module_root().join(name).exists(),
        "a modulefile for {name} was written"
    );
}

#[test]
fn another_site_maps_the_modules_or_refuses_and_lists_them() {
    for ms in Ms::BOTH {
        let (t, wheels) = world();
        let file = t.path().join("two.yml");
        let on_a = format!(
            "module load gcc/12.2 openmpi/4.1\nenvmod create -n two alpha || exit 1\nenvmod export -n two -o {f} || exit 2\nenvmod delete -n two --yes",
            f = sh(&file.display().to_string())
        );
        ok(&shell(&t, ms, &wheels, &on_a));
        let b = site_b(&t);
        let on_b = |args: &str| {
            shell(
                &t,
                ms,
                &wheels,
                &format!(
                    "export MODULEPATH={}\nenvmod create -f {} {args}",
                    sh(&b.display().to_string()),
                    sh(&file.display().to_string())
                ),
            )
        };

        // Without a map: refused before anything is built, naming every missing module and
        // the module_map lines to add.
        let out = on_b("");
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("gcc/12.2 openmpi/4.1"), "{err}");
        assert!(err.contains("gcc/12.2: <module here>"), "{err}");
        assert!(err.contains("openmpi/4.1: <module here>"), "{err}");
        nothing_created(&t, "two");

        // With a map: gcc/12.2 is gcc/12.3 here, and openmpi is left out.
        let map = t.path().join("map.yaml");
        std::fs::write(&map, "gcc/12.2: gcc/12.3\nopenmpi/4.1: null\n").unwrap();
        ok(&on_b(&format!(
            "--module-map {}",
            sh(&map.display().to_string())
        )));
        let load = format!(
            "export MODULEPATH={}\n{}\nmodule load two/py3.11 || exit 9\necho \"$LOADEDMODULES gcc=$FAKE_GCC_VERSION\"",
            sh(&b.display().to_string()),
            module_use(&t)
        );
        let text = ok(&shell(&t, ms, &wheels, &load));
        assert!(text.contains("gcc/12.3"), "{text}");
        assert!(text.contains("gcc=12.3"), "{text}");
        assert!(!text.contains("openmpi"), "{text}");
        ok(&t.run(&["delete", "-n", "two", "--yes"]));

        // The same map from the user's config; --skip-missing-modules builds without the
        // rest and records which were left out.
        let config = t.home.join(".config/envmod/config.yaml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "module_map:\n  gcc/12.2: gcc/12.3\n").unwrap();
        let out = on_b("--skip-missing-modules");
        ok(&out);
        assert!(stderr(&out).contains("openmpi/4.1"), "{}", stderr(&out));
        let manifest =
            std::fs::read_to_string(t.envs_dir().join("two/.envmod/manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            manifest["skipped_modules"],
            serde_json::json!(["openmpi/4.1"])
        );
        assert_eq!(manifest["modules"][0]["full_name"], "gcc/12.3");
    }
}

#[test]
fn a_file_for_another_python_is_refused_before_anything_is_built() {
    let (t, _wheels) = world();
    ok(&t.run(&["create", "-n", "py", "alpha"]));
    let file = t.path().join("py.yml");
    ok(&t.run(&["export", "-n", "py", "-o", file.to_str().unwrap()]));
    ok(&t.run(&["delete", "-n", "py", "--yes"]));
    let text = std::fs::read_to_string(&file).unwrap();
    let version_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("version: 3."))
        .unwrap()
        .to_string();
    std::fs::write(&file, text.replace(&version_line, "    version: 3.10.4")).unwrap();
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("built for Python 3.10"), "{err}");
    assert!(err.contains("3.11"), "{err}");
    assert!(err.contains("--python 3.10"), "{err}");
    assert!(err.contains("--site-python"), "{err}");
    nothing_created(&t, "py");
}

#[test]
fn export_delete_create_rebuilds_a_conda_python_env() {
    for ms in Ms::BOTH {
        let (t, wheels) = world();
        let prefix = t.envs_dir().join("cp");
        let setup = format!(
            "module load gcc/12.2\nenvmod create -n cp --python 3.12 alpha libfoo || exit 1\n{}\nmodule load cp/py3.12\npython -m pip install --no-input shared_tool || exit 2",
            module_use(&t)
        );
        ok(&shell(&t, ms, &wheels, &setup));
        let before_records = conda_records(&prefix);
        assert!(
            before_records
                .iter()
                .any(|r| r.starts_with("python 3.12.0")),
            "{before_records:?}"
        );
        let before_view = loaded_view(&t, ms, &wheels, "cp/py3.12");
        assert!(
            before_view.contains("hello from shared_tool"),
            "{before_view}"
        );

        let file = t.path().join("cp.yml");
        ok(&t.run(&["export", "-n", "cp", "-o", file.to_str().unwrap()]));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("mode: conda"), "{text}");
        assert!(text.contains("- python=3.12"), "{text}");
        ok(&t.run(&["delete", "-n", "cp", "--yes"]));
        ok(&shell(
            &t,
            ms,
            &wheels,
            &format!("envmod create -f {}", sh(&file.display().to_string())),
        ));
        assert_eq!(conda_records(&prefix), before_records);
        assert_eq!(loaded_view(&t, ms, &wheels, "cp/py3.12"), before_view);
    }
}

#[test]
fn pinned_export_lists_every_package_as_name_version_build() {
    let (t, _wheels) = world();
    ok(&t.run(&["create", "-n", "pin", "beta"]));
    let out = t.run(&["export", "-n", "pin", "--pinned"]);
    let text = ok(&out);
    assert!(text.contains("- alpha=2.0="), "{text}");
    assert!(text.contains("- beta=1.0="), "{text}");
    // And it builds again, exactly those.
    let file = t.path().join("pin.yml");
    std::fs::write(&file, text.replace("name: pin", "name: pin2")).unwrap();
    ok(&t.run(&["create", "-f", file.to_str().unwrap()]));
    assert_eq!(
        conda_records(&t.envs_dir().join("pin2")),
        conda_records(&t.envs_dir().join("pin"))
    );
}

#[test]
fn a_hand_written_conda_file_with_every_form_builds() {
    let (t, wheels) = world();
    let dir = t.path().join("project");
    std::fs::create_dir_all(dir.join("reqs")).unwrap();
    // The channel given relative to the file, a `channel::pkg`, name=version=build, a pip
    // section with -r, a local wheel path and an --index-url line, and a stale prefix.
    std::fs::rename(t.path().join("channel"), dir.join("chan")).unwrap();
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&wheel, dir.join(wheel.file_name().unwrap())).unwrap();
    common::build_wheel(&dir.join("reqs"), "other_tool", "2.0");
    std::fs::write(
        dir.join("reqs/requirements.txt"),
        "--find-links .\nother_tool==2.0\n",
    )
    .unwrap();
    let chan_url = format!("file://{}", dir.join("chan").display());
    let beta = std::fs::read_dir(dir.join("chan/noarch"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("beta-1.0-"))
        .unwrap();
    let beta_build = beta
        .trim_start_matches("beta-1.0-")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join("environment.yml"),
        format!(
            "name: handmade\nprefix: /somewhere/else/handmade\nchannels:\n  - ./chan\n  - nodefaults\ndependencies:\n  - {chan_url}::alpha=1.0\n  - beta=1.0={beta_build}\n  - pip:\n    - --index-url http://127.0.0.1:9/simple\n    - -r reqs/requirements.txt\n    - ./{}\nvariables:\n  OMP_NUM_THREADS: \"4\"\n",
            wheel.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    // No PIP_* variables: pip finds everything from the file's own lines.
    let out = t
        .envmod()
        .args(["create", "-f", "project/environment.yml"])
        .env("PIP_NO_INDEX", "1")
        .output()
        .unwrap();
    ok(&out);
    assert!(
        stderr(&out).contains("ignoring `prefix: /somewhere/else/handmade`"),
        "{}",
        stderr(&out)
    );
    let prefix = t.envs_dir().join("handmade");
    let records = conda_records(&prefix);
    assert!(
        records.iter().any(|r| r.starts_with("alpha 1.0 ")),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.starts_with(&format!("beta 1.0 {beta_build}"))),
        "{records:?}"
    );
    let py = format!(
        "{}/bin/python -c 'import shared_tool, other_tool; print(shared_tool.VALUE, other_tool.VALUE)'",
        sh(&prefix.display().to_string())
    );
    let text = ok(&std::process::Command::new("bash")
        .args(["-c", &py])
        .output()
        .unwrap());
    assert!(text.contains("hello from other_tool 2.0"), "{text}");
    let state = std::fs::read_to_string(prefix.join("conda-meta/state")).unwrap();
    assert!(state.contains("OMP_NUM_THREADS"), "{state}");
}

#[test]
fn bad_files_get_one_line_errors_naming_the_file_and_line() {
    let (t, _wheels) = world();
    let write = |name: &str, text: &str| {
        let p = t.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (
            write(
                "broken.yml",
                "name: broken\ndependencies:\n  - alpha\n  oops: [\n",
            ),
            "broken.yml, line",
        ),
        (
            write(
                "unknown.yml",
                "name: unknown\ndependencies:\n  - alpha\n  - no-such-package\n",
            ),
            "unknown.yml, line 4",
        ),
        (
            write(
                "badspec.yml",
                "name: badspec\ndependencies:\n  - 'bad spec!!'\n",
            ),
            "badspec.yml, line 3",
        ),
        (
            write(
                "badvar.yml",
                "name: badvar\ndependencies:\n  - alpha\nvariables:\n  A: \"x\\ny\"\n",
            ),
            "badvar.yml, line 5",
        ),
        (
            write(
                "badpip.yml",
                "name: badpip\ndependencies:\n  - alpha\n  - pip:\n    - no-such-dist==9.9\n",
            ),
            "pip said",
        ),
    ];
    for (file, needle) in cases {
        let out = t
            .envmod()
            .args(["create", "-f", file.to_str().unwrap()])
            .env("PIP_NO_INDEX", "1")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} built", file.display());
        let err = stderr(&out);
        let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{err}");
        if needle == "pip said" {
            // pip's own last lines follow the error line.
            assert!(err.contains("no-such-dist"), "{err}");
        } else {
            assert!(error_lines[0].contains(needle), "{needle:?} not in: {err}");
            assert!(!error_lines[0].trim_end().ends_with(':'), "{err}");
        }
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        nothing_created(&t, &name);
        // No staging directory is left behind either (the empty lock file stays, as after
        // any command).
        let leftovers: Vec<_> = std::fs::read_dir(t.envs_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.iter().all(|n| {
                let n = n.to_string_lossy();
                !n.contains(&name) || n.ends_with(".envmod-lock")
            }),
            "{leftovers:?}"
        );
    }
    let out = t.run(&["create", "-f", "missing.yml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.yml"), "{}", stderr(&out));
}

/// The archives of a channel stay, its repodata goes: whatever builds now did not solve.
fn remove_repodata(channel: &Path) {
    for sub in std::fs::read_dir(channel).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for entry in std::fs::read_dir(&sub).unwrap() {
                let p = entry.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("repodata")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
    }
}

/// Empty the package and repodata caches (the world's XDG_CACHE_HOME).
fn empty_caches(t: &TestEnv) {
    let cache = t.home.join(".cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).unwrap();
    }
}

#[test]
fn a_lock_rebuilds_exactly_with_no_solve_in_both_modes() {
    for (ms, conda) in [(Ms::Lmod, false), (Ms::Tcl, true)] {
        let (t, wheels) = world();
        let prefix = t.envs_dir().join("lk");
        let (create, module) = if conda {
            (
                "envmod create -n lk --python 3.12 alpha libfoo",
                "lk/py3.12",
            )
        } else {
            ("envmod create -n lk alpha gamma", "lk/py3.11")
        };
        let pip = if conda { "python -m pip" } else { "pip" };
        // Installed from its wheel, so pip records where it came from and the lock can give
        // its sha256 (a lock refuses a pip package it cannot check).
        let wheel = wheels.join("shared_tool-1.0-py3-none-any.whl");
        let setup = format!(
            "module load gcc/12.2\n{create} || exit 1\n{}\nmodule load {module}\n{pip} install --no-input {} || exit 2",
            module_use(&t),
            sh(&wheel.display().to_string())
        );
        ok(&shell(&t, ms, &wheels, &setup));
        let before_records = conda_records(&prefix);
        let before_view = loaded_view(&t, ms, &wheels, module);

        let lock = t.path().join("lk.lock");
        ok(&t.run(&[
            "export",
            "-n",
            "lk",
            "--format",
            "lock",
            "-o",
            lock.to_str().unwrap(),
        ]));
        let text = std::fs::read_to_string(&lock).unwrap();
        assert!(text.contains("sha256:"), "{text}");
        assert!(text.contains("pypi:"), "{text}");
        let wheel_sha = channel::sha256_hex(std::fs::read(&wheel).unwrap());
        assert!(text.contains(&wheel_sha), "{text}");
        ok(&t.run(&["delete", "-n", "lk", "--yes"]));

        remove_repodata(&t.path().join("channel"));
        let rebuild = format!(
            "module load gcc/12.2\nenvmod create -n lk -f {} || exit 1",
            sh(&lock.display().to_string())
        );
        let out = shell(&t, ms, &wheels, &rebuild);
        ok(&out);
        assert!(stderr(&out).contains("no solve"), "{}", stderr(&out));
        assert_eq!(conda_records(&prefix), before_records);
        assert_eq!(loaded_view(&t, ms, &wheels, module), before_view);
    }
}

#[test]
fn py_rattler_reads_the_lock_and_envmod_reads_py_rattlers() {
    let (t, _wheels) = world();
    ok(&t.run(&["create", "-n", "pr", "alpha", "gamma"]));
    let lock = t.path().join("pr.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "pr",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
    ]));
    // py-rattler's view: name url sha256 of every linux-64 record.
    let read = r#"
import sys
from rattler import LockFile
env = LockFile.from_path(sys.argv[1]).default_environment()
records = env.conda_repodata_records()["linux-64"]
for r in sorted(records, key=lambda r: r.name.normalized):
    print(r.name.normalized, r.url, r.sha256.hex())
"#;
    let seen = common::peer(read, &[lock.to_str().unwrap()]);
    let prefix = t.envs_dir().join("pr");
    let expected = conda_meta(&prefix, &["name", "url", "sha256"]);
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(seen, expected);

    // The other way: a lock py-rattler solved and wrote, installed by envmod.
    let write = r#"
import asyncio, sys
from rattler import Channel, LockFile, VirtualPackage, solve
from rattler.lock import LockChannel, LockPlatform
channel, out = sys.argv[1], sys.argv[2]
records = asyncio.run(solve([Channel(channel)], ["alpha", "libfoo"], platforms=["linux-64", "noarch"],
                            virtual_packages=VirtualPackage.detect()))
platform = LockPlatform("linux-64")
lock = LockFile([platform])
for r in records:
    lock.add_conda_package("default", platform, r)
lock.set_channels("default", [LockChannel(channel)])
lock.to_path(out)
print(" ".join(sorted(r.name.normalized for r in records)), flush=True)
# py-rattler's runtime threads can crash the interpreter's teardown under load; the answer is out.
import os; os._exit(0)
"#;
    let theirs = t.path().join("theirs.lock");
    let url = channel::channel_url(&t.path().join("channel")).to_string();
    let names = common::peer(write, &[&url, theirs.to_str().unwrap()]);
    assert_eq!(names.trim(), "alpha libfoo python");
    ok(&t.run(&["create", "-n", "theirs", "-f", theirs.to_str().unwrap()]));
    let records = conda_records(&t.envs_dir().join("theirs"));
    let names: Vec<&str> = records
        .iter()
        .map(|r| r.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "libfoo", "python"]);
}

/// The env of `partool`'s openmpi build as create makes it with `openmpi/4.1.6` and
/// `cuda/12.2` loaded: the manifest records what the modules provided, and no conda MPI is
/// in the prefix (the modules stand in for it).
fn built_on_modules(t: &TestEnv) -> PathBuf {
    let dir = t.path().join("channel");
    let mut pkgs = channel::standard_packages();
    pkgs.extend(channel::mpi_packages());
    channel::write_channel(&dir, &pkgs);
    t.set_site_config(&format!("channels: [{}]\n", dir.display()));
    ok(&t.module_shell(
        Ms::Lmod,
        "module load openmpi/4.1.6 cuda/12.2 && envmod create -n mk 'partool=*=mpi_openmpi_*'",
    ));
    let prefix = t.envs_dir().join("mk");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(prefix.join(".envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    let modules: Vec<&str> = manifest["provided"]["modules"]
        .as_array()
        .expect("the manifest records what the modules provided")
        .iter()
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(modules, ["openmpi/4.1.6", "cuda/12.2"]);
    prefix
}

#[test]
fn py_rattler_and_conda_lock_read_what_modules_provided() {
    let t = TestEnv::new();
    let prefix = built_on_modules(&t);
    let lock = t.path().join("mk.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "mk",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        !text.contains("envmod:"),
        "no stand-in is a package: {text}"
    );
    let read = r#"
import sys
from rattler import LockFile
lock = LockFile.from_path(sys.argv[1])
for platform in lock.platforms():
    print(platform.name, " ".join(platform.virtual_packages))
records = lock.default_environment().conda_repodata_records()["linux-64"]
for r in sorted(records, key=lambda r: r.name.normalized):
    print(r.name.normalized, r.url, r.sha256.hex())
"#;
    let seen = common::peer(read, &[lock.to_str().unwrap()]);
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(
        seen[0],
        "linux-64 openmpi=4.1.6=envmod_module mpi=1.0=openmpi __cuda=12.2=0"
    );
    // Its packages are the prefix's, and nothing else.
    assert_eq!(seen[1..], conda_meta(&prefix, &["name", "url", "sha256"]));

    // conda-lock reads the environment.yml that lists them, and asks for no such package.
    let file = t.path().join("mk.yml");
    ok(&t.run(&["export", "-n", "mk", "-o", file.to_str().unwrap()]));
    let yml = std::fs::read_to_string(&file).unwrap();
    assert!(
        yml.contains("  provided:\n  - module: openmpi/4.1.6\n"),
        "{yml}"
    );
    let mapping = t.path().join("empty-mapping.json");
    std::fs::write(&mapping, "{}").unwrap();
    let parse = r#"
import pathlib, sys
from conda_lock.src_parser.environment_yaml import parse_environment_file
spec = parse_environment_file(pathlib.Path(sys.argv[1]), ["linux-64"], mapping_url=sys.argv[2])
for d in spec.dependencies["linux-64"]:
    print(d.manager, d.name)
"#;
    let deps = common::peer(parse, &[file.to_str().unwrap(), mapping.to_str().unwrap()]);
    let deps: Vec<&str> = deps.lines().collect();
    assert_eq!(deps, ["conda partool"], "{yml}");
}

#[test]
fn conda_lock_parses_the_environment_yml() {
    let (t, wheels) = world();
    let setup = format!(
        "envmod create -n cl 'alpha>=1' gamma || exit 1\n{}\nmodule load cl/py3.11\npip install --no-input shared_tool || exit 2",
        module_use(&t)
    );
    ok(&shell(&t, Ms::Lmod, &wheels, &setup));
    let file = t.path().join("cl.yml");
    ok(&t.run(&["export", "-n", "cl", "-o", file.to_str().unwrap()]));
    let mapping = t.path().join("empty-mapping.json");
    std::fs::write(&mapping, "{}").unwrap();
    let parse = r#"
import pathlib, sys
from conda_lock.src_parser.environment_yaml import parse_environment_file
spec = parse_environment_file(pathlib.Path(sys.argv[1]), ["linux-64"], mapping_url=sys.argv[2])
print("channels", " ".join(c.url for c in spec.channels))
for d in spec.dependencies["linux-64"]:
    print(d.manager, d.name, d.version)
"#;
    let text = common::peer(parse, &[file.to_str().unwrap(), mapping.to_str().unwrap()]);
    let url = channel::channel_url(&t.path().join("channel"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("channels {}", url.as_str().trim_end_matches('/'))
    );
    assert!(lines.contains(&"conda alpha >=1"), "{text}");
    assert!(lines.iter().any(|l| l.trim() == "conda gamma"), "{text}");
    assert!(lines.contains(&"pip shared-tool ==1.0"), "{text}");
}

#[test]
fn a_lock_for_two_platforms_holds_both_solved_separately() {
    let (t, _wheels) = world();
    ok(&t.run(&["create", "-n", "mp", "--python", "3.12", "alpha", "libfoo"]));
    let lock = t.path().join("mp.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "mp",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
        "--platform",
        "linux-64",
        "--platform",
        "osx-arm64",
    ]));
    let read = r#"
import sys
from rattler import LockFile
env = LockFile.from_path(sys.argv[1]).default_environment()
for platform, records in sorted(env.conda_repodata_records().items()):
    for r in sorted(records, key=lambda r: r.name.normalized):
        print(platform, r.name.normalized, r.subdir, r.url.rsplit("/", 2)[-2])
"#;
    let text = common::peer(read, &[lock.to_str().unwrap()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            // This platform: what is installed.
            "linux-64 alpha noarch noarch",
            "linux-64 libfoo linux-64 linux-64",
            "linux-64 python linux-64 linux-64",
            // The laptop: solved for its own subdir, with the same Python version.
            "osx-arm64 alpha noarch noarch",
            "osx-arm64 libfoo osx-arm64 osx-arm64",
            "osx-arm64 python osx-arm64 osx-arm64",
        ],
        "{text}"
    );
    // A package with no build for the other platform stops the export, named.
    ok(&t.run(&["install", "-n", "mp", "linuxonly"]));
    let out = t.run(&[
        "export",
        "-n",
        "mp",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
        "--platform",
        "osx-arm64",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("osx-arm64") && err.contains("linuxonly"),
        "{err}"
    );
}

#[test]
fn a_bundle_builds_offline_with_no_channel_and_no_cache() {
    let (t, wheels) = world();
    let setup = "module load gcc/12.2\nenvmod create -n bd alpha gamma || exit 1".to_string();
    ok(&shell(&t, Ms::Tcl, &wheels, &setup));
    let before = conda_records(&t.envs_dir().join("bd"));
    let bundle = t.path().join("bd.tar");
    ok(&t.run(&[
        "export",
        "-n",
        "bd",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    ok(&t.run(&["delete", "-n", "bd", "--yes"]));
    std::fs::remove_dir_all(t.path().join("channel")).unwrap();
    empty_caches(&t);
    let out = shell(
        &t,
        Ms::Tcl,
        &wheels,
        &format!(
            "module load gcc/12.2\nenvmod create -n bd -f {} --offline",
            sh(&bundle.display().to_string())
        ),
    );
    ok(&out);
    assert_eq!(conda_records(&t.envs_dir().join("bd")), before);
    let view = ok(&shell(
        &t,
        Ms::Tcl,
        &wheels,
        &format!(
            "{}\nmodule load bd/py3.11 || exit 9\necho \"$FAKE_GCC_VERSION $FOO_ACTIVATED\"\npython -c 'import alpha, gamma; print(alpha.VERSION)'",
            module_use(&t)
        ),
    ));
    assert_eq!(view, "12.2 yes\n2.0\n");
    // Nothing of the unpacked bundle is left beside the environment.
    let names: Vec<String> = std::fs::read_dir(t.envs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".envmod-lock"))
        .collect();
    assert_eq!(names, ["bd"]);
}

#[test]
fn bad_locks_and_bundles_name_the_file_and_create_nothing() {
    let (t, _wheels) = world();
    ok(&t.run(&["create", "-n", "src", "--python", "3.12", "alpha", "libfoo"]));
    let lock = t.path().join("osx.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
        "--platform",
        "osx-arm64",
    ]));
    let bundle = t.path().join("src.tar");
    ok(&t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));

    // A lock for another platform.
    let out = t.run(&["create", "-n", "bad1", "-f", lock.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("osx.lock") && err.contains("linux-64"),
        "{err}"
    );
    nothing_created(&t, "bad1");

    // A lock whose sha256 does not match the archive.
    let good = t.path().join("good.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "lock",
        "-o",
        good.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&good).unwrap();
    let sha_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("sha256:"))
        .unwrap();
    let tampered = t.path().join("tampered.lock");
    std::fs::write(
        &tampered,
        text.replacen(sha_line, &format!("  sha256: {}", "0".repeat(64)), 1),
    )
    .unwrap();
    empty_caches(&t);
    let out = t.run(&["create", "-n", "bad2", "-f", tampered.to_str().unwrap()]);
    assert!(!out.status.success(), "a wrong sha256 was installed");
    nothing_created(&t, "bad2");

    // A corrupt bundle: one byte of an archive flipped; and a truncated one.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() - 2048;
    bytes[at] ^= 0xff;
    let corrupt = t.path().join("corrupt.tar");
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = t.run(&["create", "-n", "bad3", "-f", corrupt.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("corrupt.tar"), "{err}");
    nothing_created(&t, "bad3");

    // A lock from a site whose Python this site does not have.
    ok(&t.run(&["create", "-n", "site", "alpha"]));
    let site_lock = t.path().join("site.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "site",
        "--format",
        "lock",
        "-o",
        site_lock.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&site_lock).unwrap();
    assert!(text.contains("python >=3.8"), "{text}");
    let newer = t.path().join("newer.lock");
    std::fs::write(&newer, text.replace("python >=3.8", "python >=3.99")).unwrap();
    let out = t.run(&["create", "-n", "bad5", "-f", newer.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("newer.lock") && err.contains("python >=3.99"),
        "{err}"
    );
    assert!(err.contains("--site-python"), "{err}");
    nothing_created(&t, "bad5");

    // A malformed lock names the file and the line.
    let broken = t.path().join("broken.lock");
    std::fs::write(&broken, "version: 6\nenvironments:\n  default: [\n").unwrap();
    let out = t.run(&["create", "-n", "bad4", "-f", broken.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(err.contains("broken.lock") && err.contains("line"), "{err}");
    nothing_created(&t, "bad4");
}

#[test]
fn install_f_adds_the_files_specs_and_pip_section_and_records_them() {
    let (t, wheels) = world();
    ok(&t.run(&["create", "-n", "inf", "alpha"]));
    let file = t.path().join("extra.yml");
    std::fs::write(
        &file,
        "dependencies:\n  - libfoo\n  - pip:\n    - shared_tool==1.0\n",
    )
    .unwrap();
    let out = t
        .envmod()
        .args(["install", "-n", "inf", "-f", file.to_str().unwrap()])
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &wheels)
        .output()
        .unwrap();
    ok(&out);
    let prefix = t.envs_dir().join("inf");
    let records = conda_records(&prefix);
    assert!(
        records.iter().any(|r| r.starts_with("libfoo ")),
        "{records:?}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(prefix.join(".envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["specs"], serde_json::json!(["alpha", "libfoo"]));
    assert_eq!(manifest["pip"], serde_json::json!(["shared_tool==1.0"]));
    // The console script runs from the prefix (not the staging clone it was installed in).
    let hello = ok(
        &std::process::Command::new(prefix.join("bin/shared_tool-hello"))
            .output()
            .unwrap(),
    );
    assert_eq!(hello, "hello from shared_tool 1.0\n");
    let exported = ok(&t.run(&["export", "-n", "inf"]));
    assert!(exported.contains("- shared_tool==1.0"), "{exported}");
}

#[test]
fn with_no_module_system_the_modules_are_reported_and_the_env_still_builds() {
    let (t, wheels) = world();
    let file = t.path().join("lap.yml");
    let on_cluster = format!(
        "module load gcc/12.2\nenvmod create -n lap alpha || exit 1\nenvmod export -n lap -o {} || exit 2\nenvmod delete -n lap --yes",
        sh(&file.display().to_string())
    );
    ok(&shell(&t, Ms::Lmod, &wheels, &on_cluster));
    // The laptop: no LMOD_CMD, no MODULES_CMD.
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("no module system here"), "{err}");
    assert!(err.contains("gcc/12.2"), "{err}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.envs_dir().join("lap/.envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["modules"][0]["full_name"], "gcc/12.2");
    assert!(manifest["module"].is_null(), "{manifest}");
    assert!(
        t.envs_dir()
            .join("lap/lib/python3.11/site-packages/alpha")
            .is_dir(),
        "alpha is not installed"
    );
}

#[test]
fn specs_and_channels_on_the_command_line_are_added_to_the_files() {
    let (t, _wheels) = world();
    let second = t.path().join("second-channel");
    channel::write_channel(
        &second,
        &[channel::linux64(
            "onlyhere",
            "1.0",
            "h0_0",
            &["__glibc >=2.17"],
        )],
    );
    let first = channel::channel_url(&t.path().join("channel"));
    let file = t.path().join("extra.yml");
    std::fs::write(
        &file,
        format!("name: extra\nchannels:\n  - {first}\ndependencies:\n  - alpha\n"),
    )
    .unwrap();
    ok(&t.run(&[
        "create",
        "-f",
        file.to_str().unwrap(),
        "libfoo",
        "onlyhere",
        "-c",
        second.to_str().unwrap(),
    ]));
    let prefix = t.envs_dir().join("extra");
    let names: Vec<String> = conda_meta(&prefix, &["name"]);
    assert_eq!(names, ["alpha", "libfoo", "onlyhere"]);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(prefix.join(".envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["specs"],
        serde_json::json!(["alpha", "libfoo", "onlyhere"])
    );
    assert_eq!(
        manifest["channels"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
}
