//! `envmod adopt`: an environment made by conda, pixi, venv or conda-env-mod, brought under
//! envmod as it is. Its packages are never touched: envmod adds only its manifest (in
//! `.envmod/`), the modulefile, `bin/activate` and a kernel, and `delete` of an adopted
//! environment takes away only those unless it is asked for the prefix too.

mod conda;
mod kernel;
mod modulefiles;
mod release;
mod venv;
mod write;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub(crate) use release::release;

use crate::{
    env::{ctx::Ctx, lock::EnvLock, prefix::EnvTarget, registry::Registry},
    error::UserError,
    manifest::{Adopted, AdoptedKind, MANIFEST_VERSION, Manifest, PythonInfo, PythonMode},
    outputs::modulefile,
    site::{ModuleSystem, modules::LoadedModule},
};

/// Where the adopted environments' outputs go.
pub(crate) struct AdoptOptions {
    pub(crate) module_system: Option<ModuleSystem>,
    pub(crate) module_root: PathBuf,
    pub(crate) registry: Registry,
    pub(crate) dry_run: bool,
    /// The site's `module_name_template`, unless it is the built-in one.
    pub(crate) module_template: Option<String>,
}

/// What kind of environment a directory holds, from the files that make it one.
fn kind_of(real: &Path) -> Option<AdoptedKind> {
    let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    let is_file = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_file());
    if is_dir(&real.join("conda-meta")) {
        let pixi = real
            .parent()
            .and_then(|envs| (envs.file_name()? == "envs").then(|| envs.parent()?.file_name()))
            .flatten()
            .is_some_and(|d| d == ".pixi");
        return Some(if pixi {
            AdoptedKind::Pixi
        } else {
            AdoptedKind::Conda
        });
    }
    is_file(&real.join("pyvenv.cfg")).then_some(AdoptedKind::Venv)
}

pub(crate) fn kind_name(kind: AdoptedKind) -> &'static str {
    match kind {
        AdoptedKind::Conda => "conda environment",
        AdoptedKind::Pixi => "pixi environment",
        AdoptedKind::Venv => "venv",
    }
}

/// Adopt the environment at `target`, recording `modules` as the ones it is built on.
pub(crate) fn adopt(
    target: &EnvTarget,
    modules: Vec<LoadedModule>,
    opts: &AdoptOptions,
    ctx: &Ctx<'_>,
) -> Result<Manifest> {
    let real = target.real_path()?;
    if !real.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(UserError::usage(format!(
            "there is no environment at {}",
            target.prefix.display()
        ))
        .with_hint("name the directory of an existing conda environment or venv with -p")
        .into());
    }
    refuse_another_accounts(target, &real)?;
    let _lock = EnvLock::acquire(&real, &target.name)?;
    if release::half_done(&real) {
        ctx.printer.warn(format!(
            "an earlier adoption of {} was stopped before it finished; envmod takes back what it wrote and adopts it again",
            target.prefix.display()
        ));
        release::undo_half_done(&real, ctx);
    }
    if crate::env::prefix::has_envmod_dir(&real) {
        return Err(UserError::usage(format!(
            "{} is already an envmod environment",
            target.prefix.display()
        ))
        .with_hint(format!(
            "`envmod module {}` writes its modulefile again",
            target.cli()
        ))
        .into());
    }
    let kind = kind_of(&real).ok_or_else(|| {
        UserError::usage(format!(
            "{} is neither a conda environment (it has no conda-meta/) nor a venv (no pyvenv.cfg)",
            target.prefix.display()
        ))
        .with_hint("name the prefix of a conda, pixi or venv environment")
    })?;
    let mut manifest = describe(target, &real, kind, modules, ctx)?;
    manifest.module_template = opts.module_template.clone();
    manifest.module = opts
        .module_system
        .map(|system| modulefile::info_for(&manifest, system, &opts.module_root));
    let mut kernels = kernel::find(ctx.environ, &target.prefix, &real, &|w| ctx.printer.warn(w));
    let taken = (!kernels.is_empty()).then(|| kernels.remove(0));
    if let Some(found) = &taken {
        for other in &kernels {
            ctx.printer.warn(format!(
                "the kernel {} runs this environment too; envmod takes over only {}, and leaves {} as it is",
                other.name, found.name, other.name
            ));
        }
        if let Some(a) = manifest.adopted.as_mut() {
            a.kernel = Some(kernel::record(found));
        }
    }
    if opts.dry_run {
        return Ok(manifest);
    }
    if let Some(found) = &taken {
        manifest.kernel = Some(crate::outputs::kernel::plan_kernel(
            &manifest,
            Some(&found.name),
            Some(&found.display_name),
            None,
            ctx.environ,
            ctx.printer,
        )?);
    }
    let undoing = crate::env::undo::TakesItselfBack::begin();
    if let Err(e) = write::write(&real, &mut manifest, taken.as_ref(), ctx) {
        if crate::env::undo::was_interrupted() {
            undoing.exit_after_undo();
        }
        return Err(e);
    }
    let registered = match target.by_prefix {
        true => opts.registry.add(&target.prefix),
        false => Ok(()),
    };
    if crate::env::undo::was_interrupted() {
        release::undo(&real, &manifest, ctx);
        crate::env::record::forget(ctx.environ, &real);
        let _ = opts.registry.remove(&target.prefix);
        undoing.exit_after_undo();
    }
    crate::env::cleanup::set_committed(Some(format!("{} was adopted", target.prefix.display())));
    drop(undoing);
    registered?;
    Ok(manifest)
}

/// Adoption writes envmod's files into the environment, and another account's environment
/// is theirs: their files in it, and ours in a directory they can rename, would make it
/// nobody's to change. Root, which can write any of them, adopts only its own too, so an
/// adopted environment is always its owner's.
fn refuse_another_accounts(target: &EnvTarget, real: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = real.symlink_metadata() else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() == me {
        return Ok(());
    }
    let owner = crate::fs::user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
    let shown = crate::escape::sh_quote(&target.prefix.to_string_lossy());
    Err(UserError::failure(format!(
        "{} belongs to {owner}; adopt writes into an environment, so only its owner adopts it",
        target.prefix.display()
    ))
    .with_hint(format!(
        "ask {owner} to run `envmod adopt -p {shown}`, then make your own copy with `envmod create -n NAME --clone {shown}`; nothing was changed"
    ))
    .into())
}

/// The manifest an adopted environment gets, from what is in it.
fn describe(
    target: &EnvTarget,
    real: &Path,
    kind: AdoptedKind,
    modules: Vec<LoadedModule>,
    ctx: &Ctx<'_>,
) -> Result<Manifest> {
    let (python, specs, channels, pip, provided) = match kind {
        AdoptedKind::Conda | AdoptedKind::Pixi => {
            let records = crate::conda::prefix::installed_records(real)?;
            let python = PythonInfo {
                mode: PythonMode::Conda,
                site: conda::interpreter(&target.prefix, &records)?,
            };
            let specs = conda::requested_specs(real, &records)?;
            (python, specs, conda::channels(&records), Vec::new(), None)
        }
        AdoptedKind::Venv => {
            let v = venv::describe(real, ctx)?;
            (v.python, Vec::new(), Vec::new(), v.pip, Some(v.provided))
        }
    };
    Ok(Manifest {
        manifest_version: MANIFEST_VERSION,
        envmod_version: env!("CARGO_PKG_VERSION").to_string(),
        name: target.name.clone(),
        prefix: target.prefix.clone(),
        created: chrono::Utc::now(),
        description: None,
        python,
        modules,
        specs,
        channels,
        selected: Vec::new(),
        pip,
        skipped_modules: Vec::new(),
        module: None,
        kernel: None,
        owner: crate::fs::current_user(),
        shared: None,
        frozen: false,
        by_prefix: target.by_prefix,
        outputs_pending: false,
        activation: None,
        provided: Some(provided.unwrap_or_default()),
        adopted: Some(Adopted {
            kind,
            kept_activate: false,
            kernel: None,
        }),
        module_template: None,
    })
}

/// Adopt every environment a tree of conda-env-mod modulefiles names (only the one named
/// `only`, if given), one line each on stdout; an error at the end if any was not adopted.
pub(crate) fn from_modules(
    dir: &Path,
    only: Option<&crate::names::EnvName>,
    envs_dir: &Path,
    opts: &AdoptOptions,
    ctx: &Ctx<'_>,
) -> Result<()> {
    if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(
            UserError::usage(format!("{} is not a directory", dir.display()))
                .with_hint(
                    "name the directory conda-env-mod wrote modulefiles into (its -m/--moduledir)",
                )
                .into(),
        );
    }
    let found = modulefiles::find(dir)?;
    let (mut adopted, mut failed, mut already) = (0, 0, 0);
    for f in found {
        if only.is_some_and(|n| n.as_str() != f.name) {
            continue;
        }
        let shown = f.file.display();
        let line = match f.read {
            Ok(p) => match one_from_module(&p, envs_dir, opts, ctx) {
                Ok(Some(m)) => {
                    adopted += 1;
                    let module = m
                        .module
                        .as_ref()
                        .map_or(String::new(), |i| format!(" as module {}", i.name));
                    let verb = if opts.dry_run {
                        "would adopt"
                    } else {
                        "adopted"
                    };
                    format!(
                        "{verb} {} ({}) from {shown}{module}{}",
                        m.name,
                        m.prefix.display(),
                        took_over(&m, opts.dry_run).map_or(String::new(), |t| format!(", and {t}"))
                    )
                }
                Ok(None) => {
                    already += 1;
                    format!(
                        "already adopted: {} ({}) from {shown}",
                        p.name,
                        p.prefix.display()
                    )
                }
                Err(e) => {
                    failed += 1;
                    format!("not adopted: {shown}: {}", one_line(&e))
                }
            },
            Err(why) => {
                failed += 1;
                format!("not adopted: {shown}: {why}")
            }
        };
        ctx.printer.data(format!("{line}\n"));
    }
    if adopted + failed + already == 0 && only.is_some() {
        return Err(UserError::usage(format!(
            "no modulefile in {} names the environment {}",
            dir.display(),
            only.map(|n| n.as_str()).unwrap_or_default()
        ))
        .with_hint("leave out -n to adopt every environment there")
        .into());
    }
    if failed > 0 {
        return Err(UserError::failure(format!(
            "{failed} of {} environments were not adopted",
            adopted + failed + already
        ))
        .with_hint("fix what each line says and run adopt again; the adopted ones stay as they are")
        .into());
    }
    Ok(())
}

/// What the adoption did with the user's kernel for the environment, if it had one.
pub(crate) fn took_over(m: &Manifest, dry_run: bool) -> Option<String> {
    let taken = m.adopted.as_ref()?.kernel.as_ref()?;
    let verb = if dry_run {
        "would take over"
    } else {
        "took over"
    };
    Some(format!("{verb} kernel {}", taken.name))
}

fn one_line(e: &anyhow::Error) -> String {
    let text = match e.downcast_ref::<UserError>() {
        Some(u) => match &u.hint {
            Some(h) => format!("{u} ({h})"),
            None => u.to_string(),
        },
        None => format!("{e:#}"),
    };
    text.replace('\n', " ")
}

/// Adopt the environment one modulefile names; `None` when it already is an envmod one.
fn one_from_module(
    p: &modulefiles::Parsed,
    envs_dir: &Path,
    opts: &AdoptOptions,
    ctx: &Ctx<'_>,
) -> Result<Option<Manifest>> {
    let dir_name = p.prefix.file_name().map(|n| n.to_string_lossy());
    if dir_name.as_deref() != Some(p.name.as_str()) {
        return Err(UserError::usage(format!(
            "its environment {} is in a directory not named {}",
            p.prefix.display(),
            p.name
        ))
        .into());
    }
    let name: crate::names::EnvName = p
        .name
        .parse()
        .map_err(|e| UserError::usage(format!("{e}")))?;
    let target = EnvTarget {
        by_prefix: p.prefix != envs_dir.join(name.as_str()),
        prefix: p.prefix.clone(),
        name,
    };
    let real = target.real_path()?;
    if crate::env::prefix::has_envmod_dir(&real) && !release::half_done(&real) {
        return Ok(None);
    }
    for m in &p.modules {
        if let Err(why) = crate::site::modules::check_name(m) {
            return Err(UserError::usage(format!(
                "it loads `{}`, which is not a module name: {why}",
                m.escape_debug()
            ))
            .with_hint(format!(
                "{}; correct its depends_on lines and adopt it again; nothing of it was changed",
                crate::site::modules::NAME_HINT
            ))
            .into());
        }
    }
    let modules = p
        .modules
        .iter()
        .map(|m| LoadedModule {
            full_name: m.clone(),
            file: None,
        })
        .collect();
    adopt(&target, modules, opts, ctx).map(Some)
}
