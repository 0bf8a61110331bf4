//! A site mirror: `channel_alias` points at a directory of `file://` channels, as an
//! air-gapped cluster serves everything from its own mirror. A channel name means the
//! mirror's channel wherever it is written: `-c`, a spec's `chan::pkg`, an environment file,
//! an `install` later.

use crate::common;

use std::path::{Path, PathBuf};

use common::{TestEnv, channel, ok, stderr};

/// A world whose site config names only the mirror: `chan` (the standard channel, with
/// `alpha 3.0` under its `label/dev`) and `extra` (`solo`), both reached by name.
fn mirror() -> (TestEnv, PathBuf) {
    let t = TestEnv::new();
    let mirror = t.path().join("mirror");
    channel::standard_channel(&mirror.join("chan"));
    channel::write_channel(
        &mirror.join("chan/label/dev"),
        &[channel::noarch_python("alpha", "3.0", &[])],
    );
    channel::write_channel(
        &mirror.join("extra"),
        &[channel::noarch_python("solo", "1.0", &[])],
    );
    t.set_site_config(&format!(
        "channel_alias: {}\nchannels: [chan]\n",
        channel::channel_url(&mirror)
    ));
    (t, mirror)
}

/// `name-version` and the channel of each conda package installed in `env`.
fn installed(t: &TestEnv, env: &str) -> Vec<(String, String)> {
    let meta = t.envs_dir().join(env).join("conda-meta");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&meta)
        .unwrap_or_else(|e| panic!("{}: {e}", meta.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (
                format!(
                    "{}-{}",
                    v["name"].as_str().unwrap(),
                    v["version"].as_str().unwrap()
                ),
                v["channel"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn on_mirror(mirror: &Path, chan: &str) -> String {
    format!("{}{chan}/", channel::channel_url(mirror))
}

#[test]
fn a_spec_channel_is_the_mirror_channel() {
    let (t, mirror) = mirror();
    ok(&t.run(&["create", "-n", "x", "chan::alpha"]));
    assert_eq!(
        installed(&t, "x"),
        [("alpha-2.0".to_string(), on_mirror(&mirror, "chan"))]
    );
    // A label is a channel of its own, searched because the spec names it.
    ok(&t.run(&["create", "-n", "dev", "chan/label/dev::alpha"]));
    assert_eq!(
        installed(&t, "dev"),
        [(
            "alpha-3.0".to_string(),
            on_mirror(&mirror, "chan/label/dev")
        )]
    );
}

#[test]
fn dash_c_and_the_spec_name_one_channel() {
    let (t, mirror) = mirror();
    ok(&t.run(&[
        "create",
        "-n",
        "y",
        "-c",
        "chan",
        "-c",
        "extra",
        "extra::solo",
        "alpha",
    ]));
    assert_eq!(
        installed(&t, "y"),
        [
            ("alpha-2.0".to_string(), on_mirror(&mirror, "chan")),
            ("solo-1.0".to_string(), on_mirror(&mirror, "extra")),
        ]
    );
}

#[test]
fn an_environment_file_names_mirror_channels() {
    let (t, mirror) = mirror();
    let file = t.path().join("environment.yml");
    std::fs::write(
        &file,
        "name: fromfile\nchannels:\n  - chan\n  - extra\ndependencies:\n  - chan::alpha\n  - extra::solo\n",
    )
    .unwrap();
    ok(&t.run(&["create", "-f", file.to_str().unwrap()]));
    assert_eq!(
        installed(&t, "fromfile"),
        [
            ("alpha-2.0".to_string(), on_mirror(&mirror, "chan")),
            ("solo-1.0".to_string(), on_mirror(&mirror, "extra")),
        ]
    );
}

#[test]
fn install_later_resolves_the_same_names() {
    let (t, mirror) = mirror();
    ok(&t.run(&["create", "-n", "z", "alpha=1.0"]));
    ok(&t.run(&["install", "-n", "z", "extra::solo", "chan::alpha>=2"]));
    assert_eq!(
        installed(&t, "z"),
        [
            ("alpha-2.0".to_string(), on_mirror(&mirror, "chan")),
            ("solo-1.0".to_string(), on_mirror(&mirror, "extra")),
        ]
    );
    // The lock of it names the mirror's channels, and builds there again.
    let lock = t.path().join("z.lock");
    ok(&t.run(&[
        "export",
        "-n",
        "z",
        "--format",
        "lock",
        "-o",
        lock.to_str().unwrap(),
    ]));
    ok(&t.run(&["create", "-n", "again", "-f", lock.to_str().unwrap()]));
    assert_eq!(installed(&t, "again"), installed(&t, "z"));
}

#[test]
fn a_platform_the_channels_have_no_python_for_is_named() {
    let t = TestEnv::new();
    let chan = t.path().join("linux-only");
    channel::write_channel(
        &chan,
        &[
            channel::noarch_python("alpha", "1.0", &[]),
            channel::python(),
        ],
    );
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    ok(&t.run(&["create", "-n", "site", "alpha"]));
    let out = t.run(&[
        "export",
        "-n",
        "site",
        "--format",
        "lock",
        "-o",
        t.path().join("osx.lock").to_str().unwrap(),
        "--platform",
        "osx-arm64",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let shown = channel::channel_url(&chan).to_string();
    let shown = shown.trim_end_matches('/');
    assert!(
        err.contains("have no Python for osx-arm64") && err.contains(shown),
        "{err}"
    );
    assert!(!err.contains("loosen or drop"), "{err}");
    assert!(
        err.contains("add a channel that has") && err.contains("a platform the channels serve"),
        "{err}"
    );
    assert!(!t.path().join("osx.lock").exists());
}

#[test]
fn a_channel_only_the_manifest_specs_name_is_warned_about() {
    let (t, _mirror) = mirror();
    ok(&t.run(&["create", "-n", "w", "alpha"]));
    // What a group member who can write the manifest could do: name a channel in a spec.
    let path = t.envs_dir().join("w/.envmod/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["specs"] = serde_json::json!(["alpha", "extra::solo"]);
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let out = t.run(&["install", "-n", "w", "beta"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("`extra::solo`") && err.contains("mirror/extra") && err.contains("pass -c"),
        "{err}"
    );
}
