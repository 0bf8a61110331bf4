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

use anyhow::Result;
use clap::Parser;

use crate::{
    cli::{Cli, Command},
    env::{
        ops::{Change, Ctx, OutputsChange},
        registry::Registry,
    },
    environ::Environ,
    outputs::modulefile::ModulefileOptions,
    printer::{Printer, Verbosity},
    render::Renderer,
    settings::{FlagOverrides, GlobalSettings},
    site::ModuleSystem,
};

/// Exit code for a command stopped by a signal, as shells report it (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// Called from the signal handler: remove what is half-made, say what was left, and exit.
/// The cleanup lock stays held until the process is gone, so no rename into place can
/// happen after the removal.
pub fn interrupted() -> ! {
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
    // Compiled before any work: a broken site template must cost nothing, and never stops
    // a command that writes no modulefile.
    let writes_outputs = matches!(
        command,
        Command::Create(_) | Command::Install(_) | Command::Remove(_) | Command::Module(_)
    );
    let renderer = match writes_outputs {
        true => Renderer::new(settings.templates_dir.value.as_deref())?,
        false => Renderer::new(None)?,
    };
    let ctx = Ctx {
        printer,
        environ: &env,
        conda: &conda,
        renderer: &renderer,
        options,
    };
    match command {
        Command::Create(args) => {
            let s = commands::create::CreateSettings {
                target: settings.target(&args.target)?,
                python: settings.python.value.clone(),
                conda_python: args.python,
                specs: args.specs,
                module_system: ModuleSystem::resolve(settings.module_system.value, &env),
                module_root: settings.module_root.value.clone(),
                ignore_modules: settings.ignore_modules.value.clone(),
                description: args.description,
                registry,
                interpreter_cache: settings.interpreter_cache.clone(),
            };
            commands::create::run(s, &ctx).await
        }
        Command::Install(args) => {
            let target = settings.target(&args.target)?;
            let change = Change::Install(args.specs);
            commands::change::run(target, change, &args.channel.channels, &ctx).await
        }
        Command::Remove(args) => {
            let target = settings.target(&args.target)?;
            let change = Change::Remove(args.packages);
            commands::change::run(target, change, &args.channel.channels, &ctx).await
        }
        Command::Index(args) => commands::index::run(args.dir, printer).await,
        Command::Delete(args) => {
            let target = settings.target(&args.target)?;
            commands::delete::run(target, args.yes, args.force, &registry, &ctx)
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
            let target = settings.target(&args.target)?;
            let change = OutputsChange {
                system: args
                    .module_system
                    .map(|m| ModuleSystem::resolve(m.into(), &env)),
                root: args
                    .module_root
                    .is_some()
                    .then(|| settings.module_root.value.clone()),
                default_root: settings.module_root.value.clone(),
                adopt: args.adopt,
            };
            commands::module::run(target, change, &ctx).await
        }
        Command::Config(args) => commands::config::run(&settings, args.json, printer),
        Command::Completions(_) => unreachable!("handled before settings are resolved"),
    }
}
