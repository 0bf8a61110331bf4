//! Package specs as users type them, parsed by rattler's `MatchSpec` parser only. Splitting
//! strings gets `conda-forge::numpy` and `numpy=1.26=py311_0` wrong, and then a spec is
//! neither replaced, nor removed, nor advertised as the package it names.

use anyhow::Result;
use std::sync::Arc;

use rattler_conda_types::{Channel, MatchSpec, PackageName, ParseMatchSpecOptions};

use crate::error::UserError;

/// Strict, so that typos are errors rather than guesses (`bad spec!!` would otherwise become
/// a version and a build string).
fn strict() -> ParseMatchSpecOptions {
    ParseMatchSpecOptions::strict().with_exact_names_only(true)
}

/// conda's `name=version=build` form (`blas=*=openblas`, `numpy=1.26=py311_0`), optionally
/// with a `channel::` in front. Strict parsing rejects it, so this one form, and nothing
/// else, goes to the lenient parser, which reads it as conda does.
fn is_conda_three_part(spec: &str) -> bool {
    static FORM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^(?:[A-Za-z0-9_.\-/:]+::)?[A-Za-z0-9][A-Za-z0-9_.\-]*=[A-Za-z0-9_.*+!]+=[A-Za-z0-9_.*+]+$",
        )
        .expect("valid regex")
    });
    FORM.is_match(spec.trim())
}

/// A package spec: the text the user typed, kept as written (it is what manifests, locks and
/// `envmod list` show), and what rattler's parser made of it, parsed once. The parsed form
/// always names one exact package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Spec {
    text: String,
    parsed: MatchSpec,
}

#[allow(dead_code)]
impl Spec {
    /// Parse `text` strictly (conda's `name=version=build` form excepted): a one-line usage
    /// error naming the spec and the forms to write otherwise.
    pub(crate) fn parse(text: &str) -> Result<Spec> {
        let bad = |e: &dyn std::fmt::Display| -> anyhow::Error {
            UserError::usage(format!("invalid package spec {text:?}: {e}"))
                .with_hint(
                    "write specs as conda does: numpy, 'numpy>=1.26', numpy=1.26=py311_0, conda-forge::numpy",
                )
                .into()
        };
        if text.trim().is_empty() || text.chars().any(char::is_control) {
            return Err(bad(
                &"a spec must be a package name with an optional version",
            ));
        }
        let parsed = match MatchSpec::from_str(text, strict()) {
            Ok(parsed) => parsed,
            Err(_) if is_conda_three_part(text) => MatchSpec::from_str(
                text,
                ParseMatchSpecOptions::lenient().with_exact_names_only(true),
            )
            .map_err(|e| bad(&e))?,
            Err(e) => return Err(bad(&e)),
        };
        if parsed.name.as_exact().is_none() {
            return Err(bad(&"it names no exact package"));
        }
        Ok(Spec {
            text: text.to_string(),
            parsed,
        })
    }

    /// Each of `texts`, in order; the first bad one is the error.
    pub(crate) fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Spec>> {
        texts.iter().map(|t| Spec::parse(t.as_ref())).collect()
    }

    /// The package it asks for: `conda-forge::numpy>=1.26` → `numpy`.
    pub(crate) fn name(&self) -> &PackageName {
        self.parsed
            .name
            .as_exact()
            .expect("Spec::parse only accepts exact names")
    }

    /// The channel it names (`conda-forge::numpy`), as rattler's parser resolved it; see
    /// [`crate::conda::channels::as_written`] for the argument it was written as.
    pub(crate) fn channel(&self) -> Option<&Channel> {
        self.parsed.channel.as_deref()
    }

    /// Point it at `channel`, the one its written channel resolves to through the site's
    /// alias: the solver keeps only records from the very channel a spec names.
    pub(crate) fn set_channel(&mut self, channel: Channel) {
        self.parsed.channel = Some(Arc::new(channel));
    }

    /// Whether it asks for Python itself, the package that decides an env's interpreter.
    pub(crate) fn is_python(&self) -> bool {
        self.name().as_normalized() == "python"
    }

    /// The text as the user wrote it.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn match_spec(&self) -> &MatchSpec {
        &self.parsed
    }

    pub(crate) fn into_match_spec(self) -> MatchSpec {
        self.parsed
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Spec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Spec> {
        Spec::parse(text)
    }
}

impl From<Spec> for MatchSpec {
    fn from(spec: Spec) -> MatchSpec {
        spec.parsed
    }
}

fn parse_one(spec: &str) -> Result<MatchSpec> {
    Spec::parse(spec).map(Spec::into_match_spec)
}

pub(crate) fn parse_specs(specs: &[String]) -> Result<Vec<MatchSpec>> {
    specs.iter().map(|s| parse_one(s)).collect()
}

/// The package a spec asks for: `conda-forge::numpy>=1.26` → `numpy`.
pub(crate) fn spec_package_name(spec: &str) -> Result<PackageName> {
    Ok(Spec::parse(spec)?.name().clone())
}

/// The requested specs after adding `added`: a new spec replaces the old one for the same
/// package in place, so the order users gave is kept; specs for new packages are appended.
/// Two specs for one package within `added` keep the last, as conda does.
pub(crate) fn with_added(existing: &[String], added: &[String]) -> Result<Vec<String>> {
    Ok(with_added_parsed(existing, added)?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// [`with_added`], with each spec parsed: each is parsed once, and looked up by name, since
/// a file can list hundreds of thousands of them.
pub(crate) fn with_added_parsed(
    existing: &[String],
    added: &[String],
) -> Result<Vec<(String, MatchSpec)>> {
    use std::collections::hash_map::Entry;
    let mut out: Vec<(String, MatchSpec)> = Vec::with_capacity(existing.len() + added.len());
    let mut place: std::collections::HashMap<PackageName, usize> =
        std::collections::HashMap::with_capacity(out.capacity());
    let name_of = |spec: &MatchSpec| {
        spec.name
            .as_exact()
            .cloned()
            .expect("parse_one only accepts exact names")
    };
    // An existing list that already held two specs for one package (written by an older
    // envmod) collapses to the first place that package was named.
    for spec in existing {
        let parsed = parse_one(spec)?;
        if let Entry::Vacant(e) = place.entry(name_of(&parsed)) {
            e.insert(out.len());
            out.push((spec.clone(), parsed));
        }
    }
    for spec in added {
        let parsed = parse_one(spec)?;
        match place.entry(name_of(&parsed)) {
            Entry::Occupied(e) => out[*e.get()] = (spec.clone(), parsed),
            Entry::Vacant(e) => {
                e.insert(out.len());
                out.push((spec.clone(), parsed));
            }
        }
    }
    Ok(out)
}

/// The requested specs without those for `names`.
pub(crate) fn without(existing: &[String], names: &[PackageName]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(existing.len());
    for spec in existing {
        if !names.contains(&spec_package_name(spec)?) {
            out.push(spec.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::error::{ErrorKind, UserError};

    fn name(spec: &str) -> String {
        spec_package_name(spec).unwrap().as_normalized().to_string()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn usage_error(spec: &str) -> String {
        let err = spec_package_name(spec).expect_err(spec);
        let user = err.downcast_ref::<UserError>().expect("a UserError");
        assert_eq!(user.kind, ErrorKind::Usage, "{spec}");
        assert!(!user.message.contains('\n'), "{}", user.message);
        user.message.clone()
    }

    #[test]
    fn a_spec_keeps_its_text_and_its_parse() {
        let spec = Spec::parse("conda-forge::NumPy>=1.26").unwrap();
        assert_eq!(spec.text(), "conda-forge::NumPy>=1.26");
        assert_eq!(spec.to_string(), "conda-forge::NumPy>=1.26");
        assert_eq!(spec.name().as_normalized(), "numpy");
        assert!(!spec.is_python());
        let channel = spec.channel().expect("a channel");
        assert_eq!(crate::conda::channels::as_written(channel), "conda-forge");
        assert!(spec.match_spec().version.is_some());
        assert_eq!(
            spec.clone().into_match_spec(),
            parse_specs(&strings(&["conda-forge::NumPy>=1.26"])).unwrap()[0]
        );
        assert!(Spec::parse("numpy").unwrap().channel().is_none());
        assert!(Spec::parse("python=3.11").unwrap().is_python());
        assert!(Spec::parse("Python").unwrap().is_python());
        assert!(!Spec::parse("python-dateutil").unwrap().is_python());
        let spec: Spec = "  scipy  ".parse().unwrap();
        assert_eq!(
            (spec.text(), spec.name().as_normalized()),
            ("  scipy  ", "scipy")
        );
    }

    #[test]
    fn a_spec_points_at_the_channel_it_is_given() {
        let mut spec = Spec::parse("chan::alpha").unwrap();
        let config = rattler_conda_types::ChannelConfig::default_with_root_dir("/".into());
        let local = Channel::from_str("/srv/channel", &config).unwrap();
        spec.set_channel(local.clone());
        assert_eq!(spec.channel(), Some(&local));
        assert_eq!(spec.match_spec().channel.as_deref(), Some(&local));
        assert_eq!(spec.text(), "chan::alpha");
    }

    #[test]
    fn spec_errors_are_those_of_parse_specs() {
        for bad in [
            "",
            "numpy>>=1",
            "num*py",
            ">=1.2",
            "numpy\n>=1",
            "numpy=1.2=a=b",
        ] {
            let a = Spec::parse(bad).expect_err(bad).to_string();
            let b = parse_specs(&strings(&[bad])).expect_err(bad).to_string();
            assert_eq!(a, b);
            assert!(a.contains("invalid package spec"), "{a}");
        }
        assert!(Spec::parse_all(&["alpha", "num*py"]).is_err());
        let all = Spec::parse_all(&["alpha", "blas=*=openblas"]).unwrap();
        assert_eq!(all[1].name().as_normalized(), "blas");
    }

    #[test]
    fn names_come_from_the_parser() {
        assert_eq!(name("numpy"), "numpy");
        assert_eq!(name("numpy>=1.26"), "numpy");
        assert_eq!(name("numpy >=1.26,<2"), "numpy");
        assert_eq!(name("conda-forge::numpy"), "numpy");
        assert_eq!(name("conda-forge::numpy=1.26"), "numpy");
        assert_eq!(name("numpy=1.26=py311_0"), "numpy");
        assert_eq!(name("blas=*=openblas"), "blas");
        assert_eq!(name("conda-forge::blas=*=openblas"), "blas");
        assert_eq!(name("numpy=1.26.*=py311*"), "numpy");
        assert_eq!(name("numpy==1.26.4"), "numpy");
        assert_eq!(name("NumPy"), "numpy");
        assert_eq!(name("python-dateutil"), "python-dateutil");
        assert_eq!(name("ruamel.yaml>=0.17"), "ruamel.yaml");
        assert_eq!(name("numpy[version='>=1.26']"), "numpy");
        assert_eq!(name("  scipy  "), "scipy");
    }

    #[test]
    fn conda_name_version_build_form_parses() {
        let specs = parse_specs(&strings(&["blas=*=openblas", "numpy=1.26=py311_0"])).unwrap();
        assert_eq!(
            specs[0].build.as_ref().map(ToString::to_string).as_deref(),
            Some("openblas")
        );
        assert_eq!(
            specs[1].build.as_ref().map(ToString::to_string).as_deref(),
            Some("py311_0")
        );
        assert!(specs[1].version.is_some());
    }

    #[test]
    fn garbage_is_a_one_line_usage_error_naming_the_spec() {
        for bad in [
            "",
            "   ",
            "numpy>>=1",
            "num*py",
            ">=1.2",
            "numpy\n>=1",
            "numpy=1.2=a=b",
        ] {
            let msg = usage_error(bad);
            assert!(msg.contains("invalid package spec"), "{bad:?}: {msg}");
        }
        assert!(parse_specs(&strings(&["alpha", "num*py"])).is_err());
    }

    #[test]
    fn an_added_spec_replaces_the_one_for_the_same_package_in_place() {
        let existing = strings(&["conda-forge::numpy", "scipy>=1", "pandas"]);
        let out = with_added(&existing, &strings(&["numpy=1.26", "xarray"])).unwrap();
        assert_eq!(
            out,
            strings(&["numpy=1.26", "scipy>=1", "pandas", "xarray"])
        );
        let out = with_added(&existing, &strings(&["SciPy=1.11=py311_0"])).unwrap();
        assert_eq!(
            out,
            strings(&["conda-forge::numpy", "SciPy=1.11=py311_0", "pandas"])
        );
        // The later of two specs for one new package wins.
        let out = with_added(&[], &strings(&["alpha<2", "beta", "alpha>=2"])).unwrap();
        assert_eq!(out, strings(&["alpha>=2", "beta"]));
        // Duplicates left by older versions collapse.
        let out = with_added(&strings(&["alpha", "alpha<2"]), &[]).unwrap();
        assert_eq!(out, strings(&["alpha"]));
        assert!(with_added(&existing, &strings(&["bad spec!!"])).is_err());
    }

    #[test]
    fn without_drops_every_spec_for_the_named_packages() {
        let existing = strings(&["conda-forge::numpy>=1.26", "scipy", "blas=*=openblas"]);
        let names = |v: &[&str]| -> Vec<PackageName> {
            v.iter()
                .map(|n| PackageName::from_str(n).unwrap())
                .collect()
        };
        assert_eq!(
            without(&existing, &names(&["numpy"])).unwrap(),
            strings(&["scipy", "blas=*=openblas"])
        );
        assert_eq!(
            without(&existing, &names(&["blas", "scipy"])).unwrap(),
            strings(&["conda-forge::numpy>=1.26"])
        );
        assert_eq!(without(&existing, &names(&["nosuch"])).unwrap(), existing);
        assert_eq!(without(&existing, &[]).unwrap(), existing);
    }
}
