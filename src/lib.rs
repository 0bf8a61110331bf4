//! envmod: Python environments for HPC clusters, delivered as environment modules.
//!
//! The flow is always the same: parse the command line (`cli`), resolve settings from
//! defaults, config files, variables and flags (`settings`), then hand one plain settings
//! struct to the command (`commands`).

pub mod cli;
pub mod commands;
pub mod conda;
pub mod config;
pub mod env;
pub mod error;
pub mod names;
pub mod printer;
pub mod render;
pub mod settings;
pub mod site;

use anyhow::Result;
use clap::Parser;

use crate::{
    cli::{Cli, Command},
    env::registry::Registry,
    printer::{Printer, Verbosity},
    render::context::ModulefileOptions,
    settings::{Environ, FlagOverrides, GlobalSettings},
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
    if let Command::Completions(args) = &command {
        commands::completions::run(args.shell);
        return Ok(());
    }
    let env = Environ::capture();
    let flags = match &command {
        Command::Create(a) => FlagOverrides {
            module_system: a.module.module_system.map(|m| (m, "--module-system")),
            module_root: a.module.module_root.as_deref(),
            python: a.site_python.as_deref(),
            channels: Some(&a.channel.channels),
            offline: a.channel.offline,
        },
        Command::Install(a) => FlagOverrides {
            channels: Some(&a.channel.channels),
            offline: a.channel.offline,
            ..Default::default()
        },
        Command::Remove(a) => FlagOverrides {
            channels: Some(&a.channel.channels),
            offline: a.channel.offline,
            ..Default::default()
        },
        Command::Module(a) => FlagOverrides {
            module_system: a.module_system.map(|m| (m, "--module-system")),
            module_root: a.module_root.as_deref(),
            ..Default::default()
        },
        _ => FlagOverrides::default(),
    };
    let settings = GlobalSettings::resolve(&env, &flags)?;
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
        Command::Index(args) => commands::index::run(args.dir, printer).await,
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
                system: args
                    .module_system
                    .map(|m| ModuleSystem::resolve(m.into(), &env)),
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
        Command::Completions(_) => unreachable!("handled before settings are resolved"),
    }
}
