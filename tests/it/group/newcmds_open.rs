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
