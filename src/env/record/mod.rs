//! The user's own record of where the outputs of an environment go: its module system and
//! module root, and its kernel. The manifest says the same, but it lives inside the
//! environment, where every member of a shared environment's group can write it, and a
//! forged one would have this user's envmod write a modulefile or a kernel into this
//! user's home, or remove a file elsewhere. The record lives in the user's private data
//! directory (`<data dir>/envmod/outputs/`), is written whenever this user's envmod writes
//! the outputs, and is compared with the manifest before the next command writes or removes
//! any; a place the user never chose is refused, naming the field. The prefix the manifest
//! names (a link that resolves to the environment today may point elsewhere tomorrow) and
//! the group it is shared with (a forged one would have this user's envmod give the tree
//! to another of this user's groups) are recorded for the same reason.
//!
//! What a group member may change is left alone: packages, specs, the Python version and
//! the module name that follows it. The places outside the environment are the record's,
//! and so are the modules it is built on, which this user's envmod loads (a module the
//! group can write, or a path, would run as this user). The channels are recorded too: a
//! group member may install from another, but this user's next package change that would
//! install from channels other than the ones this user last used names them first
//! (`channels`). What the modules and the site Python provided (`provided`) is recorded as
//! well: a stand-in a member adds would make this user's next solve leave out a package it
//! was asked for, and a site-packages directory of theirs would make their files count as
//! installed. A member's `install --ignore-site-packages`, which only counts fewer of the
//! site's packages, is left alone. A user with no record of an environment (one that
//! someone else created, or an older envmod did) takes the manifest as it is, once, and
//! records it.

mod difference;
#[cfg(test)]
mod tests;

use std::{
    io::Read,
    os::unix::{
        ffi::OsStrExt,
        fs::{DirBuilderExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::{
    environ::Environ,
    error::UserError,
    manifest::{KernelInfo, Manifest, Provisions, Sharing},
    outputs::modulefile,
    printer::Printer,
    site::ModuleSystem,
};

use difference::difference;

/// A record is a few hundred bytes; anything much larger is not one.
const MAX_RECORD: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    /// The environment's real path, as the file name's hash cannot say it.
    prefix: PathBuf,
    /// The prefix as the manifest names it, which outputs are written under.
    named: PathBuf,
    shared: Option<Sharing>,
    module: Option<RecordedModule>,
    kernel: Option<KernelInfo>,
    /// The modules the environment was built on, which every `module load` and `kernel add`
    /// loads as this user. `None` in a record of an older envmod.
    #[serde(default)]
    modules: Option<Vec<String>>,
    /// The channels this user's last package change installed from. A group member may
    /// install from others, so a difference is named, not refused.
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// The site Python it was built on, which this user chose: envmod starts it (to compile,
    /// to look for ipykernel) even where it cannot tell who else could have put it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    python: Option<PathBuf>,
    /// What the modules and the site Python provided, which every solve of this user's
    /// rests on: a stand-in there leaves a package out, a site-packages directory makes its
    /// distributions count as installed. Absent in a record of an envmod that wrote none
    /// into the manifest either, so absent means nothing was provided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provided: Option<Provisions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RecordedModule {
    system: ModuleSystem,
    root: PathBuf,
}

/// The outputs a command sets anew from its own flags: for them the manifest's value is
/// not acted on, and the recorded one is what the command replaces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Replacing {
    /// `module --relocate`: the prefix becomes the path the user named.
    pub(crate) prefix: bool,
    /// `share`.
    pub(crate) shared: bool,
    pub(crate) module_system: bool,
    pub(crate) module_root: bool,
    pub(crate) kernel: bool,
    /// `delete --force`, which loads no module: the recorded modules are not acted on.
    pub(crate) modules: bool,
    /// `delete --force`, which solves nothing: what the modules provided is not acted on.
    pub(crate) provided: bool,
}

impl Replacing {
    pub(crate) const NOTHING: Self = Self {
        prefix: false,
        shared: false,
        module_system: false,
        module_root: false,
        kernel: false,
        modules: false,
        provided: false,
    };
    pub(crate) const EVERYTHING: Self = Self {
        prefix: true,
        shared: true,
        module_system: true,
        module_root: true,
        kernel: true,
        modules: true,
        provided: true,
    };
}

fn record_path(env: &Environ, real: &Path) -> PathBuf {
    let digest =
        rattler_digest::compute_bytes_digest::<rattler_digest::Sha256>(real.as_os_str().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    env.xdg_dir("XDG_DATA_HOME", ".local/share")
        .join("envmod/outputs")
        .join(format!("{hex}.json"))
}

fn read(env: &Environ, real: &Path) -> Option<Record> {
    let path = record_path(env, real);
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_RECORD).read_to_string(&mut text).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    (record.prefix == real).then_some(record)
}

/// The manifest with this user's recorded outputs in the places `replacing` names, after
/// checking that it agrees with the record everywhere else. With no record, the manifest
/// as it is.
pub(crate) fn trusted(
    env: &Environ,
    real: &Path,
    manifest: &Manifest,
    replacing: Replacing,
    cli: &str,
) -> Result<Manifest> {
    let Some(record) = read(env, real) else {
        return Ok(manifest.clone());
    };
    if let Some((field, theirs, yours, hint)) = difference(&record, manifest, replacing, cli) {
        return Err(UserError::failure(format!(
            "`{field}` in {} is {theirs}, but the outputs you last wrote for {} had {yours}; envmod does not act on what you did not choose",
            Manifest::path_in(real).display(),
            manifest.name
        ))
        .with_hint(format!(
            "someone who can write that file changed it; nothing was changed. {hint}"
        ))
        .into());
    }
    let mut out = manifest.clone();
    if replacing.module_system || replacing.module_root {
        out.module = record
            .module
            .as_ref()
            .map(|r| modulefile::info_for(manifest, r.system, &r.root));
    }
    if replacing.kernel {
        out.kernel = record.kernel.clone();
    }
    Ok(out)
}

/// Whether the manifest agrees with the record (or there is none).
pub(crate) fn agrees(env: &Environ, real: &Path, manifest: &Manifest) -> bool {
    read(env, real).is_none_or(|r| difference(&r, manifest, Replacing::NOTHING, "").is_none())
}

/// Whether this user's envmod wrote the outputs of the environment at `real`.
pub(crate) fn wrote(env: &Environ, real: &Path) -> bool {
    read(env, real).is_some()
}

/// Whose channels a saved record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// This command installed from the manifest's channels: they are the user's now.
    Used,
    /// This command installed nothing: the recorded ones stay (the manifest's, the first
    /// time), so a group member's edit is not taken as the user's by a `freeze`.
    Kept,
}

/// The channels `real`'s record says this user's last package change installed from.
pub(crate) fn channels(env: &Environ, real: &Path) -> Option<Vec<String>> {
    read(env, real)?.channels
}

/// Whether `exe` is the site Python this user built the environment at `real` on.
pub(crate) fn chose_python(env: &Environ, real: &Path, exe: &Path) -> bool {
    read(env, real).and_then(|r| r.python).as_deref() == Some(exe)
}

/// Record where the outputs of `manifest` went; a failure costs only the check next time,
/// so it is a warning.
pub(crate) fn save(
    env: &Environ,
    real: &Path,
    manifest: &Manifest,
    channels: Channels,
    printer: &Printer,
) {
    let last = read(env, real);
    let channels = match channels {
        Channels::Used => None,
        Channels::Kept => last.as_ref().and_then(|r| r.channels.clone()),
    }
    .unwrap_or_else(|| manifest.channels.clone());
    // The site Python never changes after create; the recorded one is the one chosen then.
    let python = last.and_then(|r| r.python).or_else(|| {
        (manifest.python.mode == crate::manifest::PythonMode::Site)
            .then(|| manifest.python.site.executable.clone())
    });
    let record = Record {
        prefix: real.to_path_buf(),
        named: manifest.prefix.clone(),
        shared: manifest.shared.clone(),
        module: manifest.module.as_ref().map(|m| RecordedModule {
            system: m.system,
            root: m.root.clone(),
        }),
        kernel: manifest.kernel.clone(),
        modules: Some(
            manifest
                .modules
                .iter()
                .map(|m| m.full_name.clone())
                .collect(),
        ),
        channels: Some(channels),
        python,
        provided: manifest
            .provided
            .clone()
            .filter(|p| p != &Provisions::default()),
    };
    let path = record_path(env, real);
    let result = (|| -> Result<()> {
        let dir = path.parent().expect("record path has a directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        crate::fs::write_atomic(&path, serde_json::to_string_pretty(&record)?.as_bytes())
    })();
    if let Err(e) = result {
        printer.warn(format!(
            "could not record where the outputs of {} went ({e:#}); the next command takes its manifest as it is",
            manifest.name
        ));
    }
}

/// Forget the record of a removed environment.
pub(crate) fn forget(env: &Environ, real: &Path) {
    let _ = std::fs::remove_file(record_path(env, real));
}
