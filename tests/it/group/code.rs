//! Code a group member wrote never runs as the owner without a word: activation scripts the
//! TA changed, Python start-up code (`.pth` files, a replaced interpreter), the interpreter a
//! manifest names, modules a manifest lists, and packages from channels the TA added. What
//! a TA writes into a manifest is shown escaped, and a lock file the TA replaced is named.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use crate::common::{
    self, GROUP, Ms, PEER,
    channel::{self, Pkg},
    course::{Course, INSTRUCTOR, Who},
    ok, sh, stderr, stdout,
};

/// The course, its channel holding the standard packages plus `extra`.
fn course_with(extra: Vec<Pkg>) -> Course {
    let c = Course::new();
    add_packages(&c, extra);
    c
}

fn add_packages(c: &Course, extra: Vec<Pkg>) {
    let chan = c.path().join("channel");
    let mut pkgs = channel::standard_packages();
    pkgs.extend(extra);
    channel::write_channel(&chan, &pkgs);
    common::run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), &chan]);
}

/// A directory everyone can write, where planted code leaves `<what>-<uid>` when it runs.
fn marks(c: &Course) -> PathBuf {
    let marks = c.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o1777)).unwrap();
    marks
}

fn uid(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    ok(&out).trim().parse().unwrap()
}

/// What ran as the instructor since the last call, and clear the marks.
fn ran_as_instructor(marks: &Path) -> Vec<String> {
    let suffix = format!("-{}", uid(INSTRUCTOR));
    let mut found = Vec::new();
    for e in std::fs::read_dir(marks).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(&suffix) {
            found.push(name);
        }
        std::fs::remove_file(e.path()).unwrap();
    }
    found.sort();
    found
}

fn manifest_path(prefix: &Path) -> PathBuf {
    prefix.join(".envmod/manifest.json")
}

fn read_manifest(prefix: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(manifest_path(prefix)).unwrap()).unwrap()
}

/// `who` rewrites the manifest in place, as an editor would.
fn edit_manifest(c: &Course, who: Who, prefix: &Path, edit: impl FnOnce(&mut Value)) {
    let mut m = read_manifest(prefix);
    edit(&mut m);
    let staged = c.path().join("edited-manifest.json");
    std::fs::write(&staged, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    common::run_ok("chmod", &[Path::new("0644"), &staged]);
    let script = format!(
        "cat {} > {}",
        sh(&staged.display().to_string()),
        sh(&manifest_path(prefix).display().to_string())
    );
    ok(&c.bash(who, &script));
}

/// `text` with the bytes of a terminal escape sequence, as a TA would write them.
const ESC: &str = "\u{1b}[2K\r\u{1b}[32mALL OK";

fn p(prefix: &Path) -> String {
    prefix.display().to_string()
}

// ------------------------------------------------------------------ activation scripts

#[test]
fn an_activation_script_the_group_can_change_is_named_and_runs_for_no_metadata_command() {
    let c = Course::new();
    let marks = marks(&c);
    // gamma brings libfoo and its activation script.
    let prefix = c.create_shared("cs101", &["gamma"]);
    let script = prefix.join("etc/conda/activate.d/libfoo_activate.sh");
    // As an envmod that gave the group write access to every file left it.
    ok(&c.bash(Who::Instructor, &format!("chmod 0664 {}", sh(&p(&script)))));
    ok(&c.bash(
        Who::Ta,
        &format!(
            "printf 'touch %s/script-$(id -u)\\n' {} >> {}",
            sh(&p(&marks)),
            sh(&p(&script))
        ),
    ));
    assert_eq!(
        std::fs::metadata(&script).unwrap().uid(),
        uid(INSTRUCTOR),
        "the TA's edit kept the instructor as the owner"
    );
    // An interrupted package change, as the TA makes the manifest say.
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["outputs_pending"] = json!(true);
        m.as_object_mut().unwrap().remove("activation");
    });
    let out = c.envmod_as(Who::Instructor, "077", &["freeze", "-p", &p(&prefix)]);
    ok(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "freeze ran the script the TA changed:\n{}",
        stderr(&out)
    );
    ok(&c.envmod_as(Who::Instructor, "077", &["unfreeze", "-p", &p(&prefix)]));
    assert!(ran_as_instructor(&marks).is_empty(), "unfreeze ran it");

    // A package change runs it, as conda would, after a warning that names it and who
    // could have changed it.
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&p(&script)) && err.contains(GROUP),
        "install did not name the script the group can change:\n{err}"
    );
    // The new tree keeps activation scripts writable by their owner alone, so a change by
    // anyone else shows as a new owner.
    let mode = std::fs::metadata(&script).unwrap().mode();
    assert_eq!(mode & 0o022, 0, "{} is {mode:o}", script.display());
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["remove", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    assert!(
        !stderr(&out).contains("libfoo_activate.sh"),
        "{}",
        stderr(&out)
    );
    // And the scripts run with the system's programs first on PATH.
    let hook = ok(&c.envmod_as(Who::Instructor, "077", &["shell-hook", "-p", &p(&prefix)]));
    assert!(hook.contains("FOO_ACTIVATED"), "{hook}");
}

#[test]
fn activation_scripts_find_the_systems_programs_before_the_environments() {
    let c = Course::new();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha"]);
    // A TA's `sed` in the environment's bin, and the instructor's own script that calls sed.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002\nprintf '#!/bin/sh\\ntouch %s/sed-$(id -u)\\nexec /bin/sed \"$@\"\\n' {} > {bin}/sed\nchmod 0775 {bin}/sed",
            sh(&p(&marks)),
            bin = sh(&p(&prefix.join("bin")))
        ),
    ));
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "umask 022\nmkdir -p {d}\necho 'export MINE=$(echo a | sed s/a/b/)' > {d}/mine.sh",
            d = sh(&p(&prefix.join("etc/conda/activate.d")))
        ),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "the instructor's activation script ran the TA's sed:\n{}",
        stderr(&out)
    );
    let hook = ok(&c.envmod_as(Who::Instructor, "077", &["shell-hook", "-p", &p(&prefix)]));
    assert!(hook.contains("MINE"), "{hook}");
}

// ------------------------------------------------------------------ python start-up code

fn with_ipykernel() -> Course {
    course_with(vec![channel::noarch_python("ipykernel", "6.0", &[])])
}

fn site_packages(prefix: &Path, xy: &str) -> PathBuf {
    prefix.join(format!("lib/python{xy}/site-packages"))
}

/// A `.pth` line that runs as whoever starts the interpreter, leaving `<what>-<uid>`.
fn pth_line(marks: &Path, what: &str) -> String {
    format!(
        "import os; open(os.path.join({:?}, '{what}-' + str(os.getuid())), 'w')\n",
        p(marks)
    )
}

#[test]
fn a_pth_file_the_ta_planted_runs_neither_in_the_compile_nor_in_kernel_add() {
    let c = with_ipykernel();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha", "ipykernel"]);
    let pth = site_packages(&prefix, "3.11").join("zz_evil.pth");
    std::fs::write(c.path().join("evil.pth"), pth_line(&marks, "pth")).unwrap();
    common::run_ok("chmod", &[Path::new("0644"), &c.path().join("evil.pth")]);
    ok(&c.bash(
        Who::Ta,
        &format!("cp {} {}", sh(&p(&c.path().join("evil.pth"))), sh(&p(&pth))),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "the install ran the TA's .pth"
    );
    // The compile still happened, for the final prefix.
    let pyc = site_packages(&prefix, "3.11").join("beta/__pycache__/__init__.cpython-311.pyc");
    assert!(pyc.is_file(), "no {}", pyc.display());
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["kernel", "add", "-p", &p(&prefix)],
    );
    ok(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "kernel add ran the TA's .pth"
    );
    // An environment without ipykernel is still refused.
    let bare = c.create_shared("cs102", &["alpha"]);
    let out = c.envmod_as(Who::Instructor, "077", &["kernel", "add", "-p", &p(&bare)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no ipykernel"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_python_the_ta_put_in_the_environment_is_not_run() {
    let c = with_ipykernel();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha", "ipykernel"]);
    let python = prefix.join("bin/python");
    let site = read_manifest(&prefix)["python"]["executable"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002\nrm {py}\nprintf '#!/bin/sh\\ntouch %s/python-$(id -u)\\nexec %s \"$@\"\\n' {m} {site} > {py}\nchmod 0775 {py}",
            py = sh(&p(&python)),
            m = sh(&p(&marks)),
            site = sh(&site),
        ),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    let err = stderr(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "the install ran the TA's bin/python:\n{err}"
    );
    assert!(
        err.contains(&p(&python)),
        "no word about bin/python:\n{err}"
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["kernel", "add", "-p", &p(&prefix)],
    );
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "kernel add ran the TA's bin/python:\n{}",
        stderr(&out)
    );
}

#[test]
fn a_conda_python_the_group_can_change_is_not_run_by_the_compile() {
    let c = Course::new();
    let marks = marks(&c);
    let prefix = c.envs().join("cp");
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &[
            "create",
            "-p",
            &p(&prefix),
            "--python",
            "3.12",
            "--shared",
            "--group",
            GROUP,
            "--module-system",
            "none",
            "alpha",
        ],
    ));
    // Compiled at create, while the interpreter was the package's, in private staging.
    let alpha = site_packages(&prefix, "3.12").join("alpha/__pycache__");
    assert!(alpha.is_dir(), "create compiled nothing");
    let python = prefix.join("bin/python3.12");
    assert_eq!(
        std::fs::metadata(&python).unwrap().mode() & 0o020,
        0o020,
        "the test needs the interpreter group-writable, as sharing makes it"
    );
    // Edited in place, as the group may: the files stay the instructor's.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "set -e\ncd {bin}\nfor f in python python3 python3.12; do\n  t=$(mktemp); cp $f $t\n  {{ head -n 1 $t; echo 'touch {m}/python-$(id -u)'; tail -n +2 $t; }} > $f\ndone",
            bin = sh(&p(&prefix.join("bin"))),
            m = p(&marks),
        ),
    ));
    assert_eq!(std::fs::metadata(&python).unwrap().uid(), uid(INSTRUCTOR));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    let err = stderr(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "the compile ran the interpreter the TA changed:\n{err}"
    );
    assert!(
        err.contains("python3.12") && err.contains(GROUP),
        "no word about the interpreter:\n{err}"
    );
}

#[test]
fn a_package_with_a_pth_file_runs_nothing_when_it_is_installed() {
    let c = Course::new();
    let marks = marks(&c);
    add_packages(
        &c,
        vec![
            channel::noarch_python("pthpkg", "1.0", &[])
                .with_file("site-packages/zz_pthpkg.pth", pth_line(&marks, "pkg")),
        ],
    );
    let prefix = c.envs().join("pth");
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &[
            "create",
            "-p",
            &p(&prefix),
            "--module-system",
            "none",
            "--compile",
            "pthpkg",
        ],
    );
    let found = ran_as_instructor(&marks);
    ok(&out);
    assert_eq!(
        found,
        Vec::<String>::new(),
        "installing the package ran its .pth"
    );
    let pyc = site_packages(&prefix, "3.11").join("pthpkg/__pycache__/__init__.cpython-311.pyc");
    assert!(pyc.is_file(), "no {}", pyc.display());
}

// ---------------------------------------------------------------------------- doctor

#[test]
fn doctor_runs_no_interpreter_that_someone_else_could_have_put_there() {
    let c = Course::new();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha"]);
    let fake = prefix.join("bin/fakepython");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002\nprintf '#!/bin/sh\\ntouch %s/python-$(id -u)\\necho 3.11.2\\n' {} > {f}\nchmod 0775 {f}",
            sh(&p(&marks)),
            f = sh(&p(&fake))
        ),
    ));
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["python"]["executable"] = json!(fake);
    });
    let out = c.envmod_as(Who::Instructor, "077", &["doctor"]);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "doctor ran the TA's interpreter:\n{}",
        stdout(&out)
    );
    // The site's own interpreter is still asked for its version.
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["python"]["version"] = json!("3.11.0");
        m["python"]["executable"] = json!("/usr/bin/python3.11");
    });
    let out = c.envmod_as(Who::Instructor, "077", &["doctor"]);
    assert!(
        stdout(&out).contains("is now 3.11"),
        "doctor did not ask the site Python:\n{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------- modules

/// The instructor's `kernel add` in a shell with `ms` set up and the TA's module dir used.
fn kernel_add_with(c: &Course, ms: Ms, prefix: &Path, module_path: &Path) -> std::process::Output {
    let script = format!(
        "source {init}\nmodule use {mods}\numask 077\n\"$ENVMOD\" kernel add -p {p}",
        init = sh(&ms.init_script().display().to_string()),
        mods = sh(&p(module_path)),
        p = sh(&p(prefix)),
    );
    c.bash(Who::Instructor, &script)
}

#[test]
fn a_module_path_in_the_manifest_is_refused_naming_the_field() {
    let c = with_ipykernel();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha", "ipykernel"]);
    let ta_mods = c.dir.join("ta-mods");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 022\nmkdir -p {d}/evil\nprintf '#%%Module\\nexec touch %s/module-[exec id -u]\\nsetenv EVIL 1\\n' {m} > {d}/evil/1.0",
            d = sh(&p(&ta_mods)),
            m = sh(&p(&marks)),
        ),
    ));
    let path = ta_mods.join("evil/1.0");
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["modules"] = json!([{ "full_name": path }]);
    });
    let out = kernel_add_with(&c, Ms::Tcl, &prefix, &ta_mods);
    let err = stderr(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "kernel add loaded the TA's modulefile:\n{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`modules`"), "{err}");
    let out = c.envmod_as(Who::Instructor, "077", &["module", "-p", &p(&prefix)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let modulefile = std::fs::read_to_string(c.modules().join("cs101/py3.11.lua")).unwrap();
    assert!(!modulefile.contains("ta-mods"), "{modulefile}");
}

#[test]
fn a_module_list_someone_else_changed_is_refused_by_the_owners_commands() {
    let c = with_ipykernel();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha", "ipykernel"]);
    // A name, in the group-writable course module root, that Lmod finds.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002\nmkdir -p {d}\nprintf 'os.execute(\"touch %s/module-$(id -u)\")\\nsetenv(\"EVIL\", \"1\")\\n' {m} > {d}/1.0.lua",
            d = sh(&p(&c.modules().join("tools"))),
            m = p(&marks),
        ),
    ));
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["modules"] = json!([{ "full_name": "tools/1.0" }]);
    });
    let out = kernel_add_with(&c, Ms::Lmod, &prefix, &c.modules());
    let err = stderr(&out);
    assert_eq!(
        ran_as_instructor(&marks),
        Vec::<String>::new(),
        "kernel add loaded the TA's module:\n{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`modules`") && err.contains("tools/1.0"),
        "{err}"
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("`modules`"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------- channels

#[test]
fn channels_someone_else_added_are_named_with_the_scripts_their_packages_bring() {
    let c = Course::new();
    let marks = marks(&c);
    let prefix = c.create_shared("cs101", &["alpha"]);
    let ta_chan = c.dir.join("ta-chan");
    let script = format!("touch {}/channel-$(id -u)\n", p(&marks));
    channel::write_channel(
        &ta_chan,
        &[channel::linux64("beta", "9.0", "h0_0", &[])
            .with_file("etc/conda/activate.d/zz_beta.sh", &script)],
    );
    common::run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), &ta_chan]);
    let url = channel::channel_url(&ta_chan).to_string();
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        let mut channels = vec![json!(url)];
        channels.extend(m["channels"].as_array().unwrap().iter().cloned());
        m["channels"] = json!(channels);
    });
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    ok(&out);
    let err = stderr(&out);
    let shown = url.trim_end_matches('/');
    assert!(
        err.contains(shown) && err.contains("channel"),
        "the install did not name the channel the TA added:\n{err}"
    );
    let installed = prefix.join("etc/conda/activate.d/zz_beta.sh");
    assert!(installed.is_file());
    assert!(
        err.contains(&p(&installed)),
        "the install did not name the script the TA's channel brought:\n{err}"
    );
    // Said once: the next change uses what the instructor used last.
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "gamma"],
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        !err.lines()
            .any(|l| l.contains("warning:") && l.contains(shown)),
        "{err}"
    );
}

// ---------------------------------------------------------------------------- display

#[test]
fn list_and_doctor_show_manifest_values_escaped_and_the_real_owner() {
    let c = Course::new();
    let chan = c.path().join("channel");
    c.t.set_site_config(&format!(
        "channels: [{}]\nshared_envs_dirs: [{}]\n",
        chan.display(),
        c.envs().display()
    ));
    common::run_ok("chmod", &[Path::new("0644"), &c.t.site_config]);
    let prefix = c.create_shared("cs101", &["alpha"]);
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["python"]["version"] = json!(format!("3.11.2{ESC}"));
        m["python"]["executable"] = json!(format!("/nonexistent{ESC}/python3.11"));
        m["owner"] = json!("root");
    });
    for who in [Who::Instructor, Who::Student] {
        let out = c.envmod_as(who, "077", &["list"]);
        let text = ok(&out);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r'),
            "{who:?}: list printed the TA's escape codes: {text:?}"
        );
        assert!(text.contains("\\u{1b}[2K"), "{who:?}: {text}");
    }
    let student = ok(&c.envmod_as(Who::Student, "077", &["list"]));
    assert!(
        student.contains(&format!("shared by {INSTRUCTOR}")),
        "{student}"
    );
    let out = c.envmod_as(Who::Instructor, "077", &["doctor"]);
    let text = stdout(&out);
    assert!(text.contains("/nonexistent"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\r'),
        "doctor printed the TA's escape codes: {text:?}"
    );
    // A module name with escape codes is refused, and shown escaped in the reason.
    edit_manifest(&c, Who::Ta, &prefix, |m| {
        m["modules"] = json!([{ "full_name": format!("gcc/12{ESC}") }]);
    });
    let out = c.envmod_as(Who::Instructor, "077", &["list"]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains('\u{1b}') && !all.contains('\r'),
        "list printed the TA's module name raw: {all:?}"
    );
}

// ---------------------------------------------------------------------------- the lock

#[test]
fn a_lock_file_a_group_member_replaced_is_named_with_its_owner_and_the_fix() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let lock = c.envs().join(".cs101.envmod-lock");
    ok(&c.bash(
        Who::Ta,
        &format!("umask 022\nrm -f {l}\ntouch {l}", l = sh(&p(&lock))),
    ));
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p(&prefix), "beta"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(PEER) && err.contains("0644"),
        "the error does not name the lock file's owner and mode:\n{err}"
    );
    let hint = err
        .lines()
        .find(|l| l.contains("hint:"))
        .unwrap_or_default()
        .to_string();
    assert!(hint.contains("rm "), "{err}");
    // The fix it names works.
    ok(&c.bash(Who::Instructor, &format!("rm -f {}", sh(&p(&lock)))));
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-q", "-p", &p(&prefix), "beta"],
    ));
}
