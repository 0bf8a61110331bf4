//! Environment files that public projects share, read by `create -f` as they are: a Python
//! pin on a site whose Python differs, micromamba's `sel()` entries, files that are no
//! environment file at all, and a file piped in with `-f -`. The files under
//! tests/data/envfiles/ come from those projects (each names where, on its first line).

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
};

use common::{TestEnv, channel, ok, stderr};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/envfiles")
        .join(name)
}

/// The 1-based line of `file` that holds `needle`.
fn line_of(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.trim_start().starts_with(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()))
        + 1
}

/// A world whose channel has a noarch package for every conda spec of `file`, at a version
/// the spec accepts, whatever its `sel()`: which of them get installed is the reader's
/// choice alone. The channel is the site's mirror of conda-forge (`channel_alias`), which
/// the files name.
fn world_for(file: &Path) -> TestEnv {
    let t = TestEnv::new();
    let mut pkgs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let Some(item) = line.strip_prefix("  - ") else {
            continue;
        };
        let item = item.split(" #").next().unwrap().trim();
        let item = match item.split_once("): ") {
            Some((sel, rest)) if sel.starts_with("sel(") => rest,
            _ => item,
        };
        let mut words = item.splitn(2, ' ');
        let name = words.next().unwrap();
        let rest = words.next().unwrap_or("");
        if name == "python" || name.contains(':') || !seen.insert(name.to_string()) {
            continue;
        }
        let version = match rest.trim().split(',').next().unwrap_or("") {
            v if v.starts_with(">=") => v[2..].trim().to_string(),
            v if v.starts_with('<') => "0.9".to_string(),
            _ => "1.0".to_string(),
        };
        pkgs.push(channel::noarch_python(name, &version, &[]));
    }
    pkgs.push(channel::python());
    // A Python for macOS, so a lock for osx-arm64 solves.
    pkgs.push(channel::Pkg::new(
        "python",
        "3.11.7",
        "h0_cpython",
        "osx-arm64",
    ));
    let mirror = t.path().join("mirror");
    channel::write_channel(&mirror.join("conda-forge"), &pkgs);
    t.set_site_config(&format!(
        "channel_alias: file://{}/\nchannels: [conda-forge]\n",
        mirror.display()
    ));
    t
}

/// The names of the conda packages installed in `prefix`.
fn installed(prefix: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json")?;
            // name-version-build
            let mut parts: Vec<&str> = stem.rsplitn(3, '-').collect();
            parts.reverse();
            Some(parts[0].to_string())
        })
        .collect();
    names.sort();
    names
}

fn nothing_created(t: &TestEnv, name: &str) {
    assert!(
        !t.envs_dir().join(name).exists(),
        "{name} was created anyway"
    );
    assert!(
        !t.module_root().join(name).exists(),
        "a modulefile for {name} was written anyway"
    );
}

/// The `error:` lines of `out`.
fn error_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// `envmod ARGS` reading `text` on its standard input.
fn piped(t: &TestEnv, args: &[&str], text: &str) -> Output {
    let file = t.path().join("stdin.yml");
    std::fs::write(&file, text).unwrap();
    with_stdin(t, args, Stdio::from(std::fs::File::open(&file).unwrap()))
}

fn with_stdin(t: &TestEnv, args: &[&str], input: Stdio) -> Output {
    t.envmod().args(args).stdin(input).output().unwrap()
}

// 1. A Python pin in site mode.

#[test]
fn a_python_pin_the_site_python_misses_is_refused_before_solving_naming_the_line() {
    let t = TestEnv::with_channel();
    let file = data("jwql-python-3.9.yml");
    let out = t.run(&["create", "-n", "jw", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    let at = format!(
        "jwql-python-3.9.yml, line {}: ",
        line_of(&file, "- python=3.9.11")
    );
    assert!(errors[0].contains(&at), "{at:?} not in {}", stderr(&out));
    assert!(errors[0].contains("python=3.9.11"), "{}", stderr(&out));
    assert!(errors[0].contains("3.11"), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--python 3.9"), "{err}");
    assert!(err.contains("--site-python PATH"), "{err}");
    // Before the solve: none of the file's packages was looked for.
    assert!(!err.contains("No candidates"), "{err}");
    nothing_created(&t, "jw");
}

#[test]
fn a_python_pin_the_site_python_meets_builds_in_site_mode() {
    let t = TestEnv::with_channel();
    let file = t.path().join("pinned.yml");
    std::fs::write(
        &file,
        "name: pinned\ndependencies:\n  - python>=3.8\n  - alpha\n",
    )
    .unwrap();
    ok(&t.run(&["create", "-f", file.to_str().unwrap()]));
    let prefix = t.envs_dir().join("pinned");
    assert!(
        prefix.join("pyvenv.cfg").is_file(),
        "not built in site mode"
    );
    assert!(installed(&prefix).contains(&"alpha".to_string()));
}

// 2. micromamba's selectors.

#[test]
fn mambas_dev_file_builds_without_its_windows_entries() {
    let file = data("mamba-dev.yml");
    let t = world_for(&file);
    let out = t.run(&["create", "-n", "mambadev", "-f", file.to_str().unwrap()]);
    ok(&out);
    let names = installed(&t.envs_dir().join("mambadev"));
    for kept in ["cxx-compiler", "libsolv", "memory_profiler", "myst-parser"] {
        assert!(names.contains(&kept.to_string()), "{kept} not in {names:?}");
    }
    for dropped in ["winreg", "pywin32", "menuinst"] {
        assert!(
            !names.contains(&dropped.to_string()),
            "{dropped} in {names:?}"
        );
    }
}

#[test]
fn unideps_example_keeps_the_linux_entries_and_its_pip_markers() {
    let file = data("unidep-example.yaml");
    let t = world_for(&file);
    let wheels = t.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    for name in [
        "unidep",
        "markdown_code_runner",
        "numthreads",
        "yaml2bib",
        "rsync_time_machine",
        "slurm_usage",
        "fileup",
        "pyyaml",
        "aiokef",
    ] {
        common::build_wheel(&wheels, name, "1.0");
    }
    // The site Python's own pexpect would stand in for conda's.
    let out = t
        .envmod()
        .args([
            "create",
            "--ignore-site-packages",
            "-f",
            file.to_str().unwrap(),
        ])
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &wheels)
        .output()
        .unwrap();
    ok(&out);
    let prefix = t.envs_dir().join("myenv");
    let names = installed(&prefix);
    for kept in [
        "adaptive-scheduler",
        "hpc05",
        "pexpect",
        "adaptive",
        "pfapack",
        "numpy",
        "pandas",
    ] {
        assert!(names.contains(&kept.to_string()), "{kept} not in {names:?}");
    }
    // pip judged its own markers: the darwin-only wheel stayed out.
    let site = std::fs::read_dir(prefix.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    assert!(site.join("yaml2bib").is_dir(), "yaml2bib not installed");
    assert!(!site.join("fileup").exists(), "fileup installed on linux");
    // A lock for macOS takes the file's osx entries, not the linux ones built here.
    let lock = t.path().join("osx.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "myenv",
        "--format",
        "lock",
        "--platform",
        "osx-arm64",
        "-o",
        lock.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.contains("/pexpect-1.0-"), "{text}");
    for linux_only in ["hpc05", "pfapack", "adaptive-scheduler"] {
        assert!(!text.contains(linux_only), "{linux_only} in {text}");
    }
    // unidep's `platforms:` is not conda's: named, not silently skipped.
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "unidep-example.yaml, line {}: ignoring top-level key `platforms`",
            line_of(&file, "platforms:")
        )),
        "{err}"
    );
}

#[test]
fn an_unknown_selector_is_refused_naming_its_line() {
    let t = TestEnv::with_channel();
    let file = t.path().join("sel.yml");
    std::fs::write(
        &file,
        "name: sel\ndependencies:\n  - alpha\n  - sel(freebsd): beta\n",
    )
    .unwrap();
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].contains("sel.yml, line 4: ") && errors[0].contains("sel(freebsd)"),
        "{}",
        stderr(&out)
    );
    nothing_created(&t, "sel");
}

// 3. Wrong files, said so.

#[test]
fn a_docker_compose_file_is_not_an_environment_file() {
    let t = TestEnv::with_channel();
    let file = data("docker-compose.yaml");
    let out = t.run(&["create", "-n", "web", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].contains("docker-compose.yaml")
            && errors[0].contains("not an environment file")
            && errors[0].contains("`services`"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("dependencies:"), "{}", stderr(&out));
    nothing_created(&t, "web");
}

#[test]
fn a_requirements_key_is_refused_with_the_rename() {
    let t = TestEnv::with_channel();
    let file = data("requirements-key.yml");
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", stderr(&out));
    assert!(
        errors[0].contains(&format!(
            "requirements-key.yml, line {}: ",
            line_of(&file, "requirements:")
        )) && errors[0].contains("not an environment file"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("rename `requirements:` to `dependencies:`"),
        "{}",
        stderr(&out)
    );
    nothing_created(&t, "reqs");
}

#[test]
fn a_top_level_pip_list_is_refused_with_where_it_goes() {
    let t = TestEnv::with_channel();
    let file = data("top-level-pip.yml");
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "top-level-pip.yml, line {}: ",
            line_of(&file, "pip:")
        )),
        "{err}"
    );
    assert!(err.contains("under `dependencies:`"), "{err}");
    nothing_created(&t, "toppip");
}

#[test]
fn every_ignored_top_level_key_is_named() {
    let t = TestEnv::with_channel();
    let file = t.path().join("extra.yml");
    std::fs::write(
        &file,
        "name: extra\nchannel_priority: strict\ndependencies:\n  - alpha\ncategory: main\n",
    )
    .unwrap();
    let out = t.run(&["create", "-f", file.to_str().unwrap()]);
    ok(&out);
    let err = stderr(&out);
    for (key, line) in [("channel_priority", 2), ("category", 5)] {
        assert!(
            err.contains(&format!(
                "extra.yml, line {line}: ignoring top-level key `{key}`"
            )),
            "{key}: {err}"
        );
    }
}

// 4. `-f -`.

#[test]
fn dash_f_dash_reads_the_file_from_standard_input() {
    let t = TestEnv::with_channel();
    let text = "name: piped\ndependencies:\n  - alpha\n";
    let out = piped(&t, &["create", "-f", "-"], text);
    ok(&out);
    assert!(installed(&t.envs_dir().join("piped")).contains(&"alpha".to_string()));
    // Its errors name standard input, and its lines.
    let out = piped(
        &t,
        &["create", "-f", "-"],
        "name: bad\ndependencies:\n  - alpha\n  - 'bad spec!!'\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard input, line 4: "),
        "{}",
        stderr(&out)
    );
    // `install -f -` adds what it reads.
    let out = piped(
        &t,
        &["install", "-n", "piped", "-f", "-"],
        "dependencies:\n  - beta\n",
    );
    ok(&out);
    assert!(installed(&t.envs_dir().join("piped")).contains(&"beta".to_string()));
}

#[test]
fn standard_input_is_read_within_the_size_limit() {
    let t = TestEnv::with_channel();
    let big = t.path().join("big.yml");
    let mut text = String::from("name: big\ndependencies:\n  - alpha\n");
    text.push_str(&"#".repeat(64 << 20));
    std::fs::write(&big, text).unwrap();
    let out = with_stdin(
        &t,
        &["create", "-f", "-"],
        Stdio::from(std::fs::File::open(&big).unwrap()),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard input is larger than 64 MiB"),
        "{}",
        stderr(&out)
    );
    nothing_created(&t, "big");
}

#[test]
fn a_lock_or_a_bundle_on_standard_input_is_refused_with_the_fix() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "src", "alpha"]));
    for format in ["lock", "bundle"] {
        let file = t.path().join(format!("src.{format}"));
        ok(&t.run(&[
            "export",
            "-n",
            "src",
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
        ]));
        let out = with_stdin(
            &t,
            &["create", "-n", "copy", "-f", "-"],
            Stdio::from(std::fs::File::open(&file).unwrap()),
        );
        assert_eq!(out.status.code(), Some(2), "{format}: {}", stderr(&out));
        let errors = error_lines(&out);
        assert_eq!(errors.len(), 1, "{format}: {}", stderr(&out));
        let what = if format == "lock" {
            "a lock file"
        } else {
            "a bundle"
        };
        assert!(
            errors[0].contains(&format!("standard input holds {what}")),
            "{format}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("-f FILE"), "{}", stderr(&out));
        nothing_created(&t, "copy");
    }
}
