//! What a change builds its new tree from, and where it builds it. A TA can write the live
//! course environment: its package records, its links, its `.envmod` and `conda-meta`; and
//! the envs directory, where the staging tree of a change is made. Nothing the TA puts there
//! makes the instructor's envmod remove, move or write a file outside the environment, or run
//! a program of the TA's.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::common::{
    self, GROUP,
    course::{Course, Who},
    ok, sh, stderr,
};

/// How long the staging race runs: a few rounds of each command, short for the suite.
const RACE: Duration = Duration::from_secs(5);

/// The instructor's file `name` in her home, with `text`, which nothing may change.
fn precious(c: &Course, name: &str, text: &str) -> PathBuf {
    let path = c.home(Who::Instructor).join(name);
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "printf %s {} > {}",
            sh(text),
            sh(&path.display().to_string())
        ),
    ));
    path
}

/// Every file below `dir` (links as their targets) with its content, to compare before and
/// after; `dir` itself may be missing.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = p.symlink_metadata().unwrap();
            let what = if meta.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned()
            };
            out.push((p.display().to_string(), what));
        }
    }
    out.sort();
    out
}

/// The only record of `pkg` in the environment's conda-meta.
fn record_path(prefix: &Path, pkg: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!("{pkg}-")) && n.ends_with(".json")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// The TA rewrites `record` in place (it stays the instructor's file) with `edit` applied.
fn forge(c: &Course, record: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    edit(&mut value);
    write_as_ta(c, record, &serde_json::to_string_pretty(&value).unwrap());
}

fn write_as_ta(c: &Course, path: &Path, text: &str) {
    let staged = c.path().join("forged.json");
    std::fs::write(&staged, text).unwrap();
    common::run_ok("chmod", &[Path::new("0644"), &staged]);
    ok(&c.bash(
        Who::Ta,
        &format!(
            "cat {} > {}",
            sh(&staged.display().to_string()),
            sh(&path.display().to_string())
        ),
    ));
}

/// `path` as a file entry of a package record's paths: what rattler removes when it unlinks
/// the package.
fn paths_entry(path: &str) -> Value {
    json!({"_path": path, "path_type": "hardlink", "size_in_bytes": 4})
}

fn installed_version(prefix: &Path, pkg: &str) -> String {
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(record_path(prefix, pkg)).unwrap()).unwrap();
    record["version"].as_str().unwrap().to_string()
}

/// A change the TA makes to a package record.
type Edit = dyn Fn(&mut Value);

#[test]
fn forged_paths_in_package_records_never_reach_files_outside_the_env() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    let record = record_path(&prefix, "alpha");
    let original = std::fs::read_to_string(&record).unwrap();
    let home = c.home(Who::Instructor);
    // From the prefix (<test>/course/envs/cs101) three levels up is the test directory.
    let up = "../../../home-envmod-instructor";

    // Each forgery names a file of the instructor's that rattler would remove: in the paths
    // it unlinks, in the menu entries it takes away, and in the build string that names the
    // record file itself (below a directory the TA makes in conda-meta).
    let forgeries: Vec<(&str, String, Box<Edit>)> = vec![
        (
            "files-and-paths",
            format!("{up}/precious-paths"),
            Box::new(move |r: &mut Value| {
                let bad = format!("{up}/precious-paths");
                r["files"].as_array_mut().unwrap().push(json!(bad));
                r["paths_data"]["paths"]
                    .as_array_mut()
                    .unwrap()
                    .push(paths_entry(&bad));
            }),
        ),
        (
            "dot-components",
            "lib/./python3.11/../../../../../home-envmod-instructor/precious-dots".to_string(),
            Box::new(|r: &mut Value| {
                let bad = "lib/./python3.11/../../../../../home-envmod-instructor/precious-dots";
                r["paths_data"]["paths"]
                    .as_array_mut()
                    .unwrap()
                    .push(paths_entry(bad));
            }),
        ),
        (
            "menus",
            home.join("precious-menu").display().to_string(),
            Box::new({
                let menu = home.join("precious-menu");
                move |r: &mut Value| {
                    r["installed_system_menus"] = json!([{
                        "type": "linux",
                        "install_mode": "User",
                        "paths": [menu.display().to_string()],
                    }]);
                }
            }),
        ),
        (
            "build",
            "pyhd8ed1ab_0/../../../../../home-envmod-instructor/precious-build".to_string(),
            Box::new(|r: &mut Value| {
                r["build"] =
                    json!("pyhd8ed1ab_0/../../../../../home-envmod-instructor/precious-build");
            }),
        ),
    ];
    // What the build string needs to resolve: a directory of that name in conda-meta.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002; mkdir {}",
            sh(&prefix
                .join("conda-meta/alpha-2.0-pyhd8ed1ab_0")
                .display()
                .to_string())
        ),
    ));
    let mut failures = Vec::new();
    for (what, bad, edit) in &forgeries {
        let files = [
            precious(&c, "precious-paths", "grades\n"),
            precious(&c, "precious-dots", "grades\n"),
            precious(&c, "precious-menu", "grades\n"),
            precious(&c, "precious-build.json", "grades\n"),
        ];
        forge(&c, &record, edit);
        let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "alpha=1.0"]);
        let err = stderr(&out);
        let gone: Vec<String> = files
            .iter()
            .filter(|f| !f.exists())
            .map(|f| f.display().to_string())
            .collect();
        if !gone.is_empty() {
            failures.push(format!(
                "{what}: the install (exit {:?}) removed {gone:?}",
                out.status.code()
            ));
        } else if out.status.code() != Some(1) {
            failures.push(format!(
                "{what}: exit {:?}, not a refusal: {err}",
                out.status.code()
            ));
        } else if !err.contains(&record.display().to_string()) || !err.contains(bad.as_str()) {
            failures.push(format!(
                "{what}: the error names neither the record nor {bad}: {err}"
            ));
        } else if installed_version(&prefix, "alpha") != "2.0" {
            failures.push(format!("{what}: the environment was changed: {err}"));
        }
        write_as_ta(&c, &record, &original);
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The record as rattler wrote it still works.
    ok(&c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "alpha=1.0"]));
    assert_eq!(installed_version(&prefix, "alpha"), "1.0");
}

#[test]
fn an_absolute_path_in_a_package_record_is_refused_with_its_name() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    let record = record_path(&prefix, "alpha");
    let victim = precious(&c, "precious-abs", "grades\n");
    let bad = victim.display().to_string();
    forge(&c, &record, |r| {
        r["paths_data"]["paths"]
            .as_array_mut()
            .unwrap()
            .push(paths_entry(&bad));
    });
    let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "alpha=1.0"]);
    let err = stderr(&out);
    assert!(victim.exists(), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&record.display().to_string()), "{err}");
    assert!(err.contains(&bad), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(installed_version(&prefix, "alpha"), "2.0");
}

/// A link the TA makes in the live environment, as `rel` → `target`, with `rel` moved aside
/// first when it exists.
fn plant_link(c: &Course, prefix: &Path, rel: &str, target: &str) {
    let at = sh(&prefix.join(rel).display().to_string());
    ok(&c.bash(
        Who::Ta,
        &format!(
            "if [ -e {at} ]; then mv {at} {at}.ta-aside; fi; ln -s {} {at}",
            sh(target)
        ),
    ));
}

fn unplant_link(c: &Course, prefix: &Path, rel: &str) {
    let at = sh(&prefix.join(rel).display().to_string());
    ok(&c.bash(
        Who::Ta,
        &format!("rm {at}; if [ -e {at}.ta-aside ]; then mv {at}.ta-aside {at}; fi"),
    ));
}

#[test]
fn links_a_ta_points_out_of_the_env_are_never_written_or_removed_through() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha=1.0"]);
    let p = prefix.display().to_string();
    let home = c.home(Who::Instructor);
    let work = home.join("work");
    let local_bin = home.join(".local/bin");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "mkdir -p {w} {b} && echo mine > {w}/__init__.py && echo mine > {w}/cli.py && echo mine > {b}/tool",
            w = sh(&work.display().to_string()),
            b = sh(&local_bin.display().to_string()),
        ),
    ));
    let before = (snapshot(&work), snapshot(&local_bin));
    let site = "lib/python3.11/site-packages";
    let w = work.display().to_string();
    let cases = [
        // A package's directory that does not exist yet: its files would be linked there.
        (format!("{site}/beta"), w.clone(), "beta"),
        // The same through a relative link: six levels up from site-packages is the test dir.
        (
            format!("{site}/gamma"),
            "../../../../../../home-envmod-instructor/work".to_string(),
            "gamma",
        ),
        // An installed package's directory: its files would be removed there.
        (format!("{site}/alpha"), w.clone(), "alpha=2.0"),
        // The scripts directory: the new entry point would be written there.
        (
            "bin".to_string(),
            local_bin.display().to_string(),
            "alpha=2.0",
        ),
    ];
    let mut failures = Vec::new();
    for (rel, target, spec) in &cases {
        plant_link(&c, &prefix, rel, target);
        let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, spec]);
        let err = stderr(&out);
        let link = prefix.join(rel).display().to_string();
        if (snapshot(&work), snapshot(&local_bin)) != before {
            failures.push(format!(
                "{rel} -> {target}: install {spec} (exit {:?}) changed the instructor's files",
                out.status.code()
            ));
        } else if out.status.code() != Some(1) {
            failures.push(format!(
                "{rel} -> {target}: exit {:?}, not a refusal: {err}",
                out.status.code()
            ));
        } else if !err.contains(&link) || !err.contains("envmod-peer") {
            failures.push(format!(
                "{rel} -> {target}: the error names neither the link nor who made it: {err}"
            ));
        }
        unplant_link(&c, &prefix, rel);
        if (snapshot(&work), snapshot(&local_bin)) != before {
            // Restore, so the next case starts clean.
            ok(&c.bash(
                Who::Instructor,
                &format!(
                    "mkdir -p {w} {b} && echo mine > {w}/__init__.py && echo mine > {w}/cli.py && echo mine > {b}/tool; rm -f {b}/alpha-cli {w}/VERSION",
                    w = sh(&work.display().to_string()),
                    b = sh(&local_bin.display().to_string()),
                ),
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The links envmod and the packages make (lib64, bin/python*) are no reason to refuse.
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["install", "-p", &p, "alpha=2.0", "beta"],
    ));
    assert!(prefix.join("bin/alpha-cli").is_file());
    assert!(prefix.join(format!("{site}/beta")).is_dir());
    assert_eq!((snapshot(&work), snapshot(&local_bin)), before);
}

/// The TA's public directory, `~ta/pub` (mode 0755 in a home of 0711): links the TA makes
/// there are links the owner of a directory nobody else can write made.
fn ta_pub(c: &Course) -> PathBuf {
    let home = c.home(Who::Ta);
    let public = home.join("pub");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "chmod 711 {h} && mkdir -p {p} && chmod 755 {p}",
            h = sh(&home.display().to_string()),
            p = sh(&public.display().to_string())
        ),
    ));
    public
}

/// As the TA, in the background: once the staging tree of `name` appears, replace `from`
/// with a link to `to`.
fn repoint_when_staging_appears(c: &Course, name: &str, from: &Path, to: &Path) -> Child {
    let staging = c.envs().join(format!(".{name}.envmod-staging"));
    Command::new("runuser")
        .args(["-u", Who::Ta.user(), "--", "bash", "-c"])
        .arg(format!(
            "for i in $(seq 1000); do [ -e {s} ] && break; sleep 0.005; done; rm -rf {f} && ln -s {t} {f}",
            s = sh(&staging.display().to_string()),
            f = sh(&from.display().to_string()),
            t = sh(&to.display().to_string()),
        ))
        .spawn()
        .expect("runuser runs")
}

#[test]
fn metadata_directories_a_ta_swaps_for_links_are_never_followed() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    // The instructor's private environment, the victim.
    let mine = c.home(Who::Instructor).join("mine");
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &[
            "create",
            "-p",
            &mine.display().to_string(),
            "--module-system",
            "none",
            "alpha=1.0",
        ],
    ));
    let victim_before = snapshot(&mine);
    let public = ta_pub(&c);
    let mut failures = Vec::new();
    for dir in [".envmod", "conda-meta"] {
        // The TA's copy of the directory, which the link names while envmod reads it...
        let copy = public.join(dir.trim_start_matches('.'));
        let live = sh(&prefix.join(dir).display().to_string());
        ok(&c.bash(
            Who::Ta,
            &format!(
                "cp -a {live} {copy} && mv {live} {live}.ta-aside && ln -s {copy} {live}",
                copy = sh(&copy.display().to_string())
            ),
        ));
        // ...and which becomes a link to the instructor's private environment once the
        // staging tree is there.
        let ta = repoint_when_staging_appears(&c, "cs101", &copy, &mine.join(dir));
        let out = c.bash(
            Who::Instructor,
            &format!(
                "umask 077; ENVMOD_TEST_PAUSE_AT=change:cloned ENVMOD_TEST_PAUSE_MS=800 exec \"$ENVMOD\" install -p {} beta",
                sh(&p)
            ),
        );
        let _ = ta.wait_with_output();
        let err = stderr(&out);
        if snapshot(&mine) != victim_before {
            failures.push(format!(
                "{dir}: install (exit {:?}) changed the instructor's private environment: {err}",
                out.status.code()
            ));
        } else if out.status.code() != Some(1) {
            failures.push(format!(
                "{dir}: exit {:?}, not a refusal: {err}",
                out.status.code()
            ));
        } else if !err.contains(&prefix.join(dir).display().to_string())
            || !err.contains("envmod-peer")
        {
            failures.push(format!(
                "{dir}: the error names neither the link nor who made it: {err}"
            ));
        }
        ok(&c.bash(
            Who::Ta,
            &format!(
                "rm -rf {live} {copy} && mv {live}.ta-aside {live}",
                copy = sh(&copy.display().to_string())
            ),
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    ok(&c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "beta"]));
    assert_eq!(snapshot(&mine), victim_before);
}

/// The TA's staging thief: whenever a staging directory appears in the envs directory, it
/// renames it away (`.stolen-N`) and puts its own copy of the environment in its place,
/// whose `bin/python` is the TA's script; then it makes the next copy from the template.
const STEAL_STAGING: &str = r#"
import os, shutil, sys, time
stop, secs, envs, template = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
fake = os.path.join(envs, ".ta-fake")
def fresh():
    if not os.path.exists(fake):
        shutil.copytree(template, fake, symlinks=True)
fresh()
end = time.time() + secs
stolen = 0
names = set()
while time.time() < end and not os.path.exists(stop):
    for name in os.listdir(envs):
        path = os.path.join(envs, name)
        if not name.endswith(".envmod-staging"):
            continue
        try:
            if os.lstat(path).st_uid == os.getuid():
                continue
            # Let envmod start its work in the tree first.
            time.sleep(0.02)
            os.rename(path, os.path.join(envs, ".stolen-%d" % stolen))
            os.rename(fake, path)
            stolen += 1
            names.add(name)
        except OSError:
            pass
        fresh()
    time.sleep(0.002)
print(" ".join(sorted(names)))
"#;

#[test]
fn a_staging_directory_renamed_mid_change_runs_nothing_of_the_tas() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    let envs = c.envs();
    let bashrc = precious(&c, ".bashrc", "# the instructor's own start-up file\n");
    let log = envs.join(".ta-log");
    let template = envs.join(".ta-template");
    // The TA's copy of the environment, whose interpreter logs who ran it and then does what
    // the TA likes with that account.
    let script = format!(
        "#!/bin/sh\necho \"$(id -un) $*\" >> {log}\necho pwned >> \"$HOME/.bashrc\"\nexec /usr/bin/python3.11 \"$@\"\n",
        log = sh(&log.display().to_string())
    );
    let script_file = c.path().join("ta-python");
    std::fs::write(&script_file, &script).unwrap();
    common::run_ok("chmod", &[Path::new("0755"), &script_file]);
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 000; : > {log}; cp -a {env} {t}; for n in python python3 python3.11; do rm -f {t}/bin/$n; cp {s} {t}/bin/$n; done",
            log = sh(&log.display().to_string()),
            env = sh(&p),
            t = sh(&template.display().to_string()),
            s = sh(&script_file.display().to_string()),
        ),
    ));
    common::require_account(Who::Ta.user());
    let stop = c.path().join("stop-thief");
    let thief = Command::new("runuser")
        .args([
            "-u",
            Who::Ta.user(),
            "--",
            common::MODULE_PYTHON,
            "-c",
            STEAL_STAGING,
        ])
        .arg(&stop)
        .arg((RACE.as_secs() + 60).to_string())
        .arg(&envs)
        .arg(&template)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runuser runs the thief");

    let cs102 = envs.join("cs102").display().to_string();
    let modules = c.modules().display().to_string();
    let pause = "ENVMOD_TEST_PAUSE_MS=300";
    let rounds_of = [
        format!(
            "ENVMOD_TEST_PAUSE_AT=change:cloned {pause} \"$ENVMOD\" install -p {} beta",
            sh(&p)
        ),
        format!(
            "ENVMOD_TEST_PAUSE_AT=change:cloned {pause} \"$ENVMOD\" remove -p {} beta",
            sh(&p)
        ),
        format!(
            "ENVMOD_TEST_PAUSE_AT=create:staged {pause} \"$ENVMOD\" create -p {e} --shared --group {GROUP} --module-root {m} --module-system lmod alpha && \"$ENVMOD\" delete -p {e} --yes",
            e = sh(&cs102),
            m = sh(&modules),
        ),
    ];
    let started = Instant::now();
    let mut rounds = 0;
    let mut failures = Vec::new();
    while started.elapsed() < RACE || rounds < rounds_of.len() {
        let command = &rounds_of[rounds % rounds_of.len()];
        let out = c.bash(Who::Instructor, &format!("umask 077; {command}"));
        rounds += 1;
        if !out.status.success() {
            failures.push(format!("round {rounds} failed: {}", stderr(&out)));
        }
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("instructor")
            || std::fs::read_to_string(&bashrc).unwrap() != "# the instructor's own start-up file\n"
        {
            failures.push(format!(
                "round {rounds}: the TA's python ran as the instructor"
            ));
            break;
        }
    }
    std::fs::write(&stop, "").unwrap();
    let stolen = ok(&thief.wait_with_output().unwrap());
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ran.trim().is_empty(),
        "the TA's python ran as: {ran} (staging directories stolen: {})",
        stolen.trim()
    );
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        "# the instructor's own start-up file\n"
    );
    // Both a change's staging directory and a create's were taken at least once.
    assert_eq!(
        stolen.trim(),
        ".cs101.envmod-staging .cs102.envmod-staging",
        "the thief did not get both staging directories"
    );
    // Nothing of the instructor's is left behind under a name only the TA knows.
    let instructor = std::fs::metadata(&prefix).unwrap().uid();
    let left: Vec<String> = std::fs::read_dir(&envs)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_dir() && m.uid() == instructor)
                && e.file_name() != "cs101"
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(prefix.join("lib/python3.11/site-packages/alpha").is_dir());
}
