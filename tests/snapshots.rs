//! One snapshot per modulefile variant (Lmod/Tcl × with/without recorded modules), so a
//! reviewer sees exactly what users will load.

use std::path::PathBuf;

use envmod::{
    commands::module,
    env::manifest::{MANIFEST_VERSION, Manifest, PythonInfo, PythonMode},
    render::{Renderer, context::ModulefileOptions},
    site::{ModuleSystem, modules::LoadedModule, python::SitePython},
};

fn manifest(with_modules: bool) -> Manifest {
    let modules = if with_modules {
        ["gcc/12.2", "openmpi/4.1", "python/3.11"]
            .iter()
            .map(|m| LoadedModule {
                full_name: m.to_string(),
                file: Some(format!("/apps/modules/{m}")),
            })
            .collect()
    } else {
        Vec::new()
    };
    Manifest {
        manifest_version: MANIFEST_VERSION,
        envmod_version: "0.1.0".into(),
        name: "myenv".parse().unwrap(),
        prefix: PathBuf::from("/home/alice/.envmod/envs/myenv"),
        created: "2026-01-15T09:30:00Z".parse().unwrap(),
        description: None,
        python: PythonInfo {
            mode: PythonMode::Site,
            site: SitePython {
                executable: PathBuf::from("/apps/python/3.11.9/bin/python3.11"),
                version: "3.11.9".into(),
                major: 3,
                minor: 11,
                pip: true,
            },
        },
        modules,
        specs: Vec::new(),
        channels: Vec::new(),
        module: None,
        by_prefix: false,
    }
}

fn render(system: ModuleSystem, with_modules: bool) -> String {
    let renderer = Renderer::new(None).unwrap();
    let options = ModulefileOptions {
        allow_stacking: false,
        ld_library_path: false,
    };
    module::render(
        &manifest(with_modules),
        system,
        &renderer,
        &options,
        &Default::default(),
    )
    .unwrap()
    .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
}

#[test]
fn lmod_with_modules() {
    insta::assert_snapshot!(render(ModuleSystem::Lmod, true));
}

#[test]
fn lmod_without_modules() {
    insta::assert_snapshot!(render(ModuleSystem::Lmod, false));
}

#[test]
fn tcl_with_modules() {
    insta::assert_snapshot!(render(ModuleSystem::Tcl, true));
}

#[test]
fn tcl_without_modules() {
    insta::assert_snapshot!(render(ModuleSystem::Tcl, false));
}
