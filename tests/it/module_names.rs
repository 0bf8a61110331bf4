//! `module_name_template`: a site that keeps conda-env-mod's module names
//! (`conda-env/NAME-pyX.Y.Z`) gets them for the environments `create` makes, as for the ones
//! `adopt` takes over; the name is recorded, so later commands keep it whatever the config
//! says by then.

use crate::common;

use common::{MODULE_PYTHON, Ms, TestEnv, ok, sh, stderr, stdout};

#[test]
fn create_names_the_module_by_the_sites_template_and_later_commands_keep_it() {
    let t = TestEnv::with_channel();
    let config = std::fs::read_to_string(&t.site_config).unwrap();
    t.set_site_config(&format!(
        "{config}module_name_template: \"conda-env/{{name}}-py{{python}}\"\n"
    ));
    let version = String::from_utf8(
        std::process::Command::new(MODULE_PYTHON)
            .args(["-c", "import platform; print(platform.python_version())"])
            .output()
            .expect("the site Python runs")
            .stdout,
    )
    .unwrap();
    let module = format!("conda-env/proj-py{}", version.trim());
    let modulefile = t.module_root().join(format!("{module}.lua"));

    // A dry run, on a terminal, names the file it would write.
    let pty = t.run_on_pty(&[
        "create",
        "-n",
        "proj",
        "--site-python",
        MODULE_PYTHON,
        "--module-system",
        "lmod",
        "--dry-run",
        "alpha",
    ]);
    let shown = stdout(&pty);
    assert!(pty.status.success(), "{shown}");
    assert!(shown.contains(&*modulefile.to_string_lossy()), "{shown}");

    let out = t.run(&[
        "create",
        "-n",
        "proj",
        "--site-python",
        MODULE_PYTHON,
        "--module-system",
        "lmod",
        "alpha",
    ]);
    let said = ok(&out) + &stderr(&out);
    assert!(said.contains(&module), "{said}");
    assert!(modulefile.is_file(), "no {}:\n{said}", modulefile.display());
    assert!(
        !t.module_root().join("proj").exists(),
        "a modulefile under the built-in name as well"
    );
    let manifest =
        std::fs::read_to_string(t.envs_dir().join("proj/.envmod/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"module_template\": \"conda-env/{name}-py{python}\""),
        "{manifest}"
    );

    let load = format!(
        "module use {}\nmodule load {module} || exit 9\npython -c 'import alpha; print(alpha.VERSION)'",
        sh(&t.module_root().display().to_string())
    );
    assert_eq!(ok(&t.module_shell(Ms::Lmod, &load)).trim(), "2.0");

    // The site's template changes; the environment keeps the name job scripts use.
    t.set_site_config(&config);
    ok(&t.run(&["install", "-q", "-n", "proj", "beta"]));
    ok(&t.run(&["module", "-n", "proj"]));
    assert!(modulefile.is_file(), "the module was renamed");
    assert!(!t.module_root().join("proj").exists(), "a second module");
    let load = format!(
        "module use {}\nmodule load {module} || exit 9\npython -c 'import beta; print(\"ok\")'",
        sh(&t.module_root().display().to_string())
    );
    assert_eq!(ok(&t.module_shell(Ms::Lmod, &load)).trim(), "ok");
}
