//! The file's Python against this site's: in site mode the packages and pip wheels were
//! chosen for one Python, and a file or lock made for another is refused before anything is
//! built, naming the version to use.

use std::{path::Path, str::FromStr};

use anyhow::Result;
use rattler_conda_types::{MatchSpec, ParseStrictness, Version};

use crate::{
    conda::{envfile::EnvFile, specs::Spec},
    error::UserError,
    site::python::Interpreter,
};

/// In site mode, the file's Python must be the site Python's minor version: packages and pip
/// wheels were chosen for it.
pub(crate) fn check_site_python(
    found: &Interpreter,
    f: &EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    let Some(section) = &f.envmod else {
        return Ok(());
    };
    let wanted = section.python.minor();
    if wanted == found.short_version() {
        return Ok(());
    }
    let how = if site_python_flag {
        "--site-python gives"
    } else {
        "the site Python here is"
    };
    Err(UserError::failure(format!(
        "{} was built for Python {wanted}, but {how} {} ({}); nothing was created",
        f.path.display(),
        found.version,
        found.executable.display()
    ))
    .with_hint(format!(
        "use --python {wanted} for a conda Python {wanted}, or --site-python PATH for a site Python {wanted}"
    ))
    .into())
}

/// In site mode, a `python` spec among the file's dependencies (`python=3.9`) must accept
/// the site Python: it cannot be installed over it, and the solve would only say that no
/// Python 3.9 was found.
pub(crate) fn check_python_pin(
    found: &Interpreter,
    f: &EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    let Ok(version) = Version::from_str(&found.version) else {
        return Ok(());
    };
    for spec in &f.specs {
        let Ok(parsed) = Spec::parse(&spec.value) else {
            continue;
        };
        if !parsed.is_python() {
            continue;
        }
        let Some(wanted) = parsed
            .match_spec()
            .version
            .as_ref()
            .filter(|v| !v.matches(&version))
        else {
            continue;
        };
        let how = if site_python_flag {
            "--site-python gives"
        } else {
            "the site Python here is"
        };
        // `3.9` of `3.9.11`, `=3.9` or `>=3.12`; no guess for a bound from above.
        let text = wanted.to_string();
        let minor = text
            .trim_start_matches(['=', '>', '~'])
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
            .filter(|v| v.contains('.') && !text.starts_with('<') && !text.starts_with('!'))
            .unwrap_or_else(|| "X.Y".to_string());
        return Err(UserError::failure(format!(
            "{}, line {}: `{}` does not accept the site Python: {how} {} ({}); nothing was created",
            f.path.display(),
            spec.line,
            spec.value,
            found.version,
            found.executable.display()
        ))
        .with_hint(format!(
            "use --python {minor} for a conda Python {minor}, or --site-python PATH for a site Python that fits"
        ))
            .into());
    }
    Ok(())
}

/// A lock built on another site's Python fits this one only if every package's `python`
/// requirement accepts this site's version (a cp311 build does not run on 3.12).
pub(crate) fn check_lock_python(
    records: &[rattler_conda_types::RepoDataRecord],
    found: &Interpreter,
    file: &Path,
) -> Result<()> {
    let Ok(version) = Version::from_str(&found.version) else {
        return Ok(());
    };
    for r in records {
        for dep in &r.package_record.depends {
            let Ok(spec) = MatchSpec::from_str(dep, ParseStrictness::Lenient) else {
                continue;
            };
            if spec
                .name
                .as_exact()
                .is_none_or(|n| n.as_normalized() != "python")
            {
                continue;
            }
            if spec.version.as_ref().is_some_and(|v| !v.matches(&version)) {
                return Err(UserError::failure(format!(
                    "{}: {} needs `{dep}`, but the site Python here is {} ({}); nothing was created",
                    file.display(),
                    r.package_record.name.as_normalized(),
                    found.version,
                    found.executable.display()
                ))
                .with_hint("use --site-python PATH for a site Python that fits, or export the lock again with a conda Python (`envmod create --python X.Y`)")
                .into());
            }
        }
    }
    Ok(())
}
