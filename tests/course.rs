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
