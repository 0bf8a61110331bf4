//! The stack replay loads modules as the user who runs envmod. The modules a shared
//! environment's manifest lists are the group's to write, and the course's module root is
//! the group's to write too: a TA who lists a module of their own there must not have the
//! instructor's `envmod doctor` load it.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use serde_json::json;

use crate::common::{
    Ms,
    course::{Course, Who},
    ok, sh, stderr, stdout,
};

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A directory everyone can write, where planted code leaves `<what>-<uid>` when it runs.
fn marks(c: &Course) -> PathBuf {
    let marks = c.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o1777)).unwrap();
    marks
}

/// The marks left by code that ran as the instructor.
fn ran_as_instructor(c: &Course, marks: &Path) -> Vec<String> {
    let uid = std::fs::metadata(c.home(Who::Instructor)).unwrap().uid();
    let mut found: Vec<String> = std::fs::read_dir(marks)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(&format!("-{uid}")))
        .collect();
    found.sort();
    found
}

#[test]
fn doctor_does_not_load_a_module_a_ta_listed_in_the_manifest() {
    let c = Course::new();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha"]);
    // A Lua modulefile in the group-writable course module root, which the instructor uses.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002\nmkdir -p {d}\nprintf 'os.execute(\"touch %s/doctor-$(id -u)\")\\nsetenv(\"EVIL\", \"1\")\\n' {m} > {d}/1.0.lua",
            d = sh(&p(&c.modules().join("tools"))),
            m = p(&marks),
        ),
    ));
    let manifest = prefix.join(".envmod/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["modules"] = json!([{ "full_name": "tools/1.0" }]);
    let staged = c.path().join("edited-manifest.json");
    std::fs::write(&staged, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&c.bash(
        Who::Ta,
        &format!("cat {} > {}", sh(&p(&staged)), sh(&p(&manifest))),
    ));

    let out = c.bash(
        Who::Instructor,
        &format!(
            "source {init}\nmodule use {mods}\n\"$ENVMOD\" doctor",
            init = sh(&p(&Ms::Lmod.init_script())),
            mods = sh(&p(&c.modules())),
        ),
    );
    let text = format!("{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        ran_as_instructor(&c, &marks),
        Vec::<String>::new(),
        "the instructor's doctor loaded the TA's module:\n{text}"
    );
    assert!(
        text.contains("modules") && text.contains("tools/1.0"),
        "doctor does not say the module list changed:\n{text}"
    );
}
