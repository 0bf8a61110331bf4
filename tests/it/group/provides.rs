//! What the modules and the site Python provided is the owner's. A TA can write the course
//! env's `.envmod/manifest.json`, and so its `provided` section: a stand-in there would make
//! the instructor's `install` leave a package out and say it came from a module, and a
//! `site_packages` directory of the TA's would make the TA's fake distributions count as
//! installed. The instructor's envmod acts only on what the instructor's own envmod
//! recorded, and reads nothing a TA planted.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{
    course::{Course, Who},
    ok, sh, stderr,
};

fn manifest_path(prefix: &Path) -> PathBuf {
    prefix.join(".envmod/manifest.json")
}

fn read_manifest(prefix: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(manifest_path(prefix)).unwrap()).unwrap()
}

/// The TA rewrites the manifest in place, as an editor would: the file stays the
/// instructor's, group-writable, with `edit` applied to its JSON.
fn ta_edits_manifest(c: &Course, prefix: &Path, edit: impl FnOnce(&mut Value)) {
    let mut m = read_manifest(prefix);
    edit(&mut m);
    let staged = c.path().join("edited-manifest.json");
    std::fs::write(&staged, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    crate::common::run_ok("chmod", &[Path::new("0644"), &staged]);
    let script = format!(
        "cat {} > {}",
        sh(&staged.display().to_string()),
        sh(&manifest_path(prefix).display().to_string())
    );
    ok(&c.bash(Who::Ta, &script));
}

fn installed(prefix: &Path, pkg: &str) -> bool {
    std::fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{pkg}-"))
        })
}

/// The instructor's `install beta` (beta needs alpha), after the TA's edit.
fn instructor_installs_beta(c: &Course, prefix: &Path) -> std::process::Output {
    c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &prefix.display().to_string(), "beta"],
    )
}

/// Refused with the record's error naming `field`, one line and a hint, and nothing
/// installed.
#[track_caller]
fn refused(out: &std::process::Output, prefix: &Path, field: &str, what: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(
        err.contains(&format!("`{field}`"))
            && err.contains("envmod does not act on what you did not choose"),
        "{what}: the error does not name `{field}`: {err}"
    );
    assert!(err.contains("hint:"), "{what}: {err}");
    assert!(!installed(prefix, "beta"), "{what}: beta was installed");
}

/// A stand-in the TA adds pins a package the instructor asks for: before, the instructor's
/// `install beta` installed beta without alpha (`alpha 9.9 ← module tools/1.0`) and
/// succeeded. Now it is refused, naming `provided`, and once the TA's section is put back
/// the same install goes ahead.
#[test]
fn a_stand_in_the_ta_adds_is_not_acted_on() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["libfoo"]);
    let mine = read_manifest(&prefix)["provided"].clone();
    ta_edits_manifest(&c, &prefix, |m| {
        m["provided"] = json!({
            "modules": [{"module": "tools/1.0", "rule": "tools/*", "provides": ["alpha 9.9"]}]
        });
    });
    let out = instructor_installs_beta(&c, &prefix);
    refused(&out, &prefix, "provided.modules", "an added stand-in");
    assert!(
        stderr(&out).contains("alpha 9.9"),
        "the error does not say what the TA's section provides: {}",
        stderr(&out)
    );
    assert!(!installed(&prefix, "alpha"));

    // The fix the hint names: put the section back.
    ta_edits_manifest(&c, &prefix, |m| m["provided"] = mine);
    ok(&instructor_installs_beta(&c, &prefix));
    assert!(installed(&prefix, "alpha") && installed(&prefix, "beta"));
}

/// What the instructor exports is what the instructor chose: before, a stand-in the TA
/// added made the instructor's lock for another platform leave its package out, and the
/// environment.yml carry the TA's `provided` to the next site. Now the export is refused,
/// naming `provided`.
#[test]
fn an_export_does_not_carry_a_stand_in_the_ta_adds() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["libfoo"]);
    ta_edits_manifest(&c, &prefix, |m| {
        m["provided"] = json!({
            "modules": [{"module": "tools/1.0", "rule": "tools/*", "provides": ["alpha 9.9"]}]
        });
    });
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["export", "-p", &prefix.display().to_string()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`provided.modules`")
            && err.contains("envmod does not act on what you did not choose"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("alpha 9.9"),
        "the TA's stand-in was exported"
    );
}

/// A `site_packages` directory of the TA's holding a fake `alpha 99` distribution: before,
/// the instructor's `install beta` took it as the site Python's alpha and installed no
/// alpha. Now it is refused, and the directory is not read at all: a FIFO planted there as
/// a METADATA cannot hang it.
#[test]
fn a_site_packages_directory_the_ta_names_is_not_read() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["libfoo"]);
    let fake = c.dir.join("ta-site");
    let script = format!(
        "set -e\nd={}\nmkdir -p \"$d/alpha-99.dist-info\" \"$d/hang-1.0.dist-info\"\n\
         printf 'Metadata-Version: 2.1\\nName: alpha\\nVersion: 99\\n' > \"$d/alpha-99.dist-info/METADATA\"\n\
         mkfifo \"$d/hang-1.0.dist-info/METADATA\"\n\
         ln -s /dev/zero \"$d/zero-1.0.dist-info\"",
        sh(&fake.display().to_string())
    );
    ok(&c.bash(Who::Ta, &script));
    ta_edits_manifest(&c, &prefix, |m| {
        let p = m["provided"].as_object_mut().unwrap();
        p.insert("site_packages".into(), json!([fake.display().to_string()]));
        p.remove("ignore_site_packages");
    });
    let started = std::time::Instant::now();
    let out = instructor_installs_beta(&c, &prefix);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the install took {:?}",
        started.elapsed()
    );
    refused(
        &out,
        &prefix,
        "provided.site_packages",
        "a site_packages directory of the TA's",
    );
    assert!(!installed(&prefix, "alpha"));
}

/// A constraint whose name is a pattern would reach rattler's solver, which panics on it.
/// With no record of the environment (the TA made it, the instructor installs into it for
/// the first time), the manifest is taken as it is, and the section is still checked: a
/// one-line error that names the module and the entry, never a panic.
#[test]
fn a_pattern_constraint_in_a_manifest_without_a_record_is_an_error_not_a_panic() {
    let c = Course::new();
    let prefix = c.envs().join("cs101");
    let p = prefix.display().to_string();
    let modules = c.modules().display().to_string();
    ok(&c.envmod_as(
        Who::Ta,
        "002",
        &[
            "create",
            "-p",
            &p,
            "--module-root",
            &modules,
            "--module-system",
            "lmod",
            "--shared",
            "--group",
            crate::common::GROUP,
            "libfoo",
        ],
    ));
    for (provides, needle) in [
        ("alph* >=1", "\"alph*\" is not a package name"),
        ("python 3.11", "python cannot come from a module"),
        ("__cuda >=12", "takes one exact version"),
    ] {
        ta_edits_manifest(&c, &prefix, |m| {
            m["provided"] = json!({
                "modules": [{"module": "tools/1.0", "rule": "tools/*", "provides": [provides]}]
            });
        });
        let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "beta"]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{provides}: {err}");
        assert_eq!(out.status.code(), Some(1), "{provides}: {err}");
        assert!(
            err.contains(needle) && err.contains("tools/1.0"),
            "{provides}: {err}"
        );
        assert!(!installed(&prefix, "beta"), "{provides}");
    }
}

/// What a member may change stays theirs: a TA's `install --ignore-site-packages` counts
/// fewer of the site's packages as installed (conda's are installed instead, as the TA could
/// ask for anyway), and the instructor's next install goes ahead on it.
#[test]
fn a_ta_who_ignores_the_site_packages_changes_nothing_the_instructor_chose() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["libfoo"]);
    let p = prefix.display().to_string();
    ok(&c.envmod_as(
        Who::Ta,
        "002",
        &["install", "-p", &p, "--ignore-site-packages", "gamma"],
    ));
    assert_eq!(
        read_manifest(&prefix)["provided"]["ignore_site_packages"],
        json!(true)
    );
    ok(&instructor_installs_beta(&c, &prefix));
    assert!(installed(&prefix, "alpha") && installed(&prefix, "beta"));
}
