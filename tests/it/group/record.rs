//! The manifest is input, and reading needs no write. A TA can write the course env's
//! `.envmod/manifest.json`; nothing the TA puts there makes the instructor's envmod write,
//! add or remove anything outside the places the instructor chose, or run a name as shell
//! code. A student, who can write nothing in the course, still exports it and hooks it into
//! a shell, and leaves nothing behind.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use crate::common::{
    GROUP, channel,
    course::{Course, Who},
    ok, sh, stderr, stdout,
};

/// The course of `Course::new`, its channel with an `ipykernel` that imports, and the
/// instructor's shared course env `cs101` holding alpha and ipykernel.
fn course() -> (Course, PathBuf) {
    let c = Course::new();
    let chan = c.path().join("channel");
    let mut pkgs = channel::standard_packages();
    pkgs.push(channel::noarch_python("ipykernel", "6.0", &[]));
    channel::write_channel(&chan, &pkgs);
    crate::common::run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), &chan]);
    let prefix = c.create_shared("cs101", &["alpha", "ipykernel"]);
    (c, prefix)
}

fn manifest_path(prefix: &Path) -> PathBuf {
    prefix.join(".envmod/manifest.json")
}

fn read_manifest(prefix: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(manifest_path(prefix)).unwrap()).unwrap()
}

/// `who` rewrites the manifest in place, as an editor would: the file stays the
/// instructor's, group-writable, with `edit` applied to its JSON.
fn edit_manifest(c: &Course, who: Who, prefix: &Path, edit: impl FnOnce(&mut Value)) {
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
    ok(&c.bash(who, &script));
}

/// Every entry below `dir` with its type, owner, mode, size, mtime and (for files) content,
/// for before/after comparisons.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = p.symlink_metadata().unwrap();
            let content = if meta.is_file() {
                format!("{:?}", std::fs::read(&p).unwrap_or_default())
            } else if meta.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            if meta.is_dir() {
                stack.push(p.clone());
            }
            out.push(format!(
                "{} {:o} {}:{} {} {}.{} {content}",
                p.strip_prefix(dir).unwrap().display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec()
            ));
        }
    }
    out.sort();
    out
}

fn modulefile(c: &Course) -> PathBuf {
    c.modules().join("cs101/py3.11.lua")
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

/// The instructor's next `install` after the TA's edit: refused, naming `field`, with
/// nothing changed in the instructor's home, the course modulefile or the env.
#[track_caller]
fn refused_naming(c: &Course, prefix: &Path, field: &str, what: &str) {
    let home = tree(&c.home(Who::Instructor));
    let course_module = std::fs::read(modulefile(c)).unwrap();
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &prefix.display().to_string(), "beta"],
    );
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{what}: the instructor's install acted on the TA's manifest; home now:\n{}\ncourse modulefile there: {}\n{err}",
        tree(&c.home(Who::Instructor))
            .iter()
            .filter(|l| !home.contains(l) && !l.starts_with(".cache"))
            .map(|l| l.chars().take(120).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n"),
        modulefile(c).exists()
    );
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(
        err.contains(&format!("`{field}`")),
        "{what}: the error does not name `{field}`: {err}"
    );
    assert!(err.contains("hint:"), "{what}: {err}");
    assert_eq!(
        tree(&c.home(Who::Instructor)),
        home,
        "{what}: the instructor's home changed"
    );
    assert_eq!(
        std::fs::read(modulefile(c)).ok().as_deref(),
        Some(&course_module[..]),
        "{what}: the course modulefile changed"
    );
    assert!(!installed(prefix, "beta"), "{what}: the env changed");
}

#[test]
fn a_forged_module_root_writes_no_modulefile_in_the_owners_home() {
    let (c, prefix) = course();
    let config = c.home(Who::Instructor).join(".config");
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["module"]["root"] = json!(config);
        m["module"]["file"] = json!(config.join("cs101/py3.11.lua"));
    });
    refused_naming(&c, &prefix, "module.root", "module.root in ~/.config");
    assert!(!config.join("cs101").exists());
}

#[test]
fn a_forged_kernel_is_not_added_to_the_owners_jupyter() {
    let (c, prefix) = course();
    let jupyter = c.home(Who::Instructor).join(".local/share/jupyter");
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["kernel"] = json!({
            "name": "cs101",
            "display_name": "CS 101",
            "dir": jupyter.join("kernels/cs101"),
            "module_vars": [],
        });
    });
    refused_naming(
        &c,
        &prefix,
        "kernel",
        "a kernel in the instructor's Jupyter",
    );
    assert!(!jupyter.exists());
}

#[test]
fn a_forged_module_record_does_not_remove_the_course_modulefile() {
    let (c, prefix) = course();
    let elsewhere = c.dir.join("ta-modules");
    ok(&c.bash(
        Who::Ta,
        &format!("mkdir -m 2775 {}", sh(&elsewhere.display().to_string())),
    ));
    let original = read_manifest(&prefix);
    type Edit = Box<dyn Fn(&mut Value)>;
    let elsewhere_root = elsewhere.clone();
    let attacks: Vec<(&str, &str, Edit)> = vec![
        (
            "module.file",
            "the root moved, the file left",
            Box::new(move |m| m["module"]["root"] = json!(elsewhere_root)),
        ),
        (
            "module.name",
            "another Python version",
            Box::new(|m| m["python"]["minor"] = json!(12)),
        ),
        (
            "name",
            "another env name",
            Box::new(|m| m["name"] = json!("cs102")),
        ),
    ];
    for (field, what, edit) in attacks {
        edit_manifest(&c, Who::Ta, &prefix, |m| {
            *m = original.clone();
            edit(m);
        });
        refused_naming(&c, &prefix, field, what);
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "{what}");
        assert!(!c.modules().join("cs102").exists(), "{what}");
        assert!(!c.modules().join("cs101/py3.12.lua").exists(), "{what}");
    }
}

#[test]
fn a_forged_module_var_name_never_runs_in_the_kernel_launcher() {
    let (c, prefix) = course();
    let p = prefix.display().to_string();
    ok(&c.envmod_as(Who::Instructor, "077", &["kernel", "add", "-q", "-p", &p]));
    let kernel_json = c
        .home(Who::Instructor)
        .join(".local/share/jupyter/kernels/cs101/kernel.json");
    let before = std::fs::read(&kernel_json).unwrap();
    let marker = c.home(Who::Instructor).join("RAN-AS-INSTRUCTOR");
    let name = format!("X=1; touch {}; Y", marker.display());
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["kernel"]["module_vars"] = json!([{"name": name, "value": "v", "prepend": false}]);
    });
    let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "beta"]);
    // Start the instructor's kernel as Jupyter would, whatever the install did.
    let spec: Value = serde_json::from_slice(&std::fs::read(&kernel_json).unwrap()).unwrap();
    let launcher = spec["argv"][2].as_str().unwrap().to_string();
    let _ = c.bash(
        Who::Instructor,
        &format!("bash -c {} envmod-kernel-cs101 /dev/null", sh(&launcher)),
    );
    assert!(
        !marker.exists(),
        "the TA's variable name ran as the instructor when the kernel started"
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`kernel.module_vars`"), "{err}");
    assert_eq!(std::fs::read(&kernel_json).unwrap(), before);
}

/// A kernel of the shared env in the instructor's own Jupyter: readable, as before, but the
/// group gets no write access to the instructor's data dir, where it could plant kernels.
#[test]
fn the_owners_own_jupyter_stays_the_owners() {
    let (c, prefix) = course();
    let p = prefix.display().to_string();
    ok(&c.envmod_as(Who::Instructor, "077", &["kernel", "add", "-q", "-p", &p]));
    let kernel_json = c
        .home(Who::Instructor)
        .join(".local/share/jupyter/kernels/cs101/kernel.json");
    for d in kernel_json.ancestors().take(5) {
        let mode = d.metadata().unwrap().mode();
        assert_eq!(
            mode & 0o022,
            0,
            "{} is {mode:o}: the group can write it",
            d.display()
        );
    }
    // In the course's Jupyter prefix, the group shares it as before.
    let course_dir = c.dir.display().to_string();
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["kernel", "add", "-q", "-p", &p, "--prefix", &course_dir],
    ));
    let dir = c.dir.join("share/jupyter/kernels/cs101");
    assert_eq!(dir.metadata().unwrap().mode() & 0o7777, 0o2775);
    assert_eq!(
        dir.join("kernel.json").metadata().unwrap().mode() & 0o777,
        0o664
    );
}

/// What a TA may do, and what the owner's envmod then says: a TA's install only changes
/// packages, and the instructor's next one goes ahead; a TA's kernel for the course is the
/// TA's choice of a place outside the env, so the instructor's envmod asks first.
#[test]
fn a_tas_changes_of_packages_pass_and_of_places_are_named() {
    let (c, prefix) = course();
    let p = prefix.display().to_string();
    ok(&c.envmod_as(Who::Ta, "077", &["install", "-q", "-p", &p, "beta"]));
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-q", "-p", &p, "gamma"],
    ));
    assert!(installed(&prefix, "beta") && installed(&prefix, "gamma"));
    assert!(modulefile(&c).is_file());

    let course_dir = c.dir.display().to_string();
    ok(&c.envmod_as(
        Who::Ta,
        "077",
        &["kernel", "add", "-q", "-p", &p, "--prefix", &course_dir],
    ));
    let out = c.envmod_as(Who::Instructor, "077", &["remove", "-p", &p, "gamma"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`kernel`"), "{err}");
    assert!(err.contains("envmod kernel add"), "{err}");
    // Taking the TA's kernel as the instructor's own ends the question.
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["kernel", "add", "-q", "-p", &p, "--prefix", &course_dir],
    ));
    ok(&c.envmod_as(Who::Instructor, "077", &["remove", "-q", "-p", &p, "gamma"]));
    assert!(
        c.dir
            .join("share/jupyter/kernels/cs101/kernel.json")
            .is_file()
    );
}

// ----------------------------------------------------------------- reading needs no write

#[test]
fn a_student_exports_and_hooks_the_course_env_and_writes_nothing() {
    let (c, prefix) = course();
    let p = prefix.display().to_string();
    // What an interrupted command of the instructor left: a staging dir, pending outputs.
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "mkdir -p {}/.cs101.envmod-staging/tree/bin",
            sh(&c.envs().display().to_string())
        ),
    ));
    edit_manifest(&c, Who::Instructor, &prefix, |m| {
        m["outputs_pending"] = json!(true);
    });
    let before = tree(&c.dir);

    let yml = ok(&c.envmod_as(Who::Student, "022", &["export", "-p", &p]));
    assert!(yml.contains("alpha"), "{yml}");
    let lock = ok(&c.envmod_as(
        Who::Student,
        "022",
        &["export", "-p", &p, "--format", "lock"],
    ));
    assert!(lock.contains("alpha-2.0"), "{lock}");
    let hook = ok(&c.envmod_as(Who::Student, "022", &["shell-hook", "-p", &p]));
    assert!(hook.contains(&p), "{hook}");
    let script = format!(
        "eval \"$(\"$ENVMOD\" shell-hook -p {})\" && python -c 'import alpha; print(alpha.VERSION)'",
        sh(&p)
    );
    assert_eq!(ok(&c.bash(Who::Student, &script)).trim(), "2.0");
    let course_dir = c.dir.display().to_string();
    ok(&c.envmod_as(Who::Student, "022", &["list"]));
    ok(&c.envmod_as(
        Who::Student,
        "022",
        &["kernel", "list", "--prefix", &course_dir],
    ));
    let _ = c.envmod_as(Who::Student, "022", &["doctor"]);

    assert_eq!(tree(&c.dir), before, "a reader changed the course tree");
    // The instructor's next change finishes what was left, as before.
    ok(&c.envmod_as(Who::Instructor, "077", &["install", "-q", "-p", &p, "beta"]));
    assert!(!c.envs().join(".cs101.envmod-staging").exists());
    assert_eq!(read_manifest(&prefix)["outputs_pending"], Value::Null);
}

/// Another process holding the lock (as another envmod would), as `who`, until
/// [`release`]: `flock MODE LOCK` around a `read` of a pipe only the test holds.
fn hold_lock(c: &Course, who: Who, mode: &str) -> std::process::Child {
    let lock = c.envs().join(".cs101.envmod-lock");
    let child = std::process::Command::new("runuser")
        .args(["-u", who.user(), "--", "flock", mode])
        .arg(&lock)
        .args(["sh", "-c", "echo held; read x || :"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("flock from util-linux");
    wait_until_held(child)
}

fn wait_until_held(mut child: std::process::Child) -> std::process::Child {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "held\n", "flock did not take the lock");
    child
}

fn release(mut child: std::process::Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

/// A writer holding the lock keeps readers out (they see the env before or after a change,
/// never in between); readers share it; a writer waits a moment for readers to finish.
#[test]
fn a_writer_keeps_readers_out_and_readers_share_the_lock() {
    let (c, prefix) = course();
    let p = prefix.display().to_string();

    let writer = hold_lock(&c, Who::Instructor, "-x");
    let started = std::time::Instant::now();
    let out = c.envmod_as(Who::Student, "022", &["export", "-p", &p]);
    release(writer);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("being changed by another envmod process"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs() < 10,
        "the reader waited too long"
    );
    assert_eq!(stdout(&out), "", "a reader printed half an env");

    let reader = hold_lock(&c, Who::Ta, "-s");
    let yml = c.envmod_as(Who::Student, "022", &["export", "-p", &p]);
    let hook = c.envmod_as(Who::Student, "022", &["shell-hook", "-p", &p]);
    release(reader);
    assert!(ok(&yml).contains("alpha"));
    ok(&hook);

    // A reader that finishes soon does not make a change fail.
    let lock = c.envs().join(".cs101.envmod-lock");
    let reader = std::process::Command::new("runuser")
        .args(["-u", Who::Student.user(), "--", "flock", "-s"])
        .arg(&lock)
        .args(["sh", "-c", "echo held; sleep 0.7"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("flock from util-linux");
    let mut reader = wait_until_held(reader);
    let out = c.envmod_as(Who::Instructor, "077", &["install", "-q", "-p", &p, "beta"]);
    assert!(reader.wait().unwrap().success());
    ok(&out);
    assert!(installed(&prefix, "beta"));
    // The lock file is still the instructor's and the group's, as `--shared` made it.
    let meta = c.envs().join(".cs101.envmod-lock").metadata().unwrap();
    assert_eq!(meta.mode() & 0o777, 0o664, "{:o}", meta.mode());
    let gid = crate::common::ok(
        &std::process::Command::new("getent")
            .args(["group", GROUP])
            .output()
            .unwrap(),
    );
    assert!(gid.contains(&meta.gid().to_string()), "{gid}");
}
