//! `<prefix>/bin/activate` and `envmod shell-hook`: sourced by real bash, zsh, dash and
//! fish, with and without real Lmod and Environment Modules; `deactivate` must leave the
//! shell exactly as it was.

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{DUMP_ENV, Ms, TestEnv, ok, sh, stderr};

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

/// Run `script` with `shell` in a clean environment (no module system), from `/`.
fn run_in(t: &TestEnv, shell: &str, script: &str, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("env");
    cmd.arg("-i");
    for (k, v) in t.vars() {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]);
    for (k, v) in extra {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(shell_path(shell));
    if shell == "bash" {
        cmd.args(["--norc", "--noprofile"]);
    }
    if shell == "zsh" {
        cmd.arg("-f");
    }
    cmd.arg("-c").arg(script).current_dir("/");
    cmd.output().expect("the shell runs")
}

/// How a shell lists its functions, to check that `deactivate` removes its own.
fn list_functions(shell: &str) -> &'static str {
    match shell {
        "bash" => "declare -f",
        "zsh" => "functions",
        // dash cannot list functions; `type` of the script's names is checked instead.
        _ => {
            "for f in deactivate _envmod_save _envmod_restore _envmod_has_module; do type $f 2>/dev/null || :; done"
        }
    }
}

fn activate(prefix: &Path) -> String {
    sh(&prefix.join("bin/activate").display().to_string())
}

/// Source, source again, use, deactivate: the environment and the functions before and after
/// must be the same.
fn round_trip_script(shell: &str, prefix: &Path) -> String {
    let bin = prefix.join("bin").display().to_string();
    format!(
        r#"set -eu
{DUMP_ENV} > /tmp/envmod-act-$$.before
{funcs} > /tmp/envmod-act-$$.fbefore
. {act}
. {act}
python -c 'import alpha, gamma; print("imported", alpha.VERSION)'
echo "foo=$FOO_ACTIVATED venv=$VIRTUAL_ENV nousersite=$PYTHONNOUSERSITE"
echo "first=${{PATH%%:*}}"
echo "ps1=$PS1"
case ":$PATH:" in *:{bin}:*:{bin}:*) echo stacked ;; esac
deactivate
{DUMP_ENV} > /tmp/envmod-act-$$.after
{funcs} > /tmp/envmod-act-$$.fafter
if diff /tmp/envmod-act-$$.before /tmp/envmod-act-$$.after && diff /tmp/envmod-act-$$.fbefore /tmp/envmod-act-$$.fafter; then echo CLEAN; fi
rm -f /tmp/envmod-act-$$.*
"#,
        funcs = list_functions(shell),
        act = activate(prefix),
        bin = sh(&bin),
    )
}

fn check_round_trip(text: &str, prefix: &Path, name: &str) {
    let bin = prefix.join("bin").display().to_string();
    assert!(text.contains("imported 2.0"), "{text}");
    assert!(
        text.contains(&format!("foo=yes venv={} nousersite=1", prefix.display())),
        "{text}"
    );
    assert!(text.contains(&format!("first={bin}\n")), "{text}");
    assert!(text.contains(&format!("ps1=({name}) ")), "{text}");
    assert!(!text.contains("stacked"), "{text}");
    assert!(text.trim_end().ends_with("CLEAN"), "{text}");
}

#[test]
fn bash_zsh_and_dash_source_it_and_deactivate_restores_everything() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "act", "alpha", "gamma"]));
    let prefix = t.envs_dir().join("act");
    for shell in ["bash", "zsh", "dash"] {
        let out = run_in(&t, shell, &round_trip_script(shell, &prefix), &[]);
        check_round_trip(&ok(&out), &prefix, "act");
    }
    // The same script, printed for eval.
    let script = "set -eu\nbefore=$(env | sort)\neval \"$(envmod shell-hook -n act)\"\necho \"venv=$VIRTUAL_ENV\"\ndeactivate\n[ \"$before\" = \"$(env | sort)\" ] && echo CLEAN";
    let bin = assert_cmd::cargo::cargo_bin("envmod");
    let script = format!(
        "envmod() {{ {} \"$@\"; }}\n{script}",
        sh(&bin.display().to_string())
    );
    let text = ok(&run_in(&t, "bash", &script, &[]));
    assert!(
        text.contains(&format!("venv={}", prefix.display())),
        "{text}"
    );
    assert!(text.ends_with("CLEAN\n"), "{text}");
}

#[test]
fn unset_and_empty_stay_different_and_the_prompt_can_be_left_alone() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "vars", "libfoo"]));
    let prefix = t.envs_dir().join("vars");
    let script = format!(
        r#"set -eu
export CONDA_PREFIX=
unset VIRTUAL_ENV
PS1='$ '
. {act}
echo "ps1=$PS1"
deactivate
echo "conda_prefix=[${{CONDA_PREFIX-unset}}] venv=[${{VIRTUAL_ENV-unset}}] foo_home=[${{FOO_HOME-unset}}] ps1=[$PS1]""#,
        act = activate(&prefix)
    );
    let text = ok(&run_in(
        &t,
        "bash",
        &script,
        &[("VIRTUAL_ENV_DISABLE_PROMPT", "1")],
    ));
    assert!(text.contains("ps1=$ \n"), "the prompt changed: {text}");
    assert!(
        text.contains("conda_prefix=[] venv=[unset] foo_home=[unset] ps1=[$ ]"),
        "{text}"
    );
}

#[test]
fn a_second_environment_replaces_the_first_and_odd_prefixes_work() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "first", "alpha"]));
    let odd = t.path().join("it's a \"dir\" with spaces/second");
    ok(&t.run(&["create", "-p", odd.to_str().unwrap(), "alpha"]));
    let first = t.envs_dir().join("first");
    let script = format!(
        r#"set -eu
before=$PATH
. {a}
. {b}
echo "venv=$VIRTUAL_ENV"
case ":$PATH:" in *:{fbin}:*) echo "first still on PATH" ;; esac
echo "first=${{PATH%%:*}}"
deactivate
[ "$PATH" = "$before" ] && echo PATH-SAME
[ -z "${{VIRTUAL_ENV+x}}" ] && echo VENV-UNSET
"#,
        a = activate(&first),
        b = activate(&odd),
        fbin = sh(&first.join("bin").display().to_string()),
    );
    for shell in ["bash", "zsh", "dash"] {
        let text = ok(&run_in(&t, shell, &script, &[]));
        assert!(
            text.contains(&format!("venv={}\n", odd.display())),
            "{shell}: {text}"
        );
        assert!(!text.contains("first still on PATH"), "{shell}: {text}");
        assert!(
            text.contains(&format!("first={}\n", odd.join("bin").display())),
            "{shell}: {text}"
        );
        assert!(text.contains("PATH-SAME\nVENV-UNSET"), "{shell}: {text}");
    }
}

#[test]
fn the_recorded_modules_are_loaded_and_unloaded_with_lmod_and_environment_modules() {
    for ms in Ms::BOTH {
        let t = TestEnv::with_channel();
        ok(&t.module_shell(ms, "module load gcc/12.2\nenvmod create -n mods alpha"));
        let prefix = t.envs_dir().join("mods");
        // openmpi was loaded before and stays; gcc comes with the environment and goes.
        let script = format!(
            r#"set -eu
module load openmpi/4.1
before=$PATH
. {act}
echo "active: $LOADEDMODULES gcc=${{FAKE_GCC_VERSION:-}}"
python -c 'import alpha; print("imported", alpha.VERSION)'
deactivate
echo "after: $LOADEDMODULES gcc=${{FAKE_GCC_VERSION:-none}}"
[ "$PATH" = "$before" ] && echo PATH-SAME
"#,
            act = activate(&prefix)
        );
        let text = ok(&t.module_shell(ms, &script));
        let active = text.lines().find(|l| l.starts_with("active: ")).unwrap();
        assert!(
            active.contains("openmpi/4.1") && active.contains("gcc/12.2"),
            "{text}"
        );
        assert!(active.ends_with("gcc=12.2"), "{text}");
        assert!(text.contains("imported 2.0"), "{text}");
        let after = text.lines().find(|l| l.starts_with("after: ")).unwrap();
        assert_eq!(after, "after: openmpi/4.1 gcc=none", "{text}");
        assert!(text.contains("PATH-SAME"), "{text}");

        // A module the user loaded before stays loaded after deactivate.
        let script = format!(
            "module load gcc/12.2\n. {act}\ndeactivate\necho \"after: $LOADEDMODULES\"",
            act = activate(&prefix)
        );
        let text = ok(&t.module_shell(ms, &script));
        assert!(text.contains("after: gcc/12.2"), "{text}");

        // Another gcc loaded: refused with the module swap, and nothing changed.
        let script = format!(
            "module load gcc/13.1\nif . {act}; then echo ACTIVATED; fi\necho \"venv=${{VIRTUAL_ENV:-unset}} $LOADEDMODULES\"\ntype deactivate >/dev/null 2>&1 || echo NO-DEACTIVATE",
            act = activate(&prefix)
        );
        let out = t.module_shell(ms, &script);
        let text = ok(&out);
        assert!(!text.contains("ACTIVATED"), "{text}");
        assert!(text.contains("venv=unset gcc/13.1"), "{text}");
        assert!(text.contains("NO-DEACTIVATE"), "{text}");
        assert!(
            stderr(&out).contains("module swap gcc gcc/12.2"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn without_a_module_system_one_warning_names_the_modules_and_it_still_works() {
    let t = TestEnv::with_channel();
    ok(&t.module_shell(
        Ms::Lmod,
        "module load gcc/12.2 openmpi/4.1\nenvmod create -n lap alpha gamma",
    ));
    let prefix = t.envs_dir().join("lap");
    let out = run_in(&t, "bash", &round_trip_script("bash", &prefix), &[]);
    let text = ok(&out);
    assert!(text.contains("imported 2.0"), "{text}");
    assert!(text.trim_end().ends_with("CLEAN"), "{text}");
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().collect();
    // Sourced twice: one line each time.
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("no module system") && warnings[0].contains("gcc/12.2 openmpi/4.1"),
        "{err}"
    );
}

#[test]
fn fish_gets_its_own_form_and_deactivate_restores_it() {
    let t = TestEnv::with_channel();
    ok(&t.run(&["create", "-n", "fsh", "alpha", "gamma"]));
    let prefix = t.envs_dir().join("fsh");
    let bin = assert_cmd::cargo::cargo_bin("envmod");
    let script = format!(
        r#"env | sort > /tmp/envmod-fish-before-$fish_pid
{envmod} shell-hook -n fsh --shell fish | source
python -c 'import alpha; print("imported", alpha.VERSION)'
echo "foo=$FOO_ACTIVATED first=$PATH[1]"
deactivate
env | sort > /tmp/envmod-fish-after-$fish_pid
if diff /tmp/envmod-fish-before-$fish_pid /tmp/envmod-fish-after-$fish_pid; and not functions -q deactivate
    echo CLEAN
end
rm -f /tmp/envmod-fish-before-$fish_pid /tmp/envmod-fish-after-$fish_pid
"#,
        envmod = sh(&bin.display().to_string())
    );
    let text = ok(&run_in(&t, "fish", &script, &[]));
    assert!(text.contains("imported 2.0"), "{text}");
    assert!(
        text.contains(&format!("foo=yes first={}", prefix.join("bin").display())),
        "{text}"
    );
    assert!(text.trim_end().ends_with("CLEAN"), "{text}");
}

#[test]
fn create_without_a_module_system_prints_the_activate_line() {
    let t = TestEnv::with_channel();
    let out = t.run(&["create", "-n", "laptop"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            ". {}",
            t.envs_dir().join("laptop/bin/activate").display()
        )),
        "{err}"
    );
}

#[test]
fn with_allow_stacking_a_second_environment_stacks_and_deactivate_undoes_only_it() {
    let t = TestEnv::with_channel();
    let chan = t.path().join("channel");
    t.set_site_config(&format!(
        "channels: [{}]\nallow_stacking: true\n",
        chan.display()
    ));
    ok(&t.run(&["create", "-n", "base", "alpha"]));
    ok(&t.run(&["create", "-n", "tool", "libfoo"]));
    let base = t.envs_dir().join("base");
    let tool = t.envs_dir().join("tool");
    let script = format!(
        "set -eu\n. {a}\n. {b}\necho \"first=${{PATH%%:*}}\"\ncase \":$PATH:\" in *:{abin}:*) echo base-on-path ;; esac\ndeactivate\necho \"after=${{PATH%%:*}} venv=$VIRTUAL_ENV\"",
        a = activate(&base),
        b = activate(&tool),
        abin = sh(&base.join("bin").display().to_string()),
    );
    let text = ok(&run_in(&t, "bash", &script, &[]));
    assert!(
        text.contains(&format!("first={}\n", tool.join("bin").display())),
        "{text}"
    );
    assert!(text.contains("base-on-path"), "{text}");
    assert!(
        text.contains(&format!(
            "after={} venv={}",
            base.join("bin").display(),
            base.display()
        )),
        "{text}"
    );
}
