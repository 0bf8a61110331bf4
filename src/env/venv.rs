//! The venv layout on top of the site Python. envmod writes it directly instead of running
//! `python -m venv`: the files are few and fixed, and skipping a second interpreter start
//! (plus ensurepip) is most of why `create` is fast.

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::{escape::sh_quote, site::python::Interpreter};

/// Whether envmod may start `exe`, the site Python the manifest of the environment at `real`
/// names (a manifest its group can edit): the one this user built it on, or one nobody but
/// this user and root could have put there. `Err` says why not.
pub(crate) fn may_run(
    env: &crate::environ::Environ,
    real: &Path,
    exe: &Path,
) -> Result<(), String> {
    if crate::env::record::chose_python(env, real, exe) {
        return Ok(());
    }
    crate::fs::trust::program(exe)
        .map_err(|why| format!("envmod does not start {}: {why}", exe.display()))
}

/// Lay out a venv in `root`, which becomes `final_prefix` after the rename. Scripts embed
/// the final prefix, never the staging path.
pub(crate) fn write_layout(root: &Path, final_prefix: &Path, python: &Interpreter) -> Result<()> {
    let short = python.short_version();
    let bin = root.join("bin");
    let site_packages = root.join(format!("lib/python{short}/site-packages"));
    for dir in [
        &bin,
        &site_packages,
        &root.join("include"),
        &root.join("conda-meta"),
    ] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    symlink("lib", root.join("lib64")).context("failed to create lib64 link")?;
    for (link, target) in own_links(python) {
        symlink(&target, root.join(&link))
            .with_context(|| format!("failed to link {}", link.display()))?;
    }

    // The staging directory is new and envmod's own: plain writes are safe there.
    write_prefix_files(root, final_prefix, python, |p, b, mode| {
        std::fs::write(p, b)?;
        if let Some(mode) = mode {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    })
}

/// The links of the layout that lead out of the environment (relative path, target): Python
/// finds pyvenv.cfg next to the link it was started from, so plain symlinks to the site
/// interpreter are all a venv needs.
pub(crate) fn own_links(python: &Interpreter) -> Vec<(PathBuf, PathBuf)> {
    let short = python.short_version();
    [
        "python".to_string(),
        "python3".to_string(),
        format!("python{short}"),
    ]
    .into_iter()
    .map(|name| (Path::new("bin").join(name), python.executable.clone()))
    .collect()
}

/// The links a venv made by `python -m venv` may hold besides [`own_links`]: its names for
/// the interpreter, each pointing at a sibling in `bin/` that is one of those links.
pub(crate) fn adopted_links(python: &Interpreter) -> Vec<(PathBuf, PathBuf)> {
    let short = format!("python{}", python.short_version());
    let names = ["python", "python3", short.as_str()];
    let mut out = own_links(python);
    for link in names {
        for target in names.iter().filter(|t| **t != link) {
            out.push((Path::new("bin").join(link), PathBuf::from(target)));
        }
    }
    out
}

/// Write the files of the layout that name the prefix: `pyvenv.cfg` and the pip wrappers.
/// Also used to re-point a copied environment at its new place.
pub(crate) fn rewrite_for_prefix(
    root: &Path,
    final_prefix: &Path,
    python: &Interpreter,
) -> Result<()> {
    // A live environment, perhaps a group's: never written through a planted link.
    write_prefix_files(root, final_prefix, python, crate::fs::write_placed)
}

fn write_prefix_files(
    root: &Path,
    final_prefix: &Path,
    python: &Interpreter,
    write: impl Fn(&Path, &[u8], Option<u32>) -> Result<()>,
) -> Result<()> {
    let short = python.short_version();
    let bin = root.join("bin");
    let home = python
        .executable
        .parent()
        .context("site Python has no parent directory")?;
    let cfg = format!(
        "home = {}\ninclude-system-site-packages = true\nversion = {}\nexecutable = {}\ncommand = envmod create -p {}\n",
        home.display(),
        python.version,
        python.executable.display(),
        final_prefix.display(),
    );
    write(&root.join("pyvenv.cfg"), cfg.as_bytes(), None).context("failed to write pyvenv.cfg")?;

    // `pip` must install into this prefix even when the site's pip lives elsewhere, so it
    // always runs through the env's own interpreter.
    let pip = format!(
        "#!/bin/sh\n# {} for this environment; installs into its site-packages\nexec {} -m pip \"$@\"\n",
        crate::site::modules::GENERATED_MARKER,
        sh_quote(&final_prefix.join("bin/python").to_string_lossy()),
    );
    for name in ["pip".to_string(), "pip3".to_string(), format!("pip{short}")] {
        let path = bin.join(&name);
        write(&path, pip.as_bytes(), Some(0o755))
            .with_context(|| format!("failed to write bin/{name}"))?;
    }
    Ok(())
}
