//! `envmod create --clone`: a copy that is an environment of its own. Its conda packages are
//! linked again from the package cache for its own prefix, its pip packages are copied, and
//! whatever is done to it afterwards leaves the original as it was.

use crate::common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use common::{MODULE_PYTHON, Ms, TestEnv, ok, sh, stderr, stdout};

/// Every file of `dir` (not following links) with its content.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn pip_install(prefix: &Path, wheel: &Path) {
    ok(&std::process::Command::new(prefix.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
        ])
        .arg(wheel)
        .output()
        .expect("the env's python runs"));
}

fn imports(prefix: &Path, code: &str) -> String {
    ok(&std::process::Command::new(prefix.join("bin/python"))
        .args(["-c", code])
        .output()
        .expect("the env's python runs"))
}

#[test]
fn a_clone_is_its_own_env_and_changes_to_it_leave_the_original_alone() {
    let t = TestEnv::with_channel();
    ok(&t.module_shell(
        Ms::Lmod,
        &format!("module load gcc/12.2 || exit 8\nenvmod create -q -n orig --site-python {MODULE_PYTHON} beta"),
    ));
    let orig = t.envs_dir().join("orig");
    let wheel = common::build_wheel(t.path(), "cloneprobe", "1.0");
    pip_install(&orig, &wheel);
    let modulefile = t.module_root().join("orig/py3.11.lua");
    let before = (
        contents(&orig.join("conda-meta")),
        contents(&orig.join(".envmod")),
        std::fs::read(&modulefile).unwrap(),
    );

    // Through a pipe.
    let out = t.run(&["create", "-n", "dup", "--clone", "orig"]);
    let text = ok(&out);
    let all = format!("{text}{}", stderr(&out));
    assert!(!all.contains('\x1b'), "colour through a pipe:\n{all}");
    assert!(
        all.contains("Cloning orig: 2 conda packages from the package cache, 1 pip packages"),
        "{all}"
    );
    assert!(all.contains("module load dup/py3.11"), "{all}");
    let dup = t.envs_dir().join("dup");

    // Its conda packages are its own: the entry point rattler wrote names the clone.
    let cli = std::fs::read_to_string(dup.join("bin/alpha-cli")).unwrap();
    assert!(
        cli.starts_with(&format!("#!{}/bin/", dup.display())),
        "{cli}"
    );
    let meta = std::fs::read_to_string(dup.join("conda-meta/alpha-2.0-pyhd8ed1ab_0.json"))
        .expect("alpha's record in the clone");
    assert!(!meta.contains(&*orig.to_string_lossy()), "{meta}");
    // The pip package was copied, its script pointed at the clone.
    let script = std::fs::read_to_string(dup.join("bin/cloneprobe-hello")).unwrap();
    assert!(
        script.starts_with(&format!("#!{}/bin/", dup.display())),
        "{script}"
    );
    assert!(!script.contains(&*orig.to_string_lossy()), "{script}");
    let hello = ok(
        &std::process::Command::new(dup.join("bin/cloneprobe-hello"))
            .output()
            .unwrap(),
    );
    assert!(hello.contains("hello from cloneprobe 1.0"), "{hello}");
    let file = "lib/python3.11/site-packages/cloneprobe/__init__.py";
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        std::fs::metadata(orig.join(file)).unwrap().ino(),
        std::fs::metadata(dup.join(file)).unwrap().ino(),
        "the pip package's files are copies, not links to the original's"
    );

    // Its compiled pip modules name the clone's sources, not the original's.
    let code = format!(
        "import cloneprobe, marshal, glob\nf = glob.glob({:?})[0]\nprint(marshal.loads(open(f, 'rb').read()[16:]).co_filename)",
        dup.join("lib/python3.11/site-packages/cloneprobe/__pycache__/__init__.cpython-311.pyc")
            .display()
    );
    let compiled = ok(&std::process::Command::new(dup.join("bin/python"))
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .args(["-c", &code])
        .output()
        .unwrap());
    assert_eq!(compiled.trim(), dup.join(file).display().to_string());

    // Its manifest: the original's specs, modules and Python, under its own name and prefix.
    let list = ok(&t.run(&["list", "--json"]));
    let envs: serde_json::Value = serde_json::from_str(&list).unwrap();
    let find = |name: &str| {
        envs.as_array()
            .or_else(|| envs["environments"].as_array())
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    let (o, d) = (find("orig"), find("dup"));
    assert_eq!(o["specs"], d["specs"], "{list}");
    let lua = std::fs::read_to_string(t.module_root().join("dup/py3.11.lua")).unwrap();
    assert!(lua.contains("gcc/12.2"), "{lua}");
    assert!(lua.contains(&*dup.to_string_lossy()), "{lua}");
    assert!(!lua.contains(&*orig.to_string_lossy()), "{lua}");

    // It loads under real Lmod, with the recorded module, and imports both kinds of package.
    let loaded = ok(&t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load dup/py3.11 || exit 9\necho \"prefix=$CONDA_PREFIX\"\necho \"loaded=$LOADEDMODULES\"\npython -c 'import alpha, beta, cloneprobe; print(\"imports\", cloneprobe.__file__)'",
            sh(&t.module_root().to_string_lossy())
        ),
    ));
    assert!(
        loaded.contains(&format!("prefix={}", dup.display())),
        "{loaded}"
    );
    assert!(loaded.contains("gcc/12.2"), "{loaded}");
    assert!(
        loaded.contains(&format!("imports {}", dup.join(file).display())),
        "{loaded}"
    );

    // Changes to the clone: a conda install and remove, and a pip uninstall.
    ok(&t.run(&["install", "-n", "dup", "gamma"]));
    ok(&t.run(&["remove", "-n", "dup", "beta"]));
    ok(&std::process::Command::new(dup.join("bin/python"))
        .args([
            "-m",
            "pip",
            "uninstall",
            "-y",
            "-q",
            "--disable-pip-version-check",
            "cloneprobe",
        ])
        .output()
        .unwrap());
    assert!(!dup.join(file).exists());

    let after = (
        contents(&orig.join("conda-meta")),
        contents(&orig.join(".envmod")),
        std::fs::read(&modulefile).unwrap(),
    );
    assert!(before.0 == after.0, "the original's conda-meta changed");
    assert!(before.1 == after.1, "the original's manifest changed");
    assert!(before.2 == after.2, "the original's modulefile changed");
    let still = imports(
        &orig,
        "import alpha, beta, cloneprobe; print(cloneprobe.VALUE)",
    );
    assert!(still.contains("hello from cloneprobe 1.0"), "{still}");
    assert!(orig.join("bin/cloneprobe-hello").is_file());
}

#[test]
fn a_clone_on_a_terminal_by_prefix_and_a_source_that_is_not_envmods() {
    let t = TestEnv::with_channel();
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "orig",
        "--site-python",
        MODULE_PYTHON,
        "alpha",
    ]));
    let orig = t.envs_dir().join("orig");
    let out = t.run_on_pty(&["create", "-n", "dup", "--clone", &orig.to_string_lossy()]);
    let shown = ok(&out);
    assert!(
        shown.contains("Cloning orig: 1 conda packages from the package cache, 0 pip packages"),
        "{shown}"
    );
    assert!(shown.contains("To use it"), "{shown}");
    let dup = t.envs_dir().join("dup");
    let got = imports(&dup, "import alpha, sys; print(sys.prefix)");
    assert!(got.contains(&*dup.to_string_lossy()), "{got}");

    // A conda env envmod did not create: refused in one line that names the fix, and
    // nothing is left of the new env.
    let plain = t.path().join("plain");
    std::fs::create_dir_all(plain.join("conda-meta")).unwrap();
    let out = t.run(&["create", "-n", "dup2", "--clone", &plain.to_string_lossy()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is not an envmod environment"), "{err}");
    assert!(
        err.contains(&format!("envmod adopt -p {}", plain.display())),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(!t.envs_dir().join("dup2").exists());
    assert!(!t.module_root().join("dup2").exists());
}
