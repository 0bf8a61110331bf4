//! The raw layers of configuration and their merge. Every layer (the site file, the user file,
//! the `ENVMOD_*` variables, the flags) has the same type, [`Options`], in which every key is
//! optional: a missing key falls through to the next layer. One merge takes, key by key, the
//! highest layer that sets it and remembers which one that was, like uv's `Combine`.
//!
//! `options!` declares the keys once, each with its built-in value and what it sets, so that
//! a new key is one line here, plus the code in `settings` that turns its raw value into a
//! typed one; the built-in layer and the docs' table of keys are both read from it.
//!
//! Unknown keys in files are reported, not ignored, because a misspelt `envs_dri` silently
//! doing nothing is the worst outcome.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, IntoDeserializer, Visitor, value::MapDeserializer},
};

use crate::{environ::Environ, error::UserError, site::ModuleSystemChoice, yaml::ListMap};

use Builtin::{Described, Value};

/// What separates the items of a list in an `ENVMOD_*` variable. Not `:`, because channels
/// are URLs.
const LIST_SEPARATOR: char = ',';

/// A key's built-in value, the lowest layer. The descriptions are read by the reference
/// table's generator, which only the tests run.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Builtin {
    /// A value, spelt as an `ENVMOD_*` variable would spell it.
    Value(&'static str),
    /// No value in the layer: `settings` works it out (or leaves the key unset), as described.
    Described(&'static str),
}

/// One key, as the reference table lists it.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) builtin: Builtin,
    pub(crate) doc: &'static str,
    /// An `ENVMOD_*` variable can set it: not for maps (`[file_only]`) and the keys merged
    /// entry by entry, which only a file can spell.
    pub(crate) variable: bool,
}

macro_rules! options {
    (@variable file_only) => { false };
    (
        $($([$only:ident])? $key:ident: $ty:ty = $default:expr, $doc:literal,)*
        ;
        layered:
        $($lkey:ident: $lty:ty = $ldefault:expr, $ldoc:literal,)*
    ) => {
        /// Every key with its built-in value and what it sets, in the order of the docs.
        pub(crate) const KEYS: &[Key] = &[
            $(Key {
                name: stringify!($key),
                builtin: $default,
                doc: $doc,
                variable: true $(&& options!(@variable $only))?,
            },)*
            $(Key { name: stringify!($lkey), builtin: $ldefault, doc: $ldoc, variable: false },)*
        ];

        /// One layer of settings, as written: paths are not expanded yet, nothing is validated.
        #[derive(Debug, Default, Deserialize)]
        pub(crate) struct Options {
            $(pub(crate) $key: Option<$ty>,)*
            $(pub(crate) $lkey: Option<$lty>,)*
            #[serde(flatten)]
            pub(crate) unknown: BTreeMap<String, serde_yaml::Value>,
        }

        /// For each key, the value from the highest layer that sets it, and that layer; for
        /// each layered key, the value of every layer that sets it, highest first, so that it
        /// can be merged entry by entry.
        #[derive(Debug, Default)]
        pub(crate) struct Merged {
            $(pub(crate) $key: Option<Sourced<$ty>>,)*
            $(pub(crate) $lkey: Vec<Sourced<$lty>>,)*
        }

        impl Merged {
            /// `layers` come highest priority first.
            pub(crate) fn merge(layers: impl IntoIterator<Item = (Options, Origin)>) -> Self {
                let mut merged = Self::default();
                for (options, origin) in layers {
                    $(
                        if merged.$key.is_none() {
                            merged.$key = options.$key.map(|value| Sourced {
                                value,
                                source: origin.source(stringify!($key)),
                            });
                        }
                    )*
                    $(
                        if let Some(value) = options.$lkey {
                            merged.$lkey.push(Sourced {
                                value,
                                source: origin.source(stringify!($lkey)),
                            });
                        }
                    )*
                }
                merged
            }
        }

        /// The keys merged entry by entry: ordered maps only a file can spell.
        const LAYERED: &[&str] = &[$(stringify!($lkey)),*];

        impl Options {
            /// Fill in the line of every entry of the layered keys from the parsed file.
            fn locate(&mut self, doc: &crate::yaml::Node) {
                $(
                    if let Some(value) = self.$lkey.as_mut() {
                        value.locate(doc.get(stringify!($lkey)));
                    }
                )*
            }
        }
    };
}

options! {
    envs_dir: String = Value("~/.envmod/envs"),
        "Where `create -n NAME` puts environments: `<envs_dir>/NAME`.",
    module_root: String = Value("~/privatemodules"),
        "The directory that receives `NAME/pyX.Y` modulefiles.",
    module_system: ModuleSystemChoice = Value("auto"),
        "Which modulefiles to write: `auto`, `lmod`, `tcl` or `none`.",
    python: String = Described("`python3` on the user's `PATH`"),
        "The site Python environments are built on: a command name or a path.",
    ignore_modules: Vec<String> = Value(""),
        "Globs of loaded modules that are not recorded (`StdEnv`, `xalt/*`).",
    templates_dir: String = Described("the built-in templates"),
        "A directory whose templates replace the built-in ones of the same name.",
    allow_stacking: bool = Value("false"),
        "Let users load two envmod environments at once.",
    ld_library_path: bool = Value("false"),
        "Modulefiles prepend the environment's `lib` to `LD_LIBRARY_PATH`.",
    channels: Vec<String> = Value("conda-forge"),
        "The conda channels packages come from.",
    channel_alias: String = Value("https://conda.anaconda.org"),
        "The URL a bare channel name is joined to.",
    pkgs_dirs: Vec<String> = Described("`$XDG_CACHE_HOME/rattler/cache/pkgs`, or `~/.cache/rattler/cache/pkgs`"),
        "Package caches envmod fills; the first one is written.",
    readonly_pkgs_dirs: Vec<String> = Value(""),
        "Package caches someone else fills: read, never written.",
    offline: bool = Value("false"),
        "Use only cached repodata and packages.",
    compile_pyc: crate::conda::pyc::CompilePyc = Value("auto"),
        "When create, install and remove compile `.pyc` files: `true`, `false` or `auto`.",
    shared_envs_dirs: Vec<String> = Value(""),
        "Directories of shared environments that `list` shows too.",
    [file_only] module_map: BTreeMap<String, Option<String>> = Described("none"),
        "Module names of other sites and what they are here (`null`: leave the module out).",
    ignore_site_packages: bool = Value("false"),
        "Do not count the site Python's packages as installed.",
    module_name_template: String = Value("{name}/py{python_short}"),
        "The module name `create` and `adopt` give an environment: `{name}`, `{python}` (3.11.7), `{python_short}` (3.11); conda-env-mod's is `conda-env/{name}-py{python}`. Each environment records the template it got, so changing it later renames no existing module.",
    ;
    layered:
    module_provides: ListMap = Described("the built-in rules"),
        "What loaded modules provide to the solve, by module pattern.",
    site_package_names: ListMap = Described("the built-in table"),
        "The conda names of the site Python's distributions, where they differ from PyPI's.",
}

/// Which layer a value came from, as `envmod config` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub(crate) enum Source {
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
pub(crate) struct Sourced<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

/// A layer, which names the source of each of its keys.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Flags,
    /// The built-in values of `options!`.
    Builtin,
    Environment,
    UserFile(PathBuf),
    SiteFile(PathBuf),
}

impl Origin {
    fn source(&self, key: &str) -> Source {
        match self {
            Origin::Flags => Source::Flag(match key {
                "python" => "--site-python".to_owned(),
                "channels" => "--channel".to_owned(),
                "compile_pyc" => "--compile/--no-compile".to_owned(),
                _ => format!("--{}", key.replace('_', "-")),
            }),
            Origin::Environment => Source::EnvVar(env_var(key)),
            Origin::Builtin => Source::Default,
            Origin::UserFile(p) => Source::UserFile(p.clone()),
            Origin::SiteFile(p) => Source::SiteFile(p.clone()),
        }
    }
}

const ENV_PREFIX: &str = "ENVMOD_";

fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

impl Options {
    /// Read a config file. A missing file is no layer; an unreadable or invalid one is an
    /// error that names the file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match crate::fs::read_text(path, crate::fs::SMALL_FILE, crate::fs::Links::Follow)
        {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(UserError::failure(format!("config file {e}"))
                    .with_hint("a config file is a YAML file; see site-config/envmod.yaml")
                    .into());
            }
        };
        if text.trim().is_empty() {
            return Ok(Some(Self::default()));
        }
        let doc = crate::yaml::parse(&text).map_err(|e| {
            UserError::failure(format!("invalid config file {}: {e}", path.display()))
        })?;
        let mut cfg: Self = serde_yaml::from_str(&text).map_err(|e| {
            UserError::failure(format!("invalid config file {}: {e}", path.display()))
                .with_hint("fix the YAML, or see site-config/envmod.yaml for every key")
        })?;
        if let Some(doc) = &doc {
            cfg.locate(doc);
        }
        Ok(Some(cfg))
    }

    /// The built-in values, the lowest layer, read from `KEYS` as a variable's value is.
    pub(crate) fn builtin() -> Self {
        let values = KEYS.iter().filter_map(|k| match k.builtin {
            Value(text) => Some((k.name, EnvValue(text.to_owned()))),
            Described(_) => None,
        });
        Options::deserialize(MapDeserializer::new(values)).unwrap_or_else(|e: de::value::Error| {
            panic!("a built-in value in options! is wrong: {e}")
        })
    }

    /// The `ENVMOD_*` variables, one layer each: `ENVMOD_ENVS_DIR` sets `envs_dir`, and so
    /// on for every key, with no code per key. Variables that are not keys
    /// (`ENVMOD_SITE_CONFIG`, `ENVMOD_TEST_*`) end up in `unknown`, which nobody reports:
    /// they are somebody else's.
    pub(crate) fn from_environ(env: &Environ) -> anyhow::Result<Vec<Self>> {
        env.with_prefix(ENV_PREFIX)
            // Settings are spelt in capitals; `ENVMOD_envs_dir` is somebody else's.
            .filter(|(rest, _)| !rest.bytes().any(|b| b.is_ascii_lowercase()))
            .map(|(rest, raw)| {
                let key = rest.to_ascii_lowercase();
                let var = env_var(&key);
                if LAYERED.contains(&key.as_str()) {
                    return Err(UserError::usage(format!(
                        "{var}: {key} can only be set in the site or user config file, not in a variable"
                    ))
                    .with_hint(format!(
                        "unset {var} and write {key} in ~/.config/envmod/config.yaml"
                    ))
                    .into());
                }
                let one = MapDeserializer::new(std::iter::once((key, EnvValue(raw.to_owned()))));
                Options::deserialize(one).map_err(|e: de::value::Error| {
                    UserError::usage(format!("{var}={raw:?} {e}")).into()
                })
            })
            .collect()
    }
}

/// The value of one `ENVMOD_*` variable. Variables are strings, so booleans and lists need
/// a spelling: booleans accept true/false, yes/no, on/off and 1/0, and lists are split on
/// [`LIST_SEPARATOR`]. Every other type reads the string as it is.
struct EnvValue(String);

impl<'de> IntoDeserializer<'de, de::value::Error> for EnvValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for EnvValue {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => visitor.visit_bool(true),
            "0" | "false" | "no" | "off" => visitor.visit_bool(false),
            _ => Err(de::Error::custom("is not a boolean: use true or false")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let items = self
            .0
            .split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| EnvValue(s.to_owned()))
            .collect::<Vec<_>>();
        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if variants.contains(&self.0.as_str()) {
            visitor.visit_enum(self.0.into_deserializer())
        } else {
            Err(de::Error::custom(format!(
                "is not one of {}",
                variants.join(", ")
            )))
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct map struct identifier ignored_any
    }
}

/// A `--module-map FILE`: the same YAML map as the `module_map` key.
pub(crate) fn read_module_map(path: &Path) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let text = crate::fs::read_text(path, crate::fs::SMALL_FILE, crate::fs::Links::Follow)
        .map_err(|e| UserError::usage(format!("module map {e}")))?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    crate::yaml::check(&text)
        .map_err(|e| UserError::usage(format!("{}, {e}: not a module map", path.display())))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let (line, message) = crate::error::yaml_place(&e);
        UserError::usage(format!(
            "{}{line}: not a module map: {message}",
            path.display()
        ))
        .with_hint("write one `site-a-module: site-b-module` per line, e.g. `gcc/12.2: gcc/12.3`, or `cuda/11.8: null`")
        .into()
    })
}

/// The reference table of every key, its variable and built-in value, as docs/admin.md
/// shows it between the `generated: config keys` markers.
#[cfg(test)]
pub(crate) fn reference_table() -> String {
    let mut out = String::from("| Key | Variable | Default | What it sets |\n|---|---|---|---|\n");
    for key in KEYS {
        let variable = match key.variable {
            true => format!("`{}`", env_var(key.name)),
            false => "none (files only)".to_owned(),
        };
        let default = match key.builtin {
            Value("") => "none".to_owned(),
            Value(text) => format!("`{text}`"),
            Described(text) => text.to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {variable} | {default} | {} |\n",
            key.name, key.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed table is the one `options!` gives; `ENVMOD_UPDATE_REFERENCE=1`
    /// rewrites it.
    #[test]
    fn the_docs_list_every_key_as_options_declares_it() {
        const BEGIN: &str = "<!-- generated: config keys -->\n";
        const END: &str = "<!-- end generated: config keys -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/admin.md");
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find(BEGIN)
            .expect("docs/admin.md has the begin marker")
            + BEGIN.len();
        let end = start
            + text[start..]
                .find(END)
                .expect("docs/admin.md has the end marker");
        let table = reference_table();
        if std::env::var_os("ENVMOD_UPDATE_REFERENCE").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[end..])).unwrap();
            return;
        }
        assert_eq!(
            text[start..end],
            table,
            "docs/admin.md's key table is out of date: run ENVMOD_UPDATE_REFERENCE=1 cargo test --features test-hooks --lib the_docs_list_every_key"
        );
    }

    #[test]
    fn every_built_in_value_reads_as_its_key() {
        let b = Options::builtin();
        assert_eq!(b.envs_dir.as_deref(), Some("~/.envmod/envs"));
        assert_eq!(b.channels, Some(vec!["conda-forge".to_owned()]));
        assert_eq!(b.ignore_modules, Some(Vec::new()));
        assert_eq!(b.compile_pyc, Some(crate::conda::pyc::CompilePyc::Auto));
        assert!(b.python.is_none() && b.pkgs_dirs.is_none() && b.unknown.is_empty());
    }

    #[test]
    fn parses_every_key_and_collects_unknown_ones() {
        let cfg: Options = serde_yaml::from_str(
            "envs_dir: /apps/envs\nmodule_root: ~/mods\nmodule_system: tcl\npython: /usr/bin/python3\n\
             ignore_modules: [StdEnv, 'xalt/*']\ntemplates_dir: /etc/envmod/templates\n\
             allow_stacking: true\nld_library_path: false\nenvs_dri: typo\n",
        )
        .unwrap();
        assert_eq!(cfg.envs_dir.as_deref(), Some("/apps/envs"));
        assert_eq!(cfg.module_system, Some(ModuleSystemChoice::Tcl));
        assert_eq!(cfg.ignore_modules.unwrap(), vec!["StdEnv", "xalt/*"]);
        assert_eq!(cfg.unknown.keys().collect::<Vec<_>>(), vec!["envs_dri"]);
    }

    #[test]
    fn variables_are_a_layer_of_their_own() {
        let env = Environ::from_pairs(
            &[
                (
                    "ENVMOD_CHANNELS",
                    "conda-forge, https://x.org/ch,,file:///a",
                ),
                ("ENVMOD_PKGS_DIRS", "/a,/b"),
                ("ENVMOD_OFFLINE", "yes"),
                ("ENVMOD_MODULE_SYSTEM", "tcl"),
                ("ENVMOD_SITE_CONFIG", "/etc/x.yaml"),
                ("ENVMOD_TEST_KILL_AT", "swap"),
                ("ENVMOD_ENVS_DIR", ""),
                ("ENVMOD_module_root", "not ours"),
            ],
            "/",
        );
        let layers = Options::from_environ(&env).unwrap();
        let m = Merged::merge(layers.into_iter().map(|o| (o, Origin::Environment)));
        assert_eq!(
            m.channels.unwrap().value,
            ["conda-forge", "https://x.org/ch", "file:///a"]
        );
        let pkgs = m.pkgs_dirs.unwrap();
        assert_eq!(pkgs.value, ["/a", "/b"]);
        assert_eq!(pkgs.source, Source::EnvVar("ENVMOD_PKGS_DIRS".into()));
        assert!(m.offline.unwrap().value);
        assert_eq!(m.module_system.unwrap().value, ModuleSystemChoice::Tcl);
        assert!(m.envs_dir.is_none());
        assert!(m.module_root.is_none());
    }

    #[test]
    fn a_bad_variable_is_named_with_what_it_accepts() {
        for (var, value, expected) in [
            (
                "ENVMOD_MODULE_SYSTEM",
                "x",
                r#"ENVMOD_MODULE_SYSTEM="x" is not one of auto, lmod, tcl, none"#,
            ),
            (
                "ENVMOD_OFFLINE",
                "maybe",
                r#"ENVMOD_OFFLINE="maybe" is not a boolean: use true or false"#,
            ),
        ] {
            let env = Environ::from_pairs(&[(var, value)], "/");
            let err = Options::from_environ(&env).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
    }

    #[test]
    fn the_first_layer_that_sets_a_key_wins_and_is_named() {
        let flags = Options {
            module_root: Some("r".into()),
            ..Default::default()
        };
        let env = Options {
            module_root: Some("/e".into()),
            envs_dir: Some("/e".into()),
            ..Default::default()
        };
        let site = Options {
            envs_dir: Some("/s".into()),
            offline: Some(false),
            ..Default::default()
        };
        let m = Merged::merge([
            (flags, Origin::Flags),
            (env, Origin::Environment),
            (site, Origin::SiteFile("/etc/c.yaml".into())),
        ]);
        let root = m.module_root.unwrap();
        assert_eq!(root.value, "r");
        assert_eq!(root.source, Source::Flag("--module-root".into()));
        let envs = m.envs_dir.unwrap();
        assert_eq!(envs.value, "/e");
        assert_eq!(envs.source, Source::EnvVar("ENVMOD_ENVS_DIR".into()));
        assert_eq!(
            m.offline.unwrap().source,
            Source::SiteFile("/etc/c.yaml".into())
        );
        assert!(m.python.is_none());
    }

    #[test]
    fn a_layered_key_keeps_every_layer_with_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site.yaml");
        std::fs::write(
            &site,
            "envs_dir: /s\nmodule_provides:\n  \"openmpi/*\":\n    - openmpi {version}\n    - mpi 1.0 openmpi\n  \"xalt/*\": []\n",
        )
        .unwrap();
        let user = dir.path().join("user.yaml");
        std::fs::write(
            &user,
            "module_provides: {\"cuda/*\": \"__cuda {version}\"}\n",
        )
        .unwrap();
        let site_layer = Options::load(&site).unwrap().unwrap();
        let user_layer = Options::load(&user).unwrap().unwrap();
        let m = Merged::merge([
            (user_layer, Origin::UserFile(user.clone())),
            (Options::default(), Origin::Environment),
            (site_layer, Origin::SiteFile(site.clone())),
        ]);
        assert_eq!(m.module_provides.len(), 2);
        assert_eq!(m.module_provides[0].source, Source::UserFile(user));
        assert_eq!(m.module_provides[1].source, Source::SiteFile(site));
        let entries = &m.module_provides[1].value.entries;
        assert_eq!(
            (entries[0].key.as_str(), entries[0].line),
            ("openmpi/*", Some(3))
        );
        assert_eq!(
            entries[0].values,
            [
                ("openmpi {version}".to_owned(), Some(4)),
                ("mpi 1.0 openmpi".to_owned(), Some(5))
            ]
        );
        assert_eq!((entries[1].line, entries[1].values.len()), (Some(6), 0));
        let cuda = &m.module_provides[0].value.entries[0];
        assert_eq!(cuda.values, [("__cuda {version}".to_owned(), Some(1))]);
        assert!(m.site_package_names.is_empty());
    }

    #[test]
    fn a_layered_key_is_refused_from_a_variable() {
        let env = Environ::from_pairs(&[("ENVMOD_SITE_PACKAGE_NAMES", "torch=pytorch")], "/");
        let err = Options::from_environ(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ENVMOD_SITE_PACKAGE_NAMES: site_package_names can only be set in the site or user config file, not in a variable"
        );
        let env = Environ::from_pairs(&[("ENVMOD_IGNORE_SITE_PACKAGES", "on")], "/");
        let layers = Options::from_environ(&env).unwrap();
        assert_eq!(layers[0].ignore_site_packages, Some(true));
    }
}
