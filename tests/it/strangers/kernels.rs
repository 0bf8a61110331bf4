//! Kernel names and display names are input: a name is one directory below a kernels
//! directory, never `.`, `..` or nothing, and what Jupyter shows holds no control characters.

use std::path::Path;

use crate::common::{TestEnv, channel, ok, stderr};

/// A world whose channel also has an `ipykernel` that imports (all `kernel add` asks of it).
fn world_with_ipykernel() -> TestEnv {
    let t = TestEnv::with_channel_of(vec![channel::noarch_python("ipykernel", "6.0", &[])]);
    ok(&t.run(&["create", "-q", "-n", "k", "alpha", "ipykernel"]));
    t
}

/// Every file below `dir`, for before/after comparisons.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn kernel_names_that_are_not_one_directory_are_refused() {
    let t = world_with_ipykernel();
    let jupyter = t.home.join(".local/share/jupyter");
    let course = t.path().join("course");
    let mut got_through = Vec::new();
    for name in ["..", ".", "", "..."] {
        for prefix in [None, Some(&course)] {
            let mut args = vec!["kernel", "add", "-n", "k", "--name", name];
            let prefix_s = prefix.map(|p| p.display().to_string());
            if let Some(p) = &prefix_s {
                args.extend(["--prefix", p.as_str()]);
            }
            let out = t.run(&args);
            let err = stderr(&out);
            if out.status.success() {
                got_through.push(format!(
                    "--name {name:?} {prefix:?}: accepted; files now {:?} {:?}",
                    files_below(&jupyter),
                    files_below(&course)
                ));
                continue;
            }
            assert_eq!(out.status.code(), Some(2), "--name {name:?}: {err}");
            assert!(err.contains("kernel name"), "--name {name:?}: {err}");
            assert!(err.contains("hint:"), "--name {name:?}: no hint: {err}");
            assert_eq!(
                err.lines().filter(|l| l.starts_with("error:")).count(),
                1,
                "{err}"
            );
        }
    }
    assert!(got_through.is_empty(), "{got_through:#?}");
    assert_eq!(files_below(&jupyter), Vec::<String>::new());
    assert_eq!(files_below(&course), Vec::<String>::new());
    // A name Jupyter would not take is still made into one it takes, as before, and a
    // slash is one of those characters.
    ok(&t.run(&["kernel", "add", "-q", "-n", "k", "--name", "My Kernel"]));
    assert!(jupyter.join("kernels/my_kernel/kernel.json").is_file());
    ok(&t.run(&["kernel", "add", "-q", "-n", "k", "--name", "../.."]));
    assert!(jupyter.join("kernels/.._../kernel.json").is_file());
    // `kernel remove --name ..` cannot reach outside the kernels directory either.
    let out = t.run(&["kernel", "remove", "--name", ".."]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("kernel name"), "{}", stderr(&out));
}

#[test]
fn display_names_with_control_characters_are_refused() {
    let t = world_with_ipykernel();
    let jupyter = t.home.join(".local/share/jupyter");
    let mut got_through = Vec::new();
    for shown in ["CS 101\nrm -rf ~", "red\x1b[31m", "tab\there", "nul\u{7f}"] {
        let out = t.run(&["kernel", "add", "-n", "k", "--display-name", shown]);
        let err = stderr(&out);
        if out.status.success() {
            got_through.push(format!("{shown:?}: accepted, {:?}", files_below(&jupyter)));
            let _ = t.run(&["kernel", "remove", "-q", "-n", "k"]);
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{shown:?}: {err}");
        assert!(err.contains("display name"), "{shown:?}: {err}");
        assert!(err.contains("hint:"), "{shown:?}: {err}");
    }
    assert!(got_through.is_empty(), "{got_through:#?}");
    assert!(!jupyter.join("kernels/k").exists());
    // Letters of any script are fine.
    ok(&t.run(&[
        "kernel",
        "add",
        "-q",
        "-n",
        "k",
        "--display-name",
        "Cours n°1 — 数据",
    ]));
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(jupyter.join("kernels/k/kernel.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["display_name"], "Cours n°1 — 数据");
}
