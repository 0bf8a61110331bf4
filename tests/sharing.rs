//! Sharing environments between sites: `envmod export` and `envmod create -f`, with real
//! module systems, the env's own pip, and the files other tools read.

mod common;

use std::path::{Path, PathBuf};

use common::{Ms, TestEnv, channel, ok, sh, stderr, stdout};

/// A test world whose site config points at a freshly built standard channel, and a
/// directory of wheels for pip (found through `PIP_FIND_LINKS`, with no index).
fn world() -> (TestEnv, PathBuf) {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("channel"));
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    let wheels = t.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    common::build_wheel(&wheels, "shared_tool", "1.0");
    (t, wheels)
}

fn pip_env(wheels: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PIP_NO_INDEX", "1".to_string()),
        ("PIP_FIND_LINKS", wheels.display().to_string()),
    ]
}

fn shell(t: &TestEnv, ms: Ms, wheels: &Path, script: &str) -> std::process::Output {
    let vars = pip_env(wheels);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    t.module_shell_with(ms, script, &vars)
}

/// `name version build sha256` of every conda package in the env, sorted.
fn conda_records(prefix: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(prefix.join("conda-meta")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        out.push(format!(
            "{} {} {} {}",
            v["name"].as_str().unwrap(),
            v["version"].as_str().unwrap(),
            v["build"].as_str().unwrap(),
            v["sha256"].as_str().unwrap_or("-"),
        ));
    }
    out.sort();
    out
}

fn module_use(t: &TestEnv) -> String {
    format!("module use {}", sh(&t.module_root().display().to_string()))
}

/// What a user checks after `module load`: the modules, the variables, the conda package,
/// the pip package and its console script.
fn loaded_view(t: &TestEnv, ms: Ms, wheels: &Path, module: &str) -> String {
    let script = format!(
        "{}\nmodule load {module} || exit 9\necho \"modules=$LOADEDMODULES\"\necho \"gcc=${{FAKE_GCC_VERSION:-}} foo=${{FOO_ACTIVATED:-}} home=${{FOO_HOME:-}} course=${{COURSE_ID:-}}\"\npython -c 'import alpha, shared_tool; print(alpha.VERSION, shared_tool.VALUE)'\nshared_tool-hello",
        module_use(t)
    );
    ok(&shell(t, ms, wheels, &script))
}

#[test]
fn export_delete_create_rebuilds_the_same_env_in_site_mode() {
    for ms in Ms::BOTH {
        let (t, wheels) = world();
        let prefix = t.envs_dir().join("rt");
        // A course env: conda packages, a variable of its own, a pip-installed wheel with a
        // console script, built on gcc and the site Python.
        let setup = format!(
            "module load gcc/12.2 python/3.11\nenvmod create -n rt alpha gamma || exit 1\n{}\nmodule load rt/py3.11\npip install --no-input shared_tool || exit 2",
            module_use(&t)
        );
        ok(&shell(&t, ms, &wheels, &setup));
        let state = prefix.join("conda-meta/state");
        std::fs::write(&state, r#"{"env_vars": {"COURSE_ID": "cs101"}}"#).unwrap();
        ok(&t.run(&["module", "-n", "rt"]));
        let before_records = conda_records(&prefix);
        let before_view = loaded_view(&t, ms, &wheels, "rt/py3.11");

        let exported = t.path().join("rt.yml");
        ok(&t.run(&["export", "-n", "rt", "-o", exported.to_str().unwrap()]));
        let text = std::fs::read_to_string(&exported).unwrap();
        for needle in [
            "name: rt",
            "- alpha",
            "- gamma",
            "- shared_tool==1.0",
            "COURSE_ID: \"cs101\"",
            "FOO_ACTIVATED: \"yes\"",
            "- gcc/12.2",
            "mode: site",
            "platform: linux-64",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(
            !text.contains(&*prefix.to_string_lossy()),
            "the export names this site's prefix:\n{text}"
        );

        ok(&t.run(&["delete", "-n", "rt", "--yes"]));
        assert!(!prefix.exists());
        // Rebuilt from a clean shell: the modules come from the file, not from the shell.
        let rebuild = format!(
            "module load python/3.11\nenvmod create -f {} || exit 1",
            sh(&exported.display().to_string())
        );
        let out = shell(&t, ms, &wheels, &rebuild);
        ok(&out);

        assert_eq!(conda_records(&prefix), before_records);
        let after_view = loaded_view(&t, ms, &wheels, "rt/py3.11");
        assert_eq!(after_view, before_view);
        assert!(after_view.contains("gcc=12.2 foo=yes"), "{after_view}");
        assert!(after_view.contains("course=cs101"), "{after_view}");
        assert!(
            after_view.contains("hello from shared_tool 1.0"),
            "{after_view}"
        );
        // The script pip wrote runs from the final prefix, not the staging directory.
        let script = std::fs::read_to_string(prefix.join("bin/shared_tool-hello")).unwrap();
        let first = script.lines().next().unwrap();
        assert_eq!(first, format!("#!{}/bin/python", prefix.display()));
    }
}
