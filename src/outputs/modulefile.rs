//! The modulefile: `<module_root>/NAME/pyX.Y.lua` (Lmod) or `<module_root>/NAME/pyX.Y`
//! (Tcl). Its first lines say that envmod wrote it and for which prefix, which is how envmod
//! knows a modulefile is its own to replace or remove, and whose it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{
    conda::activation::EnvVar,
    error::UserError,
    fs,
    manifest::{Manifest, ModuleInfo, PythonMode},
    outputs::{Output, Planned, PrefixFacts, Unsound},
    render::Renderer,
    site::{
        ModuleSystem,
        modules::{GENERATED_MARKER, OWNER_TAG},
    },
};

/// Site choices that shape every modulefile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModulefileOptions {
    pub(crate) allow_stacking: bool,
    pub(crate) ld_library_path: bool,
}

/// Not `envmod`: Environment Modules treats a family name as a conflict with the module of
/// that name, which is envmod's own tool module at many sites.
const FAMILY: &str = "envmod_env";

/// How many bytes of a modulefile's head carry its marker and owner lines.
const HEAD: usize = 4096;

pub(crate) struct Modulefile<'a> {
    pub(crate) renderer: &'a Renderer,
    pub(crate) options: ModulefileOptions,
}

/// Where the modulefile for `manifest` goes under `root`.
pub(crate) fn path_for(manifest: &Manifest, system: ModuleSystem, root: &Path) -> PathBuf {
    let module = manifest.module_name();
    let dir = root.join(module.name.as_str());
    match system {
        ModuleSystem::Lmod => dir.join(format!("{}.lua", module.version)),
        ModuleSystem::Tcl => dir.join(&module.version),
    }
}

/// The module an environment gets when written for `system` under `root`.
pub(crate) fn info_for(manifest: &Manifest, system: ModuleSystem, root: &Path) -> ModuleInfo {
    ModuleInfo {
        system,
        root: root.to_path_buf(),
        name: manifest.module_name(),
        file: path_for(manifest, system, root),
    }
}

/// The first field of the manifest's module record that is not what [`info_for`] makes
/// of its root: a forged `file` would make a command remove one modulefile and write
/// another, anywhere.
pub(crate) fn unsound(manifest: &Manifest) -> Option<Unsound> {
    let info = manifest.module.as_ref()?;
    let expected = manifest.module_name();
    if info.name != expected {
        return Some(Unsound {
            field: "module.name",
            detail: format!(
                "is {}, but the environment's module is {expected}",
                info.name
            ),
        });
    }
    if !super::is_plain_absolute(&info.root) {
        return Some(Unsound {
            field: "module.root",
            detail: format!(
                "is {:?}, not an absolute path without `.` or `..`",
                info.root
            ),
        });
    }
    let file = path_for(manifest, info.system, &info.root);
    if info.file != file {
        return Some(Unsound {
            field: "module.file",
            detail: format!(
                "is {}, but the modulefile of {expected} under {} is {}",
                info.file.display(),
                info.root.display(),
                file.display()
            ),
        });
    }
    None
}

/// Who wrote the file at `path`, judged by its first lines.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Nobody,
    /// Not envmod's: a site's or a user's own modulefile.
    Foreign,
    /// envmod's, for this prefix.
    Env(PathBuf),
    /// envmod's, written before modulefiles named their prefix.
    UnknownEnv,
}

pub(crate) fn owner_of(path: &Path) -> Owner {
    // A link, a FIFO or a device there is no file of envmod's: never followed nor opened.
    match crate::fs::read_head(path, HEAD as u64, crate::fs::Links::Refuse) {
        Ok(head) => owner_in(&String::from_utf8_lossy(&head)),
        Err(e) if e.is_not_found() => Owner::Nobody,
        Err(_) => Owner::Foreign,
    }
}

fn owner_in(head: &str) -> Owner {
    if !head.contains(GENERATED_MARKER) {
        return Owner::Foreign;
    }
    head.lines()
        .find_map(|l| l.split_once(OWNER_TAG).map(|(_, p)| PathBuf::from(p)))
        .map_or(Owner::UnknownEnv, Owner::Env)
}

impl Modulefile<'_> {
    pub(crate) fn render(
        &self,
        manifest: &Manifest,
        facts: &PrefixFacts,
    ) -> Result<Option<Planned>> {
        let Some(info) = &manifest.module else {
            return Ok(None);
        };
        let ctx = ModulefileContext::new(manifest, &self.options, facts);
        let text = match info.system {
            ModuleSystem::Lmod => self.renderer.render("lmod/modulefile.lua", ctx),
            ModuleSystem::Tcl => self.renderer.render("tcl/modulefile.tcl", ctx),
        }?;
        Ok(Some(Planned {
            path: info.file.clone(),
            content: text,
        }))
    }
}

impl Output for Modulefile<'_> {
    fn what(&self) -> &'static str {
        "modulefile"
    }

    fn plan(&self, manifest: &Manifest, facts: &PrefixFacts) -> Result<Option<Planned>> {
        self.render(manifest, facts)
    }

    fn check(&self, manifest: &Manifest, planned: &Planned) -> Result<()> {
        // A site template must keep the marker lines, or envmod could neither recognise the
        // file as its own later nor ever remove it.
        if owner_in(&planned.content) != Owner::Env(manifest.prefix.clone()) {
            return Err(UserError::failure(format!(
                "the modulefile template does not write envmod's marker lines (\"{GENERATED_MARKER}\" and \"{OWNER_TAG}<prefix>\") at its top"
            ))
            .with_hint("start the site template with the first two lines of envmod's built-in one; nothing was changed")
            .into());
        }
        let path = &planned.path;
        match owner_of(path) {
            Owner::Nobody => {}
            Owner::Foreign => {
                return Err(UserError::failure(format!(
                    "modulefile {} already exists and was not written by envmod",
                    path.display()
                ))
                .with_hint("move it away, or choose another --module-root")
                .into());
            }
            Owner::Env(other) if other != manifest.prefix => {
                return Err(UserError::failure(format!(
                    "modulefile {} belongs to another environment, at {}",
                    path.display(),
                    other.display()
                ))
                .with_hint("choose another name or --module-root, or delete that environment first")
                .into());
            }
            Owner::Env(_) => {}
            Owner::UnknownEnv => {
                let ours = manifest.module.as_ref().is_some_and(|m| &m.file == path);
                if !ours {
                    return Err(UserError::failure(format!(
                        "modulefile {} was written by envmod for another environment",
                        path.display()
                    ))
                    .with_hint(
                        "choose another name or --module-root, or delete that environment first",
                    )
                    .into());
                }
            }
        }
        let dir = path.parent().context("modulefile has no directory")?;
        fs::can_create_in(dir).map_err(|e| {
            UserError::failure(format!(
                "cannot write modulefiles in {}: {e}",
                dir.display()
            ))
            .with_hint("choose a writable --module-root, or set module_root in the config; nothing was changed")
        })?;
        Ok(())
    }

    fn write(&self, planned: &Planned) -> Result<()> {
        let dir = planned
            .path
            .parent()
            .context("modulefile has no directory")?;
        crate::fs::tree::Dir::make_all(dir).map_err(|e| {
            UserError::failure(format!(
                "cannot create module directory {}: {e}",
                dir.display()
            ))
            .with_hint("choose a writable --module-root, or set module_root in the config")
        })?;
        fs::write_placed(&planned.path, planned.content.as_bytes(), None)
    }

    fn remove(&self, manifest: &Manifest) -> Result<Vec<PathBuf>> {
        let Some(info) = &manifest.module else {
            return Ok(Vec::new());
        };
        let file = &info.file;
        let mine = match owner_of(file) {
            Owner::Env(p) => p == manifest.prefix,
            Owner::UnknownEnv => true,
            Owner::Nobody | Owner::Foreign => false,
        };
        if !mine {
            return Ok(Vec::new());
        }
        std::fs::remove_file(file)
            .with_context(|| format!("failed to remove {}", file.display()))?;
        if let Some(dir) = file.parent() {
            // Only succeeds when empty, which is the only case wanted.
            let _ = std::fs::remove_dir(dir);
        }
        Ok(vec![file.clone()])
    }
}

/// What templates see. Everything a modulefile needs is computed here, so templates stay
/// declarative and a site override cannot get the logic wrong.
#[derive(Debug, Serialize)]
struct ModulefileContext {
    envmod_version: &'static str,
    env_name: String,
    /// The command that rewrites this modulefile, for its header.
    regenerate: String,
    module_name: String,
    module_version: String,
    prefix: String,
    bin_dir: String,
    lib_dir: String,
    description: String,
    python_version: String,
    python_short: String,
    python_executable: String,
    python_mode: String,
    /// Full names of recorded modules, in load order.
    depends: Vec<String>,
    /// `(name, name/version)` pairs for the version guard.
    guards: Vec<Guard>,
    specs: Vec<String>,
    /// `name/version` of each requested package, for Lmod's `module spider`.
    extensions: Vec<String>,
    env_vars: Vec<EnvVar>,
    family: Option<String>,
    ld_library_path: bool,
    created: String,
}

#[derive(Debug, Serialize)]
struct Guard {
    name: String,
    full_name: String,
}

impl ModulefileContext {
    fn new(m: &Manifest, opts: &ModulefileOptions, facts: &PrefixFacts) -> Self {
        let module = m.module_name();
        let py = &m.python.site;
        Self {
            envmod_version: env!("CARGO_PKG_VERSION"),
            env_name: m.name.to_string(),
            regenerate: format!("envmod module {}", m.cli_target()),
            module_name: module.to_string(),
            module_version: module.version.clone(),
            prefix: m.prefix.to_string_lossy().into_owned(),
            bin_dir: m.prefix.join("bin").to_string_lossy().into_owned(),
            lib_dir: m.prefix.join("lib").to_string_lossy().into_owned(),
            description: m
                .description
                .clone()
                .unwrap_or_else(|| default_description(m)),
            python_version: py.version.clone(),
            python_short: py.short_version(),
            python_executable: py.executable.to_string_lossy().into_owned(),
            python_mode: match m.python.mode {
                PythonMode::Site => "site".into(),
                PythonMode::Conda => "conda".into(),
            },
            depends: m.modules.iter().map(|l| l.full_name.clone()).collect(),
            guards: m
                .modules
                .iter()
                .filter_map(|l| {
                    l.family_name().map(|n| Guard {
                        name: n.to_string(),
                        full_name: l.full_name.clone(),
                    })
                })
                .collect(),
            specs: m.specs.clone(),
            extensions: facts.extensions.clone(),
            env_vars: facts.env_vars.clone(),
            family: (!opts.allow_stacking).then(|| FAMILY.to_string()),
            ld_library_path: opts.ld_library_path,
            created: m.created.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

fn default_description(m: &Manifest) -> String {
    let py = &m.python.site;
    match m.python.mode {
        PythonMode::Site => format!(
            "Python environment {} on the site Python {}",
            m.name, py.version
        ),
        PythonMode::Conda => format!("conda environment {} with Python {}", m.name, py.version),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! One snapshot per modulefile variant (Lmod/Tcl × with/without recorded modules, and on
    //! a conda Python), so a reviewer sees exactly what users will load.

    use super::*;
    use crate::{
        manifest::{MANIFEST_VERSION, PythonInfo},
        site::{modules::LoadedModule, python::Interpreter},
    };

    pub(crate) fn manifest(with_modules: bool, system: ModuleSystem) -> Manifest {
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
        let mut m = Manifest {
            manifest_version: MANIFEST_VERSION,
            envmod_version: "0.1.0".into(),
            name: "myenv".parse().unwrap(),
            prefix: PathBuf::from("/home/alice/.envmod/envs/myenv"),
            created: "2026-01-15T09:30:00Z".parse().unwrap(),
            description: None,
            python: PythonInfo {
                mode: PythonMode::Site,
                site: Interpreter {
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
            selected: Vec::new(),
            module: None,
            kernel: None,
            frozen: false,
            shared: None,
            owner: None,
            by_prefix: false,
            outputs_pending: false,
            provided: None,
            activation: None,
            adopted: None,
            module_template: None,
            pip: Vec::new(),
            skipped_modules: Vec::new(),
        };
        m.module = Some(info_for(
            &m,
            system,
            Path::new("/home/alice/privatemodules"),
        ));
        m
    }

    /// What a reviewer checks: a value a shell, Lua or Tcl would act on comes out literal.
    fn hostile_facts() -> PrefixFacts {
        PrefixFacts {
            env_vars: vec![EnvVar {
                name: "FOO_HOME".into(),
                value: "/x/it's \"$(id)\" [exec id] ]] }{ \\ ä".into(),
            }],
            ..PrefixFacts::default()
        }
    }

    fn render(system: ModuleSystem, with_modules: bool) -> String {
        let facts = if with_modules {
            hostile_facts()
        } else {
            PrefixFacts::default()
        };
        render_manifest(&manifest(with_modules, system), &facts)
    }

    /// An environment on a conda Python: the interpreter in its prefix, its packages
    /// requested, no site module under it, and the variables its packages' activation sets.
    fn render_conda(system: ModuleSystem) -> String {
        let mut m = manifest(false, system);
        m.python.mode = PythonMode::Conda;
        m.python.site.executable = m.prefix.join("bin/python3.11");
        m.specs = vec!["python 3.11.*".into(), "numpy >=1.26".into()];
        m.channels = vec!["conda-forge".into()];
        m.module = Some(info_for(
            &m,
            system,
            Path::new("/home/alice/privatemodules"),
        ));
        render_manifest(&m, &hostile_facts())
    }

    fn render_manifest(m: &Manifest, facts: &PrefixFacts) -> String {
        let renderer = Renderer::new(None);
        let out = Modulefile {
            renderer: &renderer,
            options: ModulefileOptions {
                allow_stacking: false,
                ld_library_path: false,
            },
        };
        let planned = out.plan(m, facts).unwrap().unwrap();
        assert_eq!(owner_in(&planned.content), Owner::Env(m.prefix.clone()));
        planned
            .content
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    }

    #[test]
    fn a_module_record_that_does_not_follow_from_its_root_is_named() {
        let m = manifest(false, ModuleSystem::Lmod);
        assert_eq!(unsound(&m), None);
        let field = |edit: &dyn Fn(&mut Manifest)| {
            let mut m = m.clone();
            edit(&mut m);
            unsound(&m).map(|u| u.field)
        };
        let module = |m: &mut Manifest| m.module.as_mut().unwrap().clone();
        assert_eq!(
            field(&|m| m.module.as_mut().unwrap().file = "/home/alice/.bashrc".into()),
            Some("module.file")
        );
        assert_eq!(
            field(&|m| m.module.as_mut().unwrap().root = "/home/alice/../bob".into()),
            Some("module.root")
        );
        assert_eq!(
            field(&|m| m.module.as_mut().unwrap().root = "relative".into()),
            Some("module.root")
        );
        assert_eq!(field(&|m| m.python.site.minor = 12), Some("module.name"));
        // Moved consistently, root and file together: the owner's record decides.
        assert_eq!(
            field(&|m| {
                let mut info = module(m);
                info.root = "/elsewhere".into();
                info.file = path_for(m, info.system, &info.root);
                m.module = Some(info);
            }),
            None
        );
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

    #[test]
    fn lmod_conda_python() {
        insta::assert_snapshot!(render_conda(ModuleSystem::Lmod));
    }

    #[test]
    fn tcl_conda_python() {
        insta::assert_snapshot!(render_conda(ModuleSystem::Tcl));
    }
}
