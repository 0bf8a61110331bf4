//! The directories envmod leaves beside an environment when it is interrupted (staging,
//! trash) are removed by the next command on it; in a course envs directory the group can
//! rename in, a directory of the instructor's that a TA renamed to such a name is not.

use crate::common::{
    course::{Course, Who},
    ok, sh, stderr,
};

/// A TA renames a private directory of the instructor's, in the group-writable envs
/// directory, to the staging name of the course env (the TA cannot remove it, only rename
/// it); the instructor's next change of that env removes nothing of it and says why.
#[test]
fn a_change_removes_no_directory_of_the_instructors_that_a_ta_renamed_to_a_staging_name() {
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
    for name in [".cs101.envmod-staging", ".cs101.envmod-trash"] {
        let planted = envs.join(name);
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
            &["install", "-p", &prefix.display().to_string(), "beta"],
        );
        let err = stderr(&out);
        assert!(
            planted.join("answers").exists(),
            "the instructor's directory, renamed by the TA to {name}, was removed: {err}"
        );
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("holds no environment envmod was building")
                && err.contains("the group")
                && err.contains("envmod removed nothing"),
            "{err}"
        );
        ok(&c.bash(
            Who::Instructor,
            &format!(
                "mv {} {}",
                sh(&planted.display().to_string()),
                sh(&solutions.display().to_string())
            ),
        ));
    }
    // A real leftover is still cleared: the staging directory of an install killed while
    // it filled it.
    let out = c.bash(
        Who::Instructor,
        &format!(
            "umask 077; ENVMOD_TEST_KILL_AT=change:cloned \"$ENVMOD\" install -p {} beta",
            sh(&prefix.display().to_string())
        ),
    );
    assert!(!out.status.success(), "the install was not killed");
    assert!(
        envs.join(".cs101.envmod-staging").exists(),
        "no staging left"
    );
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &prefix.display().to_string(), "beta"],
    ));
    assert!(!envs.join(".cs101.envmod-staging").exists());
    assert_eq!(
        std::fs::read_to_string(solutions.join("answers")).unwrap(),
        "42\n"
    );
}
