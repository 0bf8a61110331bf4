//! `environment.yml`, the file conda, mamba, pixi and conda-lock all read. envmod writes one
//! that they read as usual, and adds one top-level `envmod:` section that they ignore: what
//! a plain conda file cannot say about an environment module (the modules it was built on,
//! the Python it was built for). Reading goes through rattler's `EnvironmentYaml`, so every
//! form conda accepts is accepted, and every error names the file and the line.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rattler_conda_types::{EnvironmentYaml, Subdir};
use serde::{Deserialize, Serialize};

use crate::{
    conda::specs::Spec,
    error::UserError,
    manifest::PythonMode,
    site::{ModuleSystem, provides::ModuleProvision},
};

/// The top-level key of envmod's own section.
pub(crate) const SECTION: &str = "envmod";

/// What envmod adds to an exported `environment.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnvmodSection {
    pub(crate) envmod_version: String,
    pub(crate) platform: String,
    pub(crate) python: PythonSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) module_system: Option<ModuleSystem>,
    /// The modules the environment was built on, in load order.
    #[serde(default)]
    pub(crate) modules: Vec<String>,
    /// Modules of the environment it was rebuilt from that this site did not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skipped_modules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// What the modules gave the solve. `create -f` derives it again from this site's
    /// modules, and this list says which packages must come from one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) provided: Vec<ModuleProvision>,
    /// Built with `--ignore-site-packages`: the site Python's distributions did not count as
    /// installed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ignore_site_packages: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PythonSection {
    pub(crate) mode: PythonMode,
    pub(crate) version: String,
}

impl PythonSection {
    /// `3.11` for `3.11.4`.
    pub(crate) fn minor(&self) -> String {
        self.version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Everything an exported file holds.
pub(crate) struct Export {
    pub(crate) name: String,
    pub(crate) channels: Vec<String>,
    pub(crate) specs: Vec<String>,
    pub(crate) pip: Vec<String>,
    pub(crate) variables: Vec<(String, String)>,
    pub(crate) envmod: EnvmodSection,
}

#[derive(Serialize)]
struct ExportYaml<'a> {
    name: &'a str,
    channels: &'a [String],
    dependencies: Vec<serde_yaml::Value>,
    envmod: &'a EnvmodSection,
}

/// The text of an exported `environment.yml`.
pub(crate) fn render(export: &Export) -> Result<String> {
    let mut dependencies: Vec<serde_yaml::Value> = export
        .specs
        .iter()
        .map(|s| serde_yaml::Value::String(s.clone()))
        .collect();
    if !export.pip.is_empty() {
        let mut pip = serde_yaml::Mapping::new();
        pip.insert(
            "pip".into(),
            serde_yaml::Value::Sequence(export.pip.iter().map(|p| p.as_str().into()).collect()),
        );
        dependencies.push(serde_yaml::Value::Mapping(pip));
    }
    // `nodefaults`: the environment was built from these channels and no others, which is
    // what conda does only when told so.
    let mut channels = export.channels.clone();
    channels.push("nodefaults".into());
    let doc = ExportYaml {
        name: &export.name,
        channels: &channels,
        dependencies,
        envmod: &export.envmod,
    };
    let body = serde_yaml::to_string(&doc)?;
    // Variables are written by hand, every value double-quoted: YAML 1.1 readers (PyYAML in
    // conda) would read a bare `yes` or `1.10` as a boolean or a number.
    let mut variables = String::new();
    if !export.variables.is_empty() {
        variables.push_str("variables:\n");
        for (name, value) in &export.variables {
            variables.push_str(&format!("  {name}: {}\n", serde_json::to_string(value)?));
        }
    }
    let body = match body.find("\nenvmod:") {
        Some(at) => format!("{}\n{variables}{}", &body[..at], &body[at + 1..]),
        None => format!("{body}{variables}"),
    };
    Ok(format!(
        "# Written by envmod {}: `envmod create -f FILE` rebuilds this environment;\n# conda, mamba, pixi and conda-lock read it as usual and ignore the envmod section.\n{body}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// A read `environment.yml`, with every relative path resolved against its directory.
#[derive(Debug)]
pub(crate) struct EnvFile {
    pub(crate) path: PathBuf,
    pub(crate) name: Option<String>,
    pub(crate) channels: Vec<String>,
    /// Conda specs, as written (or as rattler normalised a form envmod's parser rejects).
    pub(crate) specs: Vec<Located>,
    /// The pip section, with `-r`, `-e` and local paths made absolute.
    pub(crate) pip: Vec<String>,
    pub(crate) variables: Vec<(String, String)>,
    /// A `prefix:` line, which envmod ignores: the environment goes where `-n`/`-p` say.
    pub(crate) prefix: Option<PathBuf>,
    pub(crate) envmod: Option<EnvmodSection>,
    /// Where each entry of the envmod section's `provided` is, in its order.
    pub(crate) provided_lines: Vec<ProvisionLines>,
    /// Where relative channels and pip paths are found: the file's directory, or the
    /// working directory for a file read from standard input.
    pub(crate) dir: PathBuf,
    /// What the file holds that envmod does not use, one line each, for `warn`.
    pub(crate) warnings: Vec<String>,
    /// Every `sel()` entry, kept here or not, for the locks of other platforms.
    pub(crate) selected: Vec<Selected>,
}

/// A `sel(EXPR): spec` entry of a file; the manifest keeps them, so the type lives there.
pub(crate) use crate::manifest::Selected;

/// The specs of an environment built for `built` from `specs` (which hold that platform's
/// `selected` entries), for `platform`: another platform's entries in place of these.
pub(crate) fn specs_for(
    specs: &[String],
    selected: &[Selected],
    built: Subdir,
    platform: Subdir,
) -> Vec<String> {
    let picks = |p: Subdir| {
        selected
            .iter()
            .filter(move |s| selector_matches(&s.selector, p).unwrap_or(false))
            .map(|s| s.spec.as_str())
    };
    let mut out = specs.to_vec();
    for spec in picks(built) {
        if let Some(at) = out.iter().position(|s| s == spec) {
            out.remove(at);
        }
    }
    for spec in picks(platform) {
        if !out.iter().any(|s| s == spec) {
            out.push(spec.to_string());
        }
    }
    out
}

/// The lines of one `provided` entry, for errors that name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProvisionLines {
    /// Its `module:`.
    pub(crate) module: usize,
    /// Each of its `provides` strings.
    pub(crate) provides: Vec<usize>,
}

/// A value of the file with the line it is on.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) value: String,
    pub(crate) line: usize,
}

impl EnvFile {
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The line of the `j`th `provides` string of the `i`th `provided` entry (its module's
    /// line when `j` is `None`).
    pub(crate) fn provision_line(&self, i: usize, j: Option<usize>) -> usize {
        line_of_provision(&self.provided_lines, i, j)
    }

    /// An error about the value on `line`.
    pub(crate) fn error_at(&self, line: usize, message: impl std::fmt::Display) -> UserError {
        UserError::usage(format!("{}, line {line}: {message}", self.path.display()))
    }
}

/// The top-level keys of an environment.yml that envmod reads: conda's, and its own section.
const KEYS: [&str; 6] = [
    "name",
    "channels",
    "dependencies",
    "variables",
    "prefix",
    SECTION,
];

/// Read `path` (absolute) as an `environment.yml`, for this platform.
pub(crate) fn read(path: &Path, text: &str) -> Result<EnvFile> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    read_in(path, dir, text, crate::conda::PLATFORM)
}

/// Read `text` as an `environment.yml` named `path` in errors, whose relative paths are
/// relative to `dir`, keeping the `sel()` entries that match `platform`.
pub(crate) fn read_in(path: &Path, dir: &Path, text: &str, platform: Subdir) -> Result<EnvFile> {
    let yaml_error = |e: serde_yaml::Error| -> anyhow::Error {
        let (place, message) = crate::error::yaml_place(&e);
        UserError::usage(format!(
            "{}{place}: not a valid environment file: {message}",
            path.display()
        ))
        .with_hint("fix the YAML; see https://docs.conda.io/projects/conda/en/latest/user-guide/tasks/manage-environments.html#create-env-file-manually")
        .into()
    };
    // First the nesting and the lines, in linear time; then the readers that do the rest.
    let doc = crate::yaml::parse(text).map_err(|e| -> anyhow::Error {
        UserError::usage(format!(
            "{}, line {}: not a valid environment file: nested more than {} levels deep",
            path.display(),
            e.line,
            crate::yaml::MAX_DEPTH
        ))
        .with_hint("an environment.yml nests a few levels at most; fix or replace the file")
        .into()
    })?;
    let doc = doc.as_ref();
    let warnings = top_level(path, doc, text)?;
    let section = doc.and_then(|d| d.entry(SECTION));
    // Every entry of `dependencies` with its line, those of another platform's `sel()` left out.
    let all_deps = doc
        .and_then(|d| d.get("dependencies"))
        .map_or(&[][..], |d| d.items());
    let mut deps: Vec<Dep> = Vec::with_capacity(all_deps.len());
    let mut selected = Vec::new();
    for node in all_deps {
        match selector(path, node, platform)? {
            Some((keep, spec)) => {
                if let Some(expr) = node.entries()[0]
                    .0
                    .as_str()
                    .and_then(|k| k.strip_prefix("sel(").and_then(|k| k.strip_suffix(')')))
                {
                    selected.push(Selected {
                        selector: expr.trim().to_string(),
                        spec: spec.trim().to_string(),
                    });
                }
                if keep {
                    deps.push(Dep {
                        text: Some(spec),
                        line: node.line(),
                        node,
                    });
                }
            }
            None => deps.push(Dep {
                text: node.as_str(),
                line: node.line(),
                node,
            }),
        }
    }
    let parsed = if !selected.is_empty() {
        // micromamba's `sel(linux): pkg`, which conda's readers do not know: the entries kept
        // become plain specs.
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_error)?;
        if let Some(list) = value
            .get_mut("dependencies")
            .and_then(serde_yaml::Value::as_sequence_mut)
        {
            *list = list
                .iter()
                .filter_map(|entry| match sel_entry(entry) {
                    Some((expr, spec)) => selector_matches(expr, platform)
                        .unwrap_or(false)
                        .then(|| serde_yaml::Value::String(spec.to_string())),
                    None => Some(entry.clone()),
                })
                .collect();
        }
        serde_yaml::from_value::<EnvironmentYaml>(value).map_err(yaml_error)?
    } else {
        EnvironmentYaml::from_yaml_str(text).map_err(yaml_error)?
    };
    // envmod's own section, read on its own: everything else is skipped unread.
    #[derive(Deserialize)]
    struct Section {
        envmod: EnvmodSection,
    }
    let envmod = match section {
        Some((key, _)) => Some(
            serde_yaml::from_str::<Section>(text)
                .map_err(|e| {
                    let (_, message) = crate::error::yaml_place(&e);
                    UserError::usage(format!(
                        "{}, line {}: the envmod section is not valid: {message}",
                        path.display(),
                        key.line()
                    ))
                })?
                .envmod,
        ),
        None => None,
    };
    let section_node = section.map(|(_, v)| v);
    let provided_lines = envmod
        .as_ref()
        .map(|e| provision_lines(e, section_node))
        .unwrap_or_default();
    if let Some(section_value) = &envmod {
        check_modules(path, section_value, section_node)?;
        check_provided(path, section_value, &provided_lines)?;
    }
    let dir = dir.to_path_buf();
    let mut file = EnvFile {
        path: path.to_path_buf(),
        name: parsed.name.clone(),
        channels: Vec::new(),
        specs: Vec::new(),
        pip: Vec::new(),
        variables: Vec::new(),
        prefix: parsed.prefix.clone(),
        envmod,
        provided_lines,
        dir: dir.clone(),
        warnings,
        selected,
    };

    let raw_channels: Vec<String> = doc
        .and_then(|d| d.get("channels"))
        .map_or(&[][..], |c| c.items())
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    for channel in raw_channels {
        if channel == "nodefaults" || channel == "defaults" {
            // envmod never adds channels of its own; `defaults` is Anaconda's, which a
            // cluster reaches through its own `channels` setting.
            continue;
        }
        file.channels.push(resolve_channel(&channel, &dir));
    }

    // Specs as written, in the file's order, each with its line.
    let line_at = |i: usize| deps.get(i).map_or(1, |d| d.line);
    for (i, (dep, typed)) in deps.iter().zip(&parsed.dependencies).enumerate() {
        match (dep.text, typed.as_match_spec()) {
            (Some(text_spec), Some(spec)) => {
                let line = line_at(i);
                let value = if Spec::parse(text_spec).is_ok() {
                    text_spec.to_string()
                } else {
                    let normalised = spec.to_string();
                    Spec::parse(&normalised).map_err(|e| file.error_at(line, format!("{e:#}")))?;
                    normalised
                };
                file.specs.push(Located { value, line });
            }
            _ => {
                let Some((key, entries)) = typed.as_sub_section() else {
                    continue;
                };
                let line = deps
                    .get(i)
                    .and_then(|d| d.node.entry(key))
                    .map_or(line_at(i), |(k, _)| k.line());
                if key != "pip" {
                    return Err(file
                        .error_at(
                            line,
                            format!("a `{key}:` section is not supported; only `pip:` is"),
                        )
                        .into());
                }
                for entry in entries {
                    file.pip.push(resolve_pip_line(entry, &dir));
                }
            }
        }
    }

    let variable_lines: std::collections::HashMap<&str, usize> = doc
        .and_then(|d| d.get("variables"))
        .map_or(&[][..], |v| v.entries())
        .iter()
        .rev()
        .filter_map(|(k, _)| Some((k.as_str()?, k.line())))
        .collect();
    for (name, value) in &parsed.variables {
        let line = variable_lines.get(name.as_str()).copied().unwrap_or(1);
        if let Some(why) = super::activation::refusal(name) {
            return Err(file
                .error_at(line, format!("variable {name:?} {why}"))
                .with_hint("rename the variable")
                .into());
        }
        if value.chars().any(char::is_control) {
            return Err(file
                .error_at(
                    line,
                    format!("variable {name} holds a newline or another control character"),
                )
                .with_hint("give the variable a one-line value")
                .into());
        }
        file.variables.push((name.clone(), value.clone()));
    }
    Ok(file)
}

/// One entry of `dependencies`: its spec as written (none for a `pip:` section), its line.
struct Dep<'a> {
    text: Option<&'a str>,
    line: usize,
    node: &'a crate::yaml::Node,
}

/// Whether the file is an environment file at all, and a warning for each top-level key
/// envmod does not read: a file passed by mistake (a docker-compose file, a conda-build
/// recipe) would otherwise build an empty environment, and a misplaced list its packages.
fn top_level(path: &Path, doc: Option<&crate::yaml::Node>, text: &str) -> Result<Vec<String>> {
    let refuse = |at: String, why: &str, hint: &str| -> anyhow::Error {
        UserError::usage(format!(
            "{}{at}: not an environment file: {why}",
            path.display()
        ))
        .with_hint(hint.to_string())
        .into()
    };
    let wrong_file =
        "check that -f names an environment.yml; it lists its packages under `dependencies:`";
    let Some(doc) = doc else {
        if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            return Err(refuse(String::new(), "it is empty", wrong_file));
        }
        // Not YAML: the reader says why, with the line.
        return Ok(Vec::new());
    };
    let crate::yaml::Node::Map { entries, .. } = doc else {
        return Err(refuse(
            format!(", line {}", doc.line()),
            "it is not a mapping of `name:`, `channels:`, `dependencies:`",
            wrong_file,
        ));
    };
    let keys: Vec<(&str, usize)> = entries
        .iter()
        .filter_map(|(k, _)| Some((k.as_str()?, k.line())))
        .collect();
    let has = |key: &str| keys.iter().any(|(k, _)| *k == key);
    if let Some((_, line)) = keys.iter().find(|(k, _)| *k == "pip") {
        return Err(UserError::usage(format!(
            "{}, line {line}: a `pip:` list at the top level is not read, by conda or envmod",
            path.display()
        ))
        .with_hint("move it under `dependencies:`, as its last entry: `  - pip:` with the packages below it")
        .into());
    }
    if !has("dependencies") && !has("variables") && !has(SECTION) {
        if let Some((_, line)) = keys.iter().find(|(k, _)| *k == "requirements") {
            return Err(refuse(
                format!(", line {line}"),
                "it lists `requirements:`, where conda reads `dependencies:`",
                "rename `requirements:` to `dependencies:`",
            ));
        }
        let others: Vec<String> = keys.iter().map(|(k, _)| format!("`{k}`")).collect();
        let why = match others.is_empty() {
            true => "it has no `dependencies:`".to_string(),
            false => format!("it has no `dependencies:`, only {}", others.join(", ")),
        };
        return Err(refuse(String::new(), &why, wrong_file));
    }
    Ok(keys
        .iter()
        .filter(|(k, _)| !KEYS.contains(k))
        .map(|(k, line)| {
            format!(
                "{}, line {line}: ignoring top-level key `{k}`; envmod reads only {}",
                path.display(),
                KEYS.join(", ")
            )
        })
        .collect())
}

/// A `sel(EXPR): spec` entry (micromamba's) as whether `platform` keeps it and its spec;
/// `None` for any other entry.
fn selector<'a>(
    path: &Path,
    node: &'a crate::yaml::Node,
    platform: Subdir,
) -> Result<Option<(bool, &'a str)>> {
    let [(key, value)] = node.entries() else {
        return Ok(None);
    };
    let Some(expr) = key
        .as_str()
        .and_then(|k| k.strip_prefix("sel("))
        .and_then(|k| k.strip_suffix(')'))
    else {
        return Ok(None);
    };
    let at = |message: String| -> anyhow::Error {
        UserError::usage(format!("{}, line {}: {message}", path.display(), key.line()))
            .with_hint("write `- sel(linux): pkg`, with linux, unix, osx, win or a platform name such as linux-64")
            .into()
    };
    let Some(spec) = value.as_str() else {
        return Err(at(format!("`sel({expr}):` takes one package spec")));
    };
    match selector_matches(expr.trim(), platform) {
        Some(keep) => Ok(Some((keep, spec))),
        None => Err(at(format!("`sel({expr})` is not a selector envmod knows"))),
    }
}

/// The selector and spec of a `sel(EXPR): spec` entry, read as a plain YAML value.
fn sel_entry(entry: &serde_yaml::Value) -> Option<(&str, &str)> {
    let map = entry.as_mapping().filter(|m| m.len() == 1)?;
    let (key, value) = map.iter().next()?;
    let expr = key.as_str()?.strip_prefix("sel(")?.strip_suffix(')')?;
    Some((expr.trim(), value.as_str()?))
}

/// Whether `sel(EXPR)` keeps its entry on `platform`: micromamba's `linux`, `unix`, `osx`
/// and `win`, or a platform's own name. `None` for anything else.
pub(crate) fn selector_matches(expr: &str, platform: Subdir) -> Option<bool> {
    Some(match expr {
        "linux" => platform.is_linux(),
        "unix" => platform.is_unix(),
        "osx" => platform.is_osx(),
        "win" => platform.is_windows(),
        name => name.parse::<Subdir>().ok()? == platform,
    })
}

/// Every module of the envmod section must be a module name, not a path: the environment
/// loads each one again on every `module load`.
fn check_modules(
    path: &Path,
    section: &EnvmodSection,
    node: Option<&crate::yaml::Node>,
) -> Result<()> {
    for key in ["modules", "skipped_modules"] {
        let names = if key == "modules" {
            &section.modules
        } else {
            &section.skipped_modules
        };
        for (i, name) in names.iter().enumerate() {
            if let Err(why) = crate::site::modules::check_name(name) {
                let line = node
                    .and_then(|n| n.get(key))
                    .and_then(|l| l.items().get(i))
                    .map_or(1, crate::yaml::Node::line);
                return Err(UserError::usage(format!(
                    "{}, line {line}: module `{name}` is not a module name: {why}",
                    path.display()
                ))
                .with_hint(crate::site::modules::NAME_HINT)
                .into());
            }
        }
    }
    Ok(())
}

/// Where each `provided` entry and its strings are; an entry written in a form the walk does
/// not see (an alias) falls back to the `provided:` line, or the first.
fn provision_lines(
    section: &EnvmodSection,
    node: Option<&crate::yaml::Node>,
) -> Vec<ProvisionLines> {
    let key_line = node
        .and_then(|n| n.entry("provided"))
        .map_or(1, |(k, _)| k.line());
    let items = node
        .and_then(|n| n.get("provided"))
        .map_or(&[][..], |l| l.items());
    section
        .provided
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let item = items.get(i);
            let module = item
                .and_then(|n| n.get("module"))
                .map_or(item.map_or(key_line, crate::yaml::Node::line), |n| n.line());
            let strings = item.and_then(|n| n.get("provides"));
            let provides = (0..p.provides.len())
                .map(|j| {
                    strings
                        .and_then(|l| l.items().get(j))
                        .map_or(module, crate::yaml::Node::line)
                })
                .collect();
            ProvisionLines { module, provides }
        })
        .collect()
}

fn line_of_provision(lines: &[ProvisionLines], i: usize, j: Option<usize>) -> usize {
    lines.get(i).map_or(1, |l| {
        j.and_then(|j| l.provides.get(j).copied())
            .unwrap_or(l.module)
    })
}

/// Each `provided` entry names a module the way `modules` does, and each of its strings is a
/// stand-in, checked as a rule's are: `create -f` rests on them, and the file is someone
/// else's.
fn check_provided(path: &Path, section: &EnvmodSection, lines: &[ProvisionLines]) -> Result<()> {
    let line = |i, j| line_of_provision(lines, i, j);
    for (i, p) in section.provided.iter().enumerate() {
        if let Err(why) = crate::site::modules::check_name(&p.module) {
            return Err(UserError::usage(format!(
                "{}, line {}: module `{}` is not a module name: {why}",
                path.display(),
                line(i, None),
                p.module
            ))
            .with_hint(crate::site::modules::NAME_HINT)
            .into());
        }
        for (j, text) in p.provides.iter().enumerate() {
            if let Err(why) = text.parse::<crate::site::provides::StandIn>() {
                return Err(UserError::usage(format!(
                    "{}, line {}: module {} provides {text:?}, which is not a stand-in: {why}",
                    path.display(),
                    line(i, Some(j)),
                    p.module
                ))
                .with_hint("write each as `name version [build]` (`openmpi 4.1.6`, `mpi 1.0 openmpi`, `__cuda 12.2`) or a range (`cuda-version 12.2.*`), as `envmod export` does")
                .into());
            }
        }
    }
    Ok(())
}

/// A channel given as a relative directory is relative to the file, not to where envmod runs.
fn resolve_channel(channel: &str, dir: &Path) -> String {
    if channel.starts_with("./") || channel.starts_with("../") {
        return dir.join(channel).to_string_lossy().into_owned();
    }
    channel.to_string()
}

/// Make the paths of one pip line absolute against the file's directory: `-r file`,
/// `-c file`, `-e path`, and requirements that are local paths. Everything else (`name==1.0`,
/// `--index-url URL`, URLs) is passed to pip as written.
fn resolve_pip_line(line: &str, dir: &Path) -> String {
    let line = line.trim();
    let is_path = |s: &str| {
        !s.contains("://")
            && (s.starts_with("./")
                || s.starts_with("../")
                || s.starts_with('/')
                || s == "."
                || s.ends_with(".whl")
                || s.ends_with(".tar.gz")
                || s.ends_with(".zip"))
    };
    let absolute = |s: &str| {
        if s.starts_with('/') {
            s.to_string()
        } else {
            dir.join(s).to_string_lossy().into_owned()
        }
    };
    if let Some((flag, value)) = line.split_once([' ', '=']) {
        let value = value.trim();
        match flag {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                return format!("{flag} {}", absolute(value));
            }
            "-e" | "--editable" if !value.contains("://") && !value.contains('+') => {
                return format!("{flag} {}", absolute(value));
            }
            _ => {}
        }
    }
    if is_path(line) {
        return absolute(line);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> Result<EnvFile> {
        read(Path::new("/home/alice/project/environment.yml"), text)
    }

    #[test]
    fn reads_everything_conda_allows() {
        let text = "\
name: demo
prefix: /old/place/demo
channels:
  - ./local-channel
  - conda-forge
  - nodefaults
dependencies:
  - numpy=1.26=py311_0
  - conda-forge::scipy
  - 'pandas>=2'
  - pip:
    - -r requirements.txt
    - -e ./src/tool
    - --index-url https://example.org/simple
    - ./wheels/foo-1.0-py3-none-any.whl
    - requests==2.31
variables:
  OMP_NUM_THREADS: '4'
";
        let f = read_str(text).unwrap();
        assert_eq!(f.name.as_deref(), Some("demo"));
        assert_eq!(f.prefix.as_deref(), Some(Path::new("/old/place/demo")));
        assert_eq!(
            f.channels,
            ["/home/alice/project/./local-channel", "conda-forge"]
        );
        let specs: Vec<_> = f.specs.iter().map(|s| (s.value.as_str(), s.line)).collect();
        assert_eq!(
            specs,
            [
                ("numpy=1.26=py311_0", 8),
                ("conda-forge::scipy", 9),
                ("pandas>=2", 10)
            ]
        );
        assert_eq!(
            f.pip,
            [
                "-r /home/alice/project/requirements.txt",
                "-e /home/alice/project/./src/tool",
                "--index-url https://example.org/simple",
                "/home/alice/project/./wheels/foo-1.0-py3-none-any.whl",
                "requests==2.31",
            ]
        );
        assert_eq!(f.variables, [("OMP_NUM_THREADS".into(), "4".into())]);
        assert!(f.envmod.is_none());
    }

    #[test]
    fn malformed_yaml_names_the_file_and_line() {
        let err = read_str("name: x\ndependencies:\n  - numpy\n  bad: [\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/home/alice/project/environment.yml, line "),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_bad_spec_names_its_line() {
        let err = read_str("name: x\ndependencies:\n  - numpy\n  - 'bad spec!!'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_variable_with_a_newline_is_refused() {
        let err = read_str("name: x\nvariables:\n  A: \"one\\ntwo\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("variable A"),
            "{err}"
        );
    }

    #[test]
    fn the_export_reads_back() {
        let export = Export {
            name: "demo".into(),
            channels: vec!["file:///srv/channel".into()],
            specs: vec!["alpha >=1".into(), "libfoo".into()],
            pip: vec!["foo==1.0".into()],
            variables: vec![("FOO_HOME".into(), "/x/share".into())],
            envmod: EnvmodSection {
                envmod_version: "0.1.0".into(),
                platform: "linux-64".into(),
                python: PythonSection {
                    mode: PythonMode::Site,
                    version: "3.11.2".into(),
                },
                module_system: Some(ModuleSystem::Lmod),
                modules: vec!["gcc/12.2".into(), "openmpi/4.1.6".into()],
                skipped_modules: vec![],
                description: None,
                provided: vec![ModuleProvision {
                    module: "openmpi/4.1.6".into(),
                    rule: "openmpi/*".into(),
                    provides: vec!["openmpi 4.1.6".into(), "mpi 1.0 openmpi".into()],
                }],
                ignore_site_packages: true,
            },
        };
        let text = render(&export).unwrap();
        let plain = EnvironmentYaml::from_yaml_str(&text).unwrap();
        assert_eq!(plain.name.as_deref(), Some("demo"));
        assert_eq!(plain.pip_specs(), Some(&["foo==1.0".to_string()][..]));
        let back = read_str(&text).unwrap();
        assert_eq!(back.channels, ["file:///srv/channel"]);
        let specs: Vec<_> = back.specs.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(specs, ["alpha >=1", "libfoo"]);
        assert_eq!(back.pip, ["foo==1.0"]);
        assert_eq!(back.variables, export.variables);
        assert_eq!(back.envmod, Some(export.envmod));
        // Every provision and each of its strings on its own line, as the file shows them.
        let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(
            back.provided_lines,
            [ProvisionLines {
                module: line("module: openmpi/4.1.6"),
                provides: vec![line("- openmpi 4.1.6"), line("- mpi 1.0 openmpi")],
            }]
        );
        assert_eq!(back.provision_line(0, Some(1)), line("- mpi 1.0 openmpi"));
    }

    /// What an older envmod wrote, and what an older envmod reads of a newer file.
    #[test]
    fn the_new_fields_are_optional_both_ways() {
        let old = "\
name: x
dependencies: [alpha]
envmod:
  envmod_version: 0.1.0
  platform: linux-64
  python: {mode: site, version: 3.11.2}
  modules: [gcc/12.2]
";
        let f = read_str(old).unwrap();
        let e = f.envmod.unwrap();
        assert!(e.provided.is_empty() && !e.ignore_site_packages);
        assert!(f.provided_lines.is_empty());
        let text = render(&Export {
            name: "x".into(),
            channels: vec![],
            specs: vec![],
            pip: vec![],
            variables: vec![],
            envmod: e,
        })
        .unwrap();
        assert!(
            !text.contains("provided") && !text.contains("ignore_site_packages"),
            "{text}"
        );

        // The section as an envmod without these fields reads it: no field is refused.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Older {
            envmod_version: String,
            platform: String,
            modules: Vec<String>,
        }
        #[derive(Deserialize)]
        struct File {
            envmod: Older,
        }
        let newer = format!(
            "{old}  provided:\n  - module: gcc/12.2\n    rule: gcc/*\n    provides: [gcc 12.2]\n  ignore_site_packages: true\n"
        );
        let older: File = serde_yaml::from_str(&newer).unwrap();
        assert_eq!(older.envmod.modules, ["gcc/12.2"]);
        let f = read_str(&newer).unwrap();
        assert!(f.envmod.unwrap().ignore_site_packages);
    }

    #[test]
    fn a_bad_provision_names_its_line() {
        let file = |module: &str, provides: &str| {
            format!(
                "\
name: x
envmod:
  envmod_version: 0.1.0
  platform: linux-64
  python: {{mode: site, version: 3.11.2}}
  modules: [openmpi/4.1.6]
  provided:
  - module: openmpi/4.1.6
    rule: openmpi/*
    provides: [openmpi 4.1.6]
  - module: {module}
    rule: x/*
    provides:
    - mpi 1.0 openmpi
    - {provides}
"
            )
        };
        assert!(read_str(&file("x/1", "cuda-version 12.2.*")).is_ok());
        for (module, provides, line, want) in [
            (
                "/opt/modules/x/1",
                "x 1",
                11,
                "module `/opt/modules/x/1` is not a module name: it is an absolute path",
            ),
            (
                "x/1",
                "python 3.12",
                15,
                "module x/1 provides \"python 3.12\", which is not a stand-in: python cannot come from a module",
            ),
            ("x/1", "'open* 4.1'", 15, "is not a package name"),
            ("x/1", "'__cuda >=12'", 15, "takes one exact version"),
        ] {
            let err = read_str(&file(module, provides)).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "/home/alice/project/environment.yml, line {line}: "
                )) && message.contains(want),
                "{module} {provides}: {message}"
            );
            assert!(crate::error::hint_of(&err).is_some());
        }
    }
}

#[cfg(test)]
mod selector_tests {
    use super::*;

    fn specs_on(text: &str, platform: Subdir) -> Vec<(String, usize)> {
        read_in(Path::new("/p/env.yml"), Path::new("/p"), text, platform)
            .unwrap()
            .specs
            .into_iter()
            .map(|s| (s.value, s.line))
            .collect()
    }

    #[test]
    fn sel_entries_are_kept_for_their_platform_only() {
        let text = "\
name: x
dependencies:
  - sel(linux): a
  - numpy
  - sel(osx): b
  - sel(linux): c >=0.15.0, <2.0.0
  - sel(osx): c
  - sel(win): d
  - sel(unix): e
  - sel(osx-arm64): f
  - pip:
    - g
";
        let names = |p| {
            specs_on(text, p)
                .into_iter()
                .map(|(s, l)| format!("{s}@{l}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Subdir::Linux64),
            ["a@3", "numpy@4", "c >=0.15.0, <2.0.0@6", "e@9"]
        );
        assert_eq!(
            names(Subdir::OsxArm64),
            ["numpy@4", "b@5", "c@7", "e@9", "f@10"]
        );
        assert_eq!(names(Subdir::Osx64), ["numpy@4", "b@5", "c@7", "e@9"]);
        assert_eq!(names(Subdir::Win64), ["numpy@4", "d@8"]);
        let f = read_in(
            Path::new("/p/env.yml"),
            Path::new("/p"),
            text,
            Subdir::Linux64,
        )
        .unwrap();
        assert_eq!(f.pip, ["g"]);
    }

    #[test]
    fn an_unknown_selector_or_a_list_value_names_its_line() {
        for (entry, want) in [
            (
                "sel(freebsd): a",
                "`sel(freebsd)` is not a selector envmod knows",
            ),
            ("sel(linux): [a, b]", "`sel(linux):` takes one package spec"),
        ] {
            let text = format!("name: x\ndependencies:\n  - numpy\n  - {entry}\n");
            let err = read_in(
                Path::new("/p/env.yml"),
                Path::new("/p"),
                &text,
                Subdir::Linux64,
            )
            .unwrap_err();
            assert!(
                err.to_string().starts_with("/p/env.yml, line 4: ")
                    && err.to_string().contains(want),
                "{err}"
            );
        }
    }
}
