//! The Jupyter kernel an adopted environment already had (conda-env-mod's `kernel` writes
//! `<data dir>/kernels/<name>/kernel.json` starting `PREFIX/bin/python -m ipykernel_launcher`;
//! sites also wrap that in a script that does `module load` first). Notebooks record the
//! kernel's name, so envmod's kernel takes that name and display name; the original
//! directory's files are kept so that `delete`, or a failed adoption, puts them back as they
//! were. They are kept in the user's private data directory, not in the environment: a
//! shared environment's group can write its `.envmod/`, and a kernel.json of theirs put back
//! into this user's kernels would run their program the next time this user opens a
//! notebook. For the same reason the place it goes back to is always the user's kernels
//! directory and the kernel's own name, never a path the manifest gives. A kernel.json is
//! another program's file: read bounded, never through a link, and one that does not parse
//! is simply not one to take.

use std::{
    ffi::OsString,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{
    environ::Environ,
    error::UserError,
    fs::{Links, SMALL_FILE},
    manifest::{Manifest, TakenKernel},
    outputs::kernel::{check_display_name, kernel_name, kernels_dir},
};

/// Where the original kernel directory's files are kept, below the user's data directory.
const KEPT_KERNELS: &str = "envmod/kernels-before-adoption";
/// A kernel directory holds kernel.json and a few logos; more than this is not one to copy.
const MAX_FILES: usize = 16;
const MAX_FILE: u64 = 1 << 20;
/// A launcher script is a few lines.
const MAX_SCRIPT: u64 = 64 << 10;

/// A kernel of this user that runs the environment, with the files of its directory.
pub(super) struct Found {
    pub(super) name: String,
    pub(super) display_name: String,
    pub(super) dir: PathBuf,
    files: Vec<(OsString, Vec<u8>, u32)>,
}

/// The user's kernels that run the environment at `prefix` (`real` once links are resolved),
/// by name; those envmod could not take back as they are are named in a warning and left.
pub(super) fn find(
    environ: &Environ,
    prefix: &Path,
    real: &Path,
    warn: &dyn Fn(String),
) -> Vec<Found> {
    let top = kernels_dir(environ, None);
    let Ok(entries) = std::fs::read_dir(&top) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    let mut found = Vec::new();
    for dir in dirs {
        let Some(spec) = read_spec(&dir.join("kernel.json")) else {
            continue;
        };
        if !spec["metadata"]["envmod"].is_null() || !runs(&spec, prefix, real) {
            continue;
        }
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let display_name = spec["display_name"].as_str().unwrap_or(&name).to_string();
        let sound = kernel_name(&name).is_ok_and(|n| n == name)
            && check_display_name(&display_name).is_ok();
        match (sound, read_files(&dir)) {
            (true, Ok(files)) => found.push(Found {
                name,
                display_name,
                dir,
                files,
            }),
            (false, _) => warn(format!(
                "the kernel {} runs this environment, but its name or display name is not one envmod writes: left as it is",
                dir.display()
            )),
            (true, Err(why)) => warn(format!(
                "the kernel {} runs this environment, but {why}: left as it is",
                dir.display()
            )),
        }
    }
    found
}

fn read_spec(path: &Path) -> Option<serde_json::Value> {
    let text = crate::fs::read_text(path, SMALL_FILE, Links::Refuse).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether the kernel's argv starts the environment's Python, directly or through a
/// launcher script (a file, or `bash -c TEXT`) that names it.
fn runs(spec: &serde_json::Value, prefix: &Path, real: &Path) -> bool {
    let argv: Vec<&str> = match spec["argv"].as_array() {
        Some(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        None => return false,
    };
    let Some(first) = argv.first() else {
        return false;
    };
    if is_env_python(Path::new(first), prefix, real) {
        return true;
    }
    let names_python = |text: &str| {
        [prefix, real]
            .iter()
            .any(|p| text.contains(&format!("{}/bin/python", p.display())))
    };
    let shell = Path::new(first)
        .file_name()
        .is_some_and(|n| ["bash", "sh", "dash", "zsh"].iter().any(|s| n == *s));
    let script = match (shell, argv.get(1)) {
        (true, Some(&"-c")) => return argv.get(2).is_some_and(|t| names_python(t)),
        (true, Some(s)) => *s,
        _ => *first,
    };
    crate::fs::read_text(Path::new(script), MAX_SCRIPT, Links::Refuse)
        .is_ok_and(|t| (shell || t.starts_with("#!")) && names_python(&t))
}

/// `PREFIX/bin/python`, `pythonX.Y`, or a path that resolves to a file inside the prefix.
fn is_env_python(path: &Path, prefix: &Path, real: &Path) -> bool {
    let in_bin = path
        .parent()
        .is_some_and(|d| d == prefix.join("bin") || d == real.join("bin"))
        && path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("python"));
    in_bin || path.canonicalize().is_ok_and(|c| c.starts_with(real))
}

/// The regular files of a kernel directory, to put back exactly; a link, a subdirectory or
/// a large file is a reason not to take the kernel.
fn read_files(dir: &Path) -> Result<Vec<(OsString, Vec<u8>, u32)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("it cannot be read: {e}"))?;
    let mut files = Vec::new();
    for e in entries.flatten() {
        if files.len() == MAX_FILES {
            return Err(format!("it holds more than {MAX_FILES} files"));
        }
        let path = e.path();
        let meta = path
            .symlink_metadata()
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        let bytes =
            crate::fs::read_regular(&path, MAX_FILE, Links::Refuse).map_err(|e| e.to_string())?;
        files.push((e.file_name(), bytes, meta.permissions().mode() & 0o7777));
    }
    files.sort();
    Ok(files)
}

/// The user's own copy of the kernel `name` as it was before adoption.
fn kept_dir(environ: &Environ, name: &str) -> PathBuf {
    environ
        .xdg_dir("XDG_DATA_HOME", ".local/share")
        .join(KEPT_KERNELS)
        .join(name)
}

/// Keep the original kernel's files and take its kernel.json away, so that envmod's kernel
/// can be written in its place.
pub(super) fn set_aside(found: &Found, environ: &Environ) -> Result<()> {
    let kept = kept_dir(environ, &found.name);
    if kept.symlink_metadata().is_ok() {
        crate::fs::tree::remove_tree(&kept)?;
    }
    for (name, bytes, mode) in &found.files {
        crate::fs::write_placed(&kept.join(name), bytes, Some(*mode))?;
    }
    std::fs::remove_file(found.dir.join("kernel.json")).map_err(|e| {
        UserError::failure(format!(
            "cannot take over the kernel {}: {e}",
            found.dir.display()
        ))
        .with_hint("check that you can write it; nothing of it was changed")
        .into()
    })
}

/// Whether the kernel `manifest` took over was set aside already (its files are kept).
pub(super) fn is_set_aside(environ: &Environ, manifest: &Manifest) -> bool {
    manifest
        .adopted
        .as_ref()
        .and_then(|a| a.kernel.as_ref())
        .is_some_and(|t| {
            kept_dir(environ, &t.name)
                .symlink_metadata()
                .is_ok_and(|m| m.is_dir())
        })
}

/// Put the original kernel back as it was, after envmod's own kernel.json was removed.
pub(super) fn put_back(environ: &Environ, manifest: &Manifest) -> Result<()> {
    let Some(taken) = manifest.adopted.as_ref().and_then(|a| a.kernel.as_ref()) else {
        return Ok(());
    };
    if kernel_name(&taken.name).ok().as_deref() != Some(taken.name.as_str()) {
        return Ok(());
    }
    let dir = kernels_dir(environ, None).join(&taken.name);
    let kept = kept_dir(environ, &taken.name);
    let Ok(files) = read_files(&kept) else {
        return Ok(());
    };
    let json = dir.join("kernel.json");
    let same = |bytes: &[u8]| {
        crate::fs::read_regular(&json, MAX_FILE, Links::Refuse).is_ok_and(|b| b == bytes)
    };
    if json.symlink_metadata().is_ok()
        && !files.iter().any(|(n, b, _)| n == "kernel.json" && same(b))
    {
        return Err(UserError::failure(format!(
            "cannot put back the kernel {}: another kernel.json is there now",
            dir.display()
        ))
        .with_hint(format!(
            "move {} away and run the delete again; the original is kept in {}",
            json.display(),
            kept.display()
        ))
        .into());
    }
    for (name, bytes, mode) in &files {
        crate::fs::write_placed(&dir.join(name), bytes, Some(*mode))?;
    }
    crate::fs::tree::remove_tree(&kept)?;
    Ok(())
}

/// What the manifest records of the kernel taken over.
pub(super) fn record(found: &Found) -> TakenKernel {
    TakenKernel {
        name: found.name.clone(),
        dir: found.dir.clone(),
    }
}
