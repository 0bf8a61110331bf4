//! `envmod clean` on a package cache two real accounts use: the instructor fills a cache the
//! class reads (`readonly_pkgs_dirs`), and cleans it; what the student's environment and the
//! course environment need keeps working, the instructor's own unused entries go, and a link
//! a group member plants in a cache the group can write never leads clean to the cleaner's files.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Output,
};

use crate::common::{
    self, GROUP,
    course::{Course, INSTRUCTOR, Who},
    ok, sh,
};

/// `envmod ARGS` as `who` (umask 022), with `ENVMOD_PKGS_DIRS` set to `pkgs`.
fn envmod_in(c: &Course, who: Who, pkgs: &Path, args: &[&str]) -> Output {
    let line: Vec<String> = args.iter().map(|a| sh(a)).collect();
    c.bash(
        who,
        &format!(
            "umask 022\nexport ENVMOD_PKGS_DIRS={}\nexec \"$ENVMOD\" {}",
            sh(&pkgs.display().to_string()),
            line.join(" ")
        ),
    )
}

/// The same on a pseudo-terminal (`script`), as a user at a prompt runs it.
fn envmod_on_tty(c: &Course, who: Who, pkgs: &Path, args: &str) -> String {
    let out = c.bash(
        who,
        &format!(
            "umask 022\nexport ENVMOD_PKGS_DIRS={}\nscript -qec \"\\\"$ENVMOD\\\" {args}\" /dev/null",
            sh(&pkgs.display().to_string())
        ),
    );
    ok(&out).replace("\r\n", "\n")
}

fn run_ok(program: &str, args: &[&str]) {
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    common::run_ok(program, &paths);
}

fn dir_of(path: &Path, owner: &str, mode: &str) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    let p = path.display().to_string();
    run_ok("chown", &[owner, &p]);
    run_ok("chmod", &[mode, &p]);
    path.to_path_buf()
}

/// The cache entry whose name starts with `stem`.
fn entry(cache: &Path, stem: &str) -> PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{stem}-"))
        })
        .unwrap_or_else(|| panic!("no {stem} entry in {}", cache.display()))
}

/// Every path below `root` with its inode and size, to show nothing was touched.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            out.push((e.path(), m.ino(), m.len()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The number in `freed 1.2 MiB (1234 bytes, …)` or `would free …`.
fn bytes_in(report: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with("freed ") || l.starts_with("would free "))
        .unwrap_or_else(|| panic!("no total in:\n{report}"));
    let (_, rest) = line.split_once('(').unwrap();
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn two_accounts_share_a_cache_and_clean_takes_only_what_nobody_uses() {
    let c = Course::new();
    let site = dir_of(&c.path().join("site-pkgs"), INSTRUCTOR, "0755");
    c.t.set_site_config(&format!(
        "channels: [{}]\nreadonly_pkgs_dirs: [{}]\n",
        c.path().join("channel").display(),
        site.display()
    ));
    // The instructor fills the class's cache through a throwaway environment, and builds the
    // course environment (its files copied, so only its records name the entry it needs).
    let fill = c.home(Who::Instructor).join("fill");
    let fill = fill.to_str().unwrap();
    ok(&envmod_in(
        &c,
        Who::Instructor,
        &site,
        &["create", "-p", fill, "alpha=1.0", "gamma", "linuxonly"],
    ));
    let cs101 = c.envs().join("cs101");
    let modules = c.modules();
    ok(&envmod_in(
        &c,
        Who::Instructor,
        &site,
        &[
            "create",
            "-p",
            cs101.to_str().unwrap(),
            "--module-root",
            modules.to_str().unwrap(),
            "--module-system",
            "lmod",
            "--shared",
            "--group",
            GROUP,
            "linuxonly",
        ],
    ));
    // The student's own environment, from the class's cache, in a home nobody else can see.
    ok(&c.envmod_as(
        Who::Student,
        "077",
        &["create", "-n", "mine", "--offline", "alpha=1.0"],
    ));
    ok(&c.envmod_as(Who::Instructor, "022", &["delete", "-p", fill, "--yes"]));
    let (alpha, gamma, libfoo, linuxonly) = (
        entry(&site, "alpha"),
        entry(&site, "gamma"),
        entry(&site, "libfoo"),
        entry(&site, "linuxonly"),
    );
    // A file of gamma's still linked from somewhere clean cannot look.
    let elsewhere = c.home(Who::Instructor).join("elsewhere");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "ln {} {}",
            sh(&gamma.join("info/index.json").display().to_string()),
            sh(&elsewhere.display().to_string())
        ),
    ));
    // What an interrupted envmod left in the instructor's envs_dir, and a group member's
    // leftover beside the course environment, which is not the instructor's to remove.
    let trash = c
        .home(Who::Instructor)
        .join(".envmod/envs/.old.envmod-trash");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "mkdir -p {t}/tree && head -c 65536 /dev/zero > {t}/tree/big",
            t = sh(&trash.display().to_string())
        ),
    ));
    let theirs = c.envs().join(".cs101.envmod-staging");
    ok(&c.bash(
        Who::Ta,
        &format!("mkdir {}", sh(&theirs.display().to_string())),
    ));

    // A dry run, on a terminal and through a pipe: the same report, and nothing removed.
    let before = snapshot(&site);
    let tty = envmod_on_tty(&c, Who::Instructor, &site, "clean --dry-run");
    let piped = ok(&envmod_in(
        &c,
        Who::Instructor,
        &site,
        &["clean", "--dry-run"],
    ));
    assert_eq!(tty, piped, "terminal and pipe differ");
    for gone in [&alpha, &libfoo, &trash] {
        assert!(
            piped
                .lines()
                .any(|l| l.starts_with("would remove") && l.contains(&*gone.to_string_lossy())),
            "{} not named:\n{piped}",
            gone.display()
        );
    }
    for stays in [&gamma, &linuxonly, &theirs] {
        assert!(!piped.contains(&*stays.to_string_lossy()), "{piped}");
    }
    assert!(piped.contains("nothing was removed"), "{piped}");
    let would = bytes_in(&piped);
    assert!(would >= 65536, "{piped}");
    assert_eq!(snapshot(&site), before, "a dry run changed the cache");
    assert!(trash.join("tree/big").is_file());

    // The clean itself, through a pipe, and as JSON afterwards.
    let report = ok(&envmod_in(&c, Who::Instructor, &site, &["clean"]));
    assert!(report.contains("removed unused package"), "{report}");
    assert_eq!(
        bytes_in(&report),
        would,
        "freed other than the dry run said:\n{report}"
    );
    for gone in [&alpha, &libfoo, &trash] {
        assert!(!gone.exists(), "{} stayed:\n{report}", gone.display());
    }
    assert!(
        !site
            .join(format!(
                "{}.lock",
                libfoo.file_name().unwrap().to_string_lossy()
            ))
            .exists()
    );
    for stays in [&gamma, &linuxonly] {
        assert!(
            stays.join("info").is_dir(),
            "{} went:\n{report}",
            stays.display()
        );
    }
    assert!(theirs.is_dir(), "a group member's directory was removed");
    let again = ok(&envmod_in(&c, Who::Instructor, &site, &["clean", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(json["bytes"], 0, "{again}");
    assert!(
        json["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["path"] == *linuxonly.to_string_lossy()
                && k["reason"].as_str().unwrap().contains("environment")),
        "{again}"
    );

    // The student's environment and the course environment still work.
    let import = ok(&c.bash(
        Who::Student,
        "umask 077\n. \"$HOME/.envmod/envs/mine/bin/activate\" && python -c 'import alpha; print(alpha.VERSION)'",
    ));
    assert_eq!(import.trim(), "1.0");
    let init = std::env::var("ENVMOD_TEST_LMOD_INIT").expect(
        "ENVMOD_TEST_LMOD_INIT names Lmod's init/bash (run the suite with tests/run, which provisions it)",
    );
    let load = ok(&c.bash(
        Who::Student,
        &format!(
            "source {}\nmodule use {}\nmodule load cs101/py3.11 && ls \"$CONDA_PREFIX/conda-meta\"",
            sh(&init),
            sh(&modules.display().to_string())
        ),
    ));
    assert!(load.contains("linuxonly"), "{load}");
}

#[test]
fn a_link_planted_in_a_shared_cache_never_leads_clean_to_the_cleaners_files() {
    let c = Course::new();
    let pkgs = dir_of(&c.path().join("group-pkgs"), INSTRUCTOR, "0755");
    let fill = c.home(Who::Instructor).join("fill");
    let fill = fill.to_str().unwrap();
    ok(&envmod_in(
        &c,
        Who::Instructor,
        &pkgs,
        &["create", "-p", fill, "alpha"],
    ));
    ok(&c.envmod_as(Who::Instructor, "022", &["delete", "-p", fill, "--yes"]));
    let alpha = entry(&pkgs, "alpha");
    // The cache is then opened to the group, whose member plants links to the instructor's
    // files under entry names, moves the instructor's entry aside and puts a link in its
    // place, and adds an entry of their own.
    run_ok("chgrp", &[GROUP, &pkgs.display().to_string()]);
    run_ok("chmod", &["2775", &pkgs.display().to_string()]);
    let work = c.home(Who::Instructor).join("work");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "mkdir -p {w}/info && echo mine > {w}/info/index.json && echo thesis > {w}/thesis.tex && echo zip > {w}/../notes.conda",
            w = sh(&work.display().to_string())
        ),
    ));
    let p = |name: &str| sh(&pkgs.join(name).display().to_string());
    let w = sh(&work.display().to_string());
    ok(&c.bash(
        Who::Ta,
        &format!(
            "set -e\nln -s {w} {evil}\nln -s {w}/../notes.conda {notes}\nmv {alpha} {stolen}\nln -s {w} {alpha}\nmkdir -p {ta}/info\n",
            evil = p("evil-1.0-0"),
            notes = p("notes-1.0-0.conda"),
            alpha = sh(&alpha.display().to_string()),
            stolen = p("stolen"),
            ta = p("ta-1.0-0"),
        ),
    ));

    let report = ok(&envmod_in(&c, Who::Instructor, &pkgs, &["clean", "-v"]));
    assert_eq!(
        std::fs::read_to_string(work.join("thesis.tex")).unwrap(),
        "thesis\n",
        "{report}"
    );
    assert!(work.join("info/index.json").is_file(), "{report}");
    assert!(
        c.home(Who::Instructor).join("notes.conda").is_file(),
        "{report}"
    );
    for planted in ["evil-1.0-0", "notes-1.0-0.conda", "ta-1.0-0"] {
        assert!(
            pkgs.join(planted).symlink_metadata().is_ok(),
            "the group member's {planted} was removed:\n{report}"
        );
    }
    assert!(alpha.symlink_metadata().unwrap().file_type().is_symlink());
    // The instructor's own entry, wherever it was moved, is the instructor's to free.
    assert!(!pkgs.join("stolen").exists(), "{report}");
    assert!(
        common::stderr(&envmod_in(&c, Who::Instructor, &pkgs, &["clean", "-v"]))
            .contains("envmod-peer")
    );
}

/// An installation that links from a cache it only reads holds that cache's lock in shared
/// mode, from the first read to the last link: the cache's owner cleaning it meanwhile leaves
/// it alone and says so, and frees the entry once the installation is done with it.
#[test]
fn clean_leaves_a_cache_an_installation_of_another_account_is_linking_from() {
    let c = Course::new();
    let site = dir_of(&c.path().join("site-pkgs"), INSTRUCTOR, "0755");
    c.t.set_site_config(&format!(
        "channels: [{}]\nreadonly_pkgs_dirs: [{}]\n",
        c.path().join("channel").display(),
        site.display()
    ));
    let fill = c.home(Who::Instructor).join("fill");
    let fill = fill.to_str().unwrap();
    ok(&envmod_in(
        &c,
        Who::Instructor,
        &site,
        &["create", "-p", fill, "alpha=1.0"],
    ));
    ok(&c.envmod_as(Who::Instructor, "022", &["delete", "-p", fill, "--yes"]));
    let alpha = entry(&site, "alpha");

    // The student's installation stops between checking the cache's alpha and linking it.
    let log = c.home(Who::Student).join("create.log");
    let student = std::thread::scope(|s| {
        let student = s.spawn(|| {
            c.bash(
                Who::Student,
                "umask 077\nexport ENVMOD_TEST_PAUSE_AT=install:linking ENVMOD_TEST_PAUSE_MS=6000\n\"$ENVMOD\" create -n mine --offline alpha=1.0 >\"$HOME/create.log\" 2>&1; s=$?; cat \"$HOME/create.log\"; exit $s",
            )
        });
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("+ alpha")) {
            assert!(
                start.elapsed().as_secs() < 60 && !student.is_finished(),
                "the student's installation never reached alpha's link"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let during = envmod_in(&c, Who::Instructor, &site, &["clean"]);
        let report = common::stdout(&during) + &common::stderr(&during);
        // What was asked was not done: a script sees it in the exit code.
        assert_eq!(during.status.code(), Some(1), "{report}");
        assert!(
            alpha.join("info").is_dir(),
            "clean removed an entry an installation was linking from:\n{report}"
        );
        assert!(
            report.contains(&*site.to_string_lossy())
                && report.contains("an installation is using it"),
            "clean did not say the cache is in use:\n{report}"
        );
        student.join().unwrap()
    });
    ok(&student);
    let import = ok(&c.bash(
        Who::Student,
        "umask 077\n. \"$HOME/.envmod/envs/mine/bin/activate\" && python -c 'import alpha; print(alpha.VERSION)'",
    ));
    assert_eq!(import.trim(), "1.0");

    // On a terminal (progress bars, not lines) the installation holds the same lock.
    let lock = std::fs::metadata(site.join(".cache.lock")).unwrap().ino();
    let shared_lock_held = || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 5
                    && f[1] == "FLOCK"
                    && f[3] == "READ"
                    && f[5].rsplit(':').next() == Some(&lock.to_string())
            })
    };
    assert!(!shared_lock_held());
    std::thread::scope(|s| {
        let student = s.spawn(|| {
            c.bash(
                Who::Student,
                "umask 077\nexport ENVMOD_TEST_PAUSE_AT=install:linking ENVMOD_TEST_PAUSE_MS=1500\nscript -qec '\"$ENVMOD\" create -n tty --offline alpha=1.0' /dev/null",
            )
        });
        let start = std::time::Instant::now();
        while !shared_lock_held() {
            assert!(
                start.elapsed().as_secs() < 60 && !student.is_finished(),
                "the installation on a terminal never held the cache's lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        ok(&student.join().unwrap());
    });
    assert!(!shared_lock_held(), "the lock outlived the installation");

    // Done with it, and no environment the instructor can see uses it: the entry goes.
    let after = ok(&envmod_in(&c, Who::Instructor, &site, &["clean"]));
    assert!(!alpha.exists(), "alpha stayed:\n{after}");
    let import = ok(&c.bash(
        Who::Student,
        "umask 077\n. \"$HOME/.envmod/envs/mine/bin/activate\" && python -c 'import alpha; print(alpha.VERSION)'",
    ));
    assert_eq!(import.trim(), "1.0");
}

/// The quota line needs a filesystem with disk quotas, which this machine's kernel lacks:
/// tests/vm/run.sh boots one where an ext4 image is mounted with user quotas, as in the
/// doctor's quota test. The student's cache there holds an entry nothing uses; clean frees
/// it and the space left, as the site's real `quota` reports it, grows by what was freed.
#[test]
fn clean_says_how_much_of_the_quota_is_left_on_a_real_quota_filesystem() {
    common::require_account(common::OTHER);
    let envmod = assert_cmd::cargo::cargo_bin("envmod");
    let t = tempfile::tempdir().unwrap();
    let script = t.path().join("quota.sh");
    std::fs::write(
        &script,
        format!(
            r#"set -eu
u={other}
truncate -s 64M /tmp/q.img
mkfs.ext4 -q -O quota -E quotatype=usrquota:grpquota /tmp/q.img
mkdir /tmp/q
mount -o loop,usrquota,grpquota /tmp/q.img /tmp/q
home=/tmp/q/home
mkdir "$home"
chown "$u:" "$home"
: > /tmp/site.yaml
setquota -u "$u" 4000 5000 0 0 /tmp/q
runuser -u "$u" -- sh -c 'umask 022; mkdir -p "$1/pkgs/unused-1.0-0/info" && echo {{}} > "$1/pkgs/unused-1.0-0/info/index.json" && dd if=/dev/zero of="$1/pkgs/unused-1.0-0/big" bs=1K count=1024 status=none' sh "$home"
clean() {{
    echo "== clean $1"
    runuser -u "$u" -- env -i PATH=/usr/bin:/bin HOME="$home" ENVMOD_SITE_CONFIG=/tmp/site.yaml \
        ENVMOD_PKGS_DIRS="$home/pkgs" /run/envmod-vm/envmod clean $2
}}
clean dry --dry-run
clean real ""
"#,
            other = common::OTHER
        ),
    )
    .unwrap();
    let out = std::process::Command::new("bash")
        .arg(Path::new(common::REPO).join("tests/vm/run.sh"))
        .arg(&script)
        .arg(&envmod)
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}\n{}", common::stderr(&out));
    let left = |name: &str| -> f64 {
        let start = text.find(&format!("== clean {name}\n")).expect(&text);
        let line = text[start..]
            .lines()
            .find(|l| l.starts_with("quota of user envmod-other on /tmp/q: "))
            .unwrap_or_else(|| panic!("no quota line after == clean {name}:\n{text}"));
        let amount = line.trim_start_matches("quota of user envmod-other on /tmp/q: ");
        match amount.split_whitespace().collect::<Vec<_>>()[..] {
            [n, "KiB", "left"] => n.parse::<f64>().unwrap(),
            [n, "MiB", "left"] => n.parse::<f64>().unwrap() * 1024.0,
            _ => panic!("{line}"),
        }
    };
    let (before, after) = (left("dry"), left("real"));
    assert!(text.contains("would free 1.0 MiB"), "{text}");
    assert!(
        after - before >= 1000.0 && after - before <= 1100.0,
        "the space left grew by {} KiB, not what clean freed:\n{text}",
        after - before
    );
}
