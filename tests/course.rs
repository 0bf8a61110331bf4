//! Course and shared environments: freezing an environment for a term.

mod common;

use common::{TestEnv, channel, ok, stderr};

fn world() -> TestEnv {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("channel"));
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    t
}

#[test]
fn a_frozen_environment_refuses_install_remove_and_delete_until_unfrozen() {
    let t = world();
    ok(&t.run(&["create", "-n", "term", "alpha"]));
    let out = t.run(&["freeze", "-n", "term"]);
    ok(&out);
    assert!(stderr(&out).contains("is frozen"), "{}", stderr(&out));

    for args in [
        vec!["install", "-n", "term", "libfoo"],
        vec!["remove", "-n", "term", "alpha"],
        vec!["delete", "-n", "term", "--yes"],
        vec!["delete", "-n", "term", "--yes", "--force"],
    ] {
        let out = t.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("term is frozen"), "{err}");
        assert!(err.contains("envmod unfreeze -n term"), "{err}");
    }
    let prefix = t.envs_dir().join("term");
    assert!(prefix.join("lib/python3.11/site-packages/alpha").is_dir());
    assert!(!prefix.join("lib/libfoo.so.1").exists());

    let table = ok(&t.run(&["list"]));
    assert!(table.contains("- (frozen)"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&t.run(&["list", "--json"]))).unwrap();
    assert_eq!(json[0]["frozen"], true, "{json}");

    ok(&t.run(&["unfreeze", "-n", "term"]));
    ok(&t.run(&["install", "-n", "term", "libfoo"]));
    assert!(prefix.join("lib/libfoo.so.1").exists());
    let json: serde_json::Value = serde_json::from_str(&ok(&t.run(&["list", "--json"]))).unwrap();
    assert_eq!(json[0]["frozen"], false, "{json}");
    ok(&t.run(&["delete", "-n", "term", "--yes"]));
    assert!(!prefix.exists());
}

/// The `co_filename` of a compiled file, and the source it names, read back with Python.
const PYC_FILENAME: &str = r#"
import marshal, sys
with open(sys.argv[1], "rb") as f:
    f.read(16)
    print(marshal.load(f).co_filename)
"#;

fn pycache_files(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("__pycache__"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn create_compiles_pyc_valid_at_the_final_prefix_in_both_modes() {
    let t = world();
    ok(&t.run(&["create", "-n", "site", "alpha"]));
    ok(&t.run(&["create", "-n", "conda", "--python", "3.12", "alpha"]));
    ok(&t.run(&["create", "-n", "plain", "alpha", "--no-compile"]));
    for (name, site) in [
        ("site", "lib/python3.11/site-packages"),
        ("conda", "lib/python3.12/site-packages"),
    ] {
        let prefix = t.envs_dir().join(name);
        let pkg = prefix.join(site).join("alpha");
        let compiled = pycache_files(&pkg);
        assert!(
            compiled.contains(&"__init__.cpython-311.pyc".to_string()),
            "{name}: {compiled:?}"
        );
        // The code object names the environment, not the staging directory it was built in.
        let pyc = pkg.join("__pycache__/__init__.cpython-311.pyc");
        let named = ok(&std::process::Command::new(common::MODULE_PYTHON)
            .args(["-c", PYC_FILENAME])
            .arg(&pyc)
            .output()
            .unwrap());
        assert_eq!(named.trim(), pkg.join("__init__.py").display().to_string());
        // Importing uses it: nothing is written, and -X importtime shows the import.
        let before = std::fs::metadata(&pyc).unwrap().modified().unwrap();
        let out = std::process::Command::new(prefix.join("bin/python"))
            .args(["-X", "importtime", "-c", "import alpha"])
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .output()
            .unwrap();
        ok(&out);
        assert!(stderr(&out).contains("| alpha"), "{}", stderr(&out));
        assert_eq!(
            pycache_files(&pkg),
            compiled,
            "{name}: the import wrote files"
        );
        assert_eq!(std::fs::metadata(&pyc).unwrap().modified().unwrap(), before);
    }
    // install compiles what it adds, in the staging clone, for the final prefix too.
    ok(&t.run(&["install", "-n", "site", "gamma"]));
    let gamma = t.envs_dir().join("site/lib/python3.11/site-packages/gamma");
    let named = ok(&std::process::Command::new(common::MODULE_PYTHON)
        .args(["-c", PYC_FILENAME])
        .arg(gamma.join("__pycache__/__init__.cpython-311.pyc"))
        .output()
        .unwrap());
    assert_eq!(
        named.trim(),
        gamma.join("__init__.py").display().to_string()
    );
    let plain = t
        .envs_dir()
        .join("plain/lib/python3.11/site-packages/alpha");
    assert!(pycache_files(&plain).is_empty(), "--no-compile compiled");
}
