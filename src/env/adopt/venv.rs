//! What a venv says about itself: `pyvenv.cfg` names the base interpreter, which becomes
//! the environment's site Python, and its site-packages holds what pip installed. The file
//! is read bounded and never through a link; the interpreter it names runs only to say what
//! it is, under a timeout.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    env::ctx::Ctx,
    error::UserError,
    manifest::{Provisions, PythonInfo, PythonMode},
    site::python::Probe,
};

/// `pyvenv.cfg` is a few lines.
const MAX_CFG: u64 = 64 << 10;

pub(super) struct Venv {
    pub(super) python: PythonInfo,
    pub(super) pip: Vec<String>,
    pub(super) provided: Provisions,
}

pub(super) fn describe(real: &Path, ctx: &Ctx<'_>) -> Result<Venv> {
    let cfg_path = real.join("pyvenv.cfg");
    let cfg = crate::fs::read_text(&cfg_path, MAX_CFG, crate::fs::Links::Refuse)?;
    let base = base_interpreter(&cfg).ok_or_else(|| {
        UserError::usage(format!(
            "{} names no base interpreter (no `home` or `executable` line)",
            cfg_path.display()
        ))
        .with_hint("recreate the venv with python -m venv, then adopt it")
    })?;
    // The file names a program envmod would start: only one that no other user could have
    // put there.
    crate::fs::trust::program(&base).map_err(|why| {
        UserError::failure(format!(
            "{} names {} as its base interpreter, which envmod does not start: {why}",
            cfg_path.display(),
            base.display()
        ))
        .with_hint("recreate the venv from a Python only root or you can write")
    })?;
    let probed = Probe::start(&base, None)?.wait()?;
    ctx.printer.detail(format!(
        "{}: the site Python is {} ({})",
        real.display(),
        base.display(),
        probed.python.version
    ));
    let system_site =
        value(&cfg, "include-system-site-packages").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let pip = crate::conda::pip::installed(real, &Default::default())?
        .into_iter()
        .map(|d| format!("{}=={}", d.name, d.version))
        .collect();
    Ok(Venv {
        python: PythonInfo {
            mode: PythonMode::Site,
            site: probed.python,
        },
        pip,
        provided: Provisions {
            modules: Vec::new(),
            site_packages: if system_site {
                probed.library_dirs
            } else {
                Vec::new()
            },
            ignore_site_packages: !system_site,
        },
    })
}

fn value<'a>(cfg: &'a str, key: &str) -> Option<&'a str> {
    cfg.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// The interpreter the venv was made from: `executable` (Python 3.11 and later write it),
/// else `python3` in its `home` directory.
fn base_interpreter(cfg: &str) -> Option<PathBuf> {
    if let Some(exe) = value(cfg, "executable") {
        return Some(PathBuf::from(exe));
    }
    let home = Path::new(value(cfg, "home")?);
    let version = value(cfg, "version").or_else(|| value(cfg, "version_info"));
    let minor = version.and_then(|v| {
        let mut parts = v.split('.');
        Some(format!("python{}.{}", parts.next()?, parts.next()?))
    });
    minor
        .map(|m| home.join(m))
        .filter(|p| p.exists())
        .or_else(|| Some(home.join("python3")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_wins_over_home() {
        let cfg = "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\nexecutable = /opt/py/bin/python3.11\n";
        assert_eq!(
            base_interpreter(cfg),
            Some(PathBuf::from("/opt/py/bin/python3.11"))
        );
        assert_eq!(value(cfg, "include-system-site-packages"), Some("false"));
    }
}
