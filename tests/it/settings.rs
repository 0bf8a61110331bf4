//! Settings through the real binary: which commands need them, and which values are refused.

use crate::common;

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

fn set_user_config(t: &TestEnv, yaml: &str) -> std::path::PathBuf {
    let user = t.home.join(".config/envmod/config.yaml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, yaml).unwrap();
    user
}

const SITE_RULES: &str = "\
# site rules
module_provides:
  \"openmpi/*\": [\"openmpi {version}\", \"mpi 1.0 openmpi\"]
  \"imkl/*\":
    - libblas * *mkl
    - liblapack * *mkl
  \"mpi/openmpi-x86_64\": [openmpi 4.1.1, mpi 1.0 openmpi]
site_package_names:
  torch: pytorch-site
  my-site-lib: [my-site-lib, my-site-lib-base]
";

const USER_RULES: &str = "\
module_provides:
  \"IMKL/*\": libblas * *mkl
  \"cuda/*\": []
site_package_names:
  setuptools: []
";

#[test]
fn module_provides_rows_show_where_each_rule_came_from() {
    let t = TestEnv::new();
    t.set_site_config(SITE_RULES);
    set_user_config(&t, USER_RULES);
    let text = ok(&t.envmod().arg("config").output().unwrap());
    let rows: String = text
        .lines()
        .filter(|l| {
            [
                "module_provides",
                "site_package_names",
                "ignore_site_packages",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex::escape(&t.path().display().to_string()), "[TMP]");
    // Table columns are as wide as the widest row of all settings.
    s.add_filter(r" {2,}", "  ");
    s.bind(|| insta::assert_snapshot!("module_provides_rows", rows));
}

#[test]
fn a_higher_layer_replaces_a_rule_per_pattern_in_json_too() {
    let t = TestEnv::new();
    t.set_site_config(SITE_RULES);
    set_user_config(&t, USER_RULES);
    let out = t
        .envmod()
        .args(["config", "--json"])
        .env("ENVMOD_IGNORE_SITE_PACKAGES", "yes")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let s = &json["settings"];
    let rules = s["module_provides"]["value"].as_array().unwrap();
    let patterns: Vec<&str> = rules
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    // The user's rules first, then the site's it did not replace, then the defaults left.
    assert_eq!(
        patterns[..5],
        [
            "IMKL/*",
            "cuda/*",
            "openmpi/*",
            "mpi/openmpi-x86_64",
            "mpich/*"
        ]
    );
    assert_eq!(
        patterns
            .iter()
            .filter(|p| p.eq_ignore_ascii_case("imkl/*"))
            .count(),
        1
    );
    assert_eq!(patterns.iter().filter(|p| **p == "cuda/*").count(), 1);
    assert_eq!(rules[0]["provides"], serde_json::json!(["libblas * *mkl"]));
    assert_eq!(rules[0]["source"]["kind"], "user_file");
    assert_eq!(rules[0]["replaces"]["kind"], "site_file");
    assert_eq!(rules[1]["provides"], serde_json::json!([]));
    assert_eq!(rules[1]["replaces"]["kind"], "default");
    assert_eq!(rules[2]["source"]["kind"], "site_file");
    assert_eq!(rules[2]["replaces"]["kind"], "default");
    assert_eq!(rules[4]["source"]["kind"], "default");
    assert!(rules[4].get("replaces").is_none());
    assert_eq!(s["module_provides"]["source"]["kind"], "user_file");
    let names = s["site_package_names"]["value"].as_array().unwrap();
    let torch = names.iter().find(|n| n["pypi"] == "torch").unwrap();
    assert_eq!(torch["conda"], serde_json::json!(["pytorch-site"]));
    assert_eq!(torch["replaces"]["kind"], "default");
    assert_eq!(s["ignore_site_packages"]["value"], true);
    assert_eq!(
        s["ignore_site_packages"]["source"]["detail"],
        "ENVMOD_IGNORE_SITE_PACKAGES"
    );
}

#[test]
fn a_bad_rule_names_the_file_and_the_line() {
    let fix = "write `name version [build]`";
    refused_in_site_file(
        "# rules\nmodule_provides:\n  \"mpich/*\": [\"mpich {version}\"]\n  \"openmpi/*\":\n    - openmpi {version}\n    - \"openmpi >=={version}\"\n",
        &[
            ", line 6: module_provides \"openmpi/*\": \"openmpi >=={version}\" is not a stand-in",
            fix,
        ],
    );
    refused_in_site_file(
        "module_provides:\n  \"cuda/*\": [\"cuda-version {major}.{patch}\"]\n",
        &[
            ", line 2: module_provides \"cuda/*\"",
            "\"{patch}\" is not a placeholder",
            fix,
        ],
    );
    refused_in_site_file(
        "module_provides:\n  \"cuda/*\": [\"python {version}\"]\n",
        &[", line 2: ", "python cannot come from a module"],
    );
    refused_in_site_file(
        "\nmodule_provides:\n  \"[openmpi/*\": []\n",
        &[
            ", line 3: module_provides \"[openmpi/*\" is not a valid glob",
            "use `*` and `?` wildcards",
        ],
    );
    refused_in_site_file(
        "site_package_names:\n  torch: \"py torch\"\n",
        &[", line 2: site_package_names \"torch\": \"py torch\" is not a conda package name"],
    );

    // The same in the user file, named as the user file.
    let t = TestEnv::new();
    let user = set_user_config(
        &t,
        "module_provides:\n  \"x/*\": [\"__cuda >={version}\"]\n",
    );
    let out = t.envmod().arg("config").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("user file {}, line 2: ", user.display()))
            && err.contains("takes one exact version"),
        "{err}"
    );
}

#[test]
fn rules_cannot_come_from_a_variable() {
    for (var, key) in [
        ("ENVMOD_MODULE_PROVIDES", "module_provides"),
        ("ENVMOD_SITE_PACKAGE_NAMES", "site_package_names"),
    ] {
        let t = TestEnv::new();
        let out = t
            .envmod()
            .arg("config")
            .env(var, "openmpi/*=openmpi")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "{var}: {key} can only be set in the site or user config file, not in a variable"
            )) && err.contains("~/.config/envmod/config.yaml"),
            "{err}"
        );
    }
}

#[test]
fn create_and_install_take_ignore_site_packages() {
    let t = TestEnv::new();
    for command in ["create", "install"] {
        let help = ok(&t.envmod().args([command, "--help"]).output().unwrap());
        assert!(
            help.contains("--ignore-site-packages"),
            "{command}:\n{help}"
        );
    }
}
