//! Settings are merged once, here, from lowest to highest priority: built-in defaults, the
//! site file, the user file, `ENVMOD_*` variables, then flags. Each value remembers where it
//! came from so `envmod config` can answer "why is it set to that?". Commands receive a
//! plain struct and never look at files or variables themselves.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;

use crate::{
    cli,
    config::{ConfigFile, ModuleSystemChoice},
    env::prefix::EnvTarget,
    environ::Environ,
    error::UserError,
    names::EnvName,
};

pub const SITE_CONFIG_DEFAULT: &str = "/etc/envmod/config.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Source {
    Default,
    SiteFile(PathBuf),
    UserFile(PathBuf),
    EnvVar(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::SiteFile(p) => write!(f, "site file {}", p.display()),
            Source::UserFile(p) => write!(f, "user file {}", p.display()),
            Source::EnvVar(v) => write!(f, "env var {v}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// Settings every command shares.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalSettings {
    pub envs_dir: Sourced<PathBuf>,
    pub module_root: Sourced<PathBuf>,
    pub module_system: Sourced<ModuleSystemChoice>,
    pub python: Sourced<Option<String>>,
    pub ignore_modules: Sourced<Vec<String>>,
    pub templates_dir: Sourced<Option<PathBuf>>,
    pub allow_stacking: Sourced<bool>,
    pub ld_library_path: Sourced<bool>,
    pub channels: Sourced<Vec<String>>,
    pub channel_alias: Sourced<String>,
    pub pkgs_dirs: Sourced<Vec<PathBuf>>,
    pub offline: Sourced<bool>,
    #[serde(skip)]
    pub files: ConfigFiles,
    /// Where prefixes given with `-p` are remembered.
    #[serde(skip)]
    pub registry_file: PathBuf,
    /// Where envmod remembers what it learnt about interpreters.
    #[serde(skip)]
    pub interpreter_cache: PathBuf,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigFiles {
    pub site: PathBuf,
    pub site_exists: bool,
    pub user: PathBuf,
    pub user_exists: bool,
}

struct Layer {
    path: PathBuf,
    file: Option<ConfigFile>,
    source: fn(PathBuf) -> Source,
}

struct Resolver<'a> {
    env: &'a Environ,
    layers: [Layer; 2],
    cwd: PathBuf,
}

impl Resolver<'_> {
    /// The highest-priority file value for a key, with its source.
    fn file_value<T>(&self, get: impl Fn(&ConfigFile) -> Option<T>) -> Option<(T, Source)> {
        self.layers.iter().rev().find_map(|l| {
            l.file
                .as_ref()
                .and_then(&get)
                .map(|v| (v, (l.source)(l.path.clone())))
        })
    }

    fn expand(&self, raw: &str, origin: &Source) -> Result<PathBuf> {
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
            UserError::failure(format!("cannot expand {raw:?} from {origin}: {e}"))
                .with_hint("set the variable, or write the path out in full")
        })?;
        Ok(self.cwd.join(Path::new(expanded.as_ref())))
    }

    fn path(
        &self,
        file_key: impl Fn(&ConfigFile) -> Option<String>,
        env_var: &str,
        flag: Option<(&Path, &str)>,
        default: &str,
    ) -> Result<Sourced<PathBuf>> {
        let (raw, source) = self
            .string(
                file_key,
                env_var,
                flag.map(|(p, f)| (p.to_string_lossy().into_owned(), f)),
            )
            .unwrap_or_else(|| (default.to_string(), Source::Default));
        let value = self.expand(&raw, &source)?;
        Ok(Sourced { value, source })
    }

    fn string(
        &self,
        file_key: impl Fn(&ConfigFile) -> Option<String>,
        env_var: &str,
        flag: Option<(String, &str)>,
    ) -> Option<(String, Source)> {
        if let Some((v, name)) = flag {
            return Some((v, Source::Flag(name.to_string())));
        }
        if let Some(v) = self.env.get(env_var) {
            return Some((v.to_string(), Source::EnvVar(env_var.to_string())));
        }
        self.file_value(file_key)
    }

    fn bool(
        &self,
        file_key: impl Fn(&ConfigFile) -> Option<bool>,
        env_var: &str,
        default: bool,
    ) -> Result<Sourced<bool>> {
        if let Some(raw) = self.env.get(env_var) {
            let value = match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(UserError::usage(format!(
                        "{env_var}={raw:?} is not a boolean: use true or false"
                    ))
                    .into());
                }
            };
            return Ok(Sourced {
                value,
                source: Source::EnvVar(env_var.to_string()),
            });
        }
        Ok(self
            .file_value(file_key)
            .map(|(value, source)| Sourced { value, source })
            .unwrap_or(Sourced {
                value: default,
                source: Source::Default,
            }))
    }
}

/// Flags that override config for the command being run.
#[derive(Debug, Default)]
pub struct FlagOverrides<'a> {
    pub module_system: Option<(cli::ModuleSystemArg, &'static str)>,
    pub module_root: Option<&'a Path>,
    pub python: Option<&'a Path>,
    pub channels: Option<&'a [String]>,
    pub offline: bool,
}

impl GlobalSettings {
    pub fn resolve(env: &Environ, flags: &FlagOverrides<'_>) -> Result<Self> {
        let cwd = env.cwd().to_path_buf();
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
        let site = ConfigFile::load(&site_path)?;
        let user = ConfigFile::load(&user_path)?;
        let mut warnings = Vec::new();
        for (path, file) in [(&site_path, &site), (&user_path, &user)] {
            for key in file.iter().flat_map(|f| f.unknown_keys()) {
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
        let r = Resolver {
            env,
            layers: [
                Layer {
                    path: site_path,
                    file: site,
                    source: Source::SiteFile,
                },
                Layer {
                    path: user_path,
                    file: user,
                    source: Source::UserFile,
                },
            ],
            cwd,
        };

        let envs_dir = r.path(
            |f| f.envs_dir.clone(),
            "ENVMOD_ENVS_DIR",
            None,
            "~/.envmod/envs",
        )?;
        let module_root = r.path(
            |f| f.module_root.clone(),
            "ENVMOD_MODULE_ROOT",
            flags.module_root.map(|p| (p, "--module-root")),
            "~/privatemodules",
        )?;
        let module_system = match flags.module_system {
            Some((arg, flag)) => Sourced {
                value: arg.into(),
                source: Source::Flag(flag.to_string()),
            },
            None => match env.get("ENVMOD_MODULE_SYSTEM") {
                Some(raw) => Sourced {
                    value: serde_yaml::from_str(raw).map_err(|_| {
                        UserError::usage(format!(
                            "ENVMOD_MODULE_SYSTEM={raw:?} is not one of auto, lmod, tcl, none"
                        ))
                    })?,
                    source: Source::EnvVar("ENVMOD_MODULE_SYSTEM".into()),
                },
                None => r
                    .file_value(|f| f.module_system)
                    .map(|(value, source)| Sourced { value, source })
                    .unwrap_or(Sourced {
                        value: ModuleSystemChoice::Auto,
                        source: Source::Default,
                    }),
            },
        };
        let python = match r.string(
            |f| f.python.clone(),
            "ENVMOD_PYTHON",
            flags
                .python
                .map(|p| (p.to_string_lossy().into_owned(), "--site-python")),
        ) {
            Some((raw, source)) => {
                // A bare command name is looked up on PATH later; anything with a slash is a path.
                let value = if raw.contains('/') || raw.starts_with('~') {
                    r.expand(&raw, &source)?.to_string_lossy().into_owned()
                } else {
                    raw
                };
                Sourced {
                    value: Some(value),
                    source,
                }
            }
            None => Sourced {
                value: None,
                source: Source::Default,
            },
        };
        let ignore_modules = match env.get("ENVMOD_IGNORE_MODULES") {
            Some(raw) => Sourced {
                value: raw
                    .split([',', ':'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                source: Source::EnvVar("ENVMOD_IGNORE_MODULES".into()),
            },
            None => r
                .file_value(|f| f.ignore_modules.clone())
                .map(|(value, source)| Sourced { value, source })
                .unwrap_or(Sourced {
                    value: Vec::new(),
                    source: Source::Default,
                }),
        };
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
        let templates_dir =
            match r.string(|f| f.templates_dir.clone(), "ENVMOD_TEMPLATES_DIR", None) {
                Some((raw, source)) => Sourced {
                    value: Some(r.expand(&raw, &source)?),
                    source,
                },
                None => Sourced {
                    value: None,
                    source: Source::Default,
                },
            };
        if let Some(dir) = templates_dir.value.as_ref().filter(|d| !d.is_dir()) {
            warnings.push(format!(
                "templates_dir {} (from {}) is not a directory; using the built-in templates",
                dir.display(),
                templates_dir.source
            ));
        }
        let channels = match flags.channels.filter(|c| !c.is_empty()) {
            Some(c) => Sourced {
                value: c.to_vec(),
                source: Source::Flag("--channel".into()),
            },
            None => match env.get("ENVMOD_CHANNELS") {
                Some(raw) => Sourced {
                    value: raw
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    source: Source::EnvVar("ENVMOD_CHANNELS".into()),
                },
                None => r
                    .file_value(|f| f.channels.clone())
                    .map(|(value, source)| Sourced { value, source })
                    .unwrap_or(Sourced {
                        value: vec!["conda-forge".into()],
                        source: Source::Default,
                    }),
            },
        };
        let channel_alias = r
            .string(|f| f.channel_alias.clone(), "ENVMOD_CHANNEL_ALIAS", None)
            .map(|(value, source)| Sourced { value, source })
            .unwrap_or(Sourced {
                value: "https://conda.anaconda.org".into(),
                source: Source::Default,
            });
        if url::Url::parse(&channel_alias.value).is_err() {
            return Err(UserError::usage(format!(
                "channel_alias {:?} from {} is not a URL",
                channel_alias.value, channel_alias.source
            ))
            .with_hint("use a full URL such as https://conda.anaconda.org")
            .into());
        }
        let pkgs_dirs = {
            let (raw, source) = match env.get("ENVMOD_PKGS_DIRS") {
                Some(raw) => (
                    raw.split(':')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    Source::EnvVar("ENVMOD_PKGS_DIRS".into()),
                ),
                None => r.file_value(|f| f.pkgs_dirs.clone()).unwrap_or_else(|| {
                    // The cache pixi and rattler use, so envs share packages with them.
                    (
                        vec!["$XDG_CACHE_HOME/rattler/cache/pkgs".into()],
                        Source::Default,
                    )
                }),
            };
            let default_cache = env.xdg_dir("XDG_CACHE_HOME", ".cache");
            let mut value = Vec::new();
            for dir in &raw {
                if source == Source::Default {
                    value.push(default_cache.join("rattler/cache/pkgs"));
                } else {
                    value.push(r.expand(dir, &source)?);
                }
            }
            if value.is_empty() {
                return Err(
                    UserError::usage(format!("pkgs_dirs from {source} is empty"))
                        .with_hint("name at least one package cache directory")
                        .into(),
                );
            }
            Sourced { value, source }
        };
        let offline = if flags.offline {
            Sourced {
                value: true,
                source: Source::Flag("--offline".into()),
            }
        } else {
            r.bool(|f| f.offline, "ENVMOD_OFFLINE", false)?
        };
        let allow_stacking = r.bool(|f| f.allow_stacking, "ENVMOD_ALLOW_STACKING", false)?;
        let ld_library_path = r.bool(|f| f.ld_library_path, "ENVMOD_LD_LIBRARY_PATH", false)?;

        Ok(Self {
            envs_dir,
            module_root,
            module_system,
            python,
            ignore_modules,
            templates_dir,
            allow_stacking,
            ld_library_path,
            channels,
            channel_alias,
            pkgs_dirs,
            offline,
            files,
            registry_file,
            interpreter_cache,
            warnings,
        })
    }

    /// Where an environment lives and what it is called, from `-n` or `-p`.
    pub fn target(&self, target: &cli::Target) -> Result<EnvTarget> {
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
                let prefix = std::path::absolute(prefix).map_err(|e| {
                    UserError::usage(format!("invalid prefix {}: {e}", prefix.display()))
                })?;
                let prefix = normalize(&prefix);
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

/// Remove `.` components and trailing slashes without touching the filesystem (the prefix
/// may not exist yet, and resolving symlinks would surprise users who gave a link on purpose).
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

impl From<cli::ModuleSystemArg> for ModuleSystemChoice {
    fn from(a: cli::ModuleSystemArg) -> Self {
        match a {
            cli::ModuleSystemArg::Auto => ModuleSystemChoice::Auto,
            cli::ModuleSystemArg::Lmod => ModuleSystemChoice::Lmod,
            cli::ModuleSystemArg::Tcl => ModuleSystemChoice::Tcl,
            cli::ModuleSystemArg::None => ModuleSystemChoice::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(pairs: &[(&str, &str)]) -> Environ {
        let mut e = Environ::default();
        for (k, v) in pairs {
            e = e.with(k, v);
        }
        e
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
        let s = GlobalSettings::resolve(&env, &FlagOverrides::default()).unwrap();
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

        let flag_root = PathBuf::from("/flag/root");
        let flags = FlagOverrides {
            module_root: Some(&flag_root),
            ..Default::default()
        };
        let s = GlobalSettings::resolve(&env, &flags).unwrap();
        assert_eq!(s.module_root.value, flag_root);
        assert_eq!(s.module_root.source, Source::Flag("--module-root".into()));
    }

    #[test]
    fn paths_expand_home_and_variables() {
        let env = environ(&[
            ("HOME", "/h"),
            ("SCRATCH", "/scratch/u"),
            ("ENVMOD_ENVS_DIR", "$SCRATCH/envs"),
        ]);
        let s = GlobalSettings::resolve(&env, &FlagOverrides::default()).unwrap();
        assert_eq!(s.envs_dir.value, PathBuf::from("/scratch/u/envs"));
        assert_eq!(s.module_root.value, PathBuf::from("/h/privatemodules"));
    }

    #[test]
    fn undefined_variable_is_an_error_naming_its_source() {
        let env = environ(&[("HOME", "/h"), ("ENVMOD_ENVS_DIR", "$NOPE/envs")]);
        let err = GlobalSettings::resolve(&env, &FlagOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("ENVMOD_ENVS_DIR"), "{err}");
    }
}
