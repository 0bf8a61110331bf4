//! The environment a shell has loaded, as the default of `export`, `shell-hook` and
//! `kernel add`, in real Lmod and Environment Modules shells; and `create --kernel`, which
//! adds ipykernel from a channel that has it (a real one, started by jupyter_client).

use crate::common;

use std::path::{Path, PathBuf};

use common::{Ms, TestEnv, channel, ok, sh, stderr, stdout};

/// A world whose channel has `alpha` and a stand-in `ipykernel` (its `__init__.py` is what
/// `kernel add` looks for; nothing here starts it).
/// A world whose channel also has ipykernel, which `create --kernel` adds.
fn world() -> TestEnv {
    TestEnv::with_channel_of(vec![channel::noarch_python("ipykernel", "6.0", &[])])
}

fn load(t: &TestEnv, env: &str, script: &str) -> String {
    format!(
        "module use {}\nmodule load {env}/py3.11 || exit 97\n{script}",
        sh(&t.module_root().display().to_string())
    )
}

#[test]
fn export_shell_hook_and_kernel_add_act_on_the_loaded_env() {
    let t = world();
    // A Tcl modulefile, which Lmod reads too.
    ok(&t.run(&[
        "create",
        "-n",
        "lenv",
        "--module-system",
        "tcl",
        "alpha",
        "ipykernel",
    ]));
    let prefix = t.envs_dir().join("lenv");
    for ms in Ms::BOTH {
        let out = t.module_shell(ms, &load(&t, "lenv", "envmod export"));
        let yml = ok(&out);
        assert!(yml.contains("name: lenv"), "{ms:?}: {yml}");
        assert!(yml.contains("- alpha"), "{ms:?}: {yml}");
        let err = stderr(&out);
        let picked: Vec<&str> = err.lines().filter(|l| l.contains("loaded")).collect();
        assert_eq!(picked.len(), 1, "{ms:?}: one line names the env: {err}");
        assert!(
            picked[0].contains("lenv") && picked[0].contains(&prefix.display().to_string()),
            "{ms:?}: {err}"
        );

        let out = t.module_shell(ms, &load(&t, "lenv", "envmod shell-hook"));
        let hook = ok(&out);
        assert!(
            hook.contains(&prefix.join("bin").display().to_string()),
            "{ms:?}: {hook}"
        );
        assert!(stderr(&out).contains("lenv"), "{ms:?}: {}", stderr(&out));
    }

    let out = t.module_shell(Ms::Lmod, &load(&t, "lenv", "envmod kernel add"));
    ok(&out);
    let spec = t.home.join(".local/share/jupyter/kernels/lenv/kernel.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    assert_eq!(
        spec["metadata"]["envmod"]["prefix"],
        prefix.display().to_string()
    );
    // -n still wins over what is loaded.
    ok(&t.run(&["create", "-n", "other", "alpha"]));
    let yml = ok(&t.module_shell(Ms::Tcl, &load(&t, "lenv", "envmod export -n other")));
    assert!(yml.contains("name: other"), "{yml}");
}

#[test]
fn an_env_given_by_prefix_is_found_loaded_by_its_prefix() {
    let t = world();
    let prefix = t.path().join("proj/penv");
    std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
    ok(&t.run(&[
        "create",
        "-p",
        prefix.to_str().unwrap(),
        "--module-system",
        "tcl",
        "alpha",
    ]));
    let yml = ok(&t.module_shell(Ms::Lmod, &load(&t, "penv", "envmod export")));
    assert!(yml.contains("name: penv"), "{yml}");
}

#[test]
fn with_nothing_loaded_the_usage_error_names_both_fixes() {
    let t = world();
    for args in [&["export"][..], &["shell-hook"][..], &["kernel", "add"][..]] {
        let out = t.module_shell(
            Ms::Lmod,
            &format!(
                "unset CONDA_PREFIX\nenvmod {}",
                args.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" ")
            ),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("-n NAME"), "{args:?}: {err}");
        assert!(err.contains("module load"), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn a_plain_conda_env_in_conda_prefix_is_not_taken_for_envmod_s() {
    let t = world();
    // What `conda activate` leaves: a conda prefix with conda-meta/, but no envmod manifest.
    let conda_env = t.path().join("miniconda/envs/plain");
    std::fs::create_dir_all(conda_env.join("conda-meta")).unwrap();
    std::fs::write(conda_env.join("conda-meta/history"), "").unwrap();
    for args in [&["export"][..], &["shell-hook"][..], &["kernel", "add"][..]] {
        let out = t.module_shell_with(
            Ms::Tcl,
            &format!(
                "envmod {}",
                args.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" ")
            ),
            &[("CONDA_PREFIX", conda_env.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&conda_env.display().to_string()) && err.contains("not created by envmod"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("-n NAME") && err.contains("module load"),
            "{args:?}: {err}"
        );
    }
}

fn uid_of(user: &str) -> u32 {
    common::require_account(user);
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    ok(&out).trim().parse().unwrap()
}

#[test]
fn a_loaded_prefix_reached_through_a_link_someone_else_made_is_not_followed() {
    let t = world();
    ok(&t.run(&["create", "-n", "lenv", "alpha"]));
    // A link to the env itself, and a directory link that another user made on the way.
    let direct = t.path().join("direct");
    std::os::unix::fs::symlink(t.envs_dir().join("lenv"), &direct).unwrap();
    let theirs = t.path().join("theirs");
    std::os::unix::fs::symlink(t.envs_dir(), &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(uid_of("envmod-other")), None).unwrap();
    for (cp, says) in [
        (direct.clone(), "symbolic link"),
        (theirs.join("lenv"), "envmod-other"),
    ] {
        let out = t.module_shell_with(
            Ms::Lmod,
            "envmod export",
            &[("CONDA_PREFIX", cp.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(2), "{cp:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{cp:?}: {err}");
        assert!(err.contains("-n NAME"), "{cp:?}: {err}");
        assert!(stdout(&out).is_empty(), "{cp:?}");
    }
    // A manifest directory that is a link into someone else's tree is not envmod's either.
    let fake = t.path().join("fake/lenv");
    std::fs::create_dir_all(&fake).unwrap();
    std::os::unix::fs::symlink(t.envs_dir().join("lenv/.envmod"), fake.join(".envmod")).unwrap();
    let out = t.module_shell_with(
        Ms::Lmod,
        "envmod export",
        &[("CONDA_PREFIX", fake.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

/// Every wheel of the wheelhouse (ipykernel and what it needs, from PyPI) as a linux-64
/// conda package for Python 3.11, as conda-forge lays them out; `ipykernel` depends on the
/// others. Built once per test process.
fn add_real_ipykernel(dir: &Path) {
    let wheels: Vec<PathBuf> = std::fs::read_dir(common::wheelhouse())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    let name = |w: &Path| {
        let n = w.file_name().unwrap().to_str().unwrap();
        n.split('-')
            .next()
            .unwrap()
            .to_lowercase()
            .replace('_', "-")
    };
    let others: Vec<String> = wheels
        .iter()
        .map(|w| name(w))
        .filter(|n| n != "ipykernel")
        .collect();
    let mut pkgs = vec![channel::noarch_python("alpha", "2.0", &[])];
    for w in &wheels {
        let mut depends = vec!["python 3.11.*".to_string()];
        if name(w) == "ipykernel" {
            depends.extend(others.iter().cloned());
        }
        let depends: Vec<&str> = depends.iter().map(String::as_str).collect();
        pkgs.push(channel::from_wheel(w, "3.11", "py311h0_0", &depends));
    }
    channel::write_channel(dir, &pkgs);
}

const RUN_CELL: &str = r#"
import sys
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
kernels_dir, name = sys.argv[1], sys.argv[2]
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
    kc.execute_interactive(
        "import alpha, ipykernel, os; print(alpha.VERSION, os.path.dirname(ipykernel.__file__).startswith(os.environ['VIRTUAL_ENV']))",
        timeout=60, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("CELL:", "".join(out).strip())
"#;

#[test]
fn create_kernel_adds_ipykernel_from_a_channel_that_has_it() {
    let t = TestEnv::new();
    let dir = t.path().join("channel");
    add_real_ipykernel(&dir);
    t.set_site_config(&format!("channels: [{}]\n", dir.display()));
    // Compiling IPython's thousand modules is not what this test is about.
    let out = t.run(&["create", "-n", "kern", "alpha", "--kernel", "--no-compile"]);
    ok(&out);
    assert!(
        stderr(&out).contains("adding ipykernel"),
        "{}",
        stderr(&out)
    );
    let prefix = t.envs_dir().join("kern");
    assert!(
        prefix
            .join("lib/python3.11/site-packages/ipykernel/__init__.py")
            .is_file()
    );
    let kernels = t.home.join(".local/share/jupyter/kernels");
    assert!(kernels.join("kern/kernel.json").is_file());
    let script = format!(
        "{} -c {} {} kern",
        sh(&common::peers_python().display().to_string()),
        sh(RUN_CELL),
        sh(&kernels.display().to_string()),
    );
    let text = ok(&t.module_shell(Ms::Lmod, &script));
    let cell = text.lines().find(|l| l.starts_with("CELL: ")).unwrap_or("");
    assert_eq!(cell, "CELL: 2.0 True", "{text}");
    // It is a requested package now: an export asks for it.
    let yml = ok(&t.run(&["export", "-n", "kern"]));
    assert!(yml.contains("- ipykernel"), "{yml}");
}

#[test]
fn create_kernel_names_the_channel_to_add_when_none_has_ipykernel() {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("channel"));
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    for shared in [false, true] {
        let mut args = vec!["create", "-n", "nok", "alpha", "--kernel"];
        if shared {
            args.push("--shared");
        }
        let out = t.run(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("ipykernel") && err.contains(&chan.display().to_string()),
            "shared {shared}: {err}"
        );
        assert!(err.contains("-c "), "shared {shared}: {err}");
        assert_eq!(
            err.contains("pip install"),
            !shared,
            "shared {shared}: {err}"
        );
        assert!(!t.envs_dir().join("nok").exists());
    }
}

#[test]
fn kernel_add_on_a_shared_env_never_hints_at_a_private_pip_install() {
    let t = TestEnv::new();
    let chan = channel::standard_channel(&t.path().join("channel"));
    t.set_site_config(&format!("channels: [{}]\n", chan.display()));
    ok(&t.run(&["create", "-n", "course", "alpha", "--shared"]));
    let out = t.run(&["kernel", "add", "-n", "course"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("envmod install -n course ipykernel"), "{err}");
    assert!(!err.contains("pip install"), "{err}");
}
