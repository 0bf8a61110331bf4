//! The command line as scripts and users see it: exit codes, refusals, and failures that
//! leave nothing behind.

use crate::common;

use assert_cmd::assert::OutputAssertExt;
use common::{TestEnv, ok, stderr, stdout};
use predicates::prelude::*;

#[test]
fn help_shows_examples_and_version_prints() {
    let t = TestEnv::new();
    let out = t.envmod().arg("--help").output().unwrap();
    assert!(
        stdout(&out).contains("envmod create -n myenv"),
        "{}",
        stdout(&out)
    );
    t.envmod()
        .arg("create")
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    t.envmod()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("envmod "));
}

#[test]
fn usage_errors_exit_2() {
    let t = TestEnv::new();
    t.envmod()
        .args(["create", "-n", "a", "-p", "/tmp/b"])
        .assert()
        .code(2);
    t.envmod().args(["create"]).assert().code(2);
    t.envmod().args(["frobnicate"]).assert().code(2);
}

#[test]
fn hostile_names_are_rejected_with_a_clear_message() {
    let t = TestEnv::new();
    for bad in [
        "a/b",
        "..",
        "../escape",
        "my env",
        "$(touch PWNED)",
        "a;rm -rf ~",
        "`id`",
        "-x",
        ".hidden",
        "a\"b",
        "a'b",
    ] {
        let out = t
            .envmod()
            .args(["create", "-n", bad, "--module-system", "lmod"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?} was not a usage error: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            err.contains("invalid environment name") || err.contains("unexpected argument"),
            "{bad:?}: {err}"
        );
    }
    assert!(!t.path().join("PWNED").exists());
    assert!(!t.envs_dir().exists() || std::fs::read_dir(t.envs_dir()).unwrap().count() == 0);
    assert!(!t.module_root().exists());
}

#[test]
fn prefixes_that_path_variables_cannot_hold_are_rejected() {
    let t = TestEnv::new();
    for bad in ["with:colon/env", "new\nline/env"] {
        let prefix = t.path().join(bad);
        let out = t
            .envmod()
            .args(["create", "--module-system", "lmod", "-p"])
            .arg(&prefix)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("contains ':' or a control character"),
            "{}",
            stderr(&out)
        );
        assert!(!prefix.exists());
    }
    assert!(!t.module_root().exists());
}

#[test]
fn existing_env_is_an_error_that_leaves_it_untouched() {
    let t = TestEnv::new();
    ok(&t
        .envmod()
        .args(["create", "-n", "keep", "--module-system", "tcl"])
        .output()
        .unwrap());
    let marker = t.envs_dir().join("keep/lib/marker");
    std::fs::write(&marker, "mine").unwrap();
    let out = t
        .envmod()
        .args(["create", "-n", "keep", "--module-system", "tcl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("envmod delete -n keep"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(marker).unwrap(), "mine");

    // A plain directory that happens to be at the target is not touched either.
    let plain = t.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("data.txt"), "precious").unwrap();
    let out = t
        .envmod()
        .args(["create", "-p"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(plain.join("data.txt")).unwrap(),
        "precious"
    );
}

#[test]
fn delete_refuses_a_directory_envmod_did_not_create() {
    let t = TestEnv::new();
    let dir = t.envs_dir().join("notmine");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/python"), "precious").unwrap();
    let out = t
        .envmod()
        .args(["delete", "-n", "notmine", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("was not created by envmod"),
        "{}",
        stderr(&out)
    );
    // The fix offered is adoption, never removing the directory.
    assert!(
        stderr(&out).contains("envmod adopt -p") && !stderr(&out).contains("remove"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bin/python")).unwrap(),
        "precious"
    );
    // A manifest directory that is a link is named as one, and not followed.
    std::os::unix::fs::symlink(t.path(), dir.join(".envmod")).unwrap();
    let out = t
        .envmod()
        .args(["delete", "-n", "notmine", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(".envmod is a symbolic link, which envmod does not follow"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("bin/python").exists());

    let out = t
        .envmod()
        .args(["delete", "-p"])
        .arg(t.path())
        .arg("--yes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(t.path().join("site-config.yaml").exists());
}

#[test]
fn delete_needs_yes_when_not_interactive_and_removes_only_its_own_files() {
    let t = TestEnv::new();
    ok(&t
        .envmod()
        .args(["create", "-n", "gone", "--module-system", "lmod"])
        .output()
        .unwrap());
    let neighbour = t.module_root().join("gone/other.lua");
    std::fs::write(&neighbour, "-- a user's own modulefile\n").unwrap();
    let sibling = t.envs_dir().join("sibling-data");
    std::fs::create_dir_all(&sibling).unwrap();

    let out = t.envmod().args(["delete", "-n", "gone"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(t.envs_dir().join("gone").exists());

    ok(&t
        .envmod()
        .args(["delete", "-n", "gone", "--yes"])
        .output()
        .unwrap());
    assert!(!t.envs_dir().join("gone").exists());
    assert!(!t.module_root().join("gone/py3.11.lua").exists());
    assert!(
        neighbour.exists(),
        "a modulefile envmod did not write was removed"
    );
    assert!(sibling.exists());
}

#[test]
fn failed_create_leaves_no_prefix_and_no_modulefile() {
    let t = TestEnv::new();

    // A missing site Python.
    let out = t
        .envmod()
        .args([
            "create",
            "-n",
            "nopy",
            "--module-system",
            "lmod",
            "--site-python",
            "/nonexistent/python3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/python3") && err.contains("hint:"),
        "{err}"
    );
    assert!(!t.envs_dir().join("nopy").exists());
    assert!(!t.module_root().join("nopy").exists());

    // No python3 on PATH at all.
    let out = t
        .envmod()
        .args(["create", "-n", "nopath", "--module-system", "lmod"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no python3 found on PATH"),
        "{}",
        stderr(&out)
    );

    // Something that is not a Python.
    let out = t
        .envmod()
        .args([
            "create",
            "-n",
            "notpy",
            "--module-system",
            "lmod",
            "--site-python",
            "/bin/false",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!t.envs_dir().join("notpy").exists());
    assert!(!t.module_root().join("notpy").exists());
}

#[test]
fn unwritable_envs_dir_fails_cleanly() {
    // A path below a regular file cannot be created by anyone, root included.
    let t = TestEnv::new();
    let blocker = t.path().join("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    t.set_site_config(&format!("envs_dir: {}/envs\n", blocker.display()));
    let out = t
        .envmod()
        .args(["create", "-n", "x", "--module-system", "lmod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot create") && err.contains("hint:"),
        "{err}"
    );
    assert!(!t.module_root().join("x").exists(), "orphan modulefile");
    assert_eq!(
        std::fs::read_to_string(&blocker).unwrap(),
        "a file, not a directory"
    );
}

#[test]
fn unwritable_module_root_leaves_no_env() {
    let t = TestEnv::new();
    let blocker = t.path().join("modules-file");
    std::fs::write(&blocker, "not a dir").unwrap();
    let out = t
        .envmod()
        .args([
            "create",
            "-n",
            "x",
            "--module-system",
            "tcl",
            "--module-root",
        ])
        .arg(blocker.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--module-root"), "{}", stderr(&out));
    assert!(
        !t.envs_dir().join("x").exists(),
        "env left behind after the modulefile failed"
    );
    // Checked before anything is written, so the envs directory may not even exist.
    let leftovers: Vec<_> = std::fs::read_dir(t.envs_dir())
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| n.to_string_lossy().ends_with(".envmod-lock")),
        "leftovers: {leftovers:?}"
    );
}

#[test]
fn a_foreign_modulefile_is_never_overwritten() {
    let t = TestEnv::new();
    let file = t.module_root().join("taken/py3.11.lua");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "-- the site's own module\n").unwrap();
    let out = t
        .envmod()
        .args([
            "create",
            "-n",
            "taken",
            "--module-system",
            "lmod",
            "--site-python",
            common::MODULE_PYTHON,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not written by envmod"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "-- the site's own module\n"
    );
    assert!(!t.envs_dir().join("taken").exists());
}

#[test]
fn list_json_and_table_show_what_was_created() {
    let t = TestEnv::new();
    ok(&t
        .envmod()
        .args([
            "create",
            "-n",
            "one",
            "--module-system",
            "lmod",
            "--site-python",
            common::MODULE_PYTHON,
        ])
        .output()
        .unwrap());
    let elsewhere = t.path().join("projects/two");
    ok(&t
        .envmod()
        .args(["create", "--module-system", "none", "-p"])
        .arg(&elsewhere)
        .output()
        .unwrap());

    let json: serde_json::Value =
        serde_json::from_str(&ok(&t.envmod().args(["list", "--json"]).output().unwrap())).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{json:#}");
    assert_eq!(rows[0]["name"], "one");
    assert_eq!(rows[0]["module"], "one/py3.11");
    assert_eq!(
        rows[0]["prefix"],
        t.envs_dir().join("one").display().to_string()
    );
    assert!(rows[0]["python"].as_str().unwrap().starts_with("3.11."));
    assert_eq!(rows[1]["name"], "two");
    assert_eq!(rows[1]["module"], serde_json::Value::Null);
    assert_eq!(rows[1]["prefix"], elsewhere.display().to_string());

    let table = ok(&t.envmod().arg("list").output().unwrap());
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("one/py3.11"), "{table}");

    ok(&t
        .envmod()
        .args(["delete", "-p"])
        .arg(&elsewhere)
        .arg("-y")
        .output()
        .unwrap());
    let json: serde_json::Value =
        serde_json::from_str(&ok(&t.envmod().args(["list", "--json"]).output().unwrap())).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
}

#[test]
fn config_reports_each_value_and_its_source() {
    let t = TestEnv::new();
    t.set_site_config(
        "envs_dir: /site/envs\nignore_modules: [StdEnv, 'xalt/*']\nmisspelt_key: 1\n",
    );
    let user = t.home.join(".config/envmod/config.yaml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "module_root: ~/mods\n").unwrap();
    let out = t
        .envmod()
        .args(["config", "--json"])
        .env("ENVMOD_ALLOW_STACKING", "true")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let s = &json["settings"];
    assert_eq!(s["envs_dir"]["value"], "/site/envs");
    assert_eq!(s["envs_dir"]["source"]["kind"], "site_file");
    assert_eq!(
        s["module_root"]["value"],
        t.home.join("mods").display().to_string()
    );
    assert_eq!(s["module_root"]["source"]["kind"], "user_file");
    assert_eq!(s["allow_stacking"]["value"], true);
    assert_eq!(
        s["allow_stacking"]["source"]["detail"],
        "ENVMOD_ALLOW_STACKING"
    );
    assert_eq!(s["module_system"]["source"]["kind"], "default");
    assert_eq!(
        s["ignore_modules"]["value"],
        serde_json::json!(["StdEnv", "xalt/*"])
    );
    let warn = stderr(&out);
    assert!(
        warn.contains("misspelt_key") && warn.contains(&t.site_config.display().to_string()),
        "{warn}"
    );

    let text = ok(&t.envmod().arg("config").output().unwrap());
    assert!(
        text.contains("envs_dir") && text.contains("site file"),
        "{text}"
    );
}

#[test]
fn invalid_config_is_one_clear_error() {
    let t = TestEnv::new();
    t.set_site_config("envs_dir: [not, a, path\n");
    let out = t.envmod().arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&t.site_config.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn completions_are_generated() {
    let t = TestEnv::new();
    t.envmod()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("envmod"));
}

/// `module --relocate` re-points a copied environment; `--adopt`, its old name, still works
/// for one release, says it is renamed, and is no longer shown in the help.
#[test]
fn module_relocate_repoints_a_copy_and_adopt_is_a_hidden_warning_alias() {
    let t = TestEnv::new();
    ok(&t.run(&["create", "-q", "-n", "a", "--module-system", "lmod"]));
    let envs = t.envs_dir();
    for copy in ["b", "c"] {
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(envs.join("a"))
            .arg(envs.join(copy))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let refused = t.run(&["module", "-n", "b"]);
    assert!(
        stderr(&refused).contains("envmod module -n b --relocate"),
        "the copy's refusal names the flag: {}",
        stderr(&refused)
    );

    let out = t.run(&["module", "-n", "b", "--relocate"]);
    ok(&out);
    assert!(!stderr(&out).contains("renamed"), "{}", stderr(&out));
    let b_module = std::fs::read_to_string(t.module_root().join("b/py3.11.lua")).unwrap();
    assert!(
        b_module.contains(&envs.join("b").display().to_string()),
        "{b_module}"
    );

    let out = t.run(&["module", "-n", "c", "--adopt"]);
    ok(&out);
    assert!(
        stderr(&out).contains("--adopt is renamed --relocate"),
        "{}",
        stderr(&out)
    );
    let c_module = std::fs::read_to_string(t.module_root().join("c/py3.11.lua")).unwrap();
    assert!(
        c_module.contains(&envs.join("c").display().to_string()),
        "{c_module}"
    );

    let help = stdout(&t.run(&["module", "--help"]));
    assert!(help.contains("--relocate"), "{help}");
    assert!(!help.contains("--adopt"), "{help}");
}
