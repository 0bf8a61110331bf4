//! envmod: Python environments for HPC clusters, delivered as environment modules.
//!
//! The flow is always the same: parse the command line (`cli`), resolve settings from
//! defaults, config files, variables and flags (`settings`), then hand one plain settings
//! struct to the command (`commands`).

pub(crate) mod cli;
pub mod commands;
pub mod conda;
pub(crate) mod config;
pub mod env;
pub(crate) mod environ;
pub mod error;
pub mod names;
pub mod printer;
pub mod render;
pub(crate) mod settings;
pub mod site;

use anyhow::Result;
use clap::Parser;

use crate::{
    cli::{Cli, Command},
    config::Options,
    env::registry::Registry,
    environ::Environ,
    printer::{Printer, Verbosity},
    render::context::ModulefileOptions,
    settings::GlobalSettings,
    site::ModuleSystem,
};

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
    // Neither reads any setting, so a broken config file must not stop them.
    let command = match command {
        Command::Completions(args) => {
            commands::completions::run(args.shell);
            return Ok(());
        }
        Command::Index(args) => return commands::index::run(args.dir, printer).await,
        other => other,
    };
    let env = Environ::capture();
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
        offline: settings.offline.value,
    };
    match command {
        Command::Create(args) => {
            let s = commands::create::CreateSettings {
                target: settings.target(&args.target)?,
                python: settings.python.value.clone(),
                conda_python: args.python,
                specs: args.specs,
                conda,
                module_system: ModuleSystem::resolve(settings.module_system.value, &env),
                module_root: settings.module_root.value.clone(),
                ignore_modules: settings.ignore_modules.value.clone(),
                templates_dir: settings.templates_dir.value.clone(),
                options,
                description: args.description,
                registry,
                interpreter_cache: settings.interpreter_cache.clone(),
            };
            commands::create::run(s, &env, printer).await
        }
        Command::Install(args) => {
            let s = commands::change::ChangeSettings {
                target: settings.target(&args.target)?,
                change: commands::change::Change::Install(args.specs),
                conda,
                explicit_channels: !args.channel.channels.is_empty(),
                templates_dir: settings.templates_dir.value.clone(),
                options,
            };
            commands::change::run(s, printer).await
        }
        Command::Remove(args) => {
            let s = commands::change::ChangeSettings {
                target: settings.target(&args.target)?,
                change: commands::change::Change::Remove(args.packages),
                conda,
                explicit_channels: !args.channel.channels.is_empty(),
                templates_dir: settings.templates_dir.value.clone(),
                options,
            };
            commands::change::run(s, printer).await
        }
        Command::Delete(args) => {
            let s = commands::delete::DeleteSettings {
                target: settings.target(&args.target)?,
                yes: args.yes,
                registry,
            };
            commands::delete::run(s, printer)
        }
        Command::List(args) => {
            let s = commands::list::ListSettings {
                envs_dir: settings.envs_dir.value.clone(),
                registry,
                json: args.json,
            };
            commands::list::run(s, printer)
        }
        Command::Module(args) => {
            let s = commands::module::ModuleSettings {
                target: settings.target(&args.target)?,
                system: args.module_system.map(|m| ModuleSystem::resolve(m, &env)),
                root: args
                    .module_root
                    .is_some()
                    .then(|| settings.module_root.value.clone()),
                default_root: settings.module_root.value.clone(),
                templates_dir: settings.templates_dir.value.clone(),
                options,
            };
            commands::module::run(s, printer)
        }
        Command::Config(args) => commands::config::run(&settings, args.json, printer),
        Command::Completions(_) | Command::Index(_) => {
            unreachable!("handled before settings are resolved")
        }
    }
}

/// The flags that override settings, as the highest layer; which flags a command has decides
/// which keys it can override.
fn flag_layer(command: &Command) -> Options {
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    let channel = |c: &cli::ChannelArgs| Options {
        channels: (!c.channels.is_empty()).then(|| c.channels.clone()),
        offline: c.offline.then_some(true),
        ..Options::default()
    };
    match command {
        Command::Create(a) => Options {
            module_system: a.module.module_system,
            module_root: path(&a.module.module_root),
            python: path(&a.site_python),
            ..channel(&a.channel)
        },
        Command::Install(a) => channel(&a.channel),
        Command::Remove(a) => channel(&a.channel),
        Command::Module(a) => Options {
            module_system: a.module_system,
            module_root: path(&a.module_root),
            ..Options::default()
        },
        _ => Options::default(),
    }
}
