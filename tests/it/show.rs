//! `envmod show`: every package of an environment with where it comes from (conda with its
//! channel, pip, the site Python, a module), its recorded modules, its outputs and their
//! states, and whether it is shared or frozen; for people on a terminal and through a pipe,
//! and as JSON for scripts.

use crate::common;

use std::path::PathBuf;

use common::{MODULE_PYTHON, Ms, TestEnv, ok, sh, stderr, stdout};

/// An env `s` on the site Python, built under the site's `gcc/12.2` and `openmpi/4.1`
/// (which provides `openmpi 4.1` and `mpi 1.0 openmpi` by envmod's built-in rules), with
/// `beta` (and so `alpha`) from the channel and the wheel `showprobe` installed by pip.
fn env_of_every_origin() -> (TestEnv, PathBuf) {
    let t = TestEnv::with_channel();
    ok(&t.module_shell(
        Ms::Lmod,
        &format!(
            "module load gcc/12.2 openmpi/4.1 || exit 8\nenvmod create -q -n s --site-python {MODULE_PYTHON} beta"
        ),
    ));
    let prefix = t.envs_dir().join("s");
    let wheel = common::build_wheel(t.path(), "showprobe", "1.0");
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
        .arg(&wheel)
        .output()
        .expect("the env's python runs"));
    (t, prefix)
}

/// The line of `text` whose first word is `name`.
#[track_caller]
fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
}

#[test]
fn show_names_every_package_with_its_origin_and_the_outputs() {
    let (t, prefix) = env_of_every_origin();
    let channel = t.path().join("channel");
    let modulefile = t.module_root().join("s/py3.11.lua");

    let out = t.run(&["show", "-n", "s"]);
    let text = ok(&out);
    assert!(!text.contains('\x1b'), "colour through a pipe:\n{text}");
    for (name, words) in [
        ("alpha", vec!["2.0", "conda"]),
        ("beta", vec!["1.0", "conda"]),
        ("showprobe", vec!["1.0", "pip"]),
        ("openmpi", vec!["4.1", "module", "openmpi/4.1"]),
        ("mpi", vec!["1.0", "module", "openmpi/4.1"]),
        ("python", vec!["3.11", "site"]),
        // Debian's numpy, which the site Python sees and so does the env.
        (
            "numpy",
            vec!["1.24.2", "site", "/usr/lib/python3/dist-packages"],
        ),
    ] {
        let line = line_of(&text, name);
        for w in words {
            assert!(line.contains(w), "{name}: no {w:?} in {line:?}\n{text}");
        }
    }
    assert!(
        line_of(&text, "alpha").contains(&*channel.to_string_lossy()),
        "alpha's channel:\n{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.split_whitespace().next() == Some("gcc")),
        "gcc provides nothing:\n{text}"
    );
    let lazr = text
        .lines()
        .filter(|l| l.contains("lazr.uri-") || l.contains("numpy-1.24.2"))
        .count();
    assert!(lazr <= 2, "a site distribution listed twice:\n{text}");
    assert!(
        text.contains("gcc/12.2") && text.contains("openmpi/4.1"),
        "{text}"
    );
    let mf = line_of(&text, "modulefile");
    assert!(
        mf.contains("written") && mf.contains(&*modulefile.to_string_lossy()),
        "{mf}\n{text}"
    );
    let act = line_of(&text, "activate");
    assert!(
        act.contains("written") && act.contains(&*prefix.join("bin/activate").to_string_lossy()),
        "{act}\n{text}"
    );
    assert!(line_of(&text, "kernel").contains("none"), "{text}");
    assert!(line_of(&text, "frozen").contains("no"), "{text}");
    assert!(line_of(&text, "shared").contains("no"), "{text}");

    // On a terminal: the same lines, headings in bold.
    let pty = t.run_on_pty(&["show", "-n", "s"]);
    let screen = ok(&pty);
    assert!(
        screen.contains("\x1b["),
        "no styling on a terminal:\n{screen}"
    );
    let plain = console::strip_ansi_codes(&screen).replace("\r\n", "\n");
    assert!(line_of(&plain, "showprobe").contains("pip"), "{plain}");
    assert!(line_of(&plain, "modulefile").contains("written"), "{plain}");

    // A group member's link in place of site-packages is not followed: what it leads to is
    // not listed, and the report says why.
    let planted = t.path().join("planted");
    std::fs::create_dir_all(planted.join("evil-6.6.dist-info")).unwrap();
    std::fs::write(
        planted.join("evil-6.6.dist-info/METADATA"),
        "Name: evil\nVersion: 6.6\n",
    )
    .unwrap();
    let site = prefix.join("lib/python3.11/site-packages");
    std::fs::rename(&site, prefix.join("site-packages.real")).unwrap();
    std::os::unix::fs::symlink(&planted, &site).unwrap();
    let out = t.run(&["show", "-n", "s"]);
    let shown = ok(&out);
    assert!(!shown.contains("evil"), "{shown}");
    assert!(
        stderr(&out).contains("symbolic link"),
        "no warning: {}",
        stderr(&out)
    );
    std::fs::remove_file(&site).unwrap();
    std::fs::rename(prefix.join("site-packages.real"), &site).unwrap();

    // The modulefile gone: missing, and the fix named.
    std::fs::remove_file(&modulefile).unwrap();
    let text = ok(&t.run(&["show", "-n", "s"]));
    let mf = line_of(&text, "modulefile");
    assert!(mf.contains("missing"), "{mf}\n{text}");
    assert!(text.contains("envmod module -n s"), "{text}");
}

#[test]
fn show_json_reads_back_and_follows_the_loaded_env() {
    let (t, prefix) = env_of_every_origin();
    ok(&t.run(&["share", "-n", "s"]));
    ok(&t.run(&["freeze", "-n", "s"]));
    let out = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load s/py3.11 || exit 9\nenvmod show --json",
            sh(&t.module_root().display().to_string())
        ),
    );
    let text = ok(&out);
    assert!(
        stderr(&out).contains("using the loaded environment s"),
        "{}",
        stderr(&out)
    );
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(v["name"], "s");
    assert_eq!(v["prefix"], prefix.display().to_string());
    assert_eq!(v["frozen"], true);
    assert_eq!(v["shared"], serde_json::json!({"group": null}));
    assert_eq!(v["modules"], serde_json::json!(["gcc/12.2", "openmpi/4.1"]));
    let packages = v["packages"].as_array().expect("packages");
    let find = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(find("alpha")["origin"], "conda");
    assert_eq!(find("alpha")["version"], "2.0");
    assert_eq!(
        find("alpha")["channel"],
        format!("file://{}/", t.path().join("channel").display())
    );
    assert_eq!(find("showprobe")["origin"], "pip");
    assert_eq!(find("openmpi")["origin"], "module");
    assert_eq!(find("openmpi")["module"], "openmpi/4.1");
    assert_eq!(find("numpy")["origin"], "site");
    assert_eq!(find("numpy")["version"], "1.24.2");
    assert_eq!(find("python")["origin"], "site");
    let outputs = v["outputs"].as_array().expect("outputs");
    let output = |kind: &str| {
        outputs
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {text}"))
    };
    assert_eq!(output("modulefile")["state"], "written");
    assert_eq!(
        output("modulefile")["path"],
        t.module_root().join("s/py3.11.lua").display().to_string()
    );
    assert_eq!(output("activate")["state"], "written");
    assert_eq!(output("kernel")["state"], "none");
    assert!(stdout(&out).ends_with("}\n"), "{text}");
}

/// The output `kind` of `show --json`'s answer.
#[track_caller]
fn output_of<'a>(v: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    v["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {v}"))
}

#[test]
fn show_says_which_outputs_an_interrupted_change_left_pending() {
    let t = TestEnv::with_channel();
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "p",
        "--module-system",
        "lmod",
        "alpha",
    ]));
    let out = t
        .envmod()
        .args(["install", "-q", "-n", "p", "beta"])
        .env("ENVMOD_TEST_KILL_AT", "change:exchanged")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    let modulefile = t.module_root().join("p/py3.11.lua");
    let activate = t.envs_dir().join("p/bin/activate");

    let text = ok(&t.run(&["show", "-n", "p"]));
    assert!(!text.contains('\x1b'), "colour through a pipe:\n{text}");
    for (kind, path) in [("modulefile", &modulefile), ("activate", &activate)] {
        let line = line_of(&text, kind);
        assert!(
            line.contains("pending")
                && line.contains(&*path.to_string_lossy())
                && line.contains("`envmod module -n p` brings it up to date"),
            "{kind}: {line}\n{text}"
        );
    }
    let kernel = line_of(&text, "kernel");
    assert!(
        kernel.contains("none") && !kernel.contains("pending"),
        "{kernel}\n{text}"
    );
    // beta is installed, whatever the outputs say.
    assert!(line_of(&text, "beta").contains("conda"), "{text}");
    // show only reads: the outputs are still pending.
    let manifest = t.envs_dir().join("p/.envmod/manifest.json");
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("\"outputs_pending\": true")
    );

    let pty = t.run_on_pty(&["show", "-n", "p"]);
    let screen = ok(&pty);
    let plain = console::strip_ansi_codes(&screen).replace("\r\n", "\n");
    assert!(line_of(&plain, "modulefile").contains("pending"), "{plain}");

    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.run(&["show", "-n", "p", "--json"]))).expect("show --json");
    for kind in ["modulefile", "activate"] {
        let o = output_of(&v, kind);
        assert_eq!(o["state"], "pending", "{o}");
        assert!(
            o["detail"]
                .as_str()
                .is_some_and(|d| d.contains("envmod module -n p")),
            "{o}"
        );
    }
    assert_eq!(
        output_of(&v, "modulefile")["path"],
        modulefile.display().to_string()
    );
    assert_eq!(output_of(&v, "kernel")["state"], "none");

    // The command it names finishes them.
    ok(&t.run(&["module", "-n", "p"]));
    let text = ok(&t.run(&["show", "-n", "p"]));
    assert!(line_of(&text, "modulefile").contains("written"), "{text}");
    assert!(line_of(&text, "activate").contains("written"), "{text}");
}

#[test]
fn show_gives_the_kernels_path_and_state() {
    let t = TestEnv::with_channel();
    ok(&t.run(&[
        "create",
        "-q",
        "-n",
        "k",
        "--module-system",
        "lmod",
        "alpha",
    ]));
    let prefix = t.envs_dir().join("k");
    ok(&std::process::Command::new(prefix.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-input",
            "--no-index",
            "--disable-pip-version-check",
            "--find-links",
        ])
        .arg(common::wheelhouse())
        .arg("ipykernel")
        .output()
        .expect("the env's python runs"));
    ok(&t.run(&["kernel", "add", "-n", "k"]));
    let data = t
        .vars()
        .into_iter()
        .find(|(k, _)| k == "XDG_DATA_HOME")
        .expect("XDG_DATA_HOME")
        .1;
    let dir = PathBuf::from(data).join("jupyter/kernels/k");
    assert!(
        dir.join("kernel.json").is_file(),
        "no kernel in {}",
        dir.display()
    );

    let text = ok(&t.run(&["show", "-n", "k"]));
    let line = line_of(&text, "kernel");
    assert!(
        line.contains("written") && line.contains(&*dir.to_string_lossy()),
        "{line}\n{text}"
    );
    let pty = t.run_on_pty(&["show", "-n", "k"]);
    let plain = console::strip_ansi_codes(&ok(&pty)).replace("\r\n", "\n");
    let line = line_of(&plain, "kernel");
    assert!(
        line.contains("written") && line.contains(&*dir.to_string_lossy()),
        "{line}\n{plain}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.run(&["show", "-n", "k", "--json"]))).expect("show --json");
    let kernel = output_of(&v, "kernel");
    assert_eq!(kernel["state"], "written", "{kernel}");
    assert_eq!(kernel["path"], dir.display().to_string());

    // Its kernel.json gone: missing, and the command that writes it again named.
    std::fs::remove_file(dir.join("kernel.json")).unwrap();
    let text = ok(&t.run(&["show", "-n", "k"]));
    let line = line_of(&text, "kernel");
    assert!(
        line.contains("missing") && line.contains("`envmod kernel add -n k` writes it again"),
        "{line}\n{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.run(&["show", "-n", "k", "--json"]))).expect("show --json");
    assert_eq!(output_of(&v, "kernel")["state"], "missing");
}
