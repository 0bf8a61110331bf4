//! Attacks on adopt and on the change pipeline's leftovers that envmod does not withstand
//! yet. These tests fail until fixed; add `mod newcmds_open;` to group/mod.rs to run them.

use std::path::Path;

use crate::common::{
    course::{Course, Who},
    ok, sh, stderr, stdout,
};

/// A TA renames a private directory of the instructor's, in the group-writable envs
/// directory, to the staging name of the course env; the instructor's next change of that
/// env clears "leftovers" and removes it, though the TA could not have removed it.
#[test]
fn update_removes_no_directory_of_the_instructor_s_that_a_ta_renamed_to_a_staging_name() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let envs = prefix.parent().unwrap().to_path_buf();
    let solutions = envs.join("solutions");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "set -e; umask 077; mkdir {d}; echo 42 > {d}/answers",
            d = sh(&solutions.display().to_string())
        ),
    ));
    let planted = envs.join(".cs101.envmod-staging");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "mv {} {}",
            sh(&solutions.display().to_string()),
            sh(&planted.display().to_string())
        ),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["update", "-p", &prefix.display().to_string(), "--all"],
    );
    assert!(
        planted.join("answers").exists(),
        "the instructor's directory, renamed by the TA, was removed: {}",
        stderr(&out)
    );
}

/// A conda prefix the TA owns in the course envs directory, and a conda-env-mod modulefile
/// the TA wrote for it in `dir` with `depends` as its `depends_on` lines.
fn ta_env_and_modulefile(c: &Course, dir: &Path, depends: &[&str]) -> std::path::PathBuf {
    let tas = c.envs().join("tas");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002; \"$ENVMOD\" create -p {p} --python 3.12 alpha && rm -rf {p}/.envmod {p}/bin/activate",
            p = sh(&tas.display().to_string())
        ),
    ));
    let mut lua = String::new();
    for d in depends {
        lua.push_str(&format!("depends_on(\"{d}\")\n"));
    }
    lua.push_str(&format!(
        "local modroot = \"{}\"\nlocal pyver   = \"3.12.0\"\nprepend_path(\"PATH\",modroot..\"/bin\")\n",
        tas.display()
    ));
    let file = dir.join("conda-env/tas-py3.12.0.lua");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, lua).unwrap();
    crate::common::run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), dir]);
    tas
}

/// A modulefile whose `depends_on` names no module any module system has (quotes, `$(...)`,
/// spaces): adopt records it as it is and says "adopted", and then every command refuses the
/// env as damaged by "someone who can write that file".
#[test]
fn adopt_from_modules_refuses_module_names_no_module_system_has() {
    let c = Course::new();
    let dir = c.path().join("cem");
    ta_env_and_modulefile(
        &c,
        &dir,
        &[
            "gcc/12\\\"; os.execute(\\\"touch /tmp/x\\\") --",
            "a$(touch /tmp/y)b",
        ],
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["adopt", "--from-modules", &dir.display().to_string()],
    );
    let said = stdout(&out);
    assert!(
        !out.status.success() && said.contains("not adopted") && said.contains("module name"),
        "{said}{}",
        stderr(&out)
    );
}

/// The TA's own environment, named by a modulefile in a tree the instructor adopts: adopt
/// takes it as the instructor's without a word, with the manifest in a directory the TA can
/// rename it out of.
#[test]
fn adopt_from_modules_refuses_a_prefix_another_account_owns() {
    let c = Course::new();
    let dir = c.path().join("cem");
    let tas = ta_env_and_modulefile(&c, &dir, &[]);
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["adopt", "--from-modules", &dir.display().to_string()],
    );
    let said = stdout(&out);
    assert!(
        !out.status.success() && said.contains("not adopted") && said.contains("envmod-peer"),
        "{said}{}",
        stderr(&out)
    );
    assert!(!tas.join(".envmod").exists());
}

/// A student (not in the group) runs update or adopt on the course env: the error tells
/// them to remove the instructor's lock file, not that they cannot change the env.
#[test]
fn a_change_by_someone_who_cannot_write_the_env_says_so_and_names_a_clone() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    for args in [vec!["update", "-p", &p, "--all"], vec!["adopt", "-p", &p]] {
        let out = c.envmod_as(Who::Student, "022", &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            !err.contains("rm "),
            "{args:?}: the fix offered is to remove the owner's lock: {err}"
        );
        assert!(
            err.contains("cannot write") && err.contains("--clone"),
            "{args:?}: {err}"
        );
    }
}

/// SIGTERM or SIGINT while adopt runs the env's activation scripts: envmod says "nothing was
/// left half-made", but the env's own `bin/activate` is gone (moved into `.envmod/`) and a
/// manifest is left, so `. bin/activate` fails and a second adopt says "already an envmod
/// environment".
#[test]
fn an_interrupted_adopt_leaves_the_env_as_it_was() {
    let c = Course::new();
    for sig in ["TERM", "INT"] {
        let script = format!(
            r#"umask 077; p=$HOME/conda-{sig}; "$ENVMOD" create -p $p --python 3.12 alpha >/dev/null 2>&1 || exit 7
rm -rf $p/.envmod; echo '# the env own activate' > $p/bin/activate
mkdir -p $p/etc/conda/activate.d; echo 'sleep 3; export SLOW=1' > $p/etc/conda/activate.d/slow.sh
"$ENVMOD" adopt -p $p & pid=$!; sleep 1.5; kill -{sig} $pid; wait $pid
cat $p/bin/activate; test ! -e $p/.envmod"#
        );
        let out = c.bash(Who::Instructor, &script);
        let (said, err) = (stdout(&out), stderr(&out));
        assert!(
            out.status.success() && said.contains("# the env own activate"),
            "{sig}: {said}{err}"
        );
    }
}
