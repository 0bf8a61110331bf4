//! The modules a stranger's environment.yml lists are loaded in a scratch shell
//! (`create -f`), and the site Python is taken from the PATH that stack gives. The names
//! reach the module command as words, never as shell code; a stack that names another
//! environment's module does not make envmod build on that environment's interpreter; a
//! module that hangs ends in bounded time, named, with nothing created.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::common::{Ms, TestEnv, sh, stderr, stdout};

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// An environment.yml exported from a site env whose `envmod.modules` are `modules`.
fn env_yml(dir: &Path, modules: &[&str]) -> PathBuf {
    let mut text = String::from(
        "name: theirs\nchannels: [nodefaults]\ndependencies: []\nenvmod:\n  envmod_version: 0.1.0\n  \
         platform: linux-64\n  python: {mode: site, version: 3.11.2}\n  module_system: lmod\n  modules:\n",
    );
    for m in modules {
        text.push_str(&format!("  - {}\n", serde_json::to_string(m).unwrap()));
    }
    let file = dir.join("environment.yml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn create_f_does_not_build_on_the_python_of_another_environments_module() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        // The file's author has an environment whose module the user has on MODULEPATH
        // (a colleague's or a course's module root), and a python3 of their own in its bin.
        let theirs = t.path().join("their-envs/theirs");
        let their_mods = t.path().join("their-modules");
        let mark = t.path().join("their-python-ran");
        let out = t.module_shell(
            ms,
            &format!(
                "envmod create -p {} --module-root {} --module-system {} >/dev/null",
                sh(&p(&theirs)),
                sh(&p(&their_mods)),
                ms.flag()
            ),
        );
        assert!(out.status.success(), "{ms:?}: {}", stderr(&out));
        let python3 = theirs.join("bin/python3");
        std::fs::remove_file(&python3).unwrap();
        std::fs::write(
            &python3,
            format!(
                "#!/bin/sh\ntouch {}\nexec /usr/bin/python3.11 \"$@\"\n",
                sh(&p(&mark))
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python3, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = env_yml(t.path(), &["theirs/py3.11"]);

        let out = t.module_shell(
            ms,
            &format!(
                "module use {}\nenvmod create -f {} -n mine",
                sh(&p(&their_mods)),
                sh(&p(&file))
            ),
        );
        let err = stderr(&out);
        assert!(
            !mark.exists(),
            "{ms:?}: create -f ran the python3 of the environment the file named:\n{err}"
        );
        assert_eq!(out.status.code(), Some(2), "{ms:?}: {err}");
        assert!(
            err.contains("theirs/py3.11") && err.contains("hint:"),
            "{ms:?}: {err}"
        );
        assert!(
            !t.envs_dir().join("mine").exists(),
            "{ms:?}: half-built env"
        );
    }
}

#[test]
fn module_names_that_are_shell_code_are_refused_before_a_module_command_sees_them() {
    let t = TestEnv::new();
    let marks = t.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let m = p(&marks);
    for (i, name) in [
        "x$(touch${IFS}M/dollar)",
        "x`touch${IFS}M/backquote`",
        "x;touch${IFS}M/semicolon",
        "x'$(touch${IFS}M/quote)'",
        "x|touch${IFS}M/pipe",
        "x&&touch${IFS}M/and",
        "gcc/*",
    ]
    .iter()
    .enumerate()
    {
        let dir = t.path().join(format!("f{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = env_yml(&dir, &["gcc/12.2", &name.replace('M', &m)]);
        // Real Lmod, real Environment Modules, and a module command that echoes what it is
        // given (a wrapper gone wrong): the shell evaluates what each prints.
        for (ms, cmd) in [
            (Ms::Lmod, None),
            (Ms::Tcl, None),
            (Ms::Lmod, Some("export LMOD_CMD=/bin/echo\n")),
        ] {
            let out = t.module_shell(
                ms,
                &format!(
                    "{}envmod create -f {} -n mine",
                    cmd.unwrap_or(""),
                    sh(&p(&file))
                ),
            );
            let err = stderr(&out);
            let ran: Vec<_> = std::fs::read_dir(&marks).unwrap().flatten().collect();
            assert!(
                ran.is_empty(),
                "{ms:?} {cmd:?}: {name} ran as shell code: {ran:?}\n{err}"
            );
            assert_eq!(out.status.code(), Some(2), "{ms:?} {cmd:?} {name}: {err}");
            assert!(err.contains("not a module name"), "{ms:?} {name}: {err}");
            assert!(!t.envs_dir().join("mine").exists(), "{ms:?}");
        }
    }
}

#[test]
fn a_module_that_hangs_ends_the_replay_in_bounded_time_naming_the_stack() {
    let t = TestEnv::new();
    let mods = t.path().join("hang-modules");
    std::fs::create_dir_all(mods.join("hang")).unwrap();
    std::fs::write(mods.join("hang/1.0"), "#%Module\nexec sleep 1000\n").unwrap();
    let file = env_yml(t.path(), &["gcc/12.2", "hang/1.0"]);
    for ms in Ms::BOTH {
        let started = Instant::now();
        let out = t.module_shell_with(
            ms,
            &format!(
                "module use {}\nenvmod create -f {} -n mine",
                sh(&p(&mods)),
                sh(&p(&file))
            ),
            &[("ENVMOD_TEST_MODULE_MS", "3000")],
        );
        let err = stderr(&out);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{ms:?}: took {:?}: {err}",
            started.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{ms:?}: {err}\n{}",
            stdout(&out)
        );
        assert!(
            err.contains("did not answer") && err.contains("hang/1.0"),
            "{ms:?}: the error does not name the stack that hangs: {err}"
        );
        assert!(
            !t.envs_dir().join("mine").exists(),
            "{ms:?}: half-built env"
        );
    }
}

/// A module command that counts its runs, in front of the real one.
fn counting_module_command(t: &TestEnv) -> (PathBuf, PathBuf) {
    let count = t.path().join("module-runs");
    let wrapper = t.path().join("counting-modulecmd");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho run >> {}\nexec \"$REAL_MODULES_CMD\" \"$@\"\n",
            sh(&p(&count))
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, count)
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |s| s.lines().count())
}

#[test]
fn a_file_of_many_unknown_modules_costs_one_module_command_each_and_too_many_are_refused() {
    let t = TestEnv::new();
    let (wrapper, count) = counting_module_command(&t);
    // A module that fails with a message of a megabyte on one line.
    let mods = t.path().join("loud-modules");
    std::fs::create_dir_all(mods.join("loud")).unwrap();
    std::fs::write(
        mods.join("loud/1.0"),
        "#%Module\nputs stderr [string repeat x 1000000]\nerror boom\n",
    )
    .unwrap();
    let map = t.path().join("map.yml");
    std::fs::write(&map, "loud/0.9: loud/1.0\n").unwrap();
    let run = |file: &Path| {
        let _ = std::fs::remove_file(&count);
        t.module_shell(
            Ms::Tcl,
            &format!(
                "module use {}\nexport REAL_MODULES_CMD=$MODULES_CMD MODULES_CMD={}\nenvmod create -f {} -n mine --module-map {}",
                sh(&p(&mods)),
                sh(&p(&wrapper)),
                sh(&p(file)),
                sh(&p(&map))
            ),
        )
    };
    let mut names = vec!["gcc/12.2".to_string(), "loud/0.9".to_string()];
    names.extend((0..60).map(|i| format!("nosuch{i}/1")));
    let dir = t.path().join("sixty");
    std::fs::create_dir_all(&dir).unwrap();
    let file = env_yml(&dir, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(&file);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nosuch59/1: <module here>"), "{err}");
    assert!(err.contains("module_map sends loud/0.9 there"), "{err}");
    let longest = err.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4000, "an error line of {longest} bytes");
    // purge, the whole stack, purge, each of the 61 that fail once more, and a few messages.
    let n = runs(&count);
    assert!(n <= 62 + 3 + 8, "{n} module commands for 62 modules");

    let mut names: Vec<String> = (0..101).map(|i| format!("nosuch{i}/1")).collect();
    names.insert(0, "gcc/12.2".into());
    let dir = t.path().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    let file = env_yml(&dir, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(&file);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("102 modules") && err.contains("at most"),
        "{err}"
    );
    assert_eq!(
        runs(&count),
        0,
        "a module command ran for a stack that is refused"
    );
    assert!(!t.envs_dir().join("mine").exists());
}
