//! Trees a group member can write: the staging clone an `install` builds, the modes `share`
//! sets, and the directories a member makes that the rest of the group cannot remove. The
//! TA is a real process running as `envmod-peer`; the victims are the instructor's own
//! files, which nothing the TA does may change.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{
    self, GROUP,
    course::{Course, Who},
    ok, stderr,
};

/// How long each race runs: long enough for a few rounds of the command, short for the suite.
const RACE: Duration = Duration::from_secs(4);

/// The instructor's `~/.bashrc` and a private file, with the content and mode they must keep.
struct Private {
    files: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl Private {
    fn plant(c: &Course) -> Self {
        let home = c.home(Who::Instructor);
        let files = vec![
            (
                home.join(".bashrc"),
                b"# the instructor's own start-up file\n".to_vec(),
                0o644,
            ),
            (home.join("grades.txt"), b"exam answers\n".to_vec(), 0o600),
        ];
        for (path, text, mode) in &files {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode)).unwrap();
            common::run_ok("chown", &[Path::new(Who::Instructor.user()), path]);
        }
        Self { files }
    }

    fn targets(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|(p, _, _)| p.display().to_string())
            .collect()
    }

    /// What changed, if anything.
    fn changed(&self) -> Option<String> {
        for (path, text, mode) in &self.files {
            let meta = std::fs::symlink_metadata(path).unwrap();
            let now = std::fs::read(path).unwrap();
            if !meta.is_file() || meta.mode() & 0o7777 != *mode || &now != text {
                return Some(format!(
                    "{} is now mode {:o} with {:?}",
                    path.display(),
                    meta.mode() & 0o7777,
                    String::from_utf8_lossy(&now)
                ));
            }
        }
        None
    }
}

/// A Python script running as the TA until its deadline or until the stop file appears.
struct Racer {
    child: Child,
    stop: PathBuf,
}

impl Racer {
    fn start(c: &Course, script: &str, args: &[String]) -> Self {
        common::require_account(Who::Ta.user());
        let stop = c.path().join("stop-racer");
        let _ = std::fs::remove_file(&stop);
        let child = Command::new("runuser")
            .args([
                "-u",
                Who::Ta.user(),
                "--",
                common::MODULE_PYTHON,
                "-c",
                script,
            ])
            .arg(&stop)
            .arg((RACE.as_secs() + 30).to_string())
            .args(args)
            .current_dir(c.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runuser runs the racer");
        Self { child, stop }
    }

    /// Stop it; what it reports on stdout (how often it acted).
    fn stop(self) -> String {
        std::fs::write(&self.stop, "").unwrap();
        ok(&self.child.wait_with_output().unwrap())
    }
}

/// Plants links to the instructor's files, under the names the live environment's metadata
/// files have, in the staging clone whenever it exists and lets the TA in.
const PLANT_IN_STAGING: &str = r#"
import os, sys, time
stop, secs, staging, live = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
targets = sys.argv[5:]
end = time.time() + secs
planted = 0
while time.time() < end and not os.path.exists(stop):
    for sub in ("conda-meta", ".envmod"):
        try:
            names = os.listdir(os.path.join(live, sub))
        except OSError:
            continue
        for i, name in enumerate(names):
            try:
                os.symlink(targets[i % len(targets)], os.path.join(staging, sub, name))
                planted += 1
            except OSError:
                pass
    time.sleep(0.001)
print(planted)
"#;

/// Swaps, as fast as it can, a file of the TA's in the environment with a link to the
/// instructor's private file (`renameat2(RENAME_EXCHANGE)`).
const SWAP_FILE_AND_LINK: &str = r#"
import ctypes, os, sys, time
stop, secs, env, target = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.path.join(env, "notes.txt"), os.path.join(env, "notes.link")
with open(a, "w") as f:
    f.write("the TA's notes\n")
os.chmod(a, 0o644)
os.symlink(target, b)
ea, eb = os.fsencode(a), os.fsencode(b)
end = time.time() + secs
swaps = 0
while time.time() < end and not os.path.exists(stop):
    for _ in range(2000):
        libc.renameat2(-100, ea, -100, eb, 2)
    swaps += 2000
print(swaps)
"#;

fn leftover(c: &Course, name: &str) -> Vec<String> {
    std::fs::read_dir(c.envs())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}.envmod-")) && !n.ends_with("-lock"))
        .collect()
}

#[test]
fn links_a_ta_plants_in_the_staging_clone_are_never_written_through() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let private = Private::plant(&c);
    // A file of the TA's among the metadata the clone copies, so a copy through a planted
    // link would put the TA's words into the instructor's files.
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002; echo 'alias ls=\"echo pwned\"' > {}",
            common::sh(&prefix.join("conda-meta/zz-notes").display().to_string())
        ),
    ));
    let staging = c.envs().join(".cs101.envmod-staging");
    let mut args = vec![staging.display().to_string(), prefix.display().to_string()];
    args.extend(private.targets());
    let racer = Racer::start(&c, PLANT_IN_STAGING, &args);
    let p = common::sh(&prefix.display().to_string());
    let started = Instant::now();
    let mut rounds = 0;
    let mut failure = None;
    while started.elapsed() < RACE && failure.is_none() {
        for change in ["install", "remove"] {
            let out = c.bash(
                Who::Instructor,
                &format!(
                    "umask 077; export ENVMOD_TEST_PAUSE_AT=clone:copying ENVMOD_TEST_PAUSE_MS=400\n\"$ENVMOD\" {change} -p {p} gamma"
                ),
            );
            rounds += 1;
            if let Some(what) = private.changed() {
                failure = Some(format!("after {change} (round {rounds}): {what}"));
                break;
            }
            if !out.status.success() {
                failure = Some(format!(
                    "{change} failed in round {rounds}: {}",
                    stderr(&out)
                ));
                break;
            }
        }
    }
    let planted = racer.stop();
    if let Some(f) = failure {
        panic!("the TA's links were written through: {f} (links planted: {planted})");
    }
    assert!(rounds >= 2, "only {rounds} rounds ran");
    assert!(
        leftover(&c, "cs101").is_empty(),
        "{:?}",
        leftover(&c, "cs101")
    );
    // The environment works, and was shared again after every change.
    let meta = std::fs::metadata(prefix.join("conda-meta")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o2775);
    assert!(prefix.join("lib/python3.11/site-packages/alpha").is_dir());
}

#[test]
fn share_never_changes_a_file_a_ta_swaps_for_a_link() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let private = Private::plant(&c);
    let grades = c.home(Who::Instructor).join("grades.txt");
    let racer = Racer::start(
        &c,
        SWAP_FILE_AND_LINK,
        &[prefix.display().to_string(), grades.display().to_string()],
    );
    let started = Instant::now();
    let mut rounds = 0;
    let mut failure = None;
    let share = format!(
        "umask 077; export ENVMOD_TEST_PAUSE_AT=share:checked:notes.txt ENVMOD_TEST_PAUSE_MS=20\n\"$ENVMOD\" share -p {} --group {GROUP}",
        common::sh(&prefix.display().to_string())
    );
    while started.elapsed() < RACE {
        let out = c.bash(Who::Instructor, &share);
        rounds += 1;
        if let Some(what) = private.changed() {
            failure = Some(format!("round {rounds}: {what}"));
            break;
        }
        assert!(
            out.status.success(),
            "share failed in round {rounds}: {}",
            stderr(&out)
        );
    }
    let swaps = racer.stop();
    if let Some(f) = failure {
        panic!("share followed the TA's link: {f} (swaps: {swaps})");
    }
    assert!(rounds >= 3, "only {rounds} rounds ran");
    assert!(
        swaps.trim().parse::<u64>().unwrap() > 0,
        "the racer did not run"
    );
}

/// The path a TA makes inside an environment, with a umask that keeps the group out.
fn ta_private_dir(c: &Course, root: &Path) -> PathBuf {
    let dir = root.join("lib/python3.11/site-packages/ta_private");
    let d = common::sh(&dir.display().to_string());
    ok(&c.bash(
        Who::Ta,
        &format!("umask 022; mkdir {d} && echo 'x = 1' > {d}/mod.py"),
    ));
    dir
}

fn says_who_blocks(err: &str, dir: &Path) {
    let d = dir.display().to_string();
    assert!(
        err.contains(&format!("envmod-peer owns {d} (mode 2755)")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "ask envmod-peer to run chmod -R g+rwX {d}, or to remove it"
        )),
        "{err}"
    );
}

#[test]
fn a_directory_the_group_cannot_remove_is_named_before_anything_changes() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let blocker = ta_private_dir(&c, &prefix);
    let p = prefix.display().to_string();

    let out = c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "gamma"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says_who_blocks(&stderr(&out), &blocker);
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert!(!prefix.join("lib/libfoo.so.1").exists());
    assert!(
        leftover(&c, "cs101").is_empty(),
        "{:?}",
        leftover(&c, "cs101")
    );

    let modulefile = c.modules().join("cs101/py3.11.lua");
    assert!(modulefile.is_file());
    let out = c.envmod_as(Who::Instructor, "077", &["delete", "-p", &p, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says_who_blocks(&stderr(&out), &blocker);
    assert!(modulefile.is_file(), "delete removed the modulefile");
    assert!(prefix.join(".envmod/manifest.json").is_file());
    assert!(
        leftover(&c, "cs101").is_empty(),
        "{:?}",
        leftover(&c, "cs101")
    );
    let listed = ok(&c.envmod_as(Who::Instructor, "077", &["list"]));
    assert!(listed.contains("cs101/py3.11"), "{listed}");

    // The fix the message names works.
    let b = common::sh(&blocker.display().to_string());
    ok(&c.bash(Who::Ta, &format!("chmod -R g+rwX {b}")));
    ok(&c.envmod_as(Who::Instructor, "077", &["install", "-p", &p, "gamma"]));
    assert!(prefix.join("lib/libfoo.so.1").exists());
    ok(&c.envmod_as(Who::Instructor, "077", &["delete", "-p", &p, "--yes"]));
    assert!(!prefix.exists());
    assert!(!modulefile.exists());
    assert!(
        leftover(&c, "cs101").is_empty(),
        "{:?}",
        leftover(&c, "cs101")
    );
}

#[test]
fn what_an_interrupted_change_left_is_listed_and_explained_until_it_is_fixed() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    // Killed after the swap: the old tree is left beside the environment.
    let out = c.bash(
        Who::Instructor,
        &format!(
            "umask 077; ENVMOD_TEST_KILL_AT=change:exchanged exec \"$ENVMOD\" install -p {} gamma",
            common::sh(&p)
        ),
    );
    assert!(!out.status.success());
    assert_eq!(leftover(&c, "cs101"), vec![".cs101.envmod-staging"]);
    let left = c.envs().join(".cs101.envmod-staging");
    // The old tree is in it, where its owner can still reach a directory of theirs.
    let blocker = ta_private_dir(&c, &left.join("tree"));

    let listed = ok(&c.envmod_as(Who::Instructor, "077", &["list"]));
    assert!(listed.contains(&left.display().to_string()), "{listed}");
    assert!(listed.contains("envmod-peer"), "{listed}");
    let json: serde_json::Value = serde_json::from_str(&ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["list", "--json"],
    )))
    .unwrap();
    let row = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "leftover")
        .unwrap_or_else(|| panic!("no leftover row: {json}"));
    assert_eq!(row["prefix"], left.display().to_string(), "{row}");
    assert_eq!(row["name"], "cs101", "{row}");

    let doctor = c.envmod_as(Who::Instructor, "077", &["doctor"]);
    let text = common::stdout(&doctor);
    let line = text
        .lines()
        .find(|l| l.contains(&left.display().to_string()))
        .unwrap_or_else(|| panic!("doctor does not report {}: {text}", left.display()));
    says_who_blocks(line, &blocker);

    // Every command on the environment says the same, rather than "Permission denied".
    let out = c.envmod_as(Who::Instructor, "077", &["module", "-p", &p]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    says_who_blocks(&stderr(&out), &blocker);

    let b = common::sh(&blocker.display().to_string());
    ok(&c.bash(Who::Ta, &format!("chmod -R g+rwX {b}")));
    ok(&c.envmod_as(Who::Instructor, "077", &["module", "-p", &p]));
    assert!(
        leftover(&c, "cs101").is_empty(),
        "{:?}",
        leftover(&c, "cs101")
    );
    let listed = ok(&c.envmod_as(Who::Instructor, "077", &["list"]));
    assert!(!listed.contains("envmod-staging"), "{listed}");
    assert!(prefix.join("lib/libfoo.so.1").exists());
}

#[test]
fn a_delete_that_a_ta_blocks_half_way_says_what_is_left_and_list_still_shows_it() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    let trash = c.envs().join(".cs101.envmod-trash");
    // The TA waits for the delete to move the environment aside, then makes a directory in
    // it that the group cannot write.
    let ta = Command::new("runuser")
        .args(["-u", Who::Ta.user(), "--", "bash", "-c"])
        .arg(format!(
            "umask 022; t={}; for i in $(seq 500); do [ -d \"$t\" ] && break; sleep 0.01; done; mkdir \"$t/lib/python3.11/site-packages/ta_private\" && echo x > \"$t/lib/python3.11/site-packages/ta_private/mod.py\"",
            common::sh(&trash.display().to_string())
        ))
        .spawn()
        .unwrap();
    let out = c.bash(
        Who::Instructor,
        &format!(
            "umask 077; ENVMOD_TEST_PAUSE_AT=delete:trashed ENVMOD_TEST_PAUSE_MS=1500 exec \"$ENVMOD\" delete -p {} --yes",
            common::sh(&p)
        ),
    );
    assert!(ta.wait_with_output().unwrap().status.success());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{p} was deleted, but some of its files are left in {}",
            trash.display()
        )),
        "{err}"
    );
    says_who_blocks(&err, &trash.join("lib/python3.11/site-packages/ta_private"));
    assert!(!prefix.exists());
    let listed = ok(&c.envmod_as(Who::Instructor, "077", &["list"]));
    assert!(listed.contains(&trash.display().to_string()), "{listed}");
    assert!(listed.contains("envmod-peer owns"), "{listed}");
}
