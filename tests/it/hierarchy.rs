//! Hierarchical module trees (Core → Compiler → MPI) on real Lmod and real Environment
//! Modules: envmod records, checks and rebuilds a stack the way the module system loads it.

use crate::common;

use common::{Ms, TestEnv, hierarchy::Site, ok, sh, stderr, stdout};

#[test]
fn the_site_trees_load_as_sites_have_them() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        let out = t.tree_shell(
            ms,
            Site::One,
            "module load gcc/12.2 openmpi/4.1 hdf5/1.14 py-mpi4py/3.1 intel/oneapi/2023.1 || exit 3\n\
             echo \"loaded=$LOADEDMODULES\"\necho \"mpi=$FAKE_MPI_COMPILER hdf5=$HDF5_DIR\"\n\
             module purge\necho \"after=$LOADEDMODULES\"",
        );
        let text = ok(&out);
        assert!(
            text.contains(
                "loaded=StdEnv/2024:gcc/12.2:openmpi/4.1:hdf5/1.14:py-mpi4py/3.1:intel/oneapi/2023.1"
            ),
            "{ms:?}: {text}\n{}",
            stderr(&out)
        );
        assert!(
            text.contains("mpi=gcc-12.2 hdf5=/opt/site/gcc-12.2/hdf5/1.14"),
            "{ms:?}: {text}"
        );
        assert!(
            text.contains("after=StdEnv/2024\n"),
            "{ms:?}: StdEnv is not sticky: {text}"
        );
        let two = t.tree_shell(ms, Site::Two, "module load gcc/12.3 openmpi/4.1.6 hdf5/1.14.3 || exit 3\necho \"loaded=$LOADEDMODULES\"");
        assert!(
            stdout(&two).contains("loaded=StdEnv/2024:gcc/12.3:openmpi/4.1.6:hdf5/1.14.3"),
            "{ms:?}: {}\n{}",
            stdout(&two),
            stderr(&two)
        );
    }
}

// --- Recording, checking and rebuilding a stack ---------------------------------------------

fn module_use(t: &TestEnv) -> String {
    format!("module use {}", sh(&t.module_root().display().to_string()))
}

/// doctor's findings of one check, from `--json`.
fn findings(out: &std::process::Output, check: &str) -> Vec<serde_json::Value> {
    let all: serde_json::Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}\n{}", stdout(out), stderr(out)));
    all.as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .cloned()
        .collect()
}

#[test]
fn create_f_at_a_second_site_loads_the_mapped_stack_from_a_fresh_shell() {
    for ms in Ms::BOTH {
        let one = TestEnv::new();
        let file = one.path().join("env.yml");
        let out = one.tree_shell(
            ms,
            Site::One,
            &format!(
                "module load gcc/12.2 openmpi/4.1 hdf5/1.14 python/3.11\nenvmod create -n hier\nenvmod export -n hier -o {}",
                sh(&file.display().to_string())
            ),
        );
        ok(&out);

        let two = TestEnv::new();
        let map = two.path().join("map.yml");
        std::fs::write(
            &map,
            "gcc/12.2: gcc/12.3\nopenmpi/4.1: openmpi/4.1.6\nhdf5/1.14: hdf5/1.14.3\n",
        )
        .unwrap();
        // A fresh login at site two: only StdEnv loaded, and /usr/bin's python3 first on PATH.
        let out = two.tree_shell(
            ms,
            Site::Two,
            &format!(
                "envmod create -f {} --module-map {}",
                sh(&file.display().to_string()),
                sh(&map.display().to_string())
            ),
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{ms:?}: create -f failed:\n{err}");
        assert!(
            err.contains("Recorded modules: gcc/12.3 openmpi/4.1.6 hdf5/1.14.3 python/3.11"),
            "{ms:?}: {err}"
        );
        let out = two.tree_shell(
            ms,
            Site::Two,
            &format!(
                "{}\nmodule load hier/py3.11 || exit 5\necho \"loaded=$LOADEDMODULES\"\necho \"gcc=$FAKE_GCC_VERSION hdf5=$HDF5_DIR\"\npython -c 'import sys; print(\"base=\" + sys._base_executable)'",
                module_use(&two)
            ),
        );
        let text = ok(&out);
        assert!(
            text.contains(
                "loaded=StdEnv/2024:gcc/12.3:openmpi/4.1.6:hdf5/1.14.3:python/3.11:hier/py3.11"
            ),
            "{ms:?}: {text}\n{}",
            stderr(&out)
        );
        assert!(
            text.contains("gcc=12.3 hdf5=/opt/site/gcc-12.3/hdf5/1.14.3"),
            "{ms:?}: {text}"
        );
        // Built on the Python of the recorded python/3.11 module, not /usr/bin's python3.
        let module_python = two
            .tree(ms, Site::Two)
            .parent()
            .unwrap()
            .join(common::hierarchy::PYTHON_PREFIX)
            .join("bin/python3.11");
        assert!(
            text.contains(&format!("base={}", module_python.display())),
            "{ms:?}: the env is not built on python/3.11's interpreter ({}): {text}",
            module_python.display()
        );
    }
}

#[test]
fn create_f_asks_for_missing_map_lines_and_names_what_a_wrong_line_loads() {
    let ms = Ms::Lmod;
    let one = TestEnv::new();
    let file = one.path().join("env.yml");
    ok(&one.tree_shell(
        ms,
        Site::One,
        &format!(
            "module load gcc/12.2 openmpi/4.1 hdf5/1.14\nenvmod create -n hier\nenvmod export -n hier -o {}",
            sh(&file.display().to_string())
        ),
    ));
    let two = TestEnv::new();
    let f = sh(&file.display().to_string());
    let out = two.tree_shell(ms, Site::Two, &format!("envmod create -f {f}"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("do not load here: gcc/12.2 openmpi/4.1 hdf5/1.14"),
        "{err}"
    );
    assert!(
        err.contains("gcc/12.2: <module here>") && err.contains("hdf5/1.14: <module here>"),
        "{err}"
    );
    // The map names gcc and openmpi rightly, hdf5 wrongly: only hdf5 is reported, with what
    // the module system said, and no map line is asked for again.
    let map = two.path().join("map.yml");
    std::fs::write(
        &map,
        "gcc/12.2: gcc/12.3\nopenmpi/4.1: openmpi/4.1.6\nhdf5/1.14: hdf5/1.14.9\n",
    )
    .unwrap();
    let out = two.tree_shell(
        ms,
        Site::Two,
        &format!(
            "envmod create -f {f} --module-map {}",
            sh(&map.display().to_string())
        ),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("do not load here: hdf5/1.14.9;"), "{err}");
    assert!(
        err.contains("hdf5/1.14.9 (module_map sends hdf5/1.14 there)"),
        "{err}"
    );
    assert!(
        !err.contains("<module here>"),
        "asks again for given lines: {err}"
    );
    assert!(!two.envs_dir().join("hier").exists(), "half-built env left");
}

#[test]
fn a_stack_listed_after_a_swap_is_recorded_in_the_order_it_loads() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        let out = t.tree_shell(
            ms,
            Site::One,
            "module load gcc/13.1 openmpi/4.1\nmodule swap gcc gcc/12.2\necho \"listed=$LOADEDMODULES\"\nenvmod create -n after-swap",
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{ms:?}: {err}");
        let listed = stdout(&out);
        if listed.contains("listed=StdEnv/2024:openmpi/4.1:gcc/12.2") {
            assert!(
                err.contains("recording them in the order that does, gcc/12.2 openmpi/4.1"),
                "{ms:?}: no word of the new order: {err}"
            );
        }
        let out = t.tree_shell(
            ms,
            Site::One,
            &format!(
                "{}\nmodule load after-swap/py3.11 || exit 5\necho \"loaded=$LOADEDMODULES\"\necho \"mpi=$FAKE_MPI_COMPILER\"",
                module_use(&t)
            ),
        );
        let text = ok(&out);
        assert!(
            text.contains("loaded=StdEnv/2024:gcc/12.2:openmpi/4.1:after-swap/py3.11")
                && text.contains("mpi=gcc-12.2"),
            "{ms:?} (this shell listed {listed}): {text}\n{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_stack_that_does_not_load_from_scratch_is_refused() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        let extra = t.path().join("extra");
        std::fs::create_dir_all(extra.join("mine")).unwrap();
        std::fs::write(extra.join("mine/1"), "#%Module1.0\nsetenv MINE 1\n").unwrap();
        let e = sh(&extra.display().to_string());
        let out = t.tree_shell(
            ms,
            Site::One,
            &format!(
                "module use {e}\nmodule load gcc/12.2 mine/1\nrm {}\nenvmod create -n lost",
                sh(&extra.join("mine/1").display().to_string())
            ),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{ms:?}: {err}");
        assert!(
            err.contains("the loaded module mine/1 does not load in a new shell"),
            "{ms:?}: {err}"
        );
        assert!(err.contains("nothing was created"), "{ms:?}: {err}");
        assert!(!t.envs_dir().join("lost").exists(), "{ms:?}: env left");
        assert!(
            std::fs::read_dir(t.module_root()).map_or(true, |mut d| d.next().is_none()),
            "{ms:?}: a modulefile was written"
        );
    }
}

#[test]
fn doctor_checks_a_hierarchical_stack_by_loading_it() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        ok(&t.tree_shell(
            ms,
            Site::One,
            "module load gcc/12.2 openmpi/4.1 hdf5/1.14\nenvmod create -n hier",
        ));
        let out = t.tree_shell(ms, Site::One, "envmod doctor --json");
        let found = findings(&out, "modules");
        assert!(
            found.is_empty(),
            "{ms:?}: a clean env is reported: {found:#?}"
        );
        let plain = t.tree_shell(ms, Site::One, "envmod doctor");
        assert!(
            stdout(&plain).contains("no problems found"),
            "{ms:?}: {}\n{}",
            stdout(&plain),
            stderr(&plain)
        );

        // The site removes hdf5: doctor names it, and only it.
        let core = t.tree(ms, Site::One);
        let hdf5 = core.parent().unwrap().join("MPI/gcc/12.2/openmpi/4.1/hdf5");
        std::fs::remove_dir_all(&hdf5).unwrap();
        let out = t.tree_shell(ms, Site::One, "envmod doctor --json");
        let found = findings(&out, "modules");
        assert_eq!(found.len(), 1, "{ms:?}: {found:#?}");
        let problem = found[0]["problem"].as_str().unwrap();
        assert!(
            problem.contains("do not load in a new shell: hdf5/1.14 (")
                && !problem.contains("openmpi"),
            "{ms:?}: {problem}"
        );
    }
}

#[test]
fn ignore_modules_names_a_multi_part_module_by_its_first_part() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        t.set_site_config("ignore_modules: [intel]\n");
        let out = t.tree_shell(
            ms,
            Site::One,
            "module load gcc/12.2 intel/oneapi/2023.1\nenvmod create -n ign",
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{ms:?}: {err}");
        assert!(
            err.contains("Recorded modules: gcc/12.2\n"),
            "{ms:?}: {err}"
        );
    }
}

#[test]
fn doctor_names_the_tree_module_that_sets_pythonpath() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        let out = t.tree_shell(
            ms,
            Site::One,
            "module load gcc/12.2 openmpi/4.1 py-mpi4py/3.1\nenvmod doctor --json",
        );
        let found = findings(&out, "pythonpath");
        assert_eq!(found.len(), 1, "{ms:?}: {}", stdout(&out));
        assert!(
            found[0]["problem"]
                .as_str()
                .unwrap()
                .contains("by module py-mpi4py/3.1")
                && !found[0]["fix"].as_str().unwrap().contains("bashrc"),
            "{ms:?}: {:#}",
            found[0]
        );
    }
}

// ---------------------------------------------------------------------------------------
// A compiler swap with an env loaded: the env never stays active on the other stack.
// ---------------------------------------------------------------------------------------

/// Create `hier` on gcc/12.2 openmpi/4.1 hdf5/1.14, load it in a new login, swap gcc to
/// 13.1, and return what the user would look at: stdout (the `key=value` lines) and stderr.
fn swap_gcc_with_the_env_loaded(ms: Ms) -> (TestEnv, String, String) {
    let t = TestEnv::new();
    ok(&t.tree_shell(
        ms,
        Site::One,
        "module load gcc/12.2 openmpi/4.1 hdf5/1.14\nenvmod create -n hier",
    ));
    let out = t.tree_shell(
        ms,
        Site::One,
        &format!(
            "module use {}\nmodule load hier/py3.11 || exit 9\necho \"before=$LOADEDMODULES\"\n\
             module swap gcc gcc/13.1\necho \"status=$?\"\necho \"loaded=$LOADEDMODULES\"\n\
             echo \"path=$PATH\"\necho \"conda=${{CONDA_PREFIX-unset}}\"",
            common::sh(&t.module_root().display().to_string())
        ),
    );
    (t, stdout(&out), stderr(&out))
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    let key = format!("{key}=");
    text.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
}

/// Assert what a user checks after the swap; returns what the module system printed.
fn assert_not_active_after_swap(ms: Ms) -> String {
    let (t, text, err) = swap_gcc_with_the_env_loaded(ms);
    assert!(
        line(&text, "before").split(':').any(|m| m == "hier/py3.11"),
        "{ms:?}: the env did not load:\n{text}\n{err}"
    );
    let loaded: Vec<&str> = line(&text, "loaded").split(':').collect();
    assert!(
        loaded.contains(&"gcc/13.1"),
        "{ms:?}: the swap did not happen: {loaded:?}\n{err}"
    );
    let bin = t.envs_dir().join("hier/bin").display().to_string();
    assert!(
        !loaded.contains(&"hier/py3.11"),
        "{ms:?}: the env stayed loaded on gcc/13.1: {loaded:?}\n{err}"
    );
    assert!(
        !line(&text, "path").split(':').any(|p| p == bin),
        "{ms:?}: the env's bin is still on PATH:\n{text}"
    );
    assert_eq!(line(&text, "conda"), "unset", "{ms:?}: CONDA_PREFIX kept");
    assert!(
        err.contains("module swap gcc gcc/12.2"),
        "{ms:?}: no `module swap` back in the message:\n{err}"
    );
    err
}

#[test]
fn a_compiler_swap_unloads_the_env_and_names_the_swap_back_tcl() {
    let err = assert_not_active_after_swap(Ms::Tcl);
    assert!(
        err.contains("hier/py3.11 was built with gcc/12.2, not gcc/13.1: the swap unloads it."),
        "the message does not name the swap:\n{err}"
    );
}

/// envmod's Lmod hook (share/lmod/SitePackage.lua), installed as docs/admin.md says, with
/// `LMOD_PACKAGE_PATH`.
fn lmod_hook() -> (&'static str, String) {
    (
        "LMOD_PACKAGE_PATH",
        std::path::Path::new(common::REPO)
            .join("share/lmod")
            .display()
            .to_string(),
    )
}

#[test]
fn a_compiler_swap_is_refused_while_the_env_is_loaded_lmod() {
    let ms = Ms::Lmod;
    let t = TestEnv::new();
    ok(&t.tree_shell(
        ms,
        Site::One,
        "module load gcc/12.2 openmpi/4.1 hdf5/1.14\nenvmod create -n hier",
    ));
    let (k, v) = lmod_hook();
    let out = t.tree_shell_with(
        ms,
        Site::One,
        &format!(
            "module use {}\nmodule load hier/py3.11 || exit 9\n\
             module swap gcc gcc/13.1\necho \"status=$?\"\necho \"loaded=$LOADEDMODULES\"\n\
             echo \"conda=${{CONDA_PREFIX-unset}} mpi=$FAKE_MPI_COMPILER\"\n\
             module unload hdf5\necho \"unload=$?\"\n\
             module unload hier/py3.11 && module load gcc/13.1\necho \"after=$? $LOADEDMODULES\"",
            common::sh(&t.module_root().display().to_string())
        ),
        &[(k, &v)],
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert_ne!(
        line(&text, "status"),
        "0",
        "the swap went through:\n{text}\n{err}"
    );
    assert_eq!(
        line(&text, "loaded"),
        "StdEnv/2024:gcc/12.2:openmpi/4.1:hdf5/1.14:hier/py3.11",
        "the shell changed:\n{err}"
    );
    let prefix = t.envs_dir().join("hier").display().to_string();
    assert_eq!(line(&text, "conda"), format!("{prefix} mpi=gcc-12.2"));
    assert!(
        err.contains("hier/py3.11 was built with gcc/12.2, and `module swap` would leave it loaded on gcc/13.1; nothing was changed.")
            && err.contains("run `module unload hier/py3.11` first"),
        "the refusal does not name the env, the stack and the fix:\n{text}\n{err}"
    );
    assert_ne!(
        line(&text, "unload"),
        "0",
        "hdf5 was unloaded under the env:\n{err}"
    );
    assert!(err.contains("would leave it loaded without it"), "{err}");
    assert_eq!(
        line(&text, "after"),
        "0 StdEnv/2024:gcc/13.1",
        "the fix the message names does not work:\n{err}"
    );
}

/// Without envmod's hook, Lmod 8.6 keeps the env loaded on gcc/13.1 (docs/admin.md, "What a
/// compiler swap does to a loaded environment"): this is what the hook is for.
#[test]
fn without_the_hook_lmod_keeps_the_env_loaded_on_the_new_compiler() {
    let (_t, text, err) = swap_gcc_with_the_env_loaded(Ms::Lmod);
    let loaded: Vec<&str> = line(&text, "loaded").split(':').collect();
    assert!(
        loaded.contains(&"gcc/13.1") && loaded.contains(&"hier/py3.11"),
        "Lmod now handles the swap itself; the hook and docs/admin.md can say so: {loaded:?}\n{err}"
    );
}
