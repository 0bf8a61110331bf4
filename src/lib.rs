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
mod escape;
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
    env::ctx::Ctx,
    environ::Environ,
    printer::{Printer, Verbosity},
    render::Renderer,
    settings::{
        AdoptSettings, ChangeSettings, CleanSettings, CreateSettings, DeleteSettings,
        DoctorSettings, ExportSettings, GlobalSettings, KernelAddSettings, KernelListSettings,
        KernelRemoveSettings, ListSettings, ModuleSettings, ShellHookSettings, ShowSettings,
    },
};

/// Exit code for a command stopped by a signal, as shells report it (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// Called from the signal handler: remove what is half-made, say what was left, and exit.
/// The cleanup lock stays held until the process is gone, so no rename into place can
/// happen after the removal.
pub fn interrupted() -> ! {
    // Before the programs are stopped: work that sees one fail then knows why.
    env::undo::set_interrupted();
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
    let settings = GlobalSettings::resolve(&env, settings::flag_layer(&command))?;
    for w in &settings.warnings {
        printer.warn(w);
    }
    let conda = settings.conda()?;
    let renderer = Renderer::new(settings.templates_dir.value.as_deref());
    let site = settings.site();
    let ctx = Ctx {
        printer,
        environ: &env,
        conda: &conda,
        renderer: &renderer,
        options: settings.modulefile_options(),
        site: &site,
    };
    let (s, env) = (&settings, &env);
    match command {
        Command::Create(a) => {
            commands::create::run(CreateSettings::resolve(a, s, env)?, &ctx).await
        }
        Command::Install(a) => {
            let c = ChangeSettings::install(a, s, env, printer)?;
            commands::change::run(c.target, c.change, &c.channels, c.dry_run, &ctx).await
        }
        Command::Remove(a) => {
            let c = ChangeSettings::remove(a, s)?;
            commands::change::run(c.target, c.change, &c.channels, c.dry_run, &ctx).await
        }
        Command::Update(a) => {
            let c = ChangeSettings::update(a, s)?;
            commands::change::run(c.target, c.change, &c.channels, c.dry_run, &ctx).await
        }
        Command::Delete(a) => commands::delete::run(DeleteSettings::resolve(a, s)?, &ctx),
        Command::Adopt(a) => commands::adopt::run(AdoptSettings::resolve(a, s, env)?, &ctx),
        Command::List(a) => commands::list::run(ListSettings::resolve(a, s), printer),
        Command::Module(a) => {
            let m = ModuleSettings::resolve(a, s, env, printer)?;
            commands::module::run(m.target, m.change, &m.registry, &ctx).await
        }
        Command::Export(a) => {
            commands::export::run(ExportSettings::resolve(a, s, env, printer)?, &ctx).await
        }
        Command::Show(a) => commands::show::run(ShowSettings::resolve(a, s, env, printer)?, &ctx),
        Command::Kernel(cli::KernelCommand::Add(a)) => {
            commands::kernel::add(KernelAddSettings::resolve(a, s, env, printer)?, &ctx).await
        }
        Command::Kernel(cli::KernelCommand::Remove(a)) => {
            commands::kernel::remove(KernelRemoveSettings::resolve(a, s, env)?, &ctx).await
        }
        Command::Kernel(cli::KernelCommand::List(a)) => {
            commands::kernel::list(KernelListSettings::resolve(a, s, env), &ctx, printer)
        }
        Command::Doctor(a) => {
            let d = DoctorSettings::resolve(a, s);
            commands::doctor::run(d.checkup, d.json, env, printer)
        }
        Command::Clean(a) => commands::clean::run(CleanSettings::resolve(a, s), env, printer),
        Command::Share(a) => {
            let c = ChangeSettings::share(a, s)?;
            commands::share::run(c.target, c.change, &ctx).await
        }
        Command::Freeze(a) => commands::freeze::run(s.target(&a.target)?, true, &ctx).await,
        Command::Unfreeze(a) => commands::freeze::run(s.target(&a.target)?, false, &ctx).await,
        Command::ShellHook(a) => {
            let h = ShellHookSettings::resolve(a, s, env, printer)?;
            commands::shell_hook::run(h.target, h.shell, &ctx)
        }
        Command::Config(a) => commands::config::run(s, a.json, printer),
        Command::Completions(_) | Command::Index(_) => {
            unreachable!("handled before settings are resolved")
        }
    }
}
