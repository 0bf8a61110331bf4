//! A script a group member adds to a shared environment's `etc/conda/activate.d` never runs
//! as the owner for a command that changes only metadata; a command that must run the
//! scripts (one that changes the packages) names every script the owner did not write.

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::common::{
    self, GROUP,
    course::{Course, Who},
    ok, stderr,
};

#[track_caller]
fn nothing_ran(marks: &Path, after: &str) {
    let found: Vec<_> = std::fs::read_dir(marks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        found.is_empty(),
        "`envmod {after}` ran the TA's activation script: {found:?}"
    );
}

#[test]
fn a_planted_activation_script_runs_only_for_package_changes_and_is_named() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let marks = c.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let script = prefix.join("etc/conda/activate.d/zz.sh");
    let plant = format!(
        "set -e\numask 002\nmkdir -p {dir}\nprintf 'touch %s/ran-as-$(id -un)\\nexport PLANTED=1\\n' {marks} > {script}",
        dir = common::sh(&script.parent().unwrap().display().to_string()),
        marks = common::sh(&marks.display().to_string()),
        script = common::sh(&script.display().to_string()),
    );
    ok(&c.bash(Who::Ta, &plant));

    let p = prefix.display().to_string();
    let metadata_only: [&[&str]; 6] = [
        &["freeze", "-p", &p],
        &["unfreeze", "-p", &p],
        &["module", "-p", &p],
        &["share", "-p", &p, "--group", GROUP],
        &["shell-hook", "-p", &p],
        &["export", "-p", &p],
    ];
    for args in metadata_only {
        let out = c.envmod_as(Who::Instructor, "077", args);
        ok(&out);
        nothing_ran(&marks, &args[0..1].join(" "));
    }
    let hook = ok(&c.envmod_as(Who::Instructor, "077", &["shell-hook", "-p", &p]));
    assert!(!hook.contains("PLANTED"), "{hook}");

    // A package change runs the scripts, as conda would, and names the one the TA wrote.
    let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "beta"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&script.display().to_string()) && err.contains(common::PEER),
        "install did not name the TA's script and its owner:\n{err}"
    );
    // The instructor's own scripts are not named.
    let own = c.bash(
        Who::Instructor,
        &format!(
            "echo 'export MINE=1' > {}",
            common::sh(
                &prefix
                    .join("etc/conda/activate.d/aa.sh")
                    .display()
                    .to_string()
            )
        ),
    );
    ok(&own);
    let out = c.envmod_as(Who::Instructor, "077", &["remove", "-p", &p, "beta"]);
    ok(&out);
    let err = stderr(&out);
    assert!(!err.contains("aa.sh"), "{err}");
}
