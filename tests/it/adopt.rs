//! `envmod adopt`: environments made by other tools brought under envmod as they are: a
//! conda prefix made by py-rattler, a venv, and a tree of conda-env-mod modulefiles.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Ms, TestEnv, ok, peer, stderr, stdout};

/// py-rattler solves `specs` against the test channel and links them into `prefix`, as a
/// conda user's `conda create` would; conda's history line records what was asked for.
fn pyrattler_prefix(t: &TestEnv, prefix: &Path, specs: &[&str], history: bool) {
    let script = r#"
import asyncio, os, sys, rattler
async def main():
    channel, prefix, cache, *specs = sys.argv[1:]
    records = await rattler.solve(sources=[rattler.Channel(channel)], specs=specs,
        gateway=rattler.Gateway(cache_dir=cache + "/repodata"), platforms=["linux-64", "noarch"],
        virtual_packages=rattler.VirtualPackage.detect())
    await rattler.install(records, target_prefix=prefix, cache_dir=cache + "/pkgs")
asyncio.run(main())
# py-rattler can crash in the interpreter's finalization, after its work is done.
sys.stdout.flush()
os._exit(0)
"#;
    let channel = common::channel::channel_url(&t.path().join("channel")).to_string();
    let cache = t.path().join("rattler-cache");
    let mut args = vec![
        channel.as_str(),
        prefix.to_str().unwrap(),
        cache.to_str().unwrap(),
    ];
    args.extend(specs);
    peer(script, &args);
    assert!(prefix.join("conda-meta").is_dir());
    if history {
        let quoted: Vec<String> = specs.iter().map(|s| format!("'{s}'")).collect();
        std::fs::write(
            prefix.join("conda-meta/history"),
            format!(
                "==> 2024-05-01 10:00:00 <==\n# cmd: conda create -p {}\n# update specs: [{}]\n",
                prefix.display(),
                quoted.join(", ")
            ),
        )
        .unwrap();
    }
}

fn manifest(prefix: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(prefix.join(".envmod/manifest.json")).unwrap())
        .unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.symlink_metadata().unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_conda_prefix_made_by_py_rattler_is_adopted_loads_changes_and_is_let_go() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("conda-envs/proj");
    pyrattler_prefix(&t, &prefix, &["python", "beta"], true);
    let before = files_under(&prefix);

    // A dry run on a pipe says what would happen and changes nothing.
    let p = prefix.to_str().unwrap();
    let dry = t.run(&["adopt", "-p", p, "--module-system", "lmod", "--dry-run"]);
    let said = ok(&dry);
    assert!(
        said.contains("would be adopted") && said.contains("requested: python, beta"),
        "{said}"
    );
    assert_eq!(files_under(&prefix), before);

    // On a terminal, the same command adopts it and says how to load it.
    let tty = t.run_on_pty(&["adopt", "-p", p, "--module-system", "lmod"]);
    let shown = stdout(&tty);
    assert!(tty.status.success(), "{shown}");
    assert!(
        shown.contains("adopted") && shown.contains("module load proj/py"),
        "{shown}"
    );
    let m = manifest(&prefix);
    assert_eq!(m["python"]["mode"], "conda");
    assert_eq!(m["specs"], serde_json::json!(["python", "beta"]));
    assert_eq!(m["adopted"]["kind"], "conda");
    // The packages are as they were: only envmod's own files are new.
    let mut added: Vec<PathBuf> = files_under(&prefix)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    added.sort();
    assert_eq!(
        added,
        [
            PathBuf::from(".envmod/manifest.json"),
            PathBuf::from("bin/activate")
        ]
    );

    // The modulefile loads under real Lmod and puts the env's Python first.
    let root = t.module_root();
    let loaded = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}; module load proj || exit 7; echo \"prefix=$CONDA_PREFIX\"; command -v python",
            root.display()
        ),
    );
    let out = ok(&loaded);
    assert!(out.contains(&format!("prefix={p}")), "{out}");
    assert!(out.contains(&format!("{p}/bin/python")), "{out}");

    // list finds it, and show reads it.
    assert!(ok(&t.run(&["list"])).contains("proj"));
    assert!(ok(&t.run(&["show", "-p", p])).contains("beta"));

    // install and export work on it now.
    ok(&t.run(&["install", "-p", p, "gamma"]));
    assert!(
        prefix
            .join("conda-meta")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("gamma-"))
    );
    let exported = ok(&t.run(&["export", "-p", p]));
    assert!(
        exported.contains("beta") && exported.contains("gamma"),
        "{exported}"
    );
    // update, remove and kernel take it as envmod's own as well.
    let updated = t.run(&["update", "-p", p, "--all"]);
    assert!(
        updated.status.success(),
        "{}{}",
        stdout(&updated),
        stderr(&updated)
    );
    ok(&t.run(&["remove", "-p", p, "gamma"]));
    assert!(
        !prefix
            .join("conda-meta")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("gamma-"))
    );
    let kernel = t.run(&["kernel", "add", "-p", p]);
    assert!(
        stderr(&kernel).contains("has no ipykernel")
            && !stderr(&kernel).contains("not created by envmod"),
        "{}",
        stderr(&kernel)
    );

    // delete takes away what envmod wrote and leaves the packages.
    let modulefile = PathBuf::from(m["module"]["file"].as_str().unwrap());
    assert!(modulefile.is_file());
    let gone = t.run(&["delete", "-p", p, "--yes"]);
    assert!(
        stderr(&gone).contains("no longer managed by envmod"),
        "{}",
        stderr(&gone)
    );
    assert!(gone.status.success());
    assert!(!modulefile.exists());
    assert!(!prefix.join(".envmod").exists() && !prefix.join("bin/activate").exists());
    assert!(prefix.join("conda-meta/history").is_file());
    assert!(prefix.join("bin/python").exists());

    // Adopted again, --with-prefix removes the directory too.
    ok(&t.run(&["adopt", "-p", p, "--module-system", "lmod"]));
    ok(&t.run(&["delete", "-p", p, "--yes", "--with-prefix"]));
    assert!(!prefix.exists());
}

#[test]
fn without_history_the_specs_are_what_nothing_else_needs() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("noh");
    pyrattler_prefix(&t, &prefix, &["python", "beta"], false);
    ok(&t.run(&[
        "adopt",
        "-p",
        prefix.to_str().unwrap(),
        "--module-system",
        "none",
    ]));
    assert_eq!(manifest(&prefix)["specs"], serde_json::json!(["beta"]));
}

#[test]
fn a_directory_that_is_no_environment_is_refused_and_left_alone() {
    let t = TestEnv::new();
    let dir = t.path().join("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let out = t.run(&["adopt", "-p", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("neither a conda environment"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
}

#[test]
fn a_venv_is_adopted_on_its_base_interpreter_with_its_pip_packages() {
    let t = TestEnv::with_channel();
    let venv = t.path().join("venvs/ana");
    ok(&std::process::Command::new(common::MODULE_PYTHON)
        .args(["-m", "venv", "--without-pip", "--system-site-packages"])
        .arg(&venv)
        .output()
        .unwrap());
    let wheel = common::build_wheel(t.path(), "venvprobe", "1.3");
    // The site's pip, run by the venv's Python, installs into the venv.
    ok(&std::process::Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(&wheel)
        .output()
        .unwrap());
    let own_activate = std::fs::read_to_string(venv.join("bin/activate")).unwrap();
    let v = venv.to_str().unwrap();

    let out = ok(&t.run(&["adopt", "-p", v, "--module-system", "tcl"]));
    assert!(
        out.contains("venv") && out.contains("venvprobe==1.3"),
        "{out}"
    );
    let m = manifest(&venv);
    assert_eq!(m["python"]["mode"], "site");
    assert_eq!(m["adopted"]["kind"], "venv");
    assert_eq!(m["pip"], serde_json::json!(["venvprobe==1.3"]));
    let base = std::fs::canonicalize(common::MODULE_PYTHON).unwrap();
    assert_eq!(m["python"]["executable"], base.to_str().unwrap());
    assert_ne!(
        std::fs::read_to_string(venv.join("bin/activate")).unwrap(),
        own_activate
    );

    // Under real Environment Modules, the venv's Python and its pip package come first.
    let loaded = ok(&t.module_shell(
        Ms::Tcl,
        &format!(
            "module use {}; module load ana || exit 7; python -c 'import venvprobe, sys; print(venvprobe.VALUE, sys.prefix)'",
            t.module_root().display()
        ),
    ));
    assert!(
        loaded.contains(&format!("hello from venvprobe 1.3 {v}")),
        "{loaded}"
    );

    // A conda package installs into it beside the pip one.
    ok(&t.run(&["install", "-p", v, "alpha"]));
    assert!(venv.join("lib/python3.11/site-packages/alpha").is_dir());
    assert!(venv.join("lib/python3.11/site-packages/venvprobe").is_dir());

    // delete gives the venv back its own activate script.
    ok(&t.run(&["delete", "-p", v, "--yes"]));
    assert_eq!(
        std::fs::read_to_string(venv.join("bin/activate")).unwrap(),
        own_activate
    );
    assert!(!venv.join(".envmod").exists());
    assert!(venv.join("pyvenv.cfg").is_file());
}

/// A modulefile as conda-env-mod's `templates/rcac/modules/lmod/default.sh` prints it for an
/// environment in `prefix` on `module` (its `CONDA_MODULE`), with Python from the environment.
fn conda_env_mod_lua(prefix: &Path, module: &str) -> String {
    format!(
        "-- created on Tue May  7 10:00:00 EDT 2024 by someone\n\ndepends_on(\"{module}\")\nlocal modroot = \"{p}\"\nlocal pyver   = \"{py}\"\n\npushenv(\"CONDA_PREFIX\",modroot)\npushenv(\"CONDA_DEFAULT_ENV\",modroot)\nprepend_path(\"LD_LIBRARY_PATH\",modroot..\"/lib\")\nprepend_path(\"PYTHONPATH\",modroot..\"/lib/python{xy}/site-packages\")\npushenv(\"PYTHONNOUSERSITE\",\"1\")\n\n-- Using Python and tools from the environment\nprepend_path(\"PATH\",modroot..\"/bin\")\n\n",
        p = prefix.display(),
        py = common::channel::PYTHON_VERSION,
        xy = common::channel::PYTHON_XY,
    )
}

/// The same from its `tcl/default.sh`.
fn conda_env_mod_tcl(prefix: &Path, module: &str) -> String {
    format!(
        "#%Module\n# created on Tue May  7 10:00:00 EDT 2024 by someone\n\nmodule load \"{module}\"\nset modroot \"{p}\"\nset pyver \"{py}\"\n\npushenv CONDA_PREFIX \"$modroot\"\npushenv CONDA_DEFAULT_ENV \"$modroot\"\nprepend-path LD_LIBRARY_PATH \"$modroot/lib\"\nprepend-path PYTHONPATH \"$modroot/lib/python{xy}/site-packages\"\npushenv PYTHONNOUSERSITE \"1\"\n\n# Using Python and tools from the environment\nprepend-path PATH \"$modroot/bin\"\n",
        p = prefix.display(),
        py = common::channel::PYTHON_VERSION,
        xy = common::channel::PYTHON_XY,
    )
}

/// Conda prefixes `names` under `<t>/conda/envs`, made by py-rattler (one solve, copied).
fn conda_envs(t: &TestEnv, names: &[&str]) -> Vec<PathBuf> {
    let envs = t.path().join("conda/envs");
    let first = envs.join(names[0]);
    pyrattler_prefix(t, &first, &["python", "alpha"], true);
    names
        .iter()
        .map(|n| {
            let p = envs.join(n);
            if p != first {
                ok(&std::process::Command::new("cp")
                    .arg("-a")
                    .arg(&first)
                    .arg(&p)
                    .output()
                    .unwrap());
            }
            p
        })
        .collect()
}

#[test]
fn a_tree_of_conda_env_mod_lua_modulefiles_is_adopted_with_the_modules_it_named() {
    let t = TestEnv::with_channel();
    let envs = conda_envs(&t, &["one", "two"]);
    let py = common::channel::PYTHON_VERSION;
    let tree = t.path().join("oldmods");
    let app = tree.join("conda-env");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join(format!("one-py{py}.lua")),
        conda_env_mod_lua(&envs[0], "gcc/12.2"),
    )
    .unwrap();
    std::fs::write(
        app.join(format!("two-py{py}.lua")),
        conda_env_mod_lua(&envs[1], "gcc/12.2"),
    )
    .unwrap();
    // One whose prefix would need evaluating, and one that is a link: neither is run or followed.
    std::fs::write(
        app.join(format!("evil-py{py}.lua")),
        "local modroot = os.getenv(\"HOME\")..\"/x\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        app.join(format!("one-py{py}.lua")),
        app.join(format!("linked-py{py}.lua")),
    )
    .unwrap();

    // Adopted in a shell that has another gcc loaded now: what is recorded is what the file said.
    let out = t.module_shell(
        Ms::Lmod,
        &format!(
            "module load gcc/13.1 || exit 7\nenvmod adopt --from-modules {} --module-system lmod",
            tree.display()
        ),
    );
    let said = stdout(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "adopted one ({}) from conda-env/one-py{py}.lua",
            envs[0].display()
        )),
        "{said}"
    );
    assert!(said.contains("adopted two ("), "{said}");
    assert!(
        said.contains(&format!(
            "not adopted: conda-env/evil-py{py}.lua: it names no prefix"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("not adopted: conda-env/linked-py{py}.lua"))
            && said.contains("symbolic link"),
        "{said}"
    );
    assert!(
        stderr(&out).contains("2 of 4 environments were not adopted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(said.lines().count(), 4, "{said}");
    assert_eq!(manifest(&envs[0])["modules"][0]["full_name"], "gcc/12.2");

    // Loading the adopted env brings the module its old modulefile named.
    let loaded = ok(&t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}; module load one || exit 7; echo \"gcc=$FAKE_GCC_VERSION prefix=$CONDA_PREFIX\"",
            t.module_root().display()
        ),
    ));
    assert!(
        loaded.contains(&format!("gcc=12.2 prefix={}", envs[0].display())),
        "{loaded}"
    );

    // Again: the adopted ones say so and are left alone.
    let again = t.run(&[
        "adopt",
        "--from-modules",
        tree.to_str().unwrap(),
        "-n",
        "one",
    ]);
    assert!(
        ok(&again).contains("already adopted: one"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_tree_of_conda_env_mod_tcl_modulefiles_is_adopted_on_a_terminal() {
    let t = TestEnv::with_channel();
    let envs = conda_envs(&t, &["tclenv"]);
    let py = common::channel::PYTHON_VERSION;
    let app = t.path().join("oldmods/conda-env");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join(format!("tclenv-py{py}")),
        conda_env_mod_tcl(&envs[0], "gcc/12.2"),
    )
    .unwrap();
    let tree = t.path().join("oldmods");
    let dry = ok(&t.run(&[
        "adopt",
        "--from-modules",
        tree.to_str().unwrap(),
        "--dry-run",
    ]));
    assert!(dry.contains("would adopt tclenv ("), "{dry}");
    assert!(!envs[0].join(".envmod").exists());
    let tty = t.run_on_pty(&[
        "adopt",
        "--from-modules",
        tree.to_str().unwrap(),
        "--module-system",
        "tcl",
    ]);
    let shown = stdout(&tty);
    assert!(tty.status.success(), "{shown}");
    assert!(
        shown.contains(&format!(
            "adopted tclenv ({}) from conda-env/tclenv-py{py} as module tclenv/py",
            envs[0].display()
        )),
        "{shown}"
    );
    let loaded = ok(&t.module_shell(
        Ms::Tcl,
        &format!(
            "module use {}; module load tclenv || exit 7; echo \"gcc=$FAKE_GCC_VERSION\"; command -v python",
            t.module_root().display()
        ),
    ));
    assert!(loaded.contains("gcc=12.2"), "{loaded}");
    assert!(
        loaded.contains(&format!("{}/bin/python", envs[0].display())),
        "{loaded}"
    );
}

#[test]
fn module_name_template_keeps_conda_env_mod_names_so_job_scripts_keep_working() {
    let t = TestEnv::with_channel();
    let channel = t.path().join("channel");
    t.set_site_config(&format!(
        "channels: [{}]\nmodule_name_template: \"conda-env/{{name}}-py{{python}}\"\n",
        channel.display()
    ));
    let envs = conda_envs(&t, &["kept"]);
    let py = common::channel::PYTHON_VERSION;
    let app = t.path().join("oldmods/conda-env");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join(format!("kept-py{py}.lua")),
        conda_env_mod_lua(&envs[0], "gcc/12.2"),
    )
    .unwrap();
    let said = ok(&t.run(&[
        "adopt",
        "--from-modules",
        t.path().join("oldmods").to_str().unwrap(),
        "--module-system",
        "lmod",
    ]));
    assert!(
        said.contains(&format!("as module conda-env/kept-py{py}")),
        "{said}"
    );
    let file = t.module_root().join(format!("conda-env/kept-py{py}.lua"));
    assert!(file.is_file(), "{said}");
    // The job script's old line loads it, and later commands keep the name.
    let job = format!(
        "module use {}; module load conda-env/kept-py{py} || exit 7; echo \"gcc=$FAKE_GCC_VERSION prefix=$CONDA_PREFIX\"",
        t.module_root().display()
    );
    assert!(
        ok(&t.module_shell(Ms::Lmod, &job))
            .contains(&format!("gcc=12.2 prefix={}", envs[0].display()))
    );
    ok(&t.run(&["install", "-p", envs[0].to_str().unwrap(), "beta"]));
    assert!(ok(&t.module_shell(Ms::Lmod, &job)).contains("gcc=12.2"));

    // A template that is not DIR/VERSION is refused with the fix.
    t.set_site_config("module_name_template: \"../{name}\"\n");
    let bad = t.run(&["adopt", "-p", envs[0].to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("module_name_template"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_pixi_env_without_history_gets_the_packages_nothing_else_needs() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("proj/.pixi/envs/default");
    pyrattler_prefix(&t, &prefix, &["python", "beta"], false);
    let out = ok(&t.run(&[
        "adopt",
        "-p",
        prefix.to_str().unwrap(),
        "--module-system",
        "none",
    ]));
    assert!(out.contains("pixi environment"), "{out}");
    let m = manifest(&prefix);
    assert_eq!(m["specs"], serde_json::json!(["beta"]));
    assert_eq!(m["adopted"]["kind"], "pixi");
}

#[test]
fn a_venv_whose_base_interpreter_someone_else_could_plant_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    let venv = t.path().join("planted");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    let dir = t.path().join("tmpbin");
    let evil = dir.join("python3");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&evil, "#!/bin/sh\ntouch \"$0.ran\"\n").unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        venv.join("pyvenv.cfg"),
        format!(
            "home = {}\nexecutable = {}\nversion = 3.11.2\n",
            dir.display(),
            evil.display()
        ),
    )
    .unwrap();
    let out = t.run(&["adopt", "-p", venv.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not start"), "{}", stderr(&out));
    assert!(!dir.join("python3.ran").exists());
    assert!(!venv.join(".envmod").exists());
}

/// A kernel.json as conda-env-mod's `kernel` subcommand writes it (its heredoc, tabs stripped).
fn conda_env_mod_kernel(kernels: &Path, name: &str, prefix: &Path) -> Vec<u8> {
    let dir = kernels.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "{{\n \"display_name\": \"Python (My {name} Kernel)\", \n \"language\": \"python\", \n \"argv\": [\n  \"{}/bin/python\", \n  \"-m\", \n  \"ipykernel_launcher\", \n  \"-f\", \n  \"{{connection_file}}\"\n ]\n}}\n",
        prefix.display()
    );
    std::fs::write(dir.join("kernel.json"), &text).unwrap();
    text.into_bytes()
}

/// The kernelspec `name` as real jupyter_client reads it from `kernels`.
fn kernelspec(kernels: &Path, name: &str) -> serde_json::Value {
    let script = "import json, sys\nfrom jupyter_client.kernelspec import KernelSpecManager\nksm = KernelSpecManager(kernel_dirs=[sys.argv[1]], ensure_native_kernel=False)\nprint(json.dumps(ksm.get_kernel_spec(sys.argv[2]).to_dict()))\n";
    serde_json::from_str(&peer(script, &[kernels.to_str().unwrap(), name])).unwrap()
}

#[test]
fn a_conda_env_mod_kernel_is_taken_over_under_its_name_and_given_back_on_delete() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("conda-envs/proj");
    pyrattler_prefix(&t, &prefix, &["python", "alpha"], true);
    let kernels = t.home.join(".local/share/jupyter/kernels");
    let original = conda_env_mod_kernel(&kernels, "proj", &prefix);
    std::fs::write(kernels.join("proj/logo-64x64.png"), b"\x89PNG logo").unwrap();
    let p = prefix.to_str().unwrap();

    let dry = ok(&t.run(&["adopt", "-p", p, "--module-system", "lmod", "--dry-run"]));
    assert!(dry.contains("would take over kernel proj"), "{dry}");
    assert_eq!(
        std::fs::read(kernels.join("proj/kernel.json")).unwrap(),
        original
    );

    let said = ok(&t.run(&["adopt", "-p", p, "--module-system", "lmod"]));
    assert!(said.contains("took over kernel proj"), "{said}");
    assert_eq!(manifest(&prefix)["adopted"]["kernel"]["name"], "proj");
    let spec = kernelspec(&kernels, "proj");
    assert_eq!(spec["argv"][0], "/bin/bash", "{spec}");
    assert!(
        spec["argv"][2]
            .as_str()
            .unwrap()
            .contains("envmod kernel launcher")
    );
    assert_eq!(spec["display_name"], "Python (My proj Kernel)");
    assert_eq!(spec["metadata"]["envmod"]["prefix"], p);

    let deleted = t.run(&["delete", "-p", p, "--yes"]);
    let said = format!("{}{}", stdout(&deleted), stderr(&deleted));
    assert!(
        deleted.status.success() && said.contains("Removed Jupyter kernel "),
        "{said}"
    );
    assert_eq!(
        std::fs::read(kernels.join("proj/kernel.json")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read(kernels.join("proj/logo-64x64.png")).unwrap(),
        b"\x89PNG logo"
    );
    assert_eq!(
        files_under(&kernels),
        [
            PathBuf::from("proj/kernel.json"),
            PathBuf::from("proj/logo-64x64.png")
        ]
    );
}

#[test]
fn from_modules_takes_over_the_first_kernel_by_name_and_names_the_others() {
    let t = TestEnv::with_channel();
    let envs = conda_envs(&t, &["one"]);
    let app = t.path().join("oldmods/conda-env");
    std::fs::create_dir_all(&app).unwrap();
    let py = common::channel::PYTHON_VERSION;
    std::fs::write(
        app.join(format!("one-py{py}.lua")),
        conda_env_mod_lua(&envs[0], "gcc/12.2"),
    )
    .unwrap();
    let kernels = t.home.join(".local/share/jupyter/kernels");
    conda_env_mod_kernel(&kernels, "one", &envs[0]);
    let second = conda_env_mod_kernel(&kernels, "one-again", &envs[0]);
    let out = t.module_shell(
        Ms::Lmod,
        &format!(
            "envmod adopt --from-modules {}",
            t.path().join("oldmods").display()
        ),
    );
    let said = ok(&out);
    assert!(said.contains("took over kernel one"), "{said}");
    assert!(stderr(&out).contains("one-again"), "{}", stderr(&out));
    assert_eq!(kernelspec(&kernels, "one")["argv"][0], "/bin/bash");
    assert_eq!(
        std::fs::read(kernels.join("one-again/kernel.json")).unwrap(),
        second
    );
}

#[test]
fn a_kernel_that_is_a_link_is_neither_taken_over_nor_followed() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("conda-envs/proj");
    pyrattler_prefix(&t, &prefix, &["python"], true);
    let kernels = t.home.join(".local/share/jupyter/kernels");
    // Elsewhere: a kernel.json naming this env, and a kernel dir holding one.
    let elsewhere = t.path().join("elsewhere");
    let planted = conda_env_mod_kernel(&elsewhere, "dir", &prefix);
    std::fs::create_dir_all(kernels.join("linkedjson")).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.join("dir/kernel.json"),
        kernels.join("linkedjson/kernel.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.join("dir"), kernels.join("linkeddir")).unwrap();
    // Beside them, a real one: it is the one taken over.
    conda_env_mod_kernel(&kernels, "real", &prefix);
    let said = ok(&t.run(&[
        "adopt",
        "-p",
        prefix.to_str().unwrap(),
        "--module-system",
        "lmod",
    ]));
    assert!(
        said.contains("took over kernel real") && !said.contains("linked"),
        "{said}"
    );
    assert_eq!(manifest(&prefix)["adopted"]["kernel"]["name"], "real");
    assert_eq!(
        std::fs::read(elsewhere.join("dir/kernel.json")).unwrap(),
        planted
    );
    assert_eq!(files_under(&elsewhere), [PathBuf::from("dir/kernel.json")]);
    assert!(
        kernels
            .join("linkeddir")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(
        kernels
            .join("linkedjson/kernel.json")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn a_taken_over_kernel_starts_on_the_modules_the_old_modulefile_named() {
    let t = TestEnv::with_channel();
    let venv = t.path().join("conda/envs/lab");
    ok(&std::process::Command::new(common::MODULE_PYTHON)
        .args(["-m", "venv", "--without-pip", "--system-site-packages"])
        .arg(&venv)
        .output()
        .unwrap());
    ok(&std::process::Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg("--find-links")
        .arg(common::wheelhouse())
        .arg("ipykernel")
        .output()
        .unwrap());
    let app = t.path().join("oldmods/conda-env");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join(format!("lab-py{}.lua", common::channel::PYTHON_VERSION)),
        conda_env_mod_lua(&venv, "gcc/12.2"),
    )
    .unwrap();
    let kernels = t.home.join(".local/share/jupyter/kernels");
    conda_env_mod_kernel(&kernels, "lab", &venv);
    let code = "import os, sys; print(os.environ.get('FAKE_GCC_VERSION'), sys.prefix)";

    // Before: the old kernel starts the env's Python bare, without the module it was built on.
    let before = ok(&t.module_shell(
        Ms::Lmod,
        &crate::kernels::run_code_script(&kernels, "lab", code),
    ));
    assert_eq!(
        crate::kernels::cell_line(&before),
        format!("CELL: None {}", venv.display())
    );

    let out = ok(&t.module_shell(
        Ms::Lmod,
        &format!(
            "module load gcc/13.1\nenvmod adopt --from-modules {} --module-system lmod",
            common::sh(&app.parent().unwrap().display().to_string())
        ),
    ));
    assert!(out.contains("took over kernel lab"), "{out}");
    // The notebook's kernel name is the same, and it now brings the gcc/12.2 the old
    // modulefile named, not the gcc/13.1 loaded when it was adopted.
    for ms in Ms::BOTH {
        let after =
            ok(&t.module_shell(ms, &crate::kernels::run_code_script(&kernels, "lab", code)));
        assert_eq!(
            crate::kernels::cell_line(&after),
            format!("CELL: 12.2 {}", venv.display()),
            "{ms:?}: {after}"
        );
    }
}

#[test]
fn a_kernel_is_put_back_only_into_the_users_kernels_from_the_users_own_copy() {
    let t = TestEnv::with_channel();
    let prefix = t.path().join("conda-envs/proj");
    pyrattler_prefix(&t, &prefix, &["python", "alpha"], true);
    let kernels = t.home.join(".local/share/jupyter/kernels");
    let original = conda_env_mod_kernel(&kernels, "proj", &prefix);
    let p = prefix.to_str().unwrap();
    ok(&t.run(&["adopt", "-p", p, "--module-system", "lmod"]));
    // Nothing of the old kernel is kept where the environment's group could write it.
    assert!(
        !walk(&prefix.join(".envmod"))
            .iter()
            .any(|f| f.to_string_lossy().contains("kernel")),
        "{:?}",
        walk(&prefix.join(".envmod"))
    );
    // A group member who can write the manifest points the kernel's place elsewhere.
    let elsewhere = t.home.join(".ssh");
    let path = prefix.join(".envmod/manifest.json");
    let mut m = manifest(&prefix);
    m["adopted"]["kernel"]["dir"] = serde_json::json!(elsewhere);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let out = t.run(&["delete", "-p", p, "--yes"]);
    ok(&out);
    assert!(
        !elsewhere.exists(),
        "delete wrote into {}",
        elsewhere.display()
    );
    assert_eq!(
        std::fs::read(kernels.join("proj/kernel.json")).unwrap(),
        original
    );
}
