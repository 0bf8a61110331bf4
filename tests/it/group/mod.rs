//! A group member cannot turn a shared environment against its owner. The course is set up
//! as docs/instructors.md recommends, with real accounts: an instructor and a TA in the
//! course group, and a student outside it (`common::course`).

mod adopt;
mod cache;
mod clone;
mod code;
mod leftovers;
mod links;
mod meta;
mod newcmds;
mod provides;
mod record;
mod replay;
mod scripts;
mod tree;

use crate::common::{
    self,
    course::{Course, Who},
};

#[test]
fn the_instructor_owns_a_shared_course_env_that_the_student_loads() {
    use std::os::unix::fs::MetadataExt;
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let uid = |user: &str| -> u32 {
        let out = std::process::Command::new("id")
            .args(["-u", user])
            .output()
            .unwrap();
        common::ok(&out).trim().parse().unwrap()
    };
    let meta = std::fs::metadata(prefix.join(".envmod/manifest.json")).unwrap();
    assert_eq!(meta.uid(), uid(Who::Instructor.user()));
    let script = format!(
        "source {init}\nmodule use {mods}\nmodule load cs101/py3.11 || exit 9\npython -c 'import alpha; print(alpha.VERSION)'",
        init = common::sh(&common::Ms::Lmod.init_script().display().to_string()),
        mods = common::sh(&c.modules().display().to_string()),
    );
    let text = common::ok(&c.bash(Who::Student, &script));
    assert_eq!(text.trim(), "2.0", "{text}");
}
