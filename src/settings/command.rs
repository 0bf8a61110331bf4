//! Each command's settings, resolved from its flags and the merged [`GlobalSettings`], as
//! uv's `settings.rs` does: the files a flag names are read here, relative paths are taken
//! from the working directory here, and the target is decided here, so that `dispatch` only
//! dispatches and a command receives one plain struct it can act on.

use std::path::PathBuf;

use anyhow::Result;

use super::GlobalSettings;
use crate::{
    cli::{self, Command},
    conda::{self, CondaSettings},
    config::{self, Options},
    env::{
        adopt::AdoptOptions,
        from_file::{self, Source as FileSource},
        health::Checkup,
        plan::{Added, Change, CreateSettings, OutputsChange, Updating},
        prefix::EnvTarget,
        registry::Registry,
    },
    environ::Environ,
    error::UserError,
    manifest::Sharing,
    outputs::{activate::HookShell, modulefile::ModulefileOptions},
    printer::Printer,
    site::{ModuleSystem, SiteSettings},
};

impl CreateSettings {
    /// `-f` is read here, and an environment.yml's `name:` is the target when neither `-n`
    /// nor `-p` is given.
    pub(crate) fn resolve(
        args: cli::CreateArgs,
        settings: &GlobalSettings,
        env: &Environ,
    ) -> Result<Self> {
        let file = args
            .file
            .as_ref()
            .map(|f| FileSource::read_arg(f, env.cwd()))
            .transpose()?;
        let target = match (&args.target.name, &args.target.prefix, &file) {
            (None, None, Some(source)) => match source.name() {
                Some(name) => cli::Target {
                    name: Some(name.to_string()),
                    prefix: None,
                },
                None => {
                    return Err(UserError::usage(format!(
                        "{} does not name the environment",
                        source.shown()
                    ))
                    .with_hint("give -n NAME or -p PREFIX")
                    .into());
                }
            },
            (None, None, None) => {
                return Err(UserError::usage("give -n NAME or -p PREFIX")
                    .with_hint("or -f FILE with an environment.yml that has a name")
                    .into());
            }
            (name, prefix, _) => cli::Target {
                name: name.clone(),
                prefix: prefix.clone(),
            },
        };
        let mut module_map = settings.module_map.value.clone();
        if let Some(path) = &args.module_map {
            module_map.extend(config::read_module_map(&env.cwd().join(path))?);
        }
        let clone = match &args.clone {
            // A name has no `/`; anything else is a path, as `-p` takes it.
            Some(src) => Some(settings.target(&match src.contains('/') {
                true => cli::Target {
                    name: None,
                    prefix: Some(src.into()),
                },
                false => cli::Target {
                    name: Some(src.clone()),
                    prefix: None,
                },
            })?),
            None => None,
        };
        Ok(Self {
            target: settings.target(&target)?,
            file,
            clone,
            cli_channels: args.channel.channels.clone(),
            site_python_flag: args.site_python.is_some(),
            module_map,
            skip_missing_modules: args.skip_missing_modules,
            python: settings.python.value.clone(),
            conda_python: args.python,
            specs: args.specs,
            module_system: ModuleSystem::resolve(settings.module_system.value, env),
            module_root: settings.module_root.value.clone(),
            module_template: Some(settings.module_name_template.value.clone())
                .filter(|t| t != crate::names::DEFAULT_MODULE_TEMPLATE),
            ignore_modules: settings.ignore_modules.value.clone(),
            description: args.description,
            kernel: args.kernel,
            shared: args.shared.then(|| Sharing {
                group: args.group.clone(),
            }),
            registry: settings.registry(),
            interpreter_cache: settings.interpreter_cache.clone(),
            ignore_site_packages: settings.ignore_site_packages.value,
            dry_run: args.dry_run,
        })
    }
}

/// A change to an environment's packages (`install`, `remove`) or its record (`share`):
/// the environment, the change, and the `-c` channels given for it.
pub(crate) struct ChangeSettings {
    pub(crate) target: EnvTarget,
    pub(crate) change: Change,
    pub(crate) channels: Vec<String>,
    /// `--dry-run`: report the plan and change nothing.
    pub(crate) dry_run: bool,
}

impl ChangeSettings {
    /// `envmod install`: `-f FILE`'s packages are read here, with the specs given beside it.
    pub(crate) fn install(
        args: cli::InstallArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        let target = settings.target(&args.target)?;
        let added = match &args.file {
            Some(file) => from_file::additions(file, env.cwd(), args.specs, printer)?,
            None => Added {
                specs: args.specs,
                pip_cwd: env.cwd().to_path_buf(),
                ..Added::default()
            },
        };
        let change = Change::Install(Added {
            ignore_site_packages: settings.ignore_site_packages.value,
            ..added
        });
        Ok(Self {
            target,
            change,
            channels: args.channel.channels,
            dry_run: args.dry_run,
        })
    }

    /// `envmod remove`.
    pub(crate) fn remove(args: cli::RemoveArgs, settings: &GlobalSettings) -> Result<Self> {
        Ok(Self {
            target: settings.target(&args.target)?,
            change: Change::Remove(args.packages),
            channels: args.channel.channels,
            dry_run: args.dry_run,
        })
    }

    /// `envmod update`: no names with `--all`, so that every package may move.
    pub(crate) fn update(args: cli::UpdateArgs, settings: &GlobalSettings) -> Result<Self> {
        Ok(Self {
            target: settings.target(&args.target)?,
            change: Change::Update(Updating {
                names: args.packages,
                interpreter_cache: settings.interpreter_cache.clone(),
            }),
            channels: args.channel.channels,
            dry_run: args.dry_run,
        })
    }

    /// `envmod share`.
    pub(crate) fn share(args: cli::ShareArgs, settings: &GlobalSettings) -> Result<Self> {
        Ok(Self {
            target: settings.target(&args.target)?,
            change: Change::Share(Sharing { group: args.group }),
            channels: Vec::new(),
            dry_run: false,
        })
    }
}

/// `envmod module`: which modulefile to write again, where, and whether a copy is re-pointed.
pub(crate) struct ModuleSettings {
    pub(crate) target: EnvTarget,
    pub(crate) change: OutputsChange,
    pub(crate) registry: Registry,
}

impl ModuleSettings {
    pub(crate) fn resolve(
        args: cli::ModuleArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        if args.adopt {
            printer.warn("--adopt is renamed --relocate; the old name goes in the next release");
        }
        let change = OutputsChange {
            system: args.module_system.map(|m| ModuleSystem::resolve(m, env)),
            root: args
                .module_root
                .is_some()
                .then(|| settings.module_root.value.clone()),
            default_root: settings.module_root.value.clone(),
            relocated: args.relocate || args.adopt,
        };
        Ok(Self {
            target: settings.target(&args.target)?,
            change,
            registry: settings.registry(),
        })
    }
}

/// `envmod adopt`.
pub(crate) struct AdoptSettings {
    pub(crate) source: AdoptSource,
    pub(crate) options: AdoptOptions,
}

/// What `adopt` takes environments from.
pub(crate) enum AdoptSource {
    Prefix(EnvTarget),
    Modules {
        dir: PathBuf,
        only: Option<crate::names::EnvName>,
        /// Where `-n NAME` environments live, to tell whether one needs `-p` later.
        envs_dir: PathBuf,
    },
}

impl AdoptSettings {
    pub(crate) fn resolve(
        args: cli::AdoptArgs,
        settings: &GlobalSettings,
        env: &Environ,
    ) -> Result<Self> {
        let source = match (args.prefix, args.from_modules) {
            (Some(prefix), _) => AdoptSource::Prefix(settings.target(&cli::Target {
                name: None,
                prefix: Some(prefix),
            })?),
            (None, Some(dir)) => AdoptSource::Modules {
                dir: env.cwd().join(dir),
                only: args
                    .name
                    .map(|n| n.parse().map_err(|e| UserError::usage(format!("{e}"))))
                    .transpose()?,
                envs_dir: settings.envs_dir.value.clone(),
            },
            (None, None) => {
                return Err(UserError::usage("adopt needs -p PREFIX or --from-modules DIR").into());
            }
        };
        Ok(Self {
            source,
            options: AdoptOptions {
                module_system: ModuleSystem::resolve(settings.module_system.value, env),
                module_root: settings.module_root.value.clone(),
                registry: settings.registry(),
                dry_run: args.dry_run,
                module_template: Some(settings.module_name_template.value.clone())
                    .filter(|t| t != crate::names::DEFAULT_MODULE_TEMPLATE),
            },
        })
    }
}

/// `envmod delete`.
pub(crate) struct DeleteSettings {
    pub(crate) target: EnvTarget,
    pub(crate) yes: bool,
    pub(crate) force: bool,
    pub(crate) with_prefix: bool,
    pub(crate) registry: Registry,
}

impl DeleteSettings {
    pub(crate) fn resolve(args: cli::DeleteArgs, settings: &GlobalSettings) -> Result<Self> {
        Ok(Self {
            target: settings.target(&args.target)?,
            yes: args.yes,
            force: args.force,
            with_prefix: args.with_prefix,
            registry: settings.registry(),
        })
    }
}

/// `envmod list`.
pub(crate) struct ListSettings {
    pub(crate) envs_dir: PathBuf,
    /// The site's `shared_envs_dirs`.
    pub(crate) shared_envs_dirs: Vec<PathBuf>,
    pub(crate) registry: Registry,
    pub(crate) json: bool,
}

impl ListSettings {
    pub(crate) fn resolve(args: cli::ListArgs, settings: &GlobalSettings) -> Self {
        Self {
            envs_dir: settings.envs_dir.value.clone(),
            shared_envs_dirs: settings.shared_envs_dirs.value.clone(),
            registry: settings.registry(),
            json: args.json,
        }
    }
}

/// `envmod export`.
pub(crate) struct ExportSettings {
    pub(crate) target: EnvTarget,
    pub(crate) output: Option<PathBuf>,
    pub(crate) format: cli::ExportFormat,
    pub(crate) pinned: bool,
    pub(crate) platforms: Vec<String>,
}

impl ExportSettings {
    pub(crate) fn resolve(
        args: cli::ExportArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        Ok(Self {
            target: settings.given_or_loaded(args.target.target(), env, printer)?,
            output: args.output.map(|o| env.cwd().join(o)),
            format: args.format,
            pinned: args.pinned,
            platforms: args.platforms,
        })
    }
}

/// `envmod show`.
pub(crate) struct ShowSettings {
    pub(crate) target: EnvTarget,
    pub(crate) json: bool,
}

impl ShowSettings {
    pub(crate) fn resolve(
        args: cli::ShowArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        Ok(Self {
            target: settings.given_or_loaded(args.target.target(), env, printer)?,
            json: args.json,
        })
    }
}

/// `envmod kernel add`.
pub(crate) struct KernelAddSettings {
    pub(crate) target: EnvTarget,
    pub(crate) name: Option<String>,
    pub(crate) display_name: Option<String>,
    /// `--prefix DIR`: `DIR/share/jupyter/kernels` instead of the user's data dir.
    pub(crate) prefix: Option<PathBuf>,
}

impl KernelAddSettings {
    pub(crate) fn resolve(
        args: cli::KernelAddArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        Ok(Self {
            target: settings.given_or_loaded(args.target.target(), env, printer)?,
            name: args.name,
            display_name: args.display_name,
            prefix: args.prefix.map(|p| env.cwd().join(p)),
        })
    }
}

/// `envmod kernel remove`.
pub(crate) struct KernelRemoveSettings {
    pub(crate) target: Option<EnvTarget>,
    pub(crate) name: Option<String>,
    pub(crate) prefix: Option<PathBuf>,
}

impl KernelRemoveSettings {
    pub(crate) fn resolve(
        args: cli::KernelRemoveArgs,
        settings: &GlobalSettings,
        env: &Environ,
    ) -> Result<Self> {
        let target = match args.target.target() {
            Some(t) => Some(settings.target(&t)?),
            None => None,
        };
        Ok(Self {
            target,
            name: args.kernel,
            prefix: args.kernels_prefix.map(|p| env.cwd().join(p)),
        })
    }
}

/// `envmod kernel list`.
pub(crate) struct KernelListSettings {
    pub(crate) envs_dir: PathBuf,
    pub(crate) registry: Registry,
    pub(crate) prefixes: Vec<PathBuf>,
    pub(crate) json: bool,
}

impl KernelListSettings {
    pub(crate) fn resolve(
        args: cli::KernelListArgs,
        settings: &GlobalSettings,
        env: &Environ,
    ) -> Self {
        Self {
            envs_dir: settings.envs_dir.value.clone(),
            registry: settings.registry(),
            prefixes: args.prefixes.iter().map(|p| env.cwd().join(p)).collect(),
            json: args.json,
        }
    }
}

/// `envmod doctor`: where to look.
pub(crate) struct DoctorSettings {
    pub(crate) checkup: Checkup,
    pub(crate) json: bool,
}

impl DoctorSettings {
    pub(crate) fn resolve(args: cli::DoctorArgs, settings: &GlobalSettings) -> Self {
        Self {
            checkup: Checkup {
                envs_dir: settings.envs_dir.value.clone(),
                pkgs_dirs: settings.pkgs_dirs.value.clone(),
                readonly_pkgs_dirs: settings.readonly_pkgs_dirs.value.clone(),
                module_root: settings.module_root.value.clone(),
                registry: settings.registry(),
            },
            json: args.json,
        }
    }
}

/// `envmod clean`.
pub(crate) struct CleanSettings {
    pub(crate) plan: crate::env::clean::Request,
    pub(crate) json: bool,
}

impl CleanSettings {
    pub(crate) fn resolve(args: cli::CleanArgs, settings: &GlobalSettings) -> Self {
        let pkgs_dirs = &settings.pkgs_dirs.value;
        let caches = match args.all_caches {
            true => pkgs_dirs.clone(),
            false => pkgs_dirs.iter().take(1).cloned().collect(),
        };
        Self {
            plan: crate::env::clean::Request {
                caches,
                envs_dir: settings.envs_dir.value.clone(),
                shared_envs_dirs: settings.shared_envs_dirs.value.clone(),
                registry: settings.registry(),
                dry_run: args.dry_run,
            },
            json: args.json,
        }
    }
}

/// `envmod shell-hook`.
pub(crate) struct ShellHookSettings {
    pub(crate) target: EnvTarget,
    pub(crate) shell: HookShell,
}

impl ShellHookSettings {
    pub(crate) fn resolve(
        args: cli::ShellHookArgs,
        settings: &GlobalSettings,
        env: &Environ,
        printer: &Printer,
    ) -> Result<Self> {
        Ok(Self {
            target: settings.given_or_loaded(args.target.target(), env, printer)?,
            shell: args.shell,
        })
    }
}

impl GlobalSettings {
    /// Where prefixes given with `-p` are remembered.
    pub(crate) fn registry(&self) -> Registry {
        Registry::new(self.registry_file.clone())
    }

    /// What the conda layer needs: channels, caches, and when to compile.
    pub(crate) fn conda(&self) -> Result<CondaSettings> {
        Ok(CondaSettings {
            channels: self.channels.value.clone(),
            channel_alias: url::Url::parse(&self.channel_alias.value)?,
            pkgs_dirs: self.pkgs_dirs.value.clone(),
            readonly_pkgs_dirs: self.readonly_pkgs_dirs.value.clone(),
            offline: self.offline.value,
            compile_pyc: conda::pyc::Policy {
                setting: self.compile_pyc.value,
                shared_dirs: self.shared_envs_dirs.value.clone(),
            },
        })
    }

    /// The site's choices that shape every modulefile.
    pub(crate) fn modulefile_options(&self) -> ModulefileOptions {
        ModulefileOptions {
            allow_stacking: self.allow_stacking.value,
            ld_library_path: self.ld_library_path.value,
        }
    }

    /// What loaded modules and the site Python give the solve.
    pub(crate) fn site(&self) -> SiteSettings {
        SiteSettings {
            rules: self.module_provides.value.clone(),
            names: self.site_package_names.value.clone(),
        }
    }

    /// `-n`/`-p` when given, else the envmod environment this shell has loaded, named on
    /// stderr so that nobody is surprised by which one a command read.
    pub(crate) fn given_or_loaded(
        &self,
        given: Option<cli::Target>,
        env: &Environ,
        printer: &Printer,
    ) -> Result<EnvTarget> {
        if let Some(given) = given {
            return self.target(&given);
        }
        let target = self.loaded_target(env)?;
        printer.info(format!(
            "using the loaded environment {} ({})",
            target.name,
            target.prefix.display()
        ));
        Ok(target)
    }
}

/// The flags that override settings, as the highest layer; which flags a command has decides
/// which keys it can override.
pub(crate) fn flag_layer(command: &Command) -> Options {
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    let channel = |c: &cli::ChannelArgs| Options {
        channels: (!c.channels.is_empty()).then(|| c.channels.clone()),
        offline: c.offline.then_some(true),
        compile_pyc: match (c.compile, c.no_compile) {
            (true, _) => Some(conda::pyc::CompilePyc::Always),
            (_, true) => Some(conda::pyc::CompilePyc::Never),
            _ => None,
        },
        ..Options::default()
    };
    match command {
        Command::Create(a) => Options {
            module_system: a.module.module_system,
            module_root: path(&a.module.module_root),
            python: path(&a.site_python),
            ignore_site_packages: a.ignore_site_packages.then_some(true),
            ..channel(&a.channel)
        },
        Command::Install(a) => Options {
            ignore_site_packages: a.ignore_site_packages.then_some(true),
            ..channel(&a.channel)
        },
        Command::Export(a) => Options {
            offline: a.offline.then_some(true),
            ..Options::default()
        },
        Command::Remove(a) => channel(&a.channel),
        Command::Update(a) => channel(&a.channel),
        Command::Adopt(a) => Options {
            module_system: a.module.module_system,
            module_root: path(&a.module.module_root),
            ..Options::default()
        },
        Command::Module(a) => Options {
            module_system: a.module_system,
            module_root: path(&a.module_root),
            ..Options::default()
        },
        _ => Options::default(),
    }
}
