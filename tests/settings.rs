//! Settings through the real binary: which commands need them, and which values are refused.

mod common;

use common::{TestEnv, ok, stderr};

fn break_user_config(t: &TestEnv) {
    let user = t.home.join(".config/envmod/config.yaml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "envs_dir: [not, closed\n").unwrap();
}

#[test]
fn index_and_completions_do_not_read_a_broken_user_config() {
    let t = TestEnv::new();
    break_user_config(&t);
    // The config is really broken: a command that reads settings refuses it.
    let out = t.envmod().arg("config").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let channel = t.path().join("channel");
    std::fs::create_dir_all(&channel).unwrap();
    ok(&t.envmod().arg("index").arg(&channel).output().unwrap());
    assert!(channel.join("noarch/repodata.json").is_file());
    ok(&t.envmod().args(["completions", "bash"]).output().unwrap());
}

/// `envmod config` with a site file, expecting an error that mentions every one of `needles`.
#[track_caller]
fn refused_in_site_file(yaml: &str, needles: &[&str]) {
    let t = TestEnv::new();
    t.set_site_config(yaml);
    let out = t.envmod().arg("config").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{yaml:?} was accepted:\n{err}");
    for needle in needles.iter().chain(&[t.site_config.to_str().unwrap()]) {
        assert!(err.contains(needle), "{yaml:?}: no {needle:?} in:\n{err}");
    }
}

#[test]
fn relative_paths_in_a_file_are_refused() {
    let fix = "use an absolute path such as ~/envs or /scratch/$USER/envs";
    refused_in_site_file("envs_dir: 123\n", &["envs_dir", "\"123\"", fix]);
    refused_in_site_file("envs_dir: \"\"\n", &["envs_dir", fix]);
    refused_in_site_file("module_root: mods\n", &["module_root", fix]);
    refused_in_site_file("templates_dir: templates\n", &["templates_dir", fix]);
    refused_in_site_file("pkgs_dirs: [/ok, pkgs]\n", &["pkgs_dirs", "\"pkgs\"", fix]);
}

#[test]
fn control_characters_and_colons_in_paths_are_refused() {
    refused_in_site_file(
        "envs_dir: \"/scratch/a\\nb\"\n",
        &["envs_dir", "control character"],
    );
    refused_in_site_file(
        "templates_dir: \"/etc/t\\tx\"\n",
        &["templates_dir", "control character"],
    );
    refused_in_site_file("module_root: /apps/a:b\n", &["module_root", "':'"]);
    refused_in_site_file("envs_dir: /apps/a:b\n", &["envs_dir", "':'"]);
}

#[test]
fn relative_paths_in_variables_are_refused() {
    let t = TestEnv::new();
    let out = t
        .envmod()
        .arg("config")
        .env("ENVMOD_MODULE_ROOT", "mods")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("module_root") && err.contains("ENVMOD_MODULE_ROOT"),
        "{err}"
    );
}

#[test]
fn list_variables_split_on_commas() {
    let t = TestEnv::new();
    let out = t
        .envmod()
        .args(["config", "--json"])
        .env("ENVMOD_PKGS_DIRS", "/a/pkgs,/b/pkgs")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        json["settings"]["pkgs_dirs"]["value"],
        serde_json::json!(["/a/pkgs", "/b/pkgs"])
    );
}

#[test]
fn a_bad_variable_names_itself_and_what_it_accepts() {
    let t = TestEnv::new();
    let out = t
        .envmod()
        .arg("config")
        .env("ENVMOD_MODULE_SYSTEM", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(r#"ENVMOD_MODULE_SYSTEM="x" is not one of auto, lmod, tcl, none"#),
        "{}",
        stderr(&out)
    );
}
