//! `variables:` of an environment.yml are bytes. Nothing a file's author writes there may
//! run, at `create -f` or at any later command, and every shell, module system and the
//! Jupyter kernel sees exactly the bytes the file holds. Names that steer envmod's own
//! activation bookkeeping are refused; names that make shells run code are named in a
//! warning.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::common::{self, Ms, TestEnv, channel, ok, sh, stderr};

/// A directory every planted command would write into: it must stay empty.
fn planted_dir(t: &TestEnv) -> PathBuf {
    let dir = t.path().join("planted");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn nothing_ran(planted: &Path, when: &str) {
    let found: Vec<_> = std::fs::read_dir(planted)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        found.is_empty(),
        "{when}: a command planted in a variable ran and wrote {found:?}"
    );
}

/// Values that bash, dash, zsh, fish, Lua and Tcl would each act on if they evaluated them.
fn hostile(planted: &Path) -> Vec<(String, String)> {
    let m = planted.join("m").display().to_string();
    [
        (
            "V_DOLLAR",
            "costs $5 in $HOME, pid $$, ${USER:-x} $0".to_string(),
        ),
        ("V_SUBST", format!("$(touch {m}-subst)")),
        ("V_BACKQUOTE", format!("`touch {m}-backquote`")),
        ("V_QUOTES", r#"it's "quoted" '' "" \'"#.to_string()),
        (
            "V_BACKSLASH",
            r"back\slash \n \\ \$HOME \t \x41 \0".to_string(),
        ),
        ("V_PERCENT", "100% %s %d %% %n %1$s".to_string()),
        ("V_LUA", format!("]] os.execute('touch {m}-lua') [[ ]=] \\")),
        ("V_TCL", format!("}} [exec touch {m}-tcl] {{ $env(HOME) \\")),
        ("V_BRACKETS", format!("[exec touch {m}-brackets]")),
        ("V_FISH", format!("(touch {m}-fish) $PATH \\' ' \"")),
        ("V_SEMI", format!("a; touch {m}-semi & | > {m}-redirect")),
        ("V_GLOB", "* ? [a-z] ~ ~root {a,b}".to_string()),
        ("V_UNICODE", "ä ß € 😀 日本語 ﷽".to_string()),
        ("V_SPACES", "  leading and trailing  ".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// An environment.yml with `vars`, every value double-quoted (JSON escapes are YAML's).
fn env_file(t: &TestEnv, name: &str, vars: &[(String, String)]) -> PathBuf {
    let mut text = format!("name: {name}\ndependencies:\n  - alpha\nvariables:\n");
    for (k, v) in vars {
        text.push_str(&format!("  {k}: {}\n", serde_json::to_string(v).unwrap()));
    }
    let path = t.path().join(format!("{name}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `NAME=value` records of `env -0`, as bytes.
fn parse_env0(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|rec| {
            let eq = rec.iter().position(|b| *b == b'=')?;
            Some((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                rec[eq + 1..].to_vec(),
            ))
        })
        .collect()
}

/// Everything after the last `===ENV===` line of a shell's stdout.
fn env_after_marker(out: &Output) -> BTreeMap<String, Vec<u8>> {
    let marker = b"===ENV===\n";
    let at = out
        .stdout
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap_or_else(|| {
            panic!(
                "no environment dump in the output\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    parse_env0(&out.stdout[at + marker.len()..])
}

#[track_caller]
fn assert_values(seen: &BTreeMap<String, Vec<u8>>, vars: &[(String, String)], who: &str) {
    for (k, v) in vars {
        match seen.get(k) {
            Some(got) => assert_eq!(
                String::from_utf8_lossy(got),
                *v,
                "{who}: {k} is not the file's bytes"
            ),
            None => panic!("{who}: {k} is not set; the environment is {seen:?}"),
        }
    }
}

/// The shell, or a failure that says how to install it.
fn shell_path(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: run `bash tests/provision.sh` as root (apt-get install {name})"
    );
}

/// Run `script` with `shell` in a clean environment with no module system; `$ENVMOD` is the
/// binary under test.
fn run_shell(t: &TestEnv, shell: &str, script: &str) -> Output {
    let mut cmd = Command::new("env");
    cmd.arg("-i");
    for (k, v) in t.vars() {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "USER=envmodtest"]);
    cmd.arg(format!(
        "ENVMOD={}",
        assert_cmd::cargo::cargo_bin("envmod").display()
    ));
    cmd.arg(shell_path(shell));
    match shell {
        "bash" => {
            cmd.args(["--norc", "--noprofile"]);
        }
        "zsh" => {
            cmd.arg("-f");
        }
        "fish" => {
            cmd.arg("--no-config");
        }
        _ => {}
    }
    cmd.arg("-c").arg(script).current_dir(t.path());
    cmd.output().expect("the shell runs")
}

const DUMP: &str = "echo '===ENV==='; /usr/bin/env -0";

#[test]
fn variables_are_bytes_in_every_shell_module_system_and_export() {
    let t = TestEnv::with_channel();
    let planted = planted_dir(&t);
    let vars = hostile(&planted);
    let file = env_file(&t, "bytes", &vars);
    let out = t.run(&[
        "create",
        "-f",
        file.to_str().unwrap(),
        "--module-system",
        "lmod",
    ]);
    ok(&out);
    nothing_ran(&planted, "create -f");
    let prefix = t.envs_dir().join("bytes");

    // conda's own record of the variables holds the file's bytes.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prefix.join("conda-meta/state")).unwrap())
            .unwrap();
    for (k, v) in &vars {
        assert_eq!(state["env_vars"][k], *v, "conda-meta/state: {k}");
    }

    // bin/activate in the POSIX shells, shell-hook in each shell's own dialect.
    let activate = sh(&prefix.join("bin/activate").display().to_string());
    for shell in ["bash", "dash", "zsh"] {
        let out = run_shell(&t, shell, &format!(". {activate}\n{DUMP}"));
        assert_values(
            &env_after_marker(&out),
            &vars,
            &format!("{shell}: bin/activate"),
        );
        let dialect = if shell == "dash" { "sh" } else { shell };
        let out = run_shell(
            &t,
            shell,
            &format!("eval \"$(\"$ENVMOD\" shell-hook -n bytes --shell {dialect})\"\n{DUMP}"),
        );
        assert_values(
            &env_after_marker(&out),
            &vars,
            &format!("{shell}: shell-hook"),
        );
        nothing_ran(&planted, shell);
    }
    let out = run_shell(
        &t,
        "fish",
        &format!("$ENVMOD shell-hook -n bytes --shell fish | source\n{DUMP}"),
    );
    assert_values(&env_after_marker(&out), &vars, "fish: shell-hook");
    nothing_ran(&planted, "fish");

    // Real Lmod reads the Lua modulefile; `envmod module` rewrites it as Tcl for Modules.
    let root = sh(&t.module_root().display().to_string());
    let load = format!("module use {root}\nmodule load bytes/py3.11 || exit 9\n{DUMP}");
    // In a C locale (a batch job's) and a UTF-8 one.
    let locales: [&[(&str, &str)]; 2] = [&[], &[("LANG", "C.UTF-8")]];
    for locale in locales {
        let out = t.module_shell_with(Ms::Lmod, &load, locale);
        assert_values(&env_after_marker(&out), &vars, &format!("Lmod {locale:?}"));
        nothing_ran(&planted, "Lmod");
    }
    ok(&t.run(&["module", "-n", "bytes", "--module-system", "tcl"]));
    nothing_ran(&planted, "envmod module");
    for locale in locales {
        let out = t.module_shell_with(Ms::Tcl, &load, locale);
        let who = format!("Environment Modules {locale:?}");
        assert_values(&env_after_marker(&out), &vars, &who);
        nothing_ran(&planted, "Environment Modules");
    }

    // export gives the bytes back, as conda's YAML reader (PyYAML) reads them...
    let exported = t.path().join("exported.yml");
    ok(&t.run(&["export", "-n", "bytes", "-o", exported.to_str().unwrap()]));
    nothing_ran(&planted, "export");
    let read_back = common::peer(
        "import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1]))['variables']))",
        &[exported.to_str().unwrap()],
    );
    let read_back: BTreeMap<String, String> = serde_json::from_str(read_back.trim()).unwrap();
    for (k, v) in &vars {
        assert_eq!(read_back.get(k), Some(v), "export, read by PyYAML: {k}");
    }
    // ...and as envmod reads them: the rebuilt environment holds the same bytes.
    ok(&t.run(&["create", "-n", "again", "-f", exported.to_str().unwrap()]));
    nothing_ran(&planted, "create -f of the export");
    let out = run_shell(
        &t,
        "bash",
        &format!(
            ". {}\n{DUMP}",
            sh(&t
                .envs_dir()
                .join("again/bin/activate")
                .display()
                .to_string())
        ),
    );
    assert_values(&env_after_marker(&out), &vars, "the rebuilt environment");
}

/// Start kernel `name` from `kernels_dir` with jupyter_client and print, as JSON, what the
/// kernel's process sees of the variables named on the command line.
const KERNEL_ENV: &str = r#"
import json, sys
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
kernels_dir, name, names = sys.argv[1], sys.argv[2], sys.argv[3:]
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
    code = "import json, os; print(json.dumps({n: os.environ.get(n) for n in %r}))" % (names,)
    kc.execute_interactive(code, timeout=60, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("CELL:", "".join(out).strip())
"#;

#[test]
fn the_kernel_sees_the_bytes_of_the_file() {
    let t = TestEnv::with_channel();
    let planted = planted_dir(&t);
    let vars = hostile(&planted);
    let file = env_file(&t, "kbytes", &vars);
    ok(&t.run(&["create", "-f", file.to_str().unwrap()]));
    let prefix = t.envs_dir().join("kbytes");
    let pip = Command::new(prefix.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-input",
            "--no-index",
            "--find-links",
        ])
        .arg(common::wheelhouse())
        .arg("ipykernel")
        .output()
        .unwrap();
    ok(&pip);
    let jup = t.path().join("jupyter");
    ok(&t.run(&[
        "kernel",
        "add",
        "-n",
        "kbytes",
        "--prefix",
        jup.to_str().unwrap(),
    ]));
    let kernels = jup.join("share/jupyter/kernels");
    let mut cmd = Command::new(common::peers_python());
    cmd.arg("-c")
        .arg(KERNEL_ENV)
        .arg(&kernels)
        .arg("kbytes")
        .args(vars.iter().map(|(k, _)| k))
        .env_clear()
        .envs(t.vars())
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8");
    let text = ok(&cmd.output().unwrap());
    let cell = text
        .lines()
        .find_map(|l| l.strip_prefix("CELL: "))
        .unwrap_or_else(|| panic!("no cell output in:\n{text}"));
    let seen: BTreeMap<String, Option<String>> = serde_json::from_str(cell)
        .unwrap_or_else(|e| panic!("the cell did not print the variables ({e}): {cell}"));
    for (k, v) in &vars {
        assert_eq!(seen[k].as_deref(), Some(v.as_str()), "the kernel: {k}");
    }
    nothing_ran(&planted, "the kernel");
}

/// Source bin/activate, deactivate, and print PATH: envmod's bookkeeping must restore it.
fn path_after_deactivate(t: &TestEnv, prefix: &Path) -> String {
    let out = run_shell(
        t,
        "bash",
        &format!(
            ". {}\ndeactivate\necho \"PATH=$PATH\"",
            sh(&prefix.join("bin/activate").display().to_string())
        ),
    );
    ok(&out)
        .lines()
        .find_map(|l| l.strip_prefix("PATH="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn names_that_steer_the_activation_are_refused_and_risky_ones_named() {
    let t = TestEnv::with_channel();
    // In a file: refused with its line, and nothing is created.
    for name in ["_ENVMOD_OLD_PATH", "_envmod_old_PATH", "_ENVMOD_SET_PATH"] {
        let path = t.path().join("steer.yml");
        std::fs::write(
            &path,
            format!("name: steer\ndependencies:\n  - alpha\nvariables:\n  OK_ONE: \"1\"\n  {name}: /tmp/evil\n"),
        )
        .unwrap();
        let out = t.run(&["create", "-f", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name} was accepted: {err}");
        assert!(err.contains("steer.yml, line 6"), "{err}");
        assert!(err.contains(name), "{err}");
        assert!(
            !t.envs_dir().join("steer").exists(),
            "{name}: an env was left"
        );
    }

    // Variables that make shells or programs run code are accepted, and named.
    let risky = t.path().join("risky.yml");
    std::fs::write(
        &risky,
        "name: risky\ndependencies:\n  - alpha\nvariables:\n  PROMPT_COMMAND: \"echo hi\"\n  LD_PRELOAD: /tmp/x.so\n  PYTHONSTARTUP: /tmp/start.py\n  CALM: \"1\"\n",
    )
    .unwrap();
    let out = t.run(&["create", "-f", risky.to_str().unwrap()]);
    ok(&out);
    let err = stderr(&out);
    for name in ["PROMPT_COMMAND", "LD_PRELOAD", "PYTHONSTARTUP"] {
        assert!(err.contains(name), "no warning names {name}: {err}");
    }
    assert!(!err.contains("CALM"), "{err}");
    // install -f reads a file the same way: the steering name is refused with its line.
    let steer = t.path().join("steer.yml");
    let out = t.run(&["install", "-n", "risky", "-f", steer.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "install -f accepted it: {err}");
    assert!(err.contains("steer.yml, line 6"), "{err}");

    // In an environment's state (conda env config vars, or a group member's edit): left
    // out, by name, and deactivate restores PATH.
    let prefix = t.envs_dir().join("risky");
    let before = path_after_deactivate(&t, &prefix);
    assert_eq!(before, "/usr/bin:/bin");
    std::fs::write(
        prefix.join("conda-meta/state"),
        r#"{"env_vars": {"_ENVMOD_OLD_PATH": "/tmp/evil", "_ENVMOD_SET_PATH": "1", "BAD-NAME": "x", "FINE": "yes"}}"#,
    )
    .unwrap();
    let out = t.run(&["module", "-n", "risky", "--module-system", "lmod"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("_ENVMOD_OLD_PATH"), "{err}");
    assert!(err.contains("BAD-NAME"), "{err}");
    assert_eq!(path_after_deactivate(&t, &prefix), "/usr/bin:/bin");
    let hook = ok(&t.run(&["shell-hook", "-n", "risky"]));
    assert!(!hook.contains("/tmp/evil"), "{hook}");
    assert!(hook.contains("export FINE="), "{hook}");

    // Set by a package's activate.d script: left out the same way.
    let chan = t.path().join("chan2");
    let mut pkgs = channel::standard_packages();
    pkgs.push(channel::noarch_python("steerer", "1.0", &[]).with_file(
        "etc/conda/activate.d/steerer.sh",
        "export _ENVMOD_OLD_PATH=/tmp/evil\nexport _ENVMOD_SET_PATH=1\nexport STEERER=on\n",
    ));
    channel::write_channel(&chan, &pkgs);
    let out = t.run(&[
        "create",
        "-n",
        "steered",
        "-c",
        chan.to_str().unwrap(),
        "steerer",
    ]);
    ok(&out);
    assert!(
        stderr(&out).contains("_ENVMOD_OLD_PATH"),
        "{}",
        stderr(&out)
    );
    let prefix = t.envs_dir().join("steered");
    assert_eq!(path_after_deactivate(&t, &prefix), "/usr/bin:/bin");
    let hook = ok(&t.run(&["shell-hook", "-n", "steered"]));
    assert!(hook.contains("export STEERER=on"), "{hook}");
}

/// What the scripts set is recorded when the packages change; a change killed before its
/// outputs has the next command run them, and a manifest without the record runs none.
#[test]
fn the_record_of_what_scripts_set_follows_the_packages() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "rec", "alpha"]));
    let out = t
        .envmod()
        .args(["install", "-n", "rec", "gamma"])
        .env("ENVMOD_TEST_KILL_AT", "change:exchanged")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the kill point was not reached");
    // A reader leaves the unfinished change to the next writer, which runs the scripts of
    // the new tree: libfoo, which gamma brings, has one setting FOO_ACTIVATED.
    let hook = ok(&t.run(&["shell-hook", "-n", "rec"]));
    assert!(!hook.contains("FOO_ACTIVATED"), "{hook}");
    let out = t.run(&["module", "-n", "rec", "--module-system", "lmod"]);
    assert!(
        stderr(&out).contains("finishing the modulefile"),
        "{}",
        stderr(&out)
    );
    ok(&out);
    let hook = ok(&t.run(&["shell-hook", "-n", "rec"]));
    assert!(hook.contains("export FOO_ACTIVATED=yes"), "{hook}");
    let manifest_path = t.envs_dir().join("rec/.envmod/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["activation"]["FOO_ACTIVATED"], "yes", "{manifest}");

    // A manifest an older envmod wrote: nothing is run, and the warning says so.
    manifest.as_object_mut().unwrap().remove("activation");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let out = t.run(&["module", "-n", "rec", "--module-system", "lmod"]);
    ok(&out);
    assert!(stderr(&out).contains("did not record"), "{}", stderr(&out));
    let hook = ok(&t.run(&["shell-hook", "-n", "rec"]));
    assert!(!hook.contains("FOO_ACTIVATED"), "{hook}");
}
