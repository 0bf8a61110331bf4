//! The package cache in a course: a cache that group members can write is refused before
//! anything is linked from it, a read-only cache that one account fills serves the class
//! without being written, and what envmod writes into a cache or a channel follows the
//! directory's group and modes, whatever the writer's umask.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Output,
};

use crate::common::{
    self, GROUP,
    course::{Course, Who},
    ok, sh,
};

/// The cache entry the standard channel's `alpha 2.0` extracts to.
const ALPHA: &str = "alpha-2.0-pyhd8ed1ab_0";

/// `alpha`'s module file, relative to an entry or a site-Python prefix's site-packages.
const ALPHA_INIT: &str = "site-packages/alpha/__init__.py";

/// `envmod ARGS` as `who` with `umask`, with `vars` exported first.
fn envmod_with(c: &Course, who: Who, umask: &str, vars: &[(&str, &Path)], args: &[&str]) -> Output {
    let exports: String = vars
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", sh(&v.display().to_string())))
        .collect();
    let line: Vec<String> = args.iter().map(|a| sh(a)).collect();
    c.bash(
        who,
        &format!(
            "umask {umask}\n{exports}exec \"$ENVMOD\" {}",
            line.join(" ")
        ),
    )
}

fn run_ok(program: &str, args: &[&str]) {
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    common::run_ok(program, &paths);
}

/// A directory `owner` owns, with `mode` (and `group`, when given).
fn dir_of(path: &Path, owner: &str, group: Option<&str>, mode: &str) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    let p = path.display().to_string();
    run_ok("chown", &[owner, &p]);
    if let Some(g) = group {
        run_ok("chgrp", &[g, &p]);
    }
    run_ok("chmod", &[mode, &p]);
    path.to_path_buf()
}

/// `relative path  mode  size  mtime` of everything below `root`, to show it was not written.
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let m = path.symlink_metadata().unwrap();
            out.push(format!(
                "{} {:o} {} {}.{}",
                path.strip_prefix(root).unwrap().display(),
                m.mode(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ));
            if m.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Everything below `root`, `root` included: (path, metadata), no symlink followed.
fn tree(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = vec![(root.to_path_buf(), root.symlink_metadata().unwrap())];
    let mut i = 0;
    while i < out.len() {
        if out[i].1.is_dir() {
            let dir = out[i].0.clone();
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                let m = path.symlink_metadata().unwrap();
                out.push((path, m));
            }
        }
        i += 1;
    }
    out
}

fn gid_of(group: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    ok(&out).split(':').nth(2).unwrap().trim().parse().unwrap()
}

/// A bundle of an environment holding `alpha`, readable by everyone, and the cache entry
/// its archive extracts to (as root extracted it), copied where every account can read it.
fn alpha_bundle_and_entry(c: &Course) -> (PathBuf, PathBuf) {
    ok(&c.t.run(&["create", "-n", "src", "alpha"]));
    let bundle = c.path().join("alpha.tar");
    ok(&c.t.run(&[
        "export",
        "-n",
        "src",
        "--format",
        "bundle",
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let cache = c.t.home.join(".cache/rattler/cache/pkgs");
    let copy = c.path().join("extracted");
    std::fs::create_dir_all(&copy).unwrap();
    for name in [ALPHA.to_string(), format!("{ALPHA}.lock")] {
        run_ok(
            "cp",
            &[
                "-a",
                &cache.join(&name).display().to_string(),
                &copy.display().to_string(),
            ],
        );
    }
    run_ok("chmod", &["-R", "a+rX", &copy.display().to_string()]);
    run_ok("chmod", &["0644", &bundle.display().to_string()]);
    (bundle, copy)
}

#[test]
fn a_package_a_ta_planted_in_a_group_writable_cache_is_never_linked() {
    let c = Course::new();
    let (bundle, extracted) = alpha_bundle_and_entry(&c);
    // The cache as a course used to share it: group-writable and setgid.
    let shared = dir_of(
        &c.path().join("shared-pkgs"),
        common::course::INSTRUCTOR,
        Some(GROUP),
        "2775",
    );
    // The TA puts a copy of the real entry there, `.lock` and its archive's sha256 included,
    // with a file of their own in it.
    let plant = format!(
        "umask 002\ncp -r {e}/{ALPHA} {e}/{ALPHA}.lock {s}/ || exit 1\necho 'VERSION = \"TA was here\"' > {s}/{ALPHA}/{ALPHA_INIT}",
        e = sh(&extracted.display().to_string()),
        s = sh(&shared.display().to_string()),
    );
    ok(&c.bash(Who::Ta, &plant));

    let victim = c.home(Who::Instructor).join("victim");
    let out = envmod_with(
        &c,
        Who::Instructor,
        "022",
        &[("ENVMOD_PKGS_DIRS", &shared)],
        &[
            "create",
            "-p",
            victim.to_str().unwrap(),
            "-f",
            bundle.to_str().unwrap(),
            "--offline",
        ],
    );
    let linked = victim.join("lib/python3.11").join(ALPHA_INIT);
    let text = std::fs::read_to_string(&linked).unwrap_or_default();
    assert!(
        !text.contains("TA was here"),
        "the TA's file was linked into the instructor's environment: {}",
        linked.display()
    );
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&shared.display().to_string())
            && err.contains(&format!("group {GROUP}"))
            && err.contains("readonly_pkgs_dirs"),
        "{err}"
    );
    assert!(victim.symlink_metadata().is_err(), "{err}");
    // doctor says so too.
    let out = envmod_with(
        &c,
        Who::Instructor,
        "022",
        &[("ENVMOD_PKGS_DIRS", &shared)],
        &["doctor", "--json"],
    );
    let report = common::stdout(&out);
    assert!(
        report.contains("\"package-cache\"") && report.contains(&format!("group {GROUP}")),
        "{report}"
    );

    // Closed to the group now, it still holds what the TA put there.
    run_ok("chmod", &["2755", &shared.display().to_string()]);
    let out = envmod_with(
        &c,
        Who::Instructor,
        "022",
        &[("ENVMOD_PKGS_DIRS", &shared)],
        &[
            "create",
            "-p",
            victim.to_str().unwrap(),
            "-f",
            bundle.to_str().unwrap(),
            "--offline",
        ],
    );
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("belongs to {}", common::PEER)),
        "{err}"
    );
    assert!(victim.symlink_metadata().is_err(), "{err}");

    // The same cache below a directory the group can write (the course directory), but
    // itself private to the instructor: the group could swap it for one of its own.
    let below = dir_of(
        &c.dir.join("pkgs"),
        common::course::INSTRUCTOR,
        None,
        "0755",
    );
    let out = envmod_with(
        &c,
        Who::Instructor,
        "022",
        &[("ENVMOD_PKGS_DIRS", &below)],
        &["create", "-p", victim.to_str().unwrap(), "alpha"],
    );
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&c.dir.display().to_string()), "{err}");
    assert!(victim.symlink_metadata().is_err(), "{err}");
}

#[test]
fn a_read_only_cache_filled_once_serves_the_class_without_being_written() {
    let c = Course::new();
    let instructor = common::course::INSTRUCTOR;
    let site = dir_of(&c.path().join("site-pkgs"), instructor, None, "0755");
    let chan = c.path().join("channel");
    c.t.set_site_config(&format!(
        "channels: [{}]\nreadonly_pkgs_dirs: [{}]\n",
        chan.display(),
        site.display()
    ));
    // The instructor fills it once, with a strict umask, through a throwaway environment.
    let fill = c.home(Who::Instructor).join("fill");
    ok(&envmod_with(
        &c,
        Who::Instructor,
        "077",
        &[("ENVMOD_PKGS_DIRS", &site)],
        &["create", "-p", fill.to_str().unwrap(), "alpha", "libfoo"],
    ));
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["delete", "-p", fill.to_str().unwrap(), "--yes"],
    ));
    assert!(site.join(ALPHA).is_dir());
    let before = snapshot(&site);

    // A student with a strict umask builds an environment of their own: from the site cache,
    // nothing extracted into their own, nothing written into the site's.
    ok(&c.envmod_as(
        Who::Student,
        "077",
        &["create", "-n", "mine", "--offline", "alpha", "libfoo"],
    ));
    let own = c.home(Who::Student).join(".cache/rattler/cache/pkgs");
    assert!(
        !own.join(ALPHA).exists(),
        "extracted again into {}",
        own.display()
    );
    let import = ok(&c.bash(
        Who::Student,
        "umask 077\n. \"$HOME/.envmod/envs/mine/bin/activate\" && python -c 'import alpha; print(alpha.VERSION)'",
    ));
    assert_eq!(import.trim(), "2.0");

    // The instructor's own environments hard-link the site cache's files.
    let mine = c.home(Who::Instructor).join("mine");
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["create", "-p", mine.to_str().unwrap(), "alpha"],
    ));
    let env_file = mine.join("lib/python3.11").join(ALPHA_INIT);
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().ino(),
        std::fs::metadata(site.join(ALPHA).join(ALPHA_INIT))
            .unwrap()
            .ino(),
        "not linked from the site cache"
    );
    let own = c.home(Who::Instructor).join(".cache/rattler/cache/pkgs");
    assert!(
        !own.join(ALPHA).exists(),
        "extracted again into {}",
        own.display()
    );
    assert_eq!(snapshot(&site), before, "the site cache was written");
}

#[test]
fn a_cache_filled_with_umask_077_follows_its_directory_s_group_and_setgid() {
    let c = Course::new();
    let instructor = common::course::INSTRUCTOR;
    // The course's cache: the instructor fills it, the group reads it, others cannot.
    let pkgs = dir_of(
        &c.path().join("course-pkgs"),
        instructor,
        Some(GROUP),
        "2750",
    );
    let fill = c.home(Who::Instructor).join("fill");
    ok(&envmod_with(
        &c,
        Who::Instructor,
        "077",
        &[("ENVMOD_PKGS_DIRS", &pkgs)],
        &["create", "-p", fill.to_str().unwrap(), "alpha", "libfoo"],
    ));
    let gid = gid_of(GROUP);
    for (path, m) in tree(&pkgs) {
        if m.file_type().is_symlink() {
            continue;
        }
        assert_eq!(m.gid(), gid, "{} has group {}", path.display(), m.gid());
        let name = path.file_name().unwrap().to_string_lossy();
        if m.is_dir() {
            assert_eq!(m.mode() & 0o7777, 0o2750, "{}", path.display());
        } else if name.ends_with(".lock") {
            assert_eq!(m.mode() & 0o7777, 0o640, "{}", path.display());
        } else {
            // Packaged files keep their archive's modes: readable, writable by the owner only.
            assert_eq!(m.mode() & 0o062, 0o040, "{}", path.display());
        }
    }

    // The TA, with umask 077 too, builds from it: read, not extracted again.
    let ta_env = c.home(Who::Ta).join("mine");
    ok(&envmod_with(
        &c,
        Who::Ta,
        "077",
        &[("ENVMOD_READONLY_PKGS_DIRS", &pkgs)],
        &[
            "create",
            "-p",
            ta_env.to_str().unwrap(),
            "--offline",
            "alpha",
            "libfoo",
        ],
    ));
    let own = c.home(Who::Ta).join(".cache/rattler/cache/pkgs");
    assert!(
        !own.join(ALPHA).exists(),
        "extracted again into {}",
        own.display()
    );
    // A student, outside the group, cannot read it; envmod then extracts the package into
    // the student's own cache.
    let student_env = c.home(Who::Student).join("mine");
    ok(&envmod_with(
        &c,
        Who::Student,
        "077",
        &[("ENVMOD_READONLY_PKGS_DIRS", &pkgs)],
        &["create", "-p", student_env.to_str().unwrap(), "alpha"],
    ));
    let own = c.home(Who::Student).join(".cache/rattler/cache/pkgs");
    assert!(own.join(ALPHA).is_dir());
}

#[test]
fn an_index_written_with_umask_077_is_read_by_the_channel_s_readers() {
    let c = Course::new();
    let instructor = common::course::INSTRUCTOR;
    let chan = dir_of(&c.path().join("course-channel"), instructor, None, "0755");
    // One package, copied from the standard channel; no noarch/ yet: envmod makes it.
    let linux = dir_of(&chan.join("linux-64"), instructor, None, "0755");
    let archive = std::fs::read_dir(c.path().join("channel/linux-64"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("libfoo-")
        })
        .expect("libfoo in the standard channel");
    let copy = linux.join(archive.file_name().unwrap());
    std::fs::copy(&archive, &copy).unwrap();
    run_ok("chown", &[instructor, &copy.display().to_string()]);
    ok(&c.envmod_as(Who::Instructor, "077", &["index", chan.to_str().unwrap()]));
    for sub in ["noarch", "linux-64"] {
        let d = std::fs::metadata(chan.join(sub)).unwrap();
        assert_eq!(d.mode() & 0o777, 0o755, "{sub}");
        let f = std::fs::metadata(chan.join(sub).join("repodata.json")).unwrap();
        assert_eq!(f.mode() & 0o777, 0o644, "{sub}/repodata.json");
    }
    let student_env = c.home(Who::Student).join("mine");
    ok(&c.envmod_as(
        Who::Student,
        "077",
        &[
            "create",
            "-p",
            student_env.to_str().unwrap(),
            "-c",
            chan.to_str().unwrap(),
            "libfoo",
        ],
    ));
}

#[test]
fn a_group_writable_environment_shares_no_file_with_its_owner_s_cache() {
    let c = Course::new();
    // The instructor's private environment, hard-linked from her own cache…
    let private = c.home(Who::Instructor).join("private");
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["create", "-p", private.to_str().unwrap(), "alpha"],
    ));
    // …and the course environment the TA can write, built from the same cache.
    let course = c.create_shared("cs101", &["alpha"]);
    let course_file = course.join("lib/python3.11").join(ALPHA_INIT);
    let private_file = private.join("lib/python3.11").join(ALPHA_INIT);
    let cached = c
        .home(Who::Instructor)
        .join(".cache/rattler/cache/pkgs")
        .join(ALPHA)
        .join(ALPHA_INIT);
    let before = std::fs::read_to_string(&private_file).unwrap();
    let write = format!(
        "echo 'VERSION = \"TA was here\"' > {} || exit 1",
        sh(&course_file.display().to_string())
    );
    ok(&c.bash(Who::Ta, &write));
    assert_eq!(
        std::fs::read_to_string(&private_file).unwrap(),
        before,
        "the TA's write reached the instructor's private environment"
    );
    let m = std::fs::metadata(&cached).unwrap();
    assert_eq!(
        m.mode() & 0o022,
        0,
        "{} is writable by others",
        cached.display()
    );
    assert!(std::fs::read_to_string(&cached).unwrap() == before);
}

#[test]
fn sharing_an_existing_environment_with_the_group_gives_it_files_of_its_own() {
    let c = Course::new();
    // Two private environments of the instructor, hard-linked from her cache; one of them is
    // later shared with the group for the TAs to maintain.
    let keep = c.home(Who::Instructor).join("keep");
    ok(&c.envmod_as(
        Who::Instructor,
        "077",
        &["create", "-p", keep.to_str().unwrap(), "alpha"],
    ));
    let prefix = c.envs().join("cs101");
    ok(&c.envmod_as(
        Who::Instructor,
        "022",
        &[
            "create",
            "-p",
            prefix.to_str().unwrap(),
            "--module-root",
            c.modules().to_str().unwrap(),
            "--module-system",
            "lmod",
            "alpha",
        ],
    ));
    let shared_file = prefix.join("lib/python3.11").join(ALPHA_INIT);
    let keep_file = keep.join("lib/python3.11").join(ALPHA_INIT);
    assert_eq!(
        std::fs::metadata(&shared_file).unwrap().ino(),
        std::fs::metadata(&keep_file).unwrap().ino(),
        "the two environments do not share the cache's file to begin with"
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &[
            "share",
            "-p",
            prefix.to_str().unwrap(),
            "--group",
            common::GROUP,
        ],
    );
    ok(&out);
    let before = std::fs::read_to_string(&keep_file).unwrap();
    let write = format!(
        "echo 'VERSION = \"TA was here\"' > {} || exit 1",
        sh(&shared_file.display().to_string())
    );
    ok(&c.bash(Who::Ta, &write));
    assert_eq!(
        std::fs::read_to_string(&keep_file).unwrap(),
        before,
        "the TA's write reached the instructor's private environment"
    );
    let cached = c
        .home(Who::Instructor)
        .join(".cache/rattler/cache/pkgs")
        .join(ALPHA)
        .join(ALPHA_INIT);
    assert_eq!(std::fs::metadata(&cached).unwrap().mode() & 0o022, 0);
    assert_eq!(std::fs::read_to_string(&cached).unwrap(), before);
}
