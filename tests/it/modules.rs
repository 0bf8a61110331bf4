//! Modulefiles loaded by the real module systems, in clean `env -i` shells: Lmod reads the
//! Lua file, Environment Modules the Tcl file. What a user would check after `module load`
//! is what these tests check.

use crate::common;

use std::{collections::BTreeMap, path::Path};

use common::{DUMP_ENV, Ms, TestEnv, ok, sh, stderr, stdout};

/// Variables the module systems keep for their own bookkeeping; everything else must be
/// restored exactly by `module unload`.
fn is_bookkeeping(var: &str) -> bool {
    var.starts_with("_ModuleTable")
        || var.starts_with("__LMOD_")
        || var.starts_with("__MODULES_")
        || var.starts_with("_LMFILES_")
        || var == "LOADEDMODULES"
        || var.starts_with("LMOD_")
        || var == "_"
        || var == "SHLVL"
}

fn parse_env(dump: &str) -> BTreeMap<String, String> {
    dump.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Everything between two marker lines of a script's stdout.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = format!("==={name}===\n");
    let from = out
        .find(&start)
        .unwrap_or_else(|| panic!("no section {name} in:\n{out}"))
        + start.len();
    let rest = &out[from..];
    &rest[..rest.find("===").unwrap_or(rest.len())]
}

/// Create `myenv` from a shell with the site stack loaded, as a user on a cluster would.
fn create_with_stack(t: &TestEnv, ms: Ms) {
    let out = t.module_shell(
        ms,
        "module load gcc/12.2 openmpi/4.1 python/3.11\nenvmod create -n myenv",
    );
    let err = stderr(&out);
    ok(&out);
    assert!(
        err.contains("module load myenv/py3.11"),
        "no next-step hint:\n{err}"
    );
    assert!(
        err.contains("Recorded modules: gcc/12.2 openmpi/4.1 python/3.11"),
        "{err}"
    );
}

fn modulefile(t: &TestEnv, ms: Ms) -> std::path::PathBuf {
    match ms {
        Ms::Lmod => t.module_root().join("myenv/py3.11.lua"),
        Ms::Tcl => t.module_root().join("myenv/py3.11"),
    }
}

#[test]
fn load_brings_the_stack_and_unload_restores_everything_lmod() {
    load_and_unload(Ms::Lmod);
}

#[test]
fn load_brings_the_stack_and_unload_restores_everything_tcl() {
    load_and_unload(Ms::Tcl);
}

fn load_and_unload(ms: Ms) {
    let t = TestEnv::new();
    create_with_stack(&t, ms);
    assert!(
        modulefile(&t, ms).is_file(),
        "auto detection wrote no {ms:?} modulefile"
    );
    let prefix = t.envs_dir().join("myenv");

    let script = format!(
        r#"export PYTHONNOUSERSITE=keep-me
module use {root}
echo ===before===; {DUMP_ENV}
module load myenv/py3.11 || exit 9
echo ===loaded===; echo "$LOADEDMODULES"
echo ===python===; command -v python
echo ===prefix===; python -c 'import sys; print(sys.prefix)'
echo ===nousersite===; printenv PYTHONNOUSERSITE
echo ===vars===; printenv CONDA_PREFIX; printenv CONDA_DEFAULT_ENV; printenv VIRTUAL_ENV
module unload myenv || exit 8
echo ===after===; {DUMP_ENV}
echo ===end==="#,
        root = sh(&t.module_root().display().to_string())
    );
    let out = t.module_shell(ms, &script);
    let text = ok(&out);
    let loaded: Vec<&str> = section(&text, "loaded").trim().split(':').collect();
    for dep in ["gcc/12.2", "openmpi/4.1", "python/3.11", "myenv/py3.11"] {
        assert!(loaded.contains(&dep), "{dep} not loaded: {loaded:?}");
    }
    assert_eq!(
        section(&text, "python").trim(),
        prefix.join("bin/python").display().to_string()
    );
    assert_eq!(
        section(&text, "prefix").trim(),
        prefix.display().to_string()
    );
    assert_eq!(section(&text, "nousersite").trim(), "1");
    let vars: Vec<&str> = section(&text, "vars").lines().collect();
    assert_eq!(
        vars,
        [
            prefix.display().to_string().as_str(),
            "myenv",
            prefix.display().to_string().as_str()
        ]
    );

    let before = parse_env(section(&text, "before"));
    let after = parse_env(section(&text, "after"));
    assert_eq!(before.get("PATH"), after.get("PATH"), "PATH not restored");
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| !is_bookkeeping(k))
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", before.get(k), after.get(k)))
        .collect();
    assert!(
        changed.is_empty(),
        "module unload left changes behind: {changed:#?}"
    );
}

#[test]
fn another_version_of_a_recorded_module_is_refused_with_module_swap_lmod() {
    refused_on_wrong_stack(Ms::Lmod);
}

#[test]
fn another_version_of_a_recorded_module_is_refused_with_module_swap_tcl() {
    refused_on_wrong_stack(Ms::Tcl);
}

fn refused_on_wrong_stack(ms: Ms) {
    let t = TestEnv::new();
    create_with_stack(&t, ms);
    let script = format!(
        "module load gcc/13.1\nmodule use {}\nmodule load myenv/py3.11\necho \"status=$?\"\necho \"loaded=$LOADEDMODULES\"",
        sh(&t.module_root().display().to_string())
    );
    let out = t.module_shell(ms, &script);
    let text = stdout(&out);
    let err = stderr(&out);
    assert!(
        !text.contains("status=0"),
        "load succeeded on the wrong stack:\n{text}\n{err}"
    );
    assert!(
        err.contains("module swap gcc gcc/12.2"),
        "no `module swap` advice:\n{err}"
    );
    let loaded = text
        .lines()
        .find_map(|l| l.strip_prefix("loaded="))
        .unwrap_or("");
    assert!(
        loaded.split(':').any(|m| m == "gcc/13.1"),
        "the user's gcc was swapped: {loaded}"
    );
    assert!(!loaded.contains("myenv"), "env loaded anyway: {loaded}");
}

#[test]
fn whatis_and_spider_describe_the_env_lmod() {
    let t = TestEnv::new();
    create_with_stack(&t, Ms::Lmod);
    let root = sh(&t.module_root().display().to_string());
    let out = t.module_shell(
        Ms::Lmod,
        &format!("module use {root}\nmodule whatis myenv/py3.11\nmodule spider myenv"),
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("Description: Python environment myenv on the site Python 3.11"),
        "{err}"
    );
    assert!(
        err.contains("myenv/py3.11"),
        "spider did not find the env:\n{err}"
    );
}

#[test]
fn whatis_describes_the_env_tcl() {
    let t = TestEnv::new();
    create_with_stack(&t, Ms::Tcl);
    let root = sh(&t.module_root().display().to_string());
    let out = t.module_shell(
        Ms::Tcl,
        &format!("module use {root}\nmodule whatis myenv/py3.11\nmodule help myenv/py3.11"),
    );
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("Description: Python environment myenv on the site Python 3.11"),
        "{err}"
    );
    assert!(
        err.contains("Built with: gcc/12.2 openmpi/4.1 python/3.11"),
        "{err}"
    );
}

#[test]
fn one_env_at_a_time_lmod() {
    one_env_at_a_time(Ms::Lmod);
}

#[test]
fn one_env_at_a_time_tcl() {
    one_env_at_a_time(Ms::Tcl);
}

fn one_env_at_a_time(ms: Ms) {
    let t = TestEnv::new();
    for name in ["first", "second"] {
        ok(&t.module_shell(ms, &format!("envmod create -q -n {name}")));
    }
    let root = sh(&t.module_root().display().to_string());
    let out = t.module_shell(
        ms,
        &format!("module use {root}\nmodule load first/py3.11\nmodule load second/py3.11\necho \"loaded=$LOADEDMODULES\"\necho \"prefix=$CONDA_PREFIX\""),
    );
    let text = stdout(&out);
    let loaded = text
        .lines()
        .find_map(|l| l.strip_prefix("loaded="))
        .unwrap_or("");
    let envs = loaded
        .split(':')
        .filter(|m| m.starts_with("first/") || m.starts_with("second/"))
        .count();
    assert_eq!(envs, 1, "two envs stacked: {loaded}\n{}", stderr(&out));
}

#[test]
fn pip_install_lands_in_the_env_lmod() {
    pip_install_lands_in_the_env(Ms::Lmod);
}

#[test]
fn pip_install_lands_in_the_env_tcl() {
    pip_install_lands_in_the_env(Ms::Tcl);
}

fn pip_install_lands_in_the_env(ms: Ms) {
    let t = TestEnv::new();
    create_with_stack(&t, ms);
    let wheel = common::build_wheel(t.path(), "envmodprobe", "1.0");
    let prefix = t.envs_dir().join("myenv");
    let script = format!(
        r#"module use {root}
module load myenv/py3.11 || exit 9
pip install --no-index --disable-pip-version-check -q {wheel} || exit 7
echo ===with===; python -c 'import envmodprobe; print(envmodprobe.VALUE, envmodprobe.__file__)'
module unload myenv
echo ===without===; python3 -c 'import envmodprobe' 2>&1 && echo IMPORTED || echo NOT-IMPORTED
echo ===end==="#,
        root = sh(&t.module_root().display().to_string()),
        wheel = sh(&wheel.display().to_string()),
    );
    let text = ok(&t.module_shell(ms, &script));
    let with = section(&text, "with");
    let site_packages = prefix.join("lib/python3.11/site-packages");
    assert!(with.starts_with("hello from envmodprobe 1.0"), "{with}");
    assert!(
        with.contains(
            &site_packages
                .join("envmodprobe/__init__.py")
                .display()
                .to_string()
        ),
        "{with}"
    );
    assert!(site_packages.join("envmodprobe/__init__.py").is_file());
    assert!(section(&text, "without").contains("NOT-IMPORTED"), "{text}");
    assert!(
        !t.home.join(".local/lib").exists(),
        "pip wrote into ~/.local"
    );
}

#[test]
fn default_site_python_from_path_works() {
    let t = TestEnv::new();
    // The python3 first on the inherited PATH (a pyenv shim on a developer machine, /usr/bin
    // elsewhere), with no python module loaded.
    let expected = which::which("python3").expect("python3 on PATH");
    let real = std::process::Command::new(&expected)
        .args(["-c", "import sys, os; print(os.path.realpath(getattr(sys, '_base_executable', sys.executable))); print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .unwrap();
    let real = ok(&real);
    let mut lines = real.lines();
    let (exe, version) = (lines.next().unwrap(), lines.next().unwrap());
    let minor = version.rsplit_once('.').unwrap().0;

    let out = t
        .envmod()
        .args(["create", "-n", "plain", "--module-system", "lmod"])
        .output()
        .unwrap();
    ok(&out);
    let prefix = t.envs_dir().join("plain");
    assert_eq!(
        std::fs::read_link(prefix.join("bin/python")).unwrap(),
        Path::new(exe)
    );
    let cfg = std::fs::read_to_string(prefix.join("pyvenv.cfg")).unwrap();
    assert!(cfg.contains("include-system-site-packages = true"), "{cfg}");
    assert!(cfg.contains(&format!("version = {version}")), "{cfg}");

    let module = format!("plain/py{minor}");
    let script = format!(
        "module use {}\nmodule load {module} || exit 9\npython -c 'import sys; print(sys.prefix); print(sys.version.split()[0])'",
        sh(&t.module_root().display().to_string())
    );
    let text = ok(&t.module_shell(Ms::Lmod, &script));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [prefix.display().to_string().as_str(), version]
    );
}

/// A prefix that tries every quoting trick in the book. The last component is a valid name.
const HOSTILE_DIR: &str = "we$(touch PWNED)ird `touch PWNED2` \"dq\" 'sq' ]] } {[x]; $HOME \\ end";

#[test]
fn hostile_prefix_and_description_stay_inert_lmod() {
    hostile_prefix(Ms::Lmod);
}

#[test]
fn hostile_prefix_and_description_stay_inert_tcl() {
    hostile_prefix(Ms::Tcl);
}

fn hostile_prefix(ms: Ms) {
    let t = TestEnv::new();
    let prefix = t.path().join(HOSTILE_DIR).join("hostile");
    let description = "desc $(touch PWNED3) `touch PWNED4` \"]] } [exit 3] ${HOME}";
    let out = t
        .envmod()
        .args([
            "create",
            "--module-system",
            ms.flag(),
            "--site-python",
            common::MODULE_PYTHON,
            "--description",
            description,
            "-p",
        ])
        .arg(&prefix)
        .output()
        .unwrap();
    ok(&out);
    let file = match ms {
        Ms::Lmod => t.module_root().join("hostile/py3.11.lua"),
        Ms::Tcl => t.module_root().join("hostile/py3.11"),
    };
    assert!(file.is_file());

    // The file alone, read by the bare language interpreter with the module commands stubbed.
    let bare = match ms {
        Ms::Lmod => {
            let stub = t.path().join("stub.lua");
            std::fs::write(
                &stub,
                "function whatis(s) print('W:' .. s) end\nfunction help(s) end\nfunction mode() return 'load' end\n\
                 function isloaded() return false end\nfunction depends_on() end\nfunction family() end\n\
                 function extensions() end\nfunction pathJoin(a, b) return a .. '/' .. b end\n\
                 function prepend_path(k, v) print('P:' .. k .. '=' .. v) end\n\
                 function pushenv(k, v) print('E:' .. k .. '=' .. v) end\nfunction LmodError(s) error(s) end\n\
                 dofile(arg[1])\n",
            )
            .unwrap();
            std::process::Command::new("lua5.3").arg(&stub).arg(&file).current_dir(t.path()).output()
        }
        Ms::Tcl => {
            let stub = t.path().join("stub.tcl");
            std::fs::write(
                &stub,
                "proc module-whatis {s} { puts \"W:$s\" }\nproc conflict {args} {}\nproc family {args} {}\n\
                 proc module-info {args} { return 0 }\nproc is-loaded {args} { return 0 }\nproc depends-on {args} {}\n\
                 proc prepend-path {k v} { puts \"P:$k=$v\" }\nproc pushenv {k v} { puts \"E:$k=$v\" }\n\
                 source [lindex $argv 0]\n",
            )
            .unwrap();
            std::process::Command::new("tclsh").arg(&stub).arg(&file).current_dir(t.path()).output()
        }
    }
    .expect("lua5.3 and tclsh are installed by tests/provision.sh");
    let bare = ok(&bare);
    assert!(
        bare.contains(&format!("E:CONDA_PREFIX={}\n", prefix.display())),
        "{bare}"
    );
    assert!(
        bare.contains(&format!("W:Description: {description}\n")),
        "{bare}"
    );

    // And loaded for real.
    let script = format!(
        "module use {}\nmodule load hostile/py3.11 || exit 9\nprintf '%s\\n' \"$CONDA_PREFIX\"\nprintf '%s\\n' \"${{PATH%%:*}}\"\nmodule whatis hostile/py3.11 2>&1\nmodule unload hostile",
        sh(&t.module_root().display().to_string())
    );
    let text = ok(&t.module_shell(ms, &script));
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        prefix.display().to_string(),
        "CONDA_PREFIX changed"
    );
    assert_eq!(
        lines.next().unwrap(),
        prefix.join("bin").display().to_string(),
        "PATH entry changed"
    );
    assert!(text.contains(description), "description changed:\n{text}");

    for pwned in ["PWNED", "PWNED2", "PWNED3", "PWNED4"] {
        for dir in [
            t.path(),
            &t.home,
            Path::new("/tmp"),
            &prefix,
            prefix.parent().unwrap(),
        ] {
            assert!(
                !dir.join(pwned).exists(),
                "{pwned} was created in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn sticky_ignored_and_envmod_modules_are_not_recorded() {
    let t = TestEnv::new();
    t.set_site_config("ignore_modules: ['openmpi/*']\n");
    ok(&t.module_shell(Ms::Tcl, "envmod create -q -n base"));
    let root = sh(&t.module_root().display().to_string());
    let out = t.module_shell(
        Ms::Tcl,
        &format!(
            "module load --tag=sticky gcc/12.2\nmodule load openmpi/4.1 python/3.11\nmodule use {root}\nmodule load base/py3.11\nenvmod create -n derived"
        ),
    );
    ok(&out);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.envs_dir().join("derived/.envmod/manifest.json")).unwrap(),
    )
    .unwrap();
    let recorded: Vec<&str> = manifest["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(recorded, ["python/3.11"], "{manifest:#}");
    assert!(
        stderr(&out).contains("not recording base/py3.11"),
        "{}",
        stderr(&out)
    );
    // The env sits on the real site Python, not on the loaded env's.
    let link = std::fs::read_link(t.envs_dir().join("derived/bin/python")).unwrap();
    assert!(!link.starts_with(t.envs_dir()), "{link:?}");
}

#[test]
fn sticky_lmod_modules_are_not_recorded() {
    let t = TestEnv::new();
    let sticky = t.site_modules.join("site/base.lua");
    std::fs::create_dir_all(sticky.parent().unwrap()).unwrap();
    std::fs::write(
        &sticky,
        "add_property(\"lmod\", \"sticky\")\nsetenv(\"SITE_BASE\", \"1\")\n",
    )
    .unwrap();
    ok(&t.module_shell(
        Ms::Lmod,
        "module load site/base gcc/12.2\nenvmod create -q -n withbase",
    ));
    let text = std::fs::read_to_string(t.module_root().join("withbase/py3.11.lua")).unwrap();
    assert!(
        text.contains("local built_with = { \"gcc/12.2\" }"),
        "{text}"
    );
}

#[test]
fn module_command_rewrites_from_the_manifest_and_follows_site_templates() {
    let t = TestEnv::new();
    ok(&t.module_shell(Ms::Lmod, "module load gcc/12.2\nenvmod create -q -n regen"));
    let lua = t.module_root().join("regen/py3.11.lua");
    let original = std::fs::read_to_string(&lua).unwrap();

    // The site overrides the Lmod template; `envmod module` picks it up.
    let templates = t.path().join("templates");
    std::fs::create_dir_all(templates.join("lmod")).unwrap();
    let builtin =
        std::fs::read_to_string(Path::new(common::REPO).join("templates/lmod/modulefile.lua"))
            .unwrap();
    std::fs::write(
        templates.join("lmod/modulefile.lua"),
        builtin.replace(
            "pushenv(\"PYTHONNOUSERSITE\", \"1\")",
            "pushenv(\"PYTHONNOUSERSITE\", \"1\")\nsetenv(\"SITE_MARK\", {{ env_name | lua }})",
        ),
    )
    .unwrap();
    t.set_site_config(&format!("templates_dir: {}\n", templates.display()));
    ok(&t.envmod().args(["module", "-n", "regen"]).output().unwrap());
    let rewritten = std::fs::read_to_string(&lua).unwrap();
    assert_ne!(original, rewritten);
    assert!(
        rewritten.contains("setenv(\"SITE_MARK\", \"regen\")"),
        "{rewritten}"
    );
    assert!(
        rewritten.contains("\"gcc/12.2\""),
        "recorded modules lost:\n{rewritten}"
    );
    let out = t.module_shell(
        Ms::Lmod,
        &format!(
            "module use {}\nmodule load regen/py3.11\nprintenv SITE_MARK",
            sh(&t.module_root().display().to_string())
        ),
    );
    assert_eq!(ok(&out).trim(), "regen");

    // A broken site template is an error that names the file and changes nothing.
    std::fs::write(
        templates.join("lmod/modulefile.lua"),
        "{{ no_such_variable }}",
    )
    .unwrap();
    let out = t.envmod().args(["module", "-n", "regen"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&templates.join("lmod/modulefile.lua").display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&lua).unwrap(), rewritten);
    t.set_site_config("");

    // Switching to Tcl writes the Tcl file and removes the Lua one, so Lmod never sees both.
    ok(&t
        .envmod()
        .args(["module", "-n", "regen", "--module-system", "tcl"])
        .output()
        .unwrap());
    assert!(!lua.exists());
    let tcl = t.module_root().join("regen/py3.11");
    assert!(
        std::fs::read_to_string(&tcl)
            .unwrap()
            .starts_with("#%Module")
    );
    let out = t.module_shell(
        Ms::Tcl,
        &format!(
            "module use {}\nmodule load regen/py3.11\necho \"$LOADEDMODULES\"",
            sh(&t.module_root().display().to_string())
        ),
    );
    assert!(ok(&out).contains("gcc/12.2:regen/py3.11"));
}

#[test]
fn parallel_creates_of_one_name_make_exactly_one_env() {
    let t = TestEnv::new();
    let outputs = t.run_at_once(
        8,
        &[
            "create",
            "-n",
            "same",
            "--module-system",
            "lmod",
            "--site-python",
            common::MODULE_PYTHON,
        ],
    );
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "{} creates succeeded", winners);
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let err = stderr(o);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            err.contains("being changed by another envmod process")
                || err.contains("already exists"),
            "unclear error: {err}"
        );
    }
    let entries: Vec<String> = std::fs::read_dir(t.envs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".envmod-lock"))
        .collect();
    assert_eq!(entries, ["same"]);
    assert!(t.envs_dir().join("same/.envmod/manifest.json").is_file());
}

/// A conda-env-mod module puts an old conda environment's `bin` first on PATH (and sets
/// CONDA_PREFIX): its python3 is that environment's, not the site's. `create` refuses to
/// build on it, naming the module and both fixes, on both module systems; `--site-python`
/// builds on it when that is what the user wants.
#[test]
fn an_old_conda_envs_python_is_not_taken_for_the_sites() {
    let t = TestEnv::new();
    let old = t.path().join("old-env");
    std::fs::create_dir_all(old.join("bin")).unwrap();
    std::fs::create_dir_all(old.join("conda-meta")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3.11", old.join("bin/python3")).unwrap();
    let mods = t.path().join("old-mods/conda-env");
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::write(
        mods.join("old-py3.11.7"),
        format!(
            "#%Module\nprepend-path PATH {bin}\nsetenv CONDA_PREFIX {old}\n",
            bin = old.join("bin").display(),
            old = old.display()
        ),
    )
    .unwrap();
    let use_mods = format!(
        "module use {}",
        sh(&t.path().join("old-mods").display().to_string())
    );
    for ms in Ms::BOTH {
        let out = t.module_shell(
            ms,
            &format!("{use_mods}\nmodule load conda-env/old-py3.11.7\nenvmod create -n new"),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{ms:?}: {err}");
        assert!(
            err.contains("module conda-env/old-py3.11.7")
                && err.contains("module unload conda-env/old-py3.11.7")
                && err.contains("--site-python PATH"),
            "{ms:?}: {err}"
        );
        assert!(
            !t.envs_dir().join("new").exists(),
            "{ms:?}: an environment was made"
        );
    }
    // Named, it is the user's choice.
    let out = t.module_shell(
        Ms::Lmod,
        &format!(
            "{use_mods}\nmodule load conda-env/old-py3.11.7\nenvmod create -n named --site-python {}",
            sh(&old.join("bin/python3").display().to_string())
        ),
    );
    ok(&out);
}

/// doctor names the loaded module that sets PYTHONPATH, and blames a start-up file only
/// when the variable is set there, on both module systems.
#[test]
fn doctor_names_who_set_pythonpath() {
    let t = TestEnv::new();
    let mods = t.path().join("py-mods/py-mpi4py");
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::write(
        mods.join("3.1"),
        "#%Module\nprepend-path PYTHONPATH /opt/py-mpi4py/3.1/lib/python3.11/site-packages\n",
    )
    .unwrap();
    let use_mods = format!(
        "module use {}",
        sh(&t.path().join("py-mods").display().to_string())
    );
    let finding = |out: &std::process::Output| -> serde_json::Value {
        let all: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "pythonpath")
            .cloned()
            .unwrap_or_else(|| panic!("no pythonpath finding: {all:#}"))
    };
    for ms in Ms::BOTH {
        let out = t.module_shell(
            ms,
            &format!("{use_mods}\nmodule load py-mpi4py/3.1\nenvmod doctor --json"),
        );
        let f = finding(&out);
        let (problem, fix) = (f["problem"].as_str().unwrap(), f["fix"].as_str().unwrap());
        assert!(problem.contains("by module py-mpi4py/3.1"), "{ms:?}: {f}");
        assert!(fix.contains("module unload py-mpi4py/3.1"), "{ms:?}: {f}");
        assert!(!fix.contains("bashrc"), "{ms:?}: ~/.bashrc blamed: {f}");
    }
    std::fs::write(t.home.join(".bashrc"), "export PYTHONPATH=/old/lib\n").unwrap();
    let out = t.module_shell_with(
        Ms::Lmod,
        "envmod doctor --json",
        &[("PYTHONPATH", "/old/lib")],
    );
    let f = finding(&out);
    assert!(
        f["fix"].as_str().unwrap().contains("~/.bashrc")
            && !f["problem"].as_str().unwrap().contains("by module"),
        "{f}"
    );
}

#[test]
fn doctor_blames_a_start_up_file_for_ld_library_path_and_never_the_sites_modules() {
    let t = TestEnv::new();
    let checks = |out: &std::process::Output| -> Vec<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "ld-library-path")
            .cloned()
            .collect()
    };
    for ms in Ms::BOTH {
        let out = t.module_shell(ms, "module load openmpi/4.1.6\nenvmod doctor --json");
        assert!(
            checks(&out).is_empty(),
            "{ms:?}: the MPI module's LD_LIBRARY_PATH is reported: {}",
            stdout(&out)
        );
    }
    std::fs::write(
        t.home.join(".bashrc"),
        "export LD_LIBRARY_PATH=/old/lib:$LD_LIBRARY_PATH\n",
    )
    .unwrap();
    for ms in Ms::BOTH {
        let out = t.module_shell(
            ms,
            "export LD_LIBRARY_PATH=/old/lib\nmodule load openmpi/4.1.6\nenvmod doctor --json",
        );
        let found = checks(&out);
        assert_eq!(found.len(), 1, "{ms:?}: {}", stdout(&out));
        let (problem, fix) = (
            found[0]["problem"].as_str().unwrap(),
            found[0]["fix"].as_str().unwrap(),
        );
        assert!(
            problem.contains("set in ~/.bashrc as well as by module openmpi/4.1.6"),
            "{ms:?}: {problem}"
        );
        assert!(fix.contains("from ~/.bashrc"), "{ms:?}: {fix}");
    }
}
