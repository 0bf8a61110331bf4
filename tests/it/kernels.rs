//! Jupyter kernels started by a real `jupyter_client.KernelManager` from envmod's
//! kernelspec: the launcher loads the environment's modules under Lmod and under
//! Environment Modules, and falls back to the recorded variables with no module system.

use crate::common;

use std::{path::Path, process::Command};

use common::{Ms, TestEnv, ok, sh, stderr};

/// Start kernel `name` from `kernels_dir` with jupyter_client, run one cell, print its output.
const RUN_CELL: &str = r#"
import sys
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
kernels_dir, name, code = sys.argv[1], sys.argv[2], sys.argv[3]
ksm = KernelSpecManager(kernel_dirs=[kernels_dir], ensure_native_kernel=False)
km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
km.start_kernel()
kc = km.client()
kc.start_channels()
out = []
def hook(msg):
    if msg["msg_type"] == "stream":
        out.append(msg["content"]["text"])
    elif msg["msg_type"] == "error":
        out.append("ERROR %s %s" % (msg["content"]["ename"], msg["content"]["evalue"]))
try:
    kc.wait_for_ready(timeout=120)
    kc.execute_interactive(code, timeout=60, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("CELL:", "".join(out).strip())
"#;

fn run_cell_script(kernels: &Path, name: &str) -> String {
    run_code_script(
        kernels,
        name,
        "import os, alpha; print(os.environ.get('FAKE_GCC_VERSION'), alpha.VERSION, os.environ.get('VIRTUAL_ENV'))",
    )
}

/// A shell command that starts kernel `name` and prints the output of the cell `code`.
pub(crate) fn run_code_script(kernels: &Path, name: &str, code: &str) -> String {
    format!(
        "{} -c {} {} {} {}",
        sh(&common::peers_python().display().to_string()),
        sh(RUN_CELL),
        sh(&kernels.display().to_string()),
        sh(name),
        sh(code)
    )
}

pub(crate) fn cell_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("CELL: "))
        .unwrap_or_else(|| panic!("no cell output in:\n{text}"))
}

#[test]
fn the_kernel_loads_the_modules_or_falls_back_to_their_variables() {
    let t = TestEnv::with_channel();
    let wheels = common::wheelhouse();
    let prefix = t.envs_dir().join("kern");
    ok(&t.module_shell(
        Ms::Lmod,
        "module load gcc/12.2\nenvmod create -n kern alpha",
    ));

    // ipykernel is not installed behind the user's back: the error names the fix.
    let out = t.module_shell(Ms::Lmod, "module load gcc/12.2\nenvmod kernel add -n kern");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("has no ipykernel"), "{err}");
    assert!(err.contains("envmod install -n kern ipykernel"), "{err}");
    assert!(err.contains("pip install ipykernel"), "{err}");

    let jup = t.path().join("course-jupyter");
    let setup = format!(
        "module use {root}\nmodule load kern/py3.11\npip install --no-input --no-index --find-links {wheels} ipykernel >/dev/null || exit 2\nenvmod kernel add -n kern --prefix {jup}",
        root = sh(&t.module_root().display().to_string()),
        wheels = sh(&wheels.display().to_string()),
        jup = sh(&jup.display().to_string()),
    );
    let out = t.module_shell(Ms::Lmod, &setup);
    ok(&out);
    let kernels = jup.join("share/jupyter/kernels");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kernels.join("kern/kernel.json")).unwrap())
            .unwrap();
    assert_eq!(spec["display_name"], "kern (py3.11)");
    assert_eq!(spec["argv"][0], "/bin/bash", "{spec}");
    assert_eq!(
        spec["metadata"]["envmod"]["prefix"],
        prefix.display().to_string()
    );

    let expected = format!("CELL: 12.2 2.0 {}", prefix.display());
    for ms in Ms::BOTH {
        let text = ok(&t.module_shell(ms, &run_cell_script(&kernels, "kern")));
        assert_eq!(cell_line(&text), expected, "{ms:?}: {text}");
    }
    // No module system at all: the variables recorded when the kernel was added.
    let out = Command::new("env")
        .arg("-i")
        .args(t.vars().iter().map(|(k, v)| format!("{k}={v}")))
        .args(["PATH=/usr/bin:/bin", "LANG=C.UTF-8"])
        .args(["bash", "--norc", "--noprofile", "-c"])
        .arg(run_cell_script(&kernels, "kern"))
        .output()
        .unwrap();
    let text = ok(&out);
    assert_eq!(cell_line(&text), expected, "{text}\n{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be loaded here"),
        "no warning in the kernel log: {}",
        stderr(&out)
    );

    // list shows it; delete removes it.
    let listed = ok(&t.run(&["kernel", "list", "--prefix", jup.to_str().unwrap()]));
    assert!(listed.contains("kern  \"kern (py3.11)\""), "{listed}");
    let json = ok(&t.run(&["list", "--json"]));
    assert!(
        json.contains(&kernels.join("kern").display().to_string()),
        "{json}"
    );
    ok(&t.run(&["delete", "-n", "kern", "--yes"]));
    assert!(!kernels.join("kern").exists(), "delete left the kernel");
}

#[test]
fn kernels_whose_environment_is_gone_are_marked_and_removed() {
    let t = TestEnv::with_channel();
    let wheels = common::wheelhouse();
    ok(&t.run(&["create", "-n", "gone", "alpha"]));
    let prefix = t.envs_dir().join("gone");
    let pip = Command::new(prefix.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--no-index",
            "--find-links",
        ])
        .arg(&wheels)
        .arg("ipykernel")
        .output()
        .unwrap();
    ok(&pip);
    ok(&t.run(&[
        "kernel",
        "add",
        "-n",
        "gone",
        "--display-name",
        "Gone for good",
    ]));
    let dir = t.home.join(".local/share/jupyter/kernels/gone");
    assert!(dir.join("kernel.json").is_file());
    let listed = ok(&t.run(&["kernel", "list"]));
    assert!(listed.contains("gone  \"Gone for good\""), "{listed}");
    assert!(!listed.contains("environment gone"), "{listed}");

    // The environment disappears without envmod (a scratch purge).
    std::fs::remove_dir_all(&prefix).unwrap();
    let listed = ok(&t.run(&["kernel", "list"]));
    assert!(
        listed.contains("environment gone: envmod kernel remove --name gone"),
        "{listed}"
    );
    ok(&t.run(&["kernel", "remove", "--name", "gone"]));
    assert!(!dir.exists(), "the orphaned kernel is still there");
    let listed = ok(&t.run(&["kernel", "list"]));
    assert!(!listed.contains("gone"), "{listed}");
}

#[test]
fn create_kernel_refuses_without_ipykernel_and_builds_nothing() {
    let t = TestEnv::with_channel();
    let out = t.run(&["create", "-n", "nokernel", "alpha", "--kernel"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ipykernel"), "{}", stderr(&out));
    assert!(!t.envs_dir().join("nokernel").exists());
}
