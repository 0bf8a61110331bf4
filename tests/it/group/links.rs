//! Links a TA plants in the live course environment or in the course's module root, where the
//! instructor's envmod writes after a change: `bin/activate`, the modulefile's directory.
//! Neither is written through.

use std::path::Path;

use crate::common::{
    Ms,
    course::{Course, Who},
    ok, sh, stderr,
};

/// Every file below `dir` with its content, to compare before and after.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                out.extend(snapshot(&p));
            } else {
                out.push((
                    p.display().to_string(),
                    std::fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The instructor's private directory a TA points links at: `~/notes`, which holds a file.
fn private_dir(c: &Course) -> std::path::PathBuf {
    let notes = c.home(Who::Instructor).join("notes");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "mkdir -p {n} && chmod 755 {n} && echo mine > {n}/todo.txt",
            n = sh(&notes.display().to_string())
        ),
    ));
    // The TA learns the path; the home itself stays 0700, which does not stop a link.
    notes
}

#[test]
fn links_planted_in_the_live_env_and_the_module_root_are_never_written_through() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let notes = private_dir(&c);
    let before = snapshot(&notes);
    let p = |rel: &str| sh(&prefix.join(rel).display().to_string());

    // `bin` becomes a link: the activation script a change writes lands in the notes.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "mv {b} {b}.real && ln -s {notes} {b}",
            b = p("bin"),
            notes = sh(&notes.display().to_string())
        ),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["module", "-p", prefix.to_str().unwrap()],
    );
    assert!(!out.status.success(), "module wrote through the bin link");
    assert!(
        stderr(&out).contains("symbolic link"),
        "the error does not say why: {}",
        stderr(&out)
    );
    assert_eq!(snapshot(&notes), before, "{}", stderr(&out));
    ok(&c.bash(Who::Ta, &format!("rm {b} && mv {b}.real {b}", b = p("bin"))));

    // The module's directory in the course's module root becomes a link to the notes.
    let mods = c.modules().join("cs101");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "mv {d} {d}.real && ln -s {notes} {d}",
            d = sh(&mods.display().to_string()),
            notes = sh(&notes.display().to_string())
        ),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["module", "-p", prefix.to_str().unwrap()],
    );
    assert!(
        !out.status.success(),
        "module wrote through the module root link"
    );
    assert_eq!(snapshot(&notes), before, "{}", stderr(&out));
    ok(&c.bash(
        Who::Ta,
        &format!(
            "rm {d} && mv {d}.real {d}",
            d = sh(&mods.display().to_string())
        ),
    ));

    // With the links gone, the same commands work, and students still load the module.
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["module", "-p", prefix.to_str().unwrap()],
    ));
    let script = format!(
        "source {init}\nmodule use {mods}\nmodule load cs101/py3.11 || exit 9\npython -c 'import alpha; print(alpha.VERSION)'",
        init = sh(&Ms::Lmod.init_script().display().to_string()),
        mods = sh(&c.modules().display().to_string()),
    );
    let text = ok(&c.bash(Who::Student, &script));
    assert_eq!(text.trim(), "2.0", "{text}");
}
