//! `create --clone SRC`, planned: SRC's conda packages, read from its conda-meta, installed
//! again from the package cache as a lock's are (so every prefix in them is this one's, and
//! nothing is solved), its pip packages copied, and its record (specs, channels, modules,
//! Python) taken over as the new environment's own. SRC may be a shared environment a group
//! can write, so everything read from it is input.

use anyhow::Result;
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda::{self, specs::Spec},
    env::{
        apply::{Packages, Pip, PipCopy},
        ctx::{Ctx, channels},
        plan::{
            Plan, conda_interpreter,
            new_env::{Built, CreateSettings},
        },
        prefix::{self, EnvTarget},
        venv,
    },
    error::UserError,
    escape::sh_quote,
    manifest::{Manifest, PythonMode},
};

/// Plan a copy of the environment `s.clone` names at `s.target`.
pub(super) async fn from_clone(mut s: CreateSettings, ctx: &Ctx<'_>) -> Result<Plan> {
    let Some(src) = s.clone.clone() else {
        unreachable!("from_clone is called for --clone")
    };
    let target = &s.target;
    if target.prefix.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(target));
    }
    let src_real = src.real_path()?;
    if src_real.symlink_metadata().is_ok_and(|m| m.is_dir())
        && Manifest::path_in(&src_real).symlink_metadata().is_err()
    {
        return Err(not_envmod(&src));
    }
    let reading = prefix::open_to_read(&src)?;
    let m = &reading.manifest;
    let records: Vec<RepoDataRecord> =
        conda::prefix::records_to_change(&reading.real, &src.prefix)?
            .into_iter()
            .map(|r| r.repodata_record)
            .filter(|r| {
                m.python.mode == PythonMode::Conda
                    || r.package_record.name.as_normalized() != "python"
            })
            .collect();
    let conda_count = records.len();
    let (mut records, interpreter) = match m.python.mode {
        PythonMode::Conda => {
            let interpreter = conda_interpreter(&records, &target.prefix)?;
            (records, interpreter)
        }
        PythonMode::Site => {
            // The manifest of a shared environment is its group's to edit: the Python it
            // names is started (to compile) only if SRC's owner or this user chose it.
            let exe = &m.python.site.executable;
            venv::may_run(ctx.environ, &reading.real, exe).map_err(|why| {
                UserError::failure(format!("cannot clone {}: {why}", src.prefix.display()))
                    .with_hint(format!(
                        "build the copy on your own Python: `envmod export {} -o env.yml`, then `envmod create -n NEW -f env.yml --site-python PATH`",
                        src.cli()
                    ))
            })?;
            (records, m.python.site.clone())
        }
    };
    if m.python.mode == PythonMode::Site {
        // The site Python stands in for the `python` record the packages link against.
        records.push(conda::solve::site_python_record(&interpreter)?);
    }
    let dists = crate::env::apply::pip_dists(&reading.real)?;
    ctx.printer.info(format!(
        "Cloning {}: {conda_count} conda packages from the package cache, {} pip packages copied (no solve)",
        m.name,
        dists.len()
    ));
    let network = channels(&m.channels, ctx)
        .map(|c| c.network)
        .unwrap_or_default();
    let variables = state_variables(&reading.real)?;
    // A modulefile like SRC's, though none is detected here; always in this user's own
    // module root, never beside SRC's.
    if s.module_system.is_none() {
        s.module_system = m.module.as_ref().map(|i| i.system);
    }
    if s.description.is_none() {
        s.description = m.description.clone();
    }
    let mut from = vec![m.prefix.clone(), reading.real.clone(), src.prefix.clone()];
    from.dedup();
    let built = Built {
        mode: m.python.mode,
        interpreter,
        modules: m.modules.clone(),
        specs: m.specs.clone(),
        channels: m.channels.clone(),
        selected: m.selected.clone(),
        pip: m.pip.clone(),
        skipped_modules: m.skipped_modules.clone(),
        provided: m.provided.clone().unwrap_or_default(),
    };
    let packages = Packages {
        specs: Spec::parse_all(&m.specs)?,
        records,
        network,
        pip: Pip::Copy(Box::new(PipCopy {
            real: reading.real.clone(),
            from,
            dists,
            _lock: reading._lock,
        })),
        variables,
    };
    built.into_plan(s, packages, None, ctx)
}

fn not_envmod(src: &EnvTarget) -> anyhow::Error {
    let shown = sh_quote(&src.prefix.to_string_lossy());
    UserError::failure(format!(
        "{} is not an envmod environment (it has no {}), so it cannot be cloned",
        src.prefix.display(),
        Manifest::path_in(std::path::Path::new("")).display()
    ))
    .with_hint(format!(
        "bring it under envmod first with `envmod adopt -p {shown}`, then clone it"
    ))
    .into()
}

/// The variables SRC keeps in `conda-meta/state` (an environment file's `variables:`).
fn state_variables(real: &std::path::Path) -> Result<Vec<(String, String)>> {
    let Some(bytes) =
        crate::fs::read_beneath(real, std::path::Path::new("conda-meta/state"), 1 << 20)?
    else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(value
        .get("env_vars")
        .and_then(|v| v.as_object())
        .map(|vars| {
            vars.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}
