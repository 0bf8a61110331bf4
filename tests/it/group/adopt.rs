//! A group member cannot use `envmod adopt` against another member: no environment of
//! theirs is taken over, no module name they wrote is recorded, and an interrupted adoption
//! leaves the environment as it was.

use std::path::Path;

use crate::common::{
    course::{Course, Who},
    ok, sh, stderr, stdout,
};

/// A conda prefix the TA owns in the course envs directory, and a conda-env-mod modulefile
/// the TA wrote for it in `dir` with `depends` as its `depends_on` lines.
fn ta_env_and_modulefile(c: &Course, dir: &Path, depends: &[&str]) -> std::path::PathBuf {
    let tas = c.envs().join("tas");
    ok(&c.bash(
        Who::Ta,
        &format!(
            "umask 002; \"$ENVMOD\" create -p {p} --python 3.12 alpha && rm -rf {p}/.envmod {p}/bin/activate",
            p = sh(&tas.display().to_string())
        ),
    ));
    let mut lua = String::new();
    for d in depends {
        lua.push_str(&format!("depends_on(\"{d}\")\n"));
    }
    lua.push_str(&format!(
        "local modroot = \"{}\"\nlocal pyver   = \"3.12.0\"\nprepend_path(\"PATH\",modroot..\"/bin\")\n",
        tas.display()
    ));
    let file = dir.join("conda-env/tas-py3.12.0.lua");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, lua).unwrap();
    crate::common::run_ok("chmod", &[Path::new("-R"), Path::new("a+rX"), dir]);
    tas
}

/// A modulefile whose `depends_on` names no module any module system has (quotes, `$(...)`,
/// spaces): adopt records it as it is and says "adopted", and then every command refuses the
/// env as damaged by "someone who can write that file".
#[test]
fn adopt_from_modules_refuses_module_names_no_module_system_has() {
    let c = Course::new();
    let dir = c.path().join("cem");
    ta_env_and_modulefile(
        &c,
        &dir,
        &[
            "gcc/12\\\"; os.execute(\\\"touch /tmp/x\\\") --",
            "a$(touch /tmp/y)b",
        ],
    );
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["adopt", "--from-modules", &dir.display().to_string()],
    );
    let said = stdout(&out);
    assert!(
        !out.status.success() && said.contains("not adopted") && said.contains("module name"),
        "{said}{}",
        stderr(&out)
    );
}

/// The TA's own environment, named by a modulefile in a tree the instructor adopts: adopt
/// takes it as the instructor's without a word, with the manifest in a directory the TA can
/// rename it out of.
#[test]
fn adopt_from_modules_refuses_a_prefix_another_account_owns() {
    let c = Course::new();
    let dir = c.path().join("cem");
    let tas = ta_env_and_modulefile(&c, &dir, &[]);
    let out = c.envmod_as(
        Who::Instructor,
        "077",
        &["adopt", "--from-modules", &dir.display().to_string()],
    );
    let said = stdout(&out);
    assert!(
        !out.status.success() && said.contains("not adopted") && said.contains("envmod-peer"),
        "{said}{}",
        stderr(&out)
    );
    assert!(!tas.join(".envmod").exists());
}

/// SIGTERM or SIGINT while adopt runs the env's activation scripts: envmod says "nothing was
/// left half-made", but the env's own `bin/activate` is gone (moved into `.envmod/`) and a
/// manifest is left, so `. bin/activate` fails and a second adopt says "already an envmod
/// environment".
#[test]
fn an_interrupted_adopt_leaves_the_env_as_it_was() {
    let c = Course::new();
    for sig in ["TERM", "INT"] {
        let script = format!(
            r#"umask 077; p=$HOME/conda-{sig}; "$ENVMOD" create -p $p --python 3.12 alpha >/dev/null 2>&1 || exit 7
rm -rf $p/.envmod; echo '# the env own activate' > $p/bin/activate
mkdir -p $p/etc/conda/activate.d; echo 'sleep 3; export SLOW=1' > $p/etc/conda/activate.d/slow.sh
"$ENVMOD" adopt -p $p & pid=$!; sleep 1.5; kill -{sig} $pid; wait $pid
cat $p/bin/activate; test ! -e $p/.envmod"#
        );
        let out = c.bash(Who::Instructor, &script);
        let (said, err) = (stdout(&out), stderr(&out));
        assert!(
            out.status.success() && said.contains("# the env own activate"),
            "{sig}: {said}{err}"
        );
    }
}

/// SIGKILL while adopt runs the env's activation scripts: no handler runs, but the env's own
/// `bin/activate` works throughout, and the next adopt takes back the half-done adoption and
/// finishes, instead of calling it an envmod environment already.
#[test]
fn an_adopt_killed_halfway_is_finished_by_the_next_adopt() {
    let c = Course::new();
    let script = r#"umask 077; p=$HOME/conda-kill; "$ENVMOD" create -p $p --python 3.12 alpha >/dev/null 2>&1 || exit 7
rm -rf $p/.envmod; echo '# the env own activate' > $p/bin/activate
mkdir -p $p/etc/conda/activate.d; echo 'sleep 3; export SLOW=1' > $p/etc/conda/activate.d/slow.sh
"$ENVMOD" adopt -p $p & pid=$!; sleep 1.5; kill -KILL $pid; wait $pid
test -e $p/.envmod || { echo "the kill came too late"; exit 8; }
echo "between: $(cat $p/bin/activate)"
rm $p/etc/conda/activate.d/slow.sh
"$ENVMOD" adopt -p $p || exit 9
echo "kept: $(cat $p/.envmod/activate.before-envmod)"
test ! -e $p/.envmod/adopting || exit 10
head -1 $p/bin/activate"#;
    let out = c.bash(Who::Instructor, script);
    let (said, err) = (stdout(&out), stderr(&out));
    assert!(
        out.status.success()
            && said.contains("between: # the env own activate")
            && said.contains("kept: # the env own activate")
            && said.contains("adopted ")
            && err.contains("stopped before it finished"),
        "{said}{err}"
    );
    assert!(!said.contains("already an envmod"), "{said}{err}");
}

/// SIGTERM while adopt runs the env's activation scripts, with a kernel of the user's that
/// runs the env: the kernel adopt was taking over is the user's own again, as it was.
#[test]
fn an_interrupted_adopt_puts_back_the_kernel_it_was_taking_over() {
    let c = Course::new();
    let script = r#"umask 077; p=$HOME/conda-k; "$ENVMOD" create -p $p --python 3.12 alpha >/dev/null 2>&1 || exit 7
rm -rf $p/.envmod; rm -rf $XDG_DATA_HOME/jupyter/kernels/*
k=$XDG_DATA_HOME/jupyter/kernels/mine; mkdir -p $k
printf '{"display_name": "Mine", "language": "python", "argv": ["%s/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}\n' $p > $k/kernel.json
cp $k/kernel.json $HOME/kernel.before
mkdir -p $p/etc/conda/activate.d; echo 'sleep 3; export SLOW=1' > $p/etc/conda/activate.d/slow.sh
"$ENVMOD" adopt -p $p & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid
cmp $k/kernel.json $HOME/kernel.before && echo same kernel
test ! -e $XDG_DATA_HOME/envmod/kernels-before-adoption/mine && echo nothing kept
test ! -e $p/.envmod && echo no manifest"#;
    let out = c.bash(Who::Instructor, script);
    let (said, err) = (stdout(&out), stderr(&out));
    assert!(
        said.contains("same kernel")
            && said.contains("nothing kept")
            && said.contains("no manifest"),
        "{said}{err}"
    );
}
