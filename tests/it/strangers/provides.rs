//! What a stranger's file says the modules provided: the `envmod.provided` section of an
//! environment.yml and the marks in a lock's `virtual-packages`. `create -f` rests on them,
//! so each is checked as a `module_provides` rule is: a name that is a pattern, `python`, a
//! module name that is a path, a mark that is not one exact package, deep nesting and huge
//! lists each end, in bounded time, in a one-line error that names the line, never a panic.

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

use crate::common::{TestEnv, ok, stderr};

/// The refusal of `out`: one `error:` line, naming `file` and `line`, with a hint, and
/// nothing created.
#[track_caller]
fn refused_at(t: &TestEnv, out: &Output, file: &Path, line: usize, what: &str) -> String {
    let err = stderr(out);
    assert_ne!(
        out.status.code(),
        Some(101),
        "{what}: envmod panicked:\n{err}"
    );
    assert!(!out.status.success(), "{what}: envmod accepted it:\n{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: {err}");
    assert!(
        errors[0].contains(&format!("{}, line {line}", file.display())),
        "{what}: the error does not name line {line}: {err}"
    );
    assert!(errors[0].len() < 2000, "{what}: {} bytes", errors[0].len());
    assert!(err.contains("hint:"), "{what}: no hint: {err}");
    assert!(!t.envs_dir().join("x").exists(), "{what}: x was created");
    err
}

/// `create -n x -f FILE [EXTRA]`, which must end within a minute.
fn create_from(t: &TestEnv, file: &Path, extra: &[&str]) -> Output {
    let started = Instant::now();
    let file_arg = file.display().to_string();
    let mut args = vec!["create", "-n", "x", "-f", &file_arg];
    args.extend(extra);
    let out = t.run(&args);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "create -f {} took {:?}",
        file.display(),
        started.elapsed()
    );
    out
}

/// An environment.yml that asks for alpha and says `provided` (YAML, indented as the
/// section's key) is what the modules gave; the line of `provided:` is 12.
fn yml_with(t: &TestEnv, name: &str, provided: &str) -> PathBuf {
    let path = t.path().join(name);
    let text = format!(
        "name: x\n\
         dependencies:\n\
         \x20 - alpha\n\
         envmod:\n\
         \x20 envmod_version: 0.1.0\n\
         \x20 platform: linux-64\n\
         \x20 python:\n\
         \x20   mode: site\n\
         \x20   version: 3.11.2\n\
         \x20 modules:\n\
         \x20 - openmpi/4.1.6\n\
         \x20 provided:\n{provided}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn odd_provided_sections_in_an_environment_yml_are_refused_by_line() {
    let t = TestEnv::with_channel();
    let entry = |module: &str, provides: &str| {
        format!("  - module: {module}\n    rule: openmpi/*\n    provides:\n    - {provides}\n")
    };
    for (what, provided, line, needle) in [
        (
            "python as a stand-in",
            entry("openmpi/4.1.6", "python 3.11"),
            16,
            "python cannot come from a module",
        ),
        (
            "a pattern as the name",
            entry("openmpi/4.1.6", "'open* 4.1'"),
            16,
            "is not a package name",
        ),
        (
            "a range for a virtual package",
            entry("openmpi/4.1.6", "'__cuda >=12'"),
            16,
            "takes one exact version",
        ),
        (
            "a module name that is a path",
            entry("/tmp/x/openmpi/4.1.6", "openmpi 4.1.6"),
            13,
            "is not a module name",
        ),
        (
            "a module name that climbs",
            entry("../../openmpi/4.1.6", "openmpi 4.1.6"),
            13,
            "is not a module name",
        ),
        (
            "a module name with an escape",
            entry("\"openmpi/4.1.6\\e[2J\"", "openmpi 4.1.6"),
            13,
            "is not a module name",
        ),
        (
            "four parts",
            entry("openmpi/4.1.6", "openmpi 4.1.6 h0 extra"),
            16,
            "more than three parts",
        ),
    ] {
        let file = yml_with(&t, "env.yml", &provided);
        let out = create_from(&t, &file, &["--skip-missing-modules"]);
        let err = refused_at(&t, &out, &file, line, what);
        assert!(err.contains(needle), "{what}: {err}");
    }
}

/// Deep nesting stops at the parser's cap; a huge list is read in linear time and refused
/// at its first entry nothing here provides.
#[test]
fn deep_and_huge_provided_sections_end_in_bounded_time() {
    let t = TestEnv::with_channel();
    let deep = format!(
        "  - module: openmpi/4.1.6\n    rule: openmpi/*\n    provides: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let file = yml_with(&t, "deep.yml", &deep);
    let out = create_from(&t, &file, &[]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("nest"), "{err}");

    let mut huge = String::new();
    for i in 0..100_000 {
        huge.push_str(&format!(
            "  - module: openmpi/4.1.{i}\n    rule: openmpi/*\n    provides: [openmpi 4.1.{i}, \"pkg{i} 1.0\"]\n"
        ));
    }
    let file = yml_with(&t, "huge.yml", &huge);
    let out = create_from(&t, &file, &[]);
    let err = refused_at(&t, &out, &file, 15, "a huge list");
    assert!(err.contains("no module here provides pkg0"), "{err}");
}

/// A lock of an environment holding alpha, exported here, with `marks` as its
/// `virtual-packages`, and the line of the first mark.
fn lock_with(t: &TestEnv, marks: &[String]) -> (PathBuf, usize) {
    if !t.envs_dir().join("src").exists() {
        ok(&t.run(&["create", "-n", "src", "alpha"]));
    }
    let path = t.path().join("env.lock");
    if !path.exists() {
        ok(&t.run(&[
            "export",
            "-n",
            "src",
            "--format",
            "lock",
            "-o",
            &path.display().to_string(),
        ]));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let platform = "- name: linux-64\n";
    let at = text.find(platform).expect("the lock names linux-64") + platform.len();
    let line = text[..at].lines().count() + 2;
    let mut inserted = String::from("  virtual-packages:\n");
    for m in marks {
        inserted.push_str(&format!("  - {m}\n"));
    }
    let marked = t.path().join("marked.lock");
    std::fs::write(&marked, format!("{}{inserted}{}", &text[..at], &text[at..])).unwrap();
    (marked, line)
}

#[test]
fn odd_marks_in_a_lock_are_refused_by_line() {
    let t = TestEnv::with_channel();
    for (mark, needle) in [
        ("__cuda=12..2=0", "is not valid"),
        (
            "python=3.11=envmod_module",
            "python cannot come from a module",
        ),
        ("'open*=4.1=envmod_module'", "is not a package name"),
        ("openmpi=4.1.6", "is not `name=version=build`"),
        ("openmpi=4.1.6=h0=x", "is not `name=version=build`"),
        ("'openmpi=>=4=envmod_module'", "is not `name=version=build`"),
        ("'openmpi=4.*=envmod_module'", "is not one exact package"),
        ("'/tmp/x=1=envmod_module'", "is not a package name"),
    ] {
        let (lock, line) = lock_with(&t, &[mark.to_string()]);
        let out = create_from(&t, &lock, &["--skip-missing-modules"]);
        let err = refused_at(&t, &out, &lock, line, mark);
        assert!(err.contains(needle), "{mark}: {err}");
    }
    // Many marks are read in linear time, and the first bad one is named.
    let mut marks: Vec<String> = (0..100_000)
        .map(|i| format!("__cuda{i}=12.{i}=0"))
        .collect();
    marks.push("python=3.11=envmod_module".into());
    let (lock, line) = lock_with(&t, &marks);
    let out = create_from(&t, &lock, &["--skip-missing-modules"]);
    refused_at(&t, &out, &lock, line + 100_000, "many marks");
}
