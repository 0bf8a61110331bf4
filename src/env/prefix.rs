//! Which directory a command acts on. The path a user names is resolved once, here: its
//! parent through any symlinks (so `-n a` and `-p <real path of a>` take the same lock and
//! the same staging directory), while the environment itself must be named directly, never
//! through a link. An environment whose manifest records another prefix is a copy or a move,
//! and is refused until it is re-pointed (`envmod module --relocate`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    env::lock::{self, EnvLock, ReadLock},
    error::UserError,
    escape::sh_quote,
    manifest::Manifest,
    names::EnvName,
};

/// How an environment is named on the command line.
#[derive(Debug, Clone)]
pub(crate) struct EnvTarget {
    pub(crate) name: EnvName,
    pub(crate) prefix: PathBuf,
    /// Given with `-p`: such environments are remembered in the registry so `list` finds them.
    pub(crate) by_prefix: bool,
}

impl EnvTarget {
    /// `-n NAME` or `-p PREFIX`, as the user would type it again.
    pub(crate) fn cli(&self) -> String {
        if self.by_prefix {
            format!("-p {}", sh_quote(&self.prefix.to_string_lossy()))
        } else {
            format!("-n {}", self.name)
        }
    }

    /// The directory this target names on disk: the parent resolved through symlinks, the
    /// last component as given. Fails if the last component is itself a symlink.
    pub(crate) fn real_path(&self) -> Result<PathBuf> {
        let prefix = &self.prefix;
        if let Ok(meta) = prefix.symlink_metadata()
            && meta.file_type().is_symlink()
        {
            let to = std::fs::canonicalize(prefix)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "a missing directory".into());
            return Err(UserError::failure(format!(
                "{} is a symbolic link to {to}; envmod acts only on the directory you name",
                prefix.display()
            ))
            .with_hint(format!(
                "name the environment by its real path: -p {}",
                sh_quote(&to)
            ))
            .into());
        }
        let (Some(parent), Some(last)) = (prefix.parent(), prefix.file_name()) else {
            return Ok(prefix.clone());
        };
        Ok(match std::fs::canonicalize(parent) {
            Ok(real_parent) => real_parent.join(last),
            Err(_) => prefix.clone(),
        })
    }
}

/// An existing environment, locked, with its manifest.
pub(crate) struct Opened {
    pub(crate) real: PathBuf,
    pub(crate) manifest: Manifest,
    /// Held for as long as the command works on the environment.
    pub(crate) _lock: EnvLock,
}

/// What `open` accepts besides an intact environment at the path it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Accept {
    #[default]
    Intact,
    /// A copy or move: the caller re-points it.
    Relocated,
}

/// Lock an existing environment and read its manifest, refusing a path that is not an
/// envmod environment or that holds a copy of one made elsewhere.
pub(crate) fn open(target: &EnvTarget, accept: Accept) -> Result<Opened> {
    let real = target.real_path()?;
    let lock = EnvLock::acquire(&real, &target.name)?;
    lock::clear_leftovers(&real, &target.name)?;
    let manifest = read_manifest(target, &real)?;
    if accept == Accept::Intact {
        refuse_copy(target, &manifest, &real)?;
    }
    Ok(Opened {
        real,
        manifest,
        _lock: lock,
    })
}

/// An existing environment, read under a shared lock.
pub(crate) struct Reading {
    pub(crate) real: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) _lock: ReadLock,
}

/// [`open`] for commands that only read: a shared lock, no write anywhere, and nothing an
/// earlier command left is cleared or finished (that is for the next change, made by
/// someone who may write).
pub(crate) fn open_to_read(target: &EnvTarget) -> Result<Reading> {
    let real = target.real_path()?;
    let lock = ReadLock::acquire(&real, &target.name)?;
    let manifest = read_manifest(target, &real)?;
    refuse_copy(target, &manifest, &real)?;
    Ok(Reading {
        real,
        manifest,
        _lock: lock,
    })
}

fn refuse_copy(target: &EnvTarget, manifest: &Manifest, real: &Path) -> Result<()> {
    if crate::fs::same_dir(&manifest.prefix, real) {
        return Ok(());
    }
    let hint = format!(
        "re-point the copy with `envmod module {} --relocate`, or name the original: -p {}",
        target.cli(),
        sh_quote(&manifest.prefix.to_string_lossy())
    );
    Err(relocated(target, manifest, &hint))
}

pub(crate) fn relocated(target: &EnvTarget, manifest: &Manifest, hint: &str) -> anyhow::Error {
    UserError::failure(format!(
        "{} holds a copy of the environment created at {}; envmod will not act on one through the other",
        target.prefix.display(),
        manifest.prefix.display()
    ))
    .with_hint(hint)
    .into()
}

/// The manifest of an existing envmod environment, or an error that says why there is none.
pub(crate) fn read_manifest(target: &EnvTarget, real: &Path) -> Result<Manifest> {
    if real.symlink_metadata().is_err() {
        return Err(
            UserError::failure(format!("no environment at {}", target.prefix.display()))
                .with_hint("`envmod list` shows the environments envmod knows")
                .into(),
        );
    }
    match Manifest::read(real) {
        Ok(Some(m)) => {
            // The directory names the environment; a manifest for this very directory
            // that says otherwise would move its module and kernel under another name.
            if crate::fs::same_dir(&m.prefix, real) && m.name != target.name {
                return Err(crate::outputs::inconsistent(
                    real,
                    "name",
                    &format!(
                        "is {}, but the environment's directory is {}",
                        m.name, target.name
                    ),
                ));
            }
            crate::outputs::check_recorded(&m, real)?;
            Ok(m)
        }
        Ok(None) => {
            let adopt = format!(
                "envmod adopt -p {}",
                crate::escape::sh_quote(&target.prefix.to_string_lossy())
            );
            let dir = real.join(crate::manifest::MANIFEST_DIR);
            if dir.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
                return Err(UserError::failure(format!(
                    "{} is a symbolic link, which envmod does not follow: someone who can write the environment put it there",
                    target.prefix.join(crate::manifest::MANIFEST_DIR).display()
                ))
                .with_hint(format!(
                    "remove the link, then bring the environment under envmod again with `{adopt}`"
                ))
                .into());
            }
            Err(UserError::failure(format!(
                "{} was not created by envmod (it has no {})",
                target.prefix.display(),
                Manifest::path_in(Path::new("")).display()
            ))
            .with_hint(format!(
                "envmod changes only environments it created or adopted: bring this one under envmod with `{adopt}`"
            ))
            .into())
        }
        Err(e) => Err(UserError::failure(format!("{e:#}"))
            .with_hint(format!(
                "`envmod delete {} --force` removes it; then create it again",
                target.cli()
            ))
            .into()),
    }
}

/// Whether `dir` still carries envmod's metadata directory, even with a damaged manifest.
pub(crate) fn has_envmod_dir(dir: &Path) -> bool {
    Manifest::path_in(dir)
        .parent()
        .is_some_and(|d| d.symlink_metadata().is_ok_and(|m| m.is_dir()))
}

/// The error for a name or prefix that is already taken.
pub(crate) fn already_exists(target: &EnvTarget) -> anyhow::Error {
    let hint = if Manifest::path_in(&target.prefix).is_file() {
        format!(
            "choose another name, or remove it first with `envmod delete {}`",
            target.cli()
        )
    } else {
        "choose another name or prefix; envmod never writes into an existing directory".to_string()
    };
    UserError::failure(format!("{} already exists", target.prefix.display()))
        .with_hint(hint)
        .into()
}

/// What `CONDA_PREFIX` says about the environment this shell has loaded. envmod's
/// modulefiles and activation scripts set it to the prefix they were written for; so do
/// conda's own, for environments envmod did not create.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// An envmod environment: the prefix as the variable gives it.
    Env(PathBuf),
    /// Nothing is loaded.
    Nothing,
    /// A directory without envmod's manifest (a conda environment, most likely).
    NotEnvmod(PathBuf),
    /// A path envmod will not take from the variable, and why.
    Refused(PathBuf, String),
}

/// The envmod environment loaded in this shell, if `CONDA_PREFIX` names one. The value is
/// input like any other: the path is taken only when it is absolute and plain, no link
/// on the way was made by anyone but this user or root, the prefix itself is no link, and
/// its manifest is a regular file reached without following any link.
pub(crate) fn loaded(environ: &crate::environ::Environ) -> Loaded {
    let Some(value) = environ.get("CONDA_PREFIX") else {
        return Loaded::Nothing;
    };
    let prefix = PathBuf::from(value);
    let plain = prefix.is_absolute()
        && prefix.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
        && !value.chars().any(|c| c.is_control() || c == ':');
    if !plain || prefix.parent().is_none() {
        return Loaded::Refused(prefix, "it is not a plain absolute path".into());
    }
    if let Err(why) = crate::fs::trust::own_links(&prefix) {
        return Loaded::Refused(prefix, why);
    }
    if prefix
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Loaded::Refused(prefix, "it is a symbolic link".into());
    }
    match crate::fs::open_regular_beneath(&prefix, &Manifest::path_in(Path::new(""))) {
        Ok(_) => Loaded::Env(prefix),
        Err(crate::fs::ReadError::NotFound(_)) => Loaded::NotEnvmod(prefix),
        Err(e) => Loaded::Refused(prefix, format!("its manifest is not envmod's to read: {e}")),
    }
}

/// The refusal of a change to a frozen environment, naming the way out.
pub(crate) fn frozen(m: &Manifest) -> anyhow::Error {
    UserError::failure(format!(
        "{} is frozen: its packages cannot be installed, updated or removed, nor can it be deleted",
        m.name
    ))
    .with_hint(format!("envmod unfreeze {}", m.cli_target()))
    .into()
}
