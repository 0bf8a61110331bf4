//! The commands that read an environment to copy, update, show or clean it, against a TA who
//! can write the shared course environment: nothing the TA plants there reaches the
//! instructor's own files, runs as the instructor, or passes into a copy as the instructor's.

use std::path::Path;

use crate::common::{
    course::{Course, Who},
    ok, sh, stderr,
};

/// The TA's files in the shared env `prefix`: a distribution pip would list, whose RECORD
/// names files beside site-packages that are no part of pip's, each of which is there.
fn plant_pip_dist(c: &Course, prefix: &Path, record: &[(&str, &str)]) {
    let mut script = format!(
        "set -e\numask 002\nsite=$(echo {}/lib/python3*/site-packages)\nd=$site/evil-1.0.dist-info\nmkdir -p $d\nprintf 'Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n\\n' > $d/METADATA\nprintf 'pip\\n' > $d/INSTALLER\n: > $d/RECORD\n",
        sh(&prefix.display().to_string())
    );
    for (rel, text) in record {
        script.push_str(&format!(
            "mkdir -p \"$(dirname {p})\"\nprintf %s {t} > {p}\necho \"../../../{r},,\" >> $d/RECORD\n",
            p = sh(&prefix.join(rel).display().to_string()),
            t = sh(text),
            r = rel,
        ));
    }
    ok(&c.bash(Who::Ta, &script));
}

#[test]
fn a_clone_takes_no_activation_script_or_record_the_ta_listed_as_pip_files() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let marker = c.path().join("ran-as-instructor");
    let hook = format!(
        "echo ran > {}\nexport TA_VAR=1\n",
        sh(&marker.display().to_string())
    );
    plant_pip_dist(
        &c,
        &prefix,
        &[
            ("etc/conda/activate.d/zz-ta.sh", &hook),
            (
                "etc/conda/env_vars.d/ta.json",
                "{\"LD_PRELOAD\": \"/tmp/ta.so\"}",
            ),
            ("conda-meta/pinned", "alpha <1\n"),
            (".envmod/ta-note", "x\n"),
        ],
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &[
            "create",
            "-n",
            "mine",
            "--clone",
            &prefix.display().to_string(),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let shown = ok(&c.envmod_as(Who::Instructor, "077", &["show", "-n", "mine", "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let copy = Path::new(shown["prefix"].as_str().unwrap()).to_path_buf();
    assert!(
        err.contains("not copied"),
        "the files passed over are not named: {err}"
    );
    assert!(
        !marker.exists(),
        "the TA's script ran as the instructor: {err}"
    );
    for rel in [
        "etc/conda/activate.d/zz-ta.sh",
        "etc/conda/env_vars.d/ta.json",
        "conda-meta/pinned",
        ".envmod/ta-note",
    ] {
        assert!(
            copy.join(rel).symlink_metadata().is_err(),
            "the clone has the TA's {rel}, now the instructor's own: {err}"
        );
    }
}

#[test]
fn clean_of_a_cache_the_user_cannot_write_fails_and_names_the_fix() {
    let c = Course::new();
    let cache = c.envs().parent().unwrap().join("pkgs");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "set -e; umask 022; mkdir -p {d}/old-1.0-0/info; echo x > {d}/old-1.0-0/info/index.json",
            d = sh(&cache.display().to_string())
        ),
    ));
    let config = c.home(Who::Student).join(".config/envmod");
    ok(&c.bash(
        Who::Student,
        &format!(
            "mkdir -p {d}; printf 'pkgs_dirs: [%s]\\n' {p} > {d}/config.yaml",
            d = sh(&config.display().to_string()),
            p = sh(&cache.display().to_string())
        ),
    ));
    for args in [
        &["clean"][..],
        &["clean", "--dry-run"],
        &["clean", "--json"],
    ] {
        let out = c.envmod_as(Who::Student, "022", args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            line.contains("was not cleaned: you cannot write it (it is envmod-instructor's)"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("hint:") && err.contains("pkgs_dirs"),
            "{args:?}: {err}"
        );
    }
    assert!(cache.join("old-1.0-0/info/index.json").exists());
}

#[test]
fn clean_removes_no_directory_of_the_instructor_s_that_a_ta_renamed_to_a_leftover_name() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let envs = prefix.parent().unwrap().to_path_buf();
    let solutions = envs.join("solutions");
    ok(&c.bash(
        Who::Instructor,
        &format!(
            "set -e; umask 077; mkdir {d}; echo 42 > {d}/answers",
            d = sh(&solutions.display().to_string())
        ),
    ));
    let planted = envs.join(".cs101.envmod-trash");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "mv {} {}",
            sh(&solutions.display().to_string()),
            sh(&planted.display().to_string())
        ),
    ));
    let out = c.envmod_as(Who::Instructor, "077", &["clean"]);
    let err = stderr(&out);
    assert!(
        planted.join("answers").exists(),
        "the instructor's directory, renamed by the TA, was removed: {}{err}",
        crate::common::stdout(&out)
    );
}

#[test]
fn show_prints_no_line_or_escape_sequence_a_ta_put_in_a_pip_distribution() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    ok(&c.bash(
        Who::Ta,
        &format!(
            "set -e; umask 002; site=$(echo {}/lib/python3*/site-packages)\n\
             d=$site/$'painted-1.0.dist-info'; mkdir $d\n\
             printf 'Metadata-Version: 2.1\\nName: \\033]0;owned\\007\\033[2Jpainted\\nVersion: 1.0\\033[31m\\n\\n' > $d/METADATA\n\
             mkdir \"$site/\"$'x\\nerror: the course environment is damaged; run rm -rf ~ to repair it\\nx.dist-info'\n",
            sh(&prefix.display().to_string())
        ),
    ));
    for args in [
        vec!["show", "-p", &prefix.to_str().unwrap()],
        vec!["show", "-p", &prefix.to_str().unwrap(), "--json"],
    ] {
        let out = c.envmod_as(Who::Instructor, "077", &args);
        let (text, err) = (crate::common::stdout(&out), stderr(&out));
        assert!(out.status.success(), "{err}");
        assert!(
            !text.contains('\u{1b}') && !err.contains('\u{1b}') && !text.contains('\u{7}'),
            "{args:?}: an escape sequence reached the terminal: {text:?} {err:?}"
        );
        assert!(
            !err.lines()
                .chain(text.lines())
                .any(|l| l.starts_with("error:")),
            "{args:?}: a line the TA wrote reads as envmod's: {err}"
        );
        assert!(text.contains("painted"), "{text}");
    }
}

/// A student (not in the group) runs update or adopt on the course env: the error says they
/// cannot change it and offers a copy of their own, never the removal of the owner's lock.
#[test]
fn a_change_by_someone_who_cannot_write_the_env_says_so_and_names_a_clone() {
    let c = Course::new();
    let prefix = c.create_shared("cs101", &["alpha"]);
    let p = prefix.display().to_string();
    for args in [vec!["update", "-p", &p, "--all"], vec!["adopt", "-p", &p]] {
        let out = c.envmod_as(Who::Student, "022", &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            !err.contains("rm "),
            "{args:?}: the fix offered is to remove the owner's lock: {err}"
        );
        assert!(
            (err.contains("cannot write") || err.contains("belongs to envmod-instructor"))
                && err.contains("--clone"),
            "{args:?}: {err}"
        );
    }
}
