//! Settings are resolved once, here: the layers of `config` (site file < user file <
//! `ENVMOD_*` variables < flags) are merged, then every value is expanded, checked and given
//! its built-in default. Each value remembers where it came from so `envmod config` can answer
//! "why is it set to that?". Commands receive a plain struct and never look at files or
//! variables themselves.

mod command;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

pub(crate) use crate::config::{Source, Sourced};
/// Its struct sits with the planner that reads it; its `resolve` is here with the others.
pub(crate) use crate::env::plan::CreateSettings;
use crate::{
    cli,
    config::{Merged, Options, Origin},
    env::prefix::EnvTarget,
    environ::Environ,
    error::UserError,
    names::EnvName,
    site::{ModuleSystemChoice, RuleSource, distributions::NameTable, provides::Rule},
    yaml::ListMap,
};
pub(crate) use command::{
    AdoptSettings, AdoptSource, ChangeSettings, CleanSettings, DeleteSettings, DoctorSettings,
    ExportSettings, KernelAddSettings, KernelListSettings, KernelRemoveSettings, ListSettings,
    ModuleSettings, ShellHookSettings, ShowSettings, flag_layer,
};

const SITE_CONFIG_DEFAULT: &str = "/etc/envmod/config.yaml";

/// Settings every command shares.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GlobalSettings {
    pub(crate) envs_dir: Sourced<PathBuf>,
    pub(crate) module_root: Sourced<PathBuf>,
    pub(crate) module_system: Sourced<ModuleSystemChoice>,
    pub(crate) python: Sourced<Option<String>>,
    pub(crate) ignore_modules: Sourced<Vec<String>>,
    pub(crate) templates_dir: Sourced<Option<PathBuf>>,
    pub(crate) allow_stacking: Sourced<bool>,
    pub(crate) ld_library_path: Sourced<bool>,
    pub(crate) module_name_template: Sourced<String>,
    pub(crate) channels: Sourced<Vec<String>>,
    pub(crate) channel_alias: Sourced<String>,
    pub(crate) pkgs_dirs: Sourced<Vec<PathBuf>>,
    /// Package caches someone else fills (a site, an instructor): read, never written.
    pub(crate) readonly_pkgs_dirs: Sourced<Vec<PathBuf>>,
    pub(crate) offline: Sourced<bool>,
    /// Directories of shared environments (course environments) that `list` shows too.
    pub(crate) shared_envs_dirs: Sourced<Vec<PathBuf>>,
    /// When create, install and remove compile `.pyc` files.
    pub(crate) compile_pyc: Sourced<crate::conda::pyc::CompilePyc>,
    /// Module names of other sites and what they are here (`null`: leave the module out).
    pub(crate) module_map: Sourced<std::collections::BTreeMap<String, Option<String>>>,
    /// What loaded modules provide to the solve, in the order they are tried: the user
    /// file's rules, the site file's, then the defaults, each replacing a lower rule of the
    /// same pattern. The source is the highest layer that gave any rule.
    pub(crate) module_provides: Sourced<Vec<Rule>>,
    /// The conda names of the site Python's distributions, where they differ from PyPI's.
    pub(crate) site_package_names: Sourced<NameTable>,
    /// Do not count the site Python's packages as installed.
    pub(crate) ignore_site_packages: Sourced<bool>,
    #[serde(skip)]
    pub(crate) files: ConfigFiles,
    /// Where prefixes given with `-p` are remembered.
    #[serde(skip)]
    pub(crate) registry_file: PathBuf,
    /// Where envmod remembers what it learnt about interpreters.
    #[serde(skip)]
    pub(crate) interpreter_cache: PathBuf,
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
    /// The working directory the run started in, for relative `-p` prefixes.
    #[serde(skip)]
    cwd: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigFiles {
    pub(crate) site: PathBuf,
    pub(crate) site_exists: bool,
    pub(crate) user: PathBuf,
    pub(crate) user_exists: bool,
}

/// A value nobody set.
fn default<T>(value: T) -> Sourced<T> {
    Sourced {
        value,
        source: Source::Default,
    }
}

/// A key `options!` gives a built-in value: the built-in layer always sets it.
fn built_in<T>(set: Option<Sourced<T>>) -> Sourced<T> {
    set.expect("options! gives this key a built-in value")
}

/// The layers of a layered key, highest first, as the rules and tables name them. Only
/// files can set such a key (a variable is refused, and no flag sets one), and the outer
/// source is the highest layer that set it.
fn file_layers(set: &[Sourced<ListMap>]) -> (Source, Vec<(RuleSource, &ListMap)>) {
    let layers = set
        .iter()
        .filter_map(|s| match &s.source {
            Source::SiteFile(p) => Some((RuleSource::SiteFile(p.clone()), &s.value)),
            Source::UserFile(p) => Some((RuleSource::UserFile(p.clone()), &s.value)),
            Source::Default | Source::EnvVar(_) | Source::Flag(_) => None,
        })
        .collect();
    let source = set.first().map_or(Source::Default, |s| s.source.clone());
    (source, layers)
}

/// A wrong value is a usage error when it was given to this run, a failure when it sits in
/// a file (as an invalid file is).
fn bad_value(source: &Source, message: String) -> UserError {
    match source {
        Source::SiteFile(_) | Source::UserFile(_) => UserError::failure(message),
        Source::Default | Source::EnvVar(_) | Source::Flag(_) => UserError::usage(message),
    }
}

struct Resolver<'a> {
    env: &'a Environ,
}

impl Resolver<'_> {
    fn expand(&self, raw: &str, origin: &Source) -> Result<String> {
        let home = self.env.home();
        let expanded = shellexpand::full_with_context(
            raw,
            || home.as_ref().map(|h| h.to_string_lossy().into_owned()),
            |var: &str| -> Result<Option<String>, std::env::VarError> {
                self.env
                    .get(var)
                    .map(|v| Some(v.to_owned()))
                    .ok_or(std::env::VarError::NotPresent)
            },
        )
        .map_err(|e| {
            bad_value(origin, format!("cannot expand {raw:?} from {origin}: {e}"))
                .with_hint("set the variable, or write the path out in full")
        })?;
        Ok(expanded.into_owned())
    }

    /// A path setting, expanded. Files and variables are read in whatever directory envmod
    /// happens to run in, so a relative path there is a mistake; a flag is relative to the
    /// directory the user typed it in. Paths end up in modulefiles, scripts and `pyvenv.cfg`,
    /// so control characters are refused everywhere, and `:` where the path joins a
    /// colon-separated list (MODULEPATH, PATH).
    fn path(&self, key: &str, raw: &str, source: &Source, joins_lists: bool) -> Result<PathBuf> {
        let expanded = self.expand(raw, source)?;
        if expanded.chars().any(char::is_control) {
            return Err(bad_value(
                source,
                format!(
                    "{key} {raw:?} from {source} contains a control character, which modulefiles and pyvenv.cfg cannot hold: choose another path"
                ),
            )
            .into());
        }
        if joins_lists && expanded.contains(':') {
            return Err(bad_value(
                source,
                format!(
                    "{key} {raw:?} from {source} contains ':', which would split MODULEPATH and PATH: choose another path"
                ),
            )
            .into());
        }
        let path = Path::new(&expanded);
        let from_outside = matches!(
            source,
            Source::SiteFile(_) | Source::UserFile(_) | Source::EnvVar(_)
        );
        if from_outside && !path.is_absolute() {
            return Err(bad_value(
                source,
                format!(
                    "{key} {raw:?} from {source} is not an absolute path: use an absolute path such as ~/envs or /scratch/$USER/envs"
                ),
            )
            .into());
        }
        Ok(self.env.cwd().join(path))
    }

    fn dir(&self, key: &str, set: Sourced<String>, joins_lists: bool) -> Result<Sourced<PathBuf>> {
        let Sourced { value, source } = set;
        let value = self.path(key, &value, &source, joins_lists)?;
        Ok(Sourced { value, source })
    }

    fn dirs(&self, key: &str, set: Sourced<Vec<String>>) -> Result<Sourced<Vec<PathBuf>>> {
        let Sourced { value, source } = set;
        let value = value
            .iter()
            .map(|dir| self.path(key, dir, &source, false))
            .collect::<Result<_>>()?;
        Ok(Sourced { value, source })
    }
}

impl GlobalSettings {
    /// Merge `flags` (built from the command line) with the variables and files, then
    /// resolve every value.
    pub(crate) fn resolve(env: &Environ, flags: Options) -> Result<Self> {
        let site_path = env
            .get("ENVMOD_SITE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SITE_CONFIG_DEFAULT));
        let user_path = env
            .xdg_dir("XDG_CONFIG_HOME", ".config")
            .join("envmod/config.yaml");
        let registry_file = env
            .xdg_dir("XDG_DATA_HOME", ".local/share")
            .join("envmod/environments.txt");
        let interpreter_cache = env
            .xdg_dir("XDG_CACHE_HOME", ".cache")
            .join("envmod/interpreters");
        let site = Options::load(&site_path)?;
        let user = Options::load(&user_path)?;
        let mut warnings = Vec::new();
        for (path, file) in [(&site_path, &site), (&user_path, &user)] {
            for key in file.iter().flat_map(|f| f.unknown.keys()) {
                warnings.push(format!(
                    "unknown key `{key}` in {} is ignored",
                    path.display()
                ));
            }
        }
        let files = ConfigFiles {
            site_exists: site.is_some(),
            site: site_path.clone(),
            user_exists: user.is_some(),
            user: user_path.clone(),
        };
        let mut layers = vec![(flags, Origin::Flags)];
        layers.extend(
            Options::from_environ(env)?
                .into_iter()
                .map(|o| (o, Origin::Environment)),
        );
        layers.extend(user.map(|o| (o, Origin::UserFile(user_path))));
        layers.extend(site.map(|o| (o, Origin::SiteFile(site_path))));
        layers.push((Options::builtin(), Origin::Builtin));
        let m = Merged::merge(layers);
        let r = Resolver { env };

        let envs_dir = r.dir("envs_dir", built_in(m.envs_dir), true)?;
        let module_root = r.dir("module_root", built_in(m.module_root), true)?;
        let module_system = built_in(m.module_system);
        let python = match m.python {
            Some(Sourced { value: raw, source }) => {
                // A bare command name is looked up on PATH later; anything with a slash is a path.
                let value = if raw.contains('/') || raw.starts_with('~') {
                    r.path("python", &raw, &source, false)?
                        .to_string_lossy()
                        .into_owned()
                } else {
                    raw
                };
                Sourced {
                    value: Some(value),
                    source,
                }
            }
            None => default(None),
        };
        let ignore_modules = built_in(m.ignore_modules);
        for pattern in &ignore_modules.value {
            if glob::Pattern::new(pattern).is_err() {
                return Err(UserError::failure(format!(
                    "ignore_modules pattern {pattern:?} from {} is not a valid glob",
                    ignore_modules.source
                ))
                .with_hint("use `*` and `?` wildcards, e.g. `xalt/*`")
                .into());
            }
        }
        let templates_dir = match m.templates_dir {
            Some(Sourced { value, source }) => Sourced {
                value: Some(r.path("templates_dir", &value, &source, false)?),
                source,
            },
            None => default(None),
        };
        if let Some(dir) = templates_dir.value.as_ref().filter(|d| !d.is_dir()) {
            warnings.push(format!(
                "templates_dir {} (from {}) is not a directory; using the built-in templates",
                dir.display(),
                templates_dir.source
            ));
        }
        let channels = built_in(m.channels);
        let channel_alias = built_in(m.channel_alias);
        if url::Url::parse(&channel_alias.value).is_err() {
            return Err(UserError::usage(format!(
                "channel_alias {:?} from {} is not a URL",
                channel_alias.value, channel_alias.source
            ))
            .with_hint("use a full URL such as https://conda.anaconda.org")
            .into());
        }
        let pkgs_dirs = match m.pkgs_dirs {
            Some(Sourced { value: raw, source }) => {
                if raw.is_empty() {
                    return Err(
                        UserError::usage(format!("pkgs_dirs from {source} is empty"))
                            .with_hint("name at least one package cache directory")
                            .into(),
                    );
                }
                let value = raw
                    .iter()
                    .map(|dir| r.path("pkgs_dirs", dir, &source, false))
                    .collect::<Result<_>>()?;
                Sourced { value, source }
            }
            // The cache pixi and rattler use, so envs share packages with them.
            None => default(vec![
                env.xdg_dir("XDG_CACHE_HOME", ".cache")
                    .join("rattler/cache/pkgs"),
            ]),
        };
        let readonly_pkgs_dirs = r.dirs("readonly_pkgs_dirs", built_in(m.readonly_pkgs_dirs))?;
        let offline = built_in(m.offline);
        let compile_pyc = built_in(m.compile_pyc);
        let shared_envs_dirs = r.dirs("shared_envs_dirs", built_in(m.shared_envs_dirs))?;
        let module_map = m.module_map.unwrap_or_else(|| default(Default::default()));
        let allow_stacking = built_in(m.allow_stacking);
        let ld_library_path = built_in(m.ld_library_path);
        let (source, layers) = file_layers(&m.module_provides);
        let module_provides = Sourced {
            value: crate::site::provides::merge_rules(&layers)?,
            source,
        };
        let (source, layers) = file_layers(&m.site_package_names);
        let site_package_names = Sourced {
            value: NameTable::merge(&layers)?,
            source,
        };
        let ignore_site_packages = built_in(m.ignore_site_packages);
        let module_name_template = module_template(built_in(m.module_name_template))?;

        Ok(Self {
            envs_dir,
            module_root,
            module_system,
            python,
            ignore_modules,
            templates_dir,
            allow_stacking,
            ld_library_path,
            module_name_template,
            channels,
            channel_alias,
            pkgs_dirs,
            readonly_pkgs_dirs,
            offline,
            compile_pyc,
            shared_envs_dirs,
            module_map,
            module_provides,
            site_package_names,
            ignore_site_packages,
            files,
            registry_file,
            interpreter_cache,
            warnings,
            cwd: env.cwd().to_path_buf(),
        })
    }

    /// Where an environment lives and what it is called, from `-n` or `-p`.
    pub(crate) fn target(&self, target: &cli::Target) -> Result<EnvTarget> {
        match (&target.name, &target.prefix) {
            (Some(name), None) => {
                let name: EnvName = name.parse().map_err(|e| UserError::usage(format!("{e}")))?;
                Ok(EnvTarget {
                    prefix: self.envs_dir.value.join(name.as_str()),
                    name,
                    by_prefix: false,
                })
            }
            (None, Some(prefix)) => {
                if prefix.as_os_str().is_empty() {
                    return Err(UserError::usage("invalid prefix: it is empty").into());
                }
                let prefix = normalize(&self.cwd.join(prefix));
                check_prefix_chars(&prefix)?;
                let last = prefix
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let name: EnvName = last.parse().map_err(|e| {
                    UserError::usage(format!(
                        "the last component of --prefix names the environment: {e}"
                    ))
                })?;
                Ok(EnvTarget {
                    name,
                    prefix,
                    by_prefix: true,
                })
            }
            _ => Err(UserError::usage("give exactly one of -n NAME or -p PREFIX").into()),
        }
    }
}

impl GlobalSettings {
    /// The environment this shell has loaded, for a command given neither `-n` nor `-p`:
    /// by name when it lives in `envs_dir`, else by its prefix.
    pub(crate) fn loaded_target(&self, env: &Environ) -> Result<EnvTarget> {
        use crate::env::prefix::Loaded;
        let hint = "give -n NAME or -p PREFIX, or `module load` the environment first";
        let refused = |message: String, hint: &str| -> anyhow::Error {
            UserError::usage(message).with_hint(hint).into()
        };
        match crate::env::prefix::loaded(env) {
            Loaded::Env(prefix) => {
                let given = cli::Target {
                    name: None,
                    prefix: Some(prefix.clone()),
                };
                let target = self.target(&given)?;
                let in_envs_dir = prefix
                    .parent()
                    .is_some_and(|p| crate::fs::same_dir(p, &self.envs_dir.value));
                Ok(match in_envs_dir {
                    true => EnvTarget {
                        prefix: self.envs_dir.value.join(target.name.as_str()),
                        by_prefix: false,
                        ..target
                    },
                    false => target,
                })
            }
            Loaded::Nothing => Err(refused(
                "no environment given (-n NAME or -p PREFIX), and no envmod environment is loaded"
                    .into(),
                hint,
            )),
            Loaded::NotEnvmod(prefix) => Err(refused(
                format!(
                    "the loaded environment (CONDA_PREFIX) is {}, which was not created by envmod",
                    prefix.display()
                ),
                "give -n NAME or -p PREFIX, or `module load` an envmod environment",
            )),
            Loaded::Refused(prefix, why) => Err(refused(
                format!(
                    "CONDA_PREFIX is {}, which envmod does not take for the loaded environment: {why}",
                    prefix.display()
                ),
                hint,
            )),
        }
    }
}

/// `:` would split the prefix in PATH, and Environment Modules' `pushenv` truncates at it;
/// control characters cannot be written to `pyvenv.cfg`.
fn check_prefix_chars(prefix: &Path) -> Result<()> {
    if prefix
        .to_string_lossy()
        .chars()
        .any(|c| c.is_control() || c == ':')
    {
        return Err(UserError::usage(format!(
            "prefix {prefix:?} contains ':' or a control character, which PATH-style variables cannot hold: choose another path"
        ))
        .into());
    }
    Ok(())
}

/// `module_name_template`, checked once: `DIR/VERSION`, each part a valid name once filled in.
fn module_template(t: Sourced<String>) -> Result<Sourced<String>> {
    let value = &t.value;
    let sample: EnvName = "env".parse().expect("a valid name");
    if !value.contains("{name}")
        || crate::names::ModuleName::from_template(value, &sample, "3.11.7").is_none()
    {
        return Err(UserError::usage(format!(
            "module_name_template {value:?} is not DIR/VERSION with {{name}} in it"
        ))
        .with_hint("use placeholders {name}, {python} and {python_short}, as in conda-env/{name}-py{python}")
        .into());
    }
    Ok(t)
}

/// Remove `.` components and trailing slashes without touching the filesystem (the prefix
/// may not exist yet, and resolving symlinks would surprise users who gave a link on purpose).
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(pairs: &[(&str, &str)]) -> Environ {
        Environ::from_pairs(pairs, "/home/u/project")
    }

    #[test]
    fn layers_apply_in_priority_order() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site.yaml");
        std::fs::write(
            &site,
            "envs_dir: /site/envs\nmodule_root: /site/mods\nallow_stacking: true\n",
        )
        .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config/envmod")).unwrap();
        std::fs::write(
            home.join(".config/envmod/config.yaml"),
            "module_root: ~/mods\nbogus: 1\n",
        )
        .unwrap();
        let env = environ(&[
            ("HOME", home.to_str().unwrap()),
            ("ENVMOD_SITE_CONFIG", site.to_str().unwrap()),
            ("ENVMOD_ALLOW_STACKING", "no"),
        ]);
        let s = GlobalSettings::resolve(&env, Options::default()).unwrap();
        assert_eq!(s.envs_dir.value, PathBuf::from("/site/envs"));
        assert_eq!(s.envs_dir.source, Source::SiteFile(site.clone()));
        assert_eq!(s.module_root.value, home.join("mods"));
        assert!(matches!(s.module_root.source, Source::UserFile(_)));
        assert!(!s.allow_stacking.value);
        assert_eq!(
            s.allow_stacking.source,
            Source::EnvVar("ENVMOD_ALLOW_STACKING".into())
        );
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("bogus"));

        let flags = Options {
            module_root: Some("/flag/root".into()),
            ..Default::default()
        };
        let s = GlobalSettings::resolve(&env, flags).unwrap();
        assert_eq!(s.module_root.value, PathBuf::from("/flag/root"));
        assert_eq!(s.module_root.source, Source::Flag("--module-root".into()));
    }

    #[test]
    fn paths_expand_home_and_variables() {
        let env = environ(&[
            ("HOME", "/h"),
            ("SCRATCH", "/scratch/u"),
            ("ENVMOD_ENVS_DIR", "$SCRATCH/envs"),
        ]);
        let s = GlobalSettings::resolve(&env, Options::default()).unwrap();
        assert_eq!(s.envs_dir.value, PathBuf::from("/scratch/u/envs"));
        assert_eq!(s.module_root.value, PathBuf::from("/h/privatemodules"));
    }

    #[test]
    fn undefined_variable_is_an_error_naming_its_source() {
        let env = environ(&[("HOME", "/h"), ("ENVMOD_ENVS_DIR", "$NOPE/envs")]);
        let err = GlobalSettings::resolve(&env, Options::default()).unwrap_err();
        assert!(err.to_string().contains("ENVMOD_ENVS_DIR"), "{err}");
    }

    #[test]
    fn a_relative_flag_is_taken_from_the_working_directory() {
        let env = environ(&[("HOME", "/h")]);
        let flags = Options {
            module_root: Some("mods".into()),
            ..Default::default()
        };
        let s = GlobalSettings::resolve(&env, flags).unwrap();
        assert_eq!(s.module_root.value, PathBuf::from("/home/u/project/mods"));
        let target = cli::Target {
            name: None,
            prefix: Some("envs/./proj".into()),
        };
        assert_eq!(
            s.target(&target).unwrap().prefix,
            PathBuf::from("/home/u/project/envs/proj")
        );
    }

    #[test]
    fn a_relative_path_from_a_variable_is_refused() {
        for (var, value) in [
            ("ENVMOD_ENVS_DIR", "envs"),
            ("ENVMOD_MODULE_ROOT", "$NAME/mods"),
            ("ENVMOD_TEMPLATES_DIR", "t"),
            ("ENVMOD_PKGS_DIRS", "/a,pkgs"),
        ] {
            let env = environ(&[("HOME", "/h"), ("NAME", "x"), (var, value)]);
            let err = GlobalSettings::resolve(&env, Options::default()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(var) && msg.contains("use an absolute path such as ~/envs"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_variable_expanding_to_a_newline_or_colon_is_refused() {
        let env = environ(&[
            ("HOME", "/h"),
            ("BAD", "/a\nb"),
            ("ENVMOD_ENVS_DIR", "$BAD"),
        ]);
        let msg = GlobalSettings::resolve(&env, Options::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("control character") && !msg.contains('\n'),
            "{msg}"
        );
        let env = environ(&[("HOME", "/h:x")]);
        let msg = GlobalSettings::resolve(&env, Options::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("envs_dir") && msg.contains("':'"), "{msg}");
    }
}
