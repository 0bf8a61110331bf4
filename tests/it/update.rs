//! `envmod update`: a newer version appears in the channel; `--dry-run` names the move and
//! changes nothing, `update` makes it through the same atomic swap as `install`, the
//! modulefile still loads, and a second update has nothing to do. On a terminal and a pipe.

use crate::common;

use common::{Ms, TestEnv, channel, ok, sh, stderr, stdout};

/// The version of alpha that the env `g` holds, from its `conda-meta`.
fn alpha_in(t: &TestEnv) -> Vec<String> {
    let meta = t.envs_dir().join("g/conda-meta");
    let mut found: Vec<String> = std::fs::read_dir(&meta)
        .expect("conda-meta")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("alpha-"))
        .collect();
    found.sort();
    found
}

#[test]
fn update_moves_to_a_new_version_after_a_dry_run_names_it() {
    let t = TestEnv::new();
    let dir = t.path().join("channel");
    channel::write_channel(
        &dir,
        &[
            channel::noarch_python("alpha", "1.0", &[]),
            channel::python(),
        ],
    );
    t.set_site_config(&format!("channels: [{}]\n", dir.display()));
    ok(&t.module_shell(
        Ms::Lmod,
        "module load python/3.11 || exit 8\nenvmod create -q -n g alpha",
    ));
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // Nothing newer yet.
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");

    channel::write_channel(&dir, &[channel::noarch_python("alpha", "2.0", &[])]);

    // A dry run, through a pipe: the move on stdout, and nothing changed.
    let out = t.run(&["update", "-n", "g", "--all", "--dry-run"]);
    let text = ok(&out);
    assert!(text.contains("alpha 1.0 → 2.0"), "stdout:\n{text}");
    assert!(!text.contains('\x1b'), "colour through a pipe:\n{text}");
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // The same on a terminal.
    let pty = t.run_on_pty(&["update", "-n", "g", "alpha", "--dry-run"]);
    let shown = stdout(&pty);
    assert!(pty.status.success(), "{shown}");
    assert!(shown.contains("alpha 1.0 → 2.0"), "terminal:\n{shown}");
    assert_eq!(alpha_in(&t), ["alpha-1.0-pyhd8ed1ab_0.json"]);

    // The update itself, on a terminal.
    let pty = t.run_on_pty(&["update", "-n", "g", "alpha"]);
    let shown = stdout(&pty);
    assert!(pty.status.success(), "{shown}");
    assert!(shown.contains("alpha 1.0 → 2.0"), "terminal:\n{shown}");
    assert_eq!(alpha_in(&t), ["alpha-2.0-pyhd8ed1ab_0.json"]);

    let loaded = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load g/py3.11 || exit 9\npython -c 'import alpha; print(alpha.VERSION)'",
            sh(&t.module_root().display().to_string())
        ),
    );
    assert_eq!(ok(&loaded).trim(), "2.0");

    // Through a pipe, again: nothing left to move, and nothing changed.
    let before = std::fs::metadata(t.envs_dir().join("g/conda-meta")).unwrap();
    let out = t.run(&["update", "-n", "g", "--all"]);
    let err = ok(&out) + &stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    assert!(!err.contains('\x1b'), "colour through a pipe:\n{err}");
    let after = std::fs::metadata(t.envs_dir().join("g/conda-meta")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino(), "the tree was swapped anyway");
}

#[test]
fn update_refuses_a_package_the_env_does_not_have() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-q", "-n", "g", "alpha=1.0"]));
    let out = t.run(&["update", "-n", "g", "gamma"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("gamma is not installed in g"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn an_env_that_requests_nothing_has_nothing_to_update_without_reading_a_channel() {
    let t = TestEnv::new();
    // A channel that cannot be read: a solve would fail on it.
    t.set_site_config("channels: [https://channel.invalid/none]\n");
    ok(&t.run(&["create", "-q", "-n", "e"]));
    let out = t.run(&["update", "-n", "e", "--all"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("nothing to update"), "{err}");
    assert!(!err.contains("channel.invalid"), "{err}");
}
