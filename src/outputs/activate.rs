//! `<prefix>/bin/activate`: the environment without a module system. Sourcing it (bash, zsh,
//! sh/dash) loads the recorded modules when a `module` command exists, with the same version
//! guard as the modulefile, then sets what `module load` sets; `deactivate` restores every
//! variable it touched (unset stays unset), unloads only the modules it loaded, and removes
//! its functions. `envmod shell-hook` prints the same text for `eval "$(...)"`.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::{
    conda::activation::EnvVar,
    manifest::Manifest,
    outputs::{Output, Planned, PrefixFacts, modulefile::ModulefileOptions},
    render::Renderer,
    site::modules::GENERATED_MARKER,
};

const TEMPLATE: &str = "activate/activate.sh";
const FISH_TEMPLATE: &str = "activate/activate.fish";

/// The shells `envmod shell-hook` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum HookShell {
    Bash,
    Zsh,
    /// POSIX sh, dash.
    Sh,
    Fish,
}

pub(crate) struct Activate<'a> {
    pub(crate) renderer: &'a Renderer,
    pub(crate) options: ModulefileOptions,
}

impl Activate<'_> {
    /// The script's text for `manifest`, for `shell`: one text serves bash, zsh and sh.
    pub(crate) fn render(
        &self,
        manifest: &Manifest,
        facts: &PrefixFacts,
        shell: HookShell,
    ) -> Result<String> {
        let template = match shell {
            HookShell::Fish => FISH_TEMPLATE,
            HookShell::Bash | HookShell::Zsh | HookShell::Sh => TEMPLATE,
        };
        self.renderer
            .render(template, Context::new(manifest, &self.options, facts))
    }
}

impl Output for Activate<'_> {
    fn what(&self) -> &'static str {
        "activation script"
    }

    fn plan(&self, manifest: &Manifest, facts: &PrefixFacts) -> Result<Option<Planned>> {
        Ok(Some(Planned {
            path: manifest.prefix.join("bin/activate"),
            content: self.render(manifest, facts, HookShell::Sh)?,
        }))
    }

    fn check(&self, _manifest: &Manifest, planned: &Planned) -> Result<()> {
        if !planned.content.contains(GENERATED_MARKER) {
            return Err(crate::error::UserError::failure(format!(
                "the activation script template does not say \"{GENERATED_MARKER}\" in its first line"
            ))
            .with_hint("start the site template with the first two lines of envmod's built-in one; nothing was changed")
            .into());
        }
        Ok(())
    }

    fn write(&self, planned: &Planned) -> Result<()> {
        crate::fs::write_placed(&planned.path, planned.content.as_bytes(), None)
    }

    /// The script lives inside the prefix and goes with it.
    fn remove(&self, _manifest: &Manifest) -> Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Serialize)]
struct Module {
    name: String,
    /// `gcc` for `gcc/12.2`, for the version guard.
    family: Option<String>,
}

#[derive(Debug, Serialize)]
struct Context {
    envmod_version: &'static str,
    env_name: String,
    module_name: String,
    regenerate: String,
    cli_target: String,
    prefix: String,
    depends: Vec<Module>,
    env_vars: Vec<EnvVar>,
    /// Every variable the script sets, saved first and restored by `deactivate`.
    saved: Vec<String>,
    allow_stacking: bool,
    ld_library_path: bool,
}

impl Context {
    fn new(m: &Manifest, opts: &ModulefileOptions, facts: &PrefixFacts) -> Self {
        let mut saved: Vec<String> = ["PATH", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        saved.push("PYTHONNOUSERSITE".into());
        saved.push("PYTHONUSERBASE".into());
        if opts.ld_library_path {
            saved.push("LD_LIBRARY_PATH".into());
        }
        for v in &facts.env_vars {
            if !saved.contains(&v.name) {
                saved.push(v.name.clone());
            }
        }
        saved.push("PS1".into());
        Self {
            envmod_version: env!("CARGO_PKG_VERSION"),
            env_name: m.name.to_string(),
            module_name: m.module_name().to_string(),
            regenerate: format!("envmod module {}", m.cli_target()),
            cli_target: m.cli_target(),
            prefix: m.prefix.to_string_lossy().into_owned(),
            depends: m
                .modules
                .iter()
                .map(|l| Module {
                    name: l.full_name.clone(),
                    family: l.family_name().map(str::to_string),
                })
                .collect(),
            env_vars: facts.env_vars.clone(),
            saved,
            allow_stacking: opts.allow_stacking,
            ld_library_path: opts.ld_library_path,
        }
    }
}

#[cfg(test)]
mod tests {
    //! One snapshot per variant (sh and fish, with and without recorded modules), so a
    //! reviewer sees exactly what users source.

    use super::*;
    use crate::{outputs::modulefile::tests::manifest, site::ModuleSystem};

    fn render(shell: HookShell, with_modules: bool) -> String {
        let renderer = Renderer::new(None);
        let out = Activate {
            renderer: &renderer,
            options: ModulefileOptions {
                allow_stacking: false,
                ld_library_path: false,
            },
        };
        let facts = PrefixFacts {
            env_vars: vec![EnvVar {
                name: "FOO_HOME".into(),
                value: "/home/alice/.envmod/envs/myenv/share/it's foo".into(),
            }],
            ..PrefixFacts::default()
        };
        out.render(&manifest(with_modules, ModuleSystem::Lmod), &facts, shell)
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    }

    #[test]
    fn sh_with_modules() {
        insta::assert_snapshot!(render(HookShell::Sh, true));
    }

    #[test]
    fn sh_without_modules() {
        insta::assert_snapshot!(render(HookShell::Sh, false));
    }

    #[test]
    fn fish_with_modules() {
        insta::assert_snapshot!(render(HookShell::Fish, true));
    }
}
