//! Match specs as users write them. Names are always taken from rattler's parser, never
//! by splitting strings, so `conda-forge::numpy`, `numpy>=1.26` and `numpy=1.26=py311_0`
//! all name `numpy`.

use anyhow::Result;
use rattler_conda_types::{MatchSpec, PackageName, ParseMatchSpecOptions};

use crate::error::UserError;

fn parse(spec: &str) -> Result<MatchSpec> {
    MatchSpec::from_str(spec, ParseMatchSpecOptions::lenient()).map_err(|e| {
        UserError::usage(format!("invalid package spec {spec:?}: {e}"))
            .with_hint("write specs as conda does: numpy, 'numpy>=1.26', scipy=1.11")
            .into()
    })
}

pub(crate) fn parse_specs(specs: &[String]) -> Result<Vec<MatchSpec>> {
    specs.iter().map(|s| parse(s)).collect()
}

/// The package a spec names.
pub(crate) fn spec_package_name(spec: &str) -> Result<PackageName> {
    let parsed = parse(spec)?;
    parsed.name.as_exact().cloned().ok_or_else(|| {
        UserError::usage(format!("package spec {spec:?} names no exact package")).into()
    })
}

/// `existing` with `added` applied: a new spec replaces an old one for the same package.
pub(crate) fn with_added(existing: &[String], added: &[String]) -> Result<Vec<String>> {
    let mut out = existing.to_vec();
    for spec in added {
        let name = spec_package_name(spec)?;
        out.retain(|s| spec_package_name(s).map_or(true, |n| n != name));
        out.push(spec.clone());
    }
    Ok(out)
}

/// `existing` without the specs for `names`.
pub(crate) fn without(existing: &[String], names: &[PackageName]) -> Result<Vec<String>> {
    Ok(existing
        .iter()
        .filter(|s| spec_package_name(s).map_or(true, |n| !names.contains(&n)))
        .cloned()
        .collect())
}
