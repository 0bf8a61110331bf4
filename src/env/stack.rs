//! The module stack an environment records, checked the one way that holds on hierarchical
//! sites: by loading it from scratch (`site::modules::replay`). Looking at each module alone
//! misses that `openmpi/4.1` exists only once `gcc/12.2` is loaded, so `create`, `create -f`
//! and doctor all ask the replay, and record or report the order in which the stack loads.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;

use crate::{
    env::record,
    environ::Environ,
    error::UserError,
    manifest::Manifest,
    printer::Printer,
    site::modules::{self, LoadedModule, Replay, Skipped},
};

/// The names of `modules`, in order.
pub(crate) fn names(modules: &[LoadedModule]) -> Vec<String> {
    modules.iter().map(|m| m.full_name.clone()).collect()
}

/// The modules of this shell an environment records (`modules::capture`), checked by a
/// replay: a stack that does not load from scratch is refused, and one that loads only in
/// another order (an MPI listed before its compiler after a `module swap`) is recorded in
/// that order, with a warning that says so.
pub(crate) fn from_shell(
    env: &Environ,
    ignore: &[String],
    printer: &Printer,
) -> Result<(Vec<LoadedModule>, Vec<Skipped>)> {
    let (recorded, skipped) = modules::capture(env, ignore);
    if recorded.is_empty() {
        return Ok((recorded, skipped));
    }
    let asked = names(&recorded);
    let Some(replay) = modules::replay(env, &asked)? else {
        return Ok((recorded, skipped));
    };
    if let Some((module, said)) = replay.failed.first() {
        return Err(UserError::failure(format!(
            "the loaded module {module} does not load in a new shell ({said}); nothing was created"
        ))
        .with_hint(format!(
            "the environment's modulefile loads `{}` after the sticky modules: make that work in a new shell (a `module use` missing from it?), or leave {module} out with ignore_modules in ~/.config/envmod/config.yaml",
            asked.join(" ")
        ))
        .into());
    }
    if replay.order != asked {
        printer.warn(format!(
            "this shell lists its modules as {}, an order that does not load in a new shell (after a `module swap`?): recording them in the order that does, {}",
            asked.join(" "),
            replay.order.join(" ")
        ));
    }
    for m in &recorded {
        if let (Some(here), Some(there)) = (m.file.as_deref(), replay.file_of(&m.full_name))
            && here != there
        {
            printer.warn(format!(
                "{} in this shell is {here}, but a new shell loads {there} under that name (it was loaded before a `module swap`?): the environment gets {there}",
                m.full_name
            ));
        }
    }
    Ok((in_replay_order(&replay), skipped))
}

/// The asked modules in the order they loaded, each with the file it loaded from.
fn in_replay_order(replay: &Replay) -> Vec<LoadedModule> {
    replay
        .order
        .iter()
        .map(|name| LoadedModule {
            full_name: name.clone(),
            file: replay.file_of(name).map(str::to_owned),
        })
        .collect()
}

/// The modules a file records, mapped to this site's names and loaded from scratch.
pub(crate) struct Mapped {
    /// The modules to record, in the order they load here.
    pub(crate) modules: Vec<LoadedModule>,
    /// The file's names of the modules left out (`--skip-missing-modules`).
    pub(crate) missing: Vec<String>,
    /// The scratch shell with them loaded: where this stack's `python3` is. `None` without a
    /// module system.
    pub(crate) environ: Option<Environ>,
}

/// `recorded` (a file's modules) after `map`, loaded in a scratch shell as `module load ENV`
/// will. What does not load is refused with the map lines to write, or, with `skip_missing`,
/// left out with a warning. `what` names the file in messages.
pub(crate) fn mapped(
    recorded: &[String],
    map: &BTreeMap<String, Option<String>>,
    skip_missing: bool,
    what: &str,
    env: &Environ,
    printer: &Printer,
) -> Result<Mapped> {
    let wanted = modules::apply_map(recorded, map)?;
    let as_named = |names: &[String]| {
        names
            .iter()
            .map(|n| LoadedModule {
                full_name: n.clone(),
                file: None,
            })
            .collect::<Vec<_>>()
    };
    if wanted.is_empty() {
        return Ok(Mapped {
            modules: Vec::new(),
            missing: Vec::new(),
            environ: None,
        });
    }
    let Some(replay) = modules::replay(env, &wanted)? else {
        printer.warn(format!(
            "no module system here: the environment is built without loading {}; they stay recorded for where a module system exists",
            wanted.join(" ")
        ));
        return Ok(Mapped {
            modules: as_named(&wanted),
            missing: Vec::new(),
            environ: None,
        });
    };
    // The file's own name of a module, as module_map lines are keyed by it.
    let original = |m: &str| {
        recorded
            .iter()
            .find(|o| {
                modules::apply_map(std::slice::from_ref(*o), map)
                    .is_ok_and(|to| to.first().map(String::as_str) == Some(m))
            })
            .cloned()
            .unwrap_or_else(|| m.to_owned())
    };
    // An environment's modulefile puts that environment's bin first on PATH: the site Python
    // would be its interpreter, which whoever owns the environment can replace. `create`
    // never records one (`Skipped::Envmod`), and a file's list does not either.
    if let Some((m, file)) = wanted.iter().find_map(|m| {
        replay
            .file_of(m)
            .filter(|f| modules::is_envmod_modulefile(Path::new(f)))
            .map(|f| (m, f))
    }) {
        return Err(UserError::usage(format!(
            "{what}lists the module {m}, which is an environment's module that envmod wrote ({file}), not a site module; nothing was created"
        ))
        .with_hint(format!(
            "an environment cannot be built on another one: leave it out with the module_map line `{}: null` (--module-map FILE)",
            original(m)
        ))
        .into());
    }
    if replay.failed.is_empty() {
        if replay.order != wanted {
            printer.info(format!(
                "loading the modules in the order they load here: {}",
                replay.order.join(" ")
            ));
        }
        return Ok(Mapped {
            modules: in_replay_order(&replay),
            missing: Vec::new(),
            environ: Some(replay.environ),
        });
    }
    let failed: Vec<&str> = replay.failed.iter().map(|(m, _)| m.as_str()).collect();
    if skip_missing {
        printer.warn(format!(
            "building without modules that do not load here: {}",
            failed.join(" ")
        ));
        let missing = failed.iter().map(|m| original(m)).collect();
        return Ok(Mapped {
            modules: in_replay_order(&replay),
            missing,
            environ: Some(replay.environ),
        });
    }
    // A module the map already names gets what the module system said; the others get the
    // map line to write.
    let mut lines = Vec::new();
    let mut said = Vec::new();
    for (m, why) in &replay.failed {
        let from = original(m);
        if map.contains_key(&from) {
            said.push(format!("{m} (module_map sends {from} there): {why}"));
        } else {
            lines.push(format!("{from}: <module here>"));
        }
    }
    let mut hint = String::new();
    if !lines.is_empty() {
        hint += &format!(
            "map them to this site's modules in module_map (config) or a --module-map FILE, one line each:\n  {}\n(`null` leaves a module out), or pass --skip-missing-modules",
            lines.join("\n  ")
        );
    }
    if !said.is_empty() {
        if !hint.is_empty() {
            hint += "\n";
        }
        hint += &format!(
            "in a new shell here, `module load {}` fails at:\n  {}\nfix those lines of the map (`module spider NAME` finds a module in the hierarchy), or pass --skip-missing-modules",
            wanted.join(" "),
            said.join("\n  ")
        );
    }
    Err(UserError::failure(format!(
        "modules that {what}was built on do not load here: {}; nothing was created",
        failed.join(" ")
    ))
    .with_hint(hint)
    .into())
}

/// The modules of `manifest` that this user's envmod may load to check them. Loading a
/// module runs its modulefile as this user, and a shared environment's manifest is the
/// group's to write: a list that differs from the one this user recorded is refused with
/// the error that names the field, and nothing is loaded. `cli` names the environment in
/// the fixes.
pub(crate) fn to_check(env: &Environ, manifest: &Manifest, cli: &str) -> Result<Vec<String>> {
    record::trusted(
        env,
        &manifest.prefix,
        manifest,
        record::Replacing::NOTHING,
        cli,
    )?;
    Ok(names(&manifest.modules))
}
