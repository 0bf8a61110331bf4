//! envmod: Python environments for HPC clusters, delivered as environment modules.
//!
//! The flow is always the same: parse the command line (`cli`), resolve settings from
//! defaults, config files, variables and flags (`settings`), then hand one plain settings
//! struct to the command (`commands`).

mod cli;
mod commands;
mod conda;
mod config;
mod env;
mod environ;
mod error;
mod failpoint;
mod fs;
mod manifest;
mod names;
mod outputs;
mod printer;
mod render;
mod settings;
mod site;
mod yaml;

use anyhow::Result;
use clap::Parser;

use crate::{
    cli::{Cli, Command},
    config::Options,
    env::{
        ops::Ctx,
        plan::{Added, Change, OutputsChange},
        registry::Registry,
    },
    environ::Environ,
    error::UserError,
    outputs::modulefile::ModulefileOptions,
    printer::{Printer, Verbosity},
    render::Renderer,
    settings::GlobalSettings,
    site::ModuleSystem,
};

/// Exit code for a command stopped by a signal, as shells report it (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// Called from the signal handler: remove what is half-made, say what was left, and exit.
/// The cleanup lock stays held until the process is gone, so no rename into place can
/// happen after the removal.
pub fn interrupted() -> ! {
    site::run::kill_all();
    let _held = env::cleanup::remove_pending();
    eprintln!(
        "\nenvmod: interrupted; {}",
        env::cleanup::interrupted_message()
    );
    std::process::exit(INTERRUPTED);
}

/// Parse arguments, run the command, and return the process exit code.
pub async fn run() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    let printer = Printer::new(verbosity);
    match dispatch(cli.command, &printer).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            error::exit_code_of(&err)
        }
    }
}

async fn dispatch(command: Command, printer: &Printer) -> Result<()> {
    let env = Environ::capture();
    // Neither reads any setting, so a broken config file must not stop them.
    let command = match command {
        Command::Completions(args) => {
            commands::completions::run(args.shell);
            return Ok(());
        }
        Command::Index(args) => {
            return commands::index::run(env.cwd().join(args.dir), printer).await;
        }
        other => other,
    };
    let settings = GlobalSettings::resolve(&env, flag_layer(&command))?;
    for w in &settings.warnings {
        printer.warn(w);
    }
    let options = ModulefileOptions {
        allow_stacking: settings.allow_stacking.value,
        ld_library_path: settings.ld_library_path.value,
    };
    let registry = Registry::new(settings.registry_file.clone());
    let conda = conda::CondaSettings {
        channels: settings.channels.value.clone(),
        channel_alias: url::Url::parse(&settings.channel_alias.value)?,
        pkgs_dirs: settings.pkgs_dirs.value.clone(),
        readonly_pkgs_dirs: settings.readonly_pkgs_dirs.value.clone(),
        offline: settings.offline.value,
        compile_pyc: conda::pyc::Policy {
            setting: settings.compile_pyc.value,
            shared_dirs: settings.shared_envs_dirs.value.clone(),
        },
    };
    // Compiled before any work: a broken site template must cost nothing, and never stops
    // a command that writes no modulefile.
    let writes_outputs = matches!(
        command,
        Command::Create(_)
            | Command::Install(_)
            | Command::Remove(_)
            | Command::Module(_)
            | Command::ShellHook(_)
            | Command::Kernel(_)
            | Command::Freeze(_)
            | Command::Share(_)
            | Command::Unfreeze(_)
    );
    let renderer = match writes_outputs {
        true => Renderer::new(settings.templates_dir.value.as_deref())?,
        false => Renderer::new(None)?,
    };
    let site = site::SiteSettings {
        rules: settings.module_provides.value.clone(),
        names: settings.site_package_names.value.clone(),
    };
    let ctx = Ctx {
        printer,
        environ: &env,
        conda: &conda,
        renderer: &renderer,
        options,
        site: &site,
    };
    match command {
        Command::Create(args) => {
            let file = args
                .file
                .as_ref()
                .map(|f| env::from_file::Source::read_arg(f, env.cwd()))
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
            let s = settings::CreateSettings {
                target: settings.target(&target)?,
                file,
                cli_channels: args.channel.channels.clone(),
                site_python_flag: args.site_python.is_some(),
                module_map,
                skip_missing_modules: args.skip_missing_modules,
                python: settings.python.value.clone(),
                conda_python: args.python,
                specs: args.specs,
                module_system: ModuleSystem::resolve(settings.module_system.value, &env),
                module_root: settings.module_root.value.clone(),
                ignore_modules: settings.ignore_modules.value.clone(),
                description: args.description,
                kernel: args.kernel,
                shared: args.shared.then(|| manifest::Sharing {
                    group: args.group.clone(),
                }),
                registry,
                interpreter_cache: settings.interpreter_cache.clone(),
                ignore_site_packages: settings.ignore_site_packages.value,
                dry_run: args.dry_run,
            };
            commands::create::run(s, &ctx).await
        }
        Command::Install(args) => {
            let target = settings.target(&args.target)?;
            let added = match &args.file {
                Some(file) => env::from_file::additions(file, env.cwd(), args.specs, printer)?,
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
            commands::change::run(target, change, &args.channel.channels, args.dry_run, &ctx).await
        }
        Command::Remove(args) => {
            let target = settings.target(&args.target)?;
            let change = Change::Remove(args.packages);
            commands::change::run(target, change, &args.channel.channels, args.dry_run, &ctx).await
        }
        Command::Delete(args) => {
            let target = settings.target(&args.target)?;
            commands::delete::run(target, args.yes, args.force, &registry, &ctx)
        }
        Command::List(args) => {
            let s = commands::list::ListSettings {
                envs_dir: settings.envs_dir.value.clone(),
                shared_envs_dirs: settings.shared_envs_dirs.value.clone(),
                registry,
                json: args.json,
            };
            commands::list::run(s, printer)
        }
        Command::Module(args) => {
            let target = settings.target(&args.target)?;
            if args.adopt {
                printer
                    .warn("--adopt is renamed --relocate; the old name goes in the next release");
            }
            let change = OutputsChange {
                system: args.module_system.map(|m| ModuleSystem::resolve(m, &env)),
                root: args
                    .module_root
                    .is_some()
                    .then(|| settings.module_root.value.clone()),
                default_root: settings.module_root.value.clone(),
                relocated: args.relocate || args.adopt,
            };
            commands::module::run(target, change, &registry, &ctx).await
        }
        Command::Export(args) => {
            let s = commands::export::ExportSettings {
                target: given_or_loaded(&settings, args.target.target(), &env, printer)?,
                output: args.output.map(|o| env.cwd().join(o)),
                format: args.format,
                pinned: args.pinned,
                platforms: args.platforms,
            };
            commands::export::run(s, &ctx).await
        }
        Command::Kernel(cli::KernelCommand::Add(args)) => {
            let s = commands::kernel::AddSettings {
                target: given_or_loaded(&settings, args.target.target(), &env, printer)?,
                name: args.name,
                display_name: args.display_name,
                prefix: args.prefix.map(|p| env.cwd().join(p)),
            };
            commands::kernel::add(s, &ctx).await
        }
        Command::Kernel(cli::KernelCommand::Remove(args)) => {
            let target = match args.target.target() {
                Some(t) => Some(settings.target(&t)?),
                None => None,
            };
            let s = commands::kernel::RemoveSettings {
                target,
                name: args.kernel,
                prefix: args.kernels_prefix.map(|p| env.cwd().join(p)),
            };
            commands::kernel::remove(s, &ctx).await
        }
        Command::Kernel(cli::KernelCommand::List(args)) => {
            let s = commands::kernel::ListSettings {
                envs_dir: settings.envs_dir.value.clone(),
                registry,
                prefixes: args.prefixes.iter().map(|p| env.cwd().join(p)).collect(),
                json: args.json,
            };
            commands::kernel::list(s, &ctx, printer)
        }
        Command::Doctor(args) => {
            let checkup = crate::env::health::Checkup {
                envs_dir: settings.envs_dir.value.clone(),
                pkgs_dirs: settings.pkgs_dirs.value.clone(),
                readonly_pkgs_dirs: settings.readonly_pkgs_dirs.value.clone(),
                module_root: settings.module_root.value.clone(),
                registry,
            };
            commands::doctor::run(checkup, args.json, &env, printer)
        }
        Command::Share(args) => {
            let target = settings.target(&args.target)?;
            let change = Change::Share(manifest::Sharing { group: args.group });
            commands::share::run(target, change, &ctx).await
        }
        Command::Freeze(args) => {
            commands::freeze::run(settings.target(&args.target)?, true, &ctx).await
        }
        Command::Unfreeze(args) => {
            commands::freeze::run(settings.target(&args.target)?, false, &ctx).await
        }
        Command::ShellHook(args) => {
            let target = given_or_loaded(&settings, args.target.target(), &env, printer)?;
            commands::shell_hook::run(target, args.shell, &ctx)
        }
        Command::Config(args) => commands::config::run(&settings, args.json, printer),
        Command::Completions(_) | Command::Index(_) => {
            unreachable!("handled before settings are resolved")
        }
    }
}

/// `-n`/`-p` when given, else the envmod environment this shell has loaded, named on
/// stderr so that nobody is surprised by which one a command read.
fn given_or_loaded(
    settings: &GlobalSettings,
    given: Option<cli::Target>,
    env: &Environ,
    printer: &Printer,
) -> Result<env::prefix::EnvTarget> {
    if let Some(given) = given {
        return settings.target(&given);
    }
    let target = settings.loaded_target(env)?;
    printer.info(format!(
        "using the loaded environment {} ({})",
        target.name,
        target.prefix.display()
    ));
    Ok(target)
}

/// The flags that override settings, as the highest layer; which flags a command has decides
/// which keys it can override.
fn flag_layer(command: &Command) -> Options {
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
        Command::Module(a) => Options {
            module_system: a.module_system,
            module_root: path(&a.module_root),
            ..Options::default()
        },
        _ => Options::default(),
    }
}
