//! What activating an environment sets, in conda's order: first the environment's own
//! variables (`etc/conda/env_vars.d/*.json`, then `conda-meta/state`, which `variables:` of
//! an environment.yml and `conda env config vars` write), then whatever its packages'
//! `etc/conda/activate.d/*.sh` scripts change. The variables are data: they are read as JSON
//! and never pass through a shell, so `$(…)`, `$HOME` or a backquote stay the bytes they
//! are. The scripts are code by design; they run in a clean bash that starts with those
//! variables already set, and only when a command changes the packages (the caller records
//! what they set, and every other command reads that record back), so a script that
//! someone adds later runs for nobody until the owner changes the packages, and then with a
//! warning that names it. Who could have written a script is judged on the descriptor it is
//! read from, and the bytes read are what runs (`read_scripts`, `run_scripts`).

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::UserError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// More than any real `conda-meta/state` or env_vars.d file; a planted one costs no memory.
const JSON_LIMIT: u64 = 1 << 20;
/// conda's mark, in `conda env config vars unset`, of a variable that is not to be set.
const UNSET_MARK: &str = "***unset***";

/// Set by the modulefile itself, or bookkeeping of conda's own shell integration.
fn handled_elsewhere(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "CONDA_PREFIX"
            | "CONDA_DEFAULT_ENV"
            | "CONDA_SHLVL"
            | "CONDA_PROMPT_MODIFIER"
            | "PS1"
            | "_"
            | "SHLVL"
            | "PWD"
            | "OLDPWD"
    ) || name.starts_with("CONDA_ENV_SHLVL_")
        || name.starts_with("CONDA_PREFIX_")
        || name.starts_with("BASH_FUNC_")
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what every shell envmod writes for accepts as a name, unquoted.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why a variable named `name` is never set, or `None` when it may be. `_ENVMOD_*` (and
/// fish's `_envmod_*`) are the activation script's own records of what to restore: a
/// variable of that name would make `deactivate` set PATH, or anything, to its value.
pub(crate) fn refusal(name: &str) -> Option<&'static str> {
    if !is_identifier(name) {
        Some("is not a valid shell variable name")
    } else if name.to_ascii_uppercase().starts_with("_ENVMOD_") {
        Some("is a name envmod's activation script keeps its own records in")
    } else {
        None
    }
}

/// Variables with which a shell, the dynamic linker or Python runs code the value names.
pub(crate) fn runs_code(name: &str) -> bool {
    matches!(
        name,
        "PROMPT_COMMAND" | "BASH_ENV" | "ENV" | "LD_PRELOAD" | "LD_AUDIT" | "PYTHONSTARTUP"
    )
}

/// What activation sets, before the scripts, with the names that are not set (PATH and
/// the like, which the outputs set themselves) already left out.
pub(crate) fn own_vars(prefix: &Path) -> Result<Vec<EnvVar>> {
    let mut vars: Vec<EnvVar> = Vec::new();
    let mut set = |name: &str, value: &str| {
        // conda exports every one of them upper-cased.
        let name = name.to_uppercase();
        vars.retain(|v| v.name != name);
        if value != UNSET_MARK && !handled_elsewhere(&name) {
            vars.push(EnvVar {
                name,
                value: value.to_string(),
            });
        }
    };
    let dir = Path::new("etc/conda/env_vars.d");
    for file in crate::fs::list_beneath(prefix, dir)? {
        let rel = dir.join(&file);
        if let Some(object) = read_json(prefix, &rel)? {
            for (k, v) in object.iter() {
                if let Some(v) = v.as_str() {
                    set(k, v);
                }
            }
        }
    }
    if let Some(state) = read_json(prefix, Path::new("conda-meta/state"))?
        && let Some(object) = state.get("env_vars").and_then(|v| v.as_object())
    {
        for (k, v) in object.iter() {
            if let Some(v) = v.as_str() {
                set(k, v);
            }
        }
    }
    Ok(vars)
}

fn read_json(
    prefix: &Path,
    rel: &Path,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(bytes) = crate::fs::read_beneath(prefix, rel, JSON_LIMIT)? else {
        return Ok(None);
    };
    let path = prefix.join(rel);
    let damaged = |why: String| -> anyhow::Error {
        UserError::failure(format!("{} is damaged: {why}", path.display()))
            .with_hint(
                "fix or remove it; it holds variables activation sets (`conda env config vars`)",
            )
            .into()
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(damaged("not a JSON object".into())),
        Err(e) => Err(damaged(e.to_string())),
    }
}

/// The `etc/conda/activate.d/*.sh` scripts, in the order conda runs them.
pub(crate) fn scripts(prefix: &Path) -> Result<Vec<PathBuf>> {
    let dir = Path::new("etc/conda/activate.d");
    Ok(crate::fs::list_beneath(prefix, dir)?
        .into_iter()
        .filter(|n| Path::new(n).extension() == Some(OsStr::new("sh")))
        .map(|n| prefix.join(dir).join(n))
        .filter(|p| p.is_file())
        .collect())
}

/// The largest activation script envmod runs; real ones are a few KiB.
const SCRIPT_LIMIT: u64 = 1 << 20;

/// An activation script as it was read, once: what runs is these bytes, so nobody can swap
/// the file between the check of who wrote it and the run.
pub(crate) struct Script {
    pub(crate) path: PathBuf,
    text: Vec<u8>,
    /// Who other than this user and root could have written it (the file, or the link that
    /// leads to it), judged on the descriptor it was read from.
    pub(crate) writer: Option<crate::fs::trust::Writer>,
}

/// Read the activate.d scripts of `prefix`, in conda's order, and judge who could have
/// written each. Only the file and its link count: a file someone replaced in a directory
/// they may write is theirs, and so shows up here.
pub(crate) fn read_scripts(prefix: &Path) -> Result<Vec<Script>> {
    use std::io::Read;
    let mut out = Vec::new();
    for path in scripts(prefix)? {
        let link = path.symlink_metadata()?;
        let file = crate::fs::open_regular(&path, crate::fs::Links::Follow)?;
        let meta = file.metadata()?;
        if meta.len() > SCRIPT_LIMIT {
            return Err(UserError::failure(format!(
                "the activation script {} is larger than {} KiB; envmod will not run it",
                path.display(),
                SCRIPT_LIMIT >> 10
            ))
            .with_hint("remove it, or find out who put it there")
            .into());
        }
        let mut text = Vec::with_capacity(meta.len() as usize);
        file.take(SCRIPT_LIMIT).read_to_end(&mut text)?;
        let writer = if link.file_type().is_symlink() {
            crate::fs::trust::writer(&link)
                .filter(|w| matches!(w, crate::fs::trust::Writer::User(_)))
        } else {
            None
        }
        .or_else(|| crate::fs::trust::writer(&meta));
        out.push(Script { path, text, writer });
    }
    Ok(out)
}

/// The scripts of `prefix` that someone other than this user and root could have written,
/// each with who, as a warning phrases it ("that envmod-peer wrote, not you").
pub(crate) fn untrusted_scripts(prefix: &Path) -> Result<Vec<(PathBuf, String)>> {
    Ok(read_scripts(prefix)?
        .into_iter()
        .filter_map(|s| s.writer.map(|w| (s.path, w.phrase())))
        .collect())
}

/// The activation scripts that packages from `channels` (as the manifest names them)
/// brought into `prefix`, each with the channel, as a warning phrases it.
pub(crate) fn scripts_from_channels(
    prefix: &Path,
    channels: &[String],
) -> Result<Vec<(PathBuf, String)>> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let dir = Path::new("etc/conda/activate.d");
    let mut out = Vec::new();
    for record in crate::conda::prefix::installed_records(prefix)? {
        let Some(channel) = record.repodata_record.channel.as_deref() else {
            continue;
        };
        let channel = channel.trim_end_matches('/');
        if !channels.iter().any(|c| c.trim_end_matches('/') == channel) {
            continue;
        }
        for file in &record.files {
            if file.parent() == Some(dir) && file.extension() == Some(OsStr::new("sh")) {
                out.push((
                    prefix.join(file),
                    format!("from the channel {channel}, which you did not choose"),
                ));
            }
        }
    }
    Ok(out)
}

/// What the activate.d `scripts` of `prefix` (as [`read_scripts`] read them) set, run in a
/// clean bash (no rc files, HOME unset to a place that does not exist) that starts with
/// `own` set. Returns the variables the scripts set or changed, and the names of those whose
/// values are not text.
pub(crate) fn run_scripts(
    prefix: &Path,
    scripts: &[Script],
    own: &[EnvVar],
) -> Result<(Vec<EnvVar>, Vec<String>)> {
    if scripts.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| which::which("bash").ok().filter(|p| p.is_absolute()))
        .ok_or_else(|| {
            UserError::failure(format!(
                "{} has activation scripts, which need bash, and there is no bash here",
                prefix.display()
            ))
            .with_hint("install bash")
        })?;
    // The bytes that were judged, in a directory nobody else can enter: the files in the
    // environment may have changed since.
    let copies = tempfile::Builder::new()
        .prefix("envmod-activate-")
        .tempdir()
        .context("failed to make a private directory for the activation scripts")?;
    let mut paths = Vec::with_capacity(scripts.len());
    for (i, script) in scripts.iter().enumerate() {
        let name = script
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let copy = copies.path().join(format!("{i:03}-{name}"));
        std::fs::write(&copy, &script.text)
            .with_context(|| format!("failed to write {}", copy.display()))?;
        paths.push(copy);
    }
    // The scripts print to stderr; the environment goes to the original stdout, as NUL
    // separated records, each dump ended by an empty record.
    const SHELL: &str = r#"exec 3>&1 1>&2
__envmod_dump() {
    local __envmod_n
    for __envmod_n in $(compgen -e); do
        printf '%s=%s\0' "$__envmod_n" "${!__envmod_n}" >&3
    done
    printf '\0' >&3
}
__envmod_scripts=("$@")
set --
__envmod_dump
for __envmod_s in "${__envmod_scripts[@]}"; do
    . "$__envmod_s"
done
__envmod_dump
"#;
    let mut cmd = Command::new(&bash);
    cmd.args(["--norc", "--noprofile", "-c", SHELL, "envmod-activation"])
        .args(&paths)
        .env_clear()
        // The system's programs first: in a shared environment the group can put a `sed`
        // or a `python` into bin/ that a script calls by name.
        .env(
            "PATH",
            format!("/usr/bin:/bin:{}", prefix.join("bin").display()),
        )
        .env("HOME", "/nonexistent")
        .env("CONDA_PREFIX", prefix)
        .env("CONDA_SHLVL", "1")
        .current_dir("/");
    for v in own {
        if refusal(&v.name).is_none() && !v.value.contains('\0') {
            cmd.env(&v.name, &v.value);
        }
    }
    let out = crate::site::run::output(&mut cmd, crate::site::run::SCRIPTS).map_err(|e| {
        if e.timed_out() {
            anyhow::Error::from(
                UserError::failure(format!(
                    "the activation scripts of {} did not finish: {e}",
                    prefix.display()
                ))
                .with_hint(
                    "find the script that waits (etc/conda/activate.d) and fix or remove it",
                ),
            )
        } else {
            anyhow::Error::from(e).context(format!(
                "failed to run the activation scripts of {}",
                prefix.display()
            ))
        }
    })?;
    let (status, stdout, stderr) = (out.status, out.stdout, out.stderr);
    let failed = |why: &str| -> anyhow::Error {
        let said = String::from_utf8_lossy(&stderr);
        let said = said.trim();
        UserError::failure(format!(
            "the activation scripts of {} {why}{}{}",
            prefix.display(),
            if said.is_empty() { "" } else { ": " },
            said.lines().last().unwrap_or_default()
        ))
        .with_hint(format!(
            "look at the scripts in {}",
            prefix.join("etc/conda/activate.d").display()
        ))
        .into()
    };
    let mut dumps = stdout.split(|b| *b == 0);
    let mut read_dump = || -> Option<BTreeMap<&[u8], &[u8]>> {
        let mut vars = BTreeMap::new();
        loop {
            let record = dumps.next()?;
            if record.is_empty() {
                return Some(vars);
            }
            let eq = record.iter().position(|b| *b == b'=')?;
            vars.insert(&record[..eq], &record[eq + 1..]);
        }
    };
    let (Some(before), Some(after)) = (read_dump(), read_dump()) else {
        return Err(failed(&format!("ended the shell ({status})")));
    };
    let mut set = Vec::new();
    let mut not_text = Vec::new();
    for (name, value) in after {
        if before.get(name) == Some(&value) {
            continue;
        }
        let Ok(name) = String::from_utf8(name.to_vec()) else {
            continue;
        };
        if handled_elsewhere(&name) {
            continue;
        }
        match String::from_utf8(value.to_vec()) {
            Ok(value) => set.push(EnvVar { name, value }),
            Err(_) => not_text.push(name),
        }
    }
    Ok((set, not_text))
}

/// Keep `variables` in `<prefix>/conda-meta/state`, where conda keeps an environment's own
/// variables (`conda env config vars`) and where activation reads them.
pub(crate) fn write_state(prefix: &Path, variables: &[(String, String)]) -> Result<()> {
    let path = prefix.join("conda-meta/state");
    let mut state = match read_json(prefix, Path::new("conda-meta/state"))? {
        Some(map) => map,
        None => serde_json::Map::new(),
    };
    let vars = state
        .entry("env_vars")
        .or_insert_with(|| serde_json::json!({}));
    let vars = vars
        .as_object_mut()
        .with_context(|| format!("{}: env_vars is not an object", path.display()))?;
    for (name, value) in variables {
        vars.insert(name.clone(), serde_json::Value::String(value.clone()));
    }
    std::fs::create_dir_all(prefix.join("conda-meta"))?;
    crate::fs::write_atomic(
        &path,
        serde_json::to_string_pretty(&serde_json::Value::Object(state))?.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn own_variables_are_read_as_data_in_condas_order() {
        let dir = prefix_with(&[
            (
                "etc/conda/env_vars.d/a.json",
                r#"{"FROM_PKG": "pkg", "BOTH": "pkg"}"#,
            ),
            (
                "conda-meta/state",
                r#"{"env_vars": {"both": "state", "COST": "$5 in $HOME $(id)", "GONE": "***unset***", "PATH": "/x"}}"#,
            ),
        ]);
        let vars = own_vars(dir.path()).unwrap();
        let got: Vec<(&str, &str)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("FROM_PKG", "pkg"),
                ("BOTH", "state"),
                ("COST", "$5 in $HOME $(id)")
            ]
        );
    }

    #[test]
    fn a_fifo_or_a_link_as_state_is_refused_at_once() {
        let dir = prefix_with(&[]);
        std::fs::create_dir_all(dir.path().join("conda-meta")).unwrap();
        let state = dir.path().join("conda-meta/state");
        nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = own_vars(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_file(&state).unwrap();
        let secret = dir.path().join("secret.json");
        std::fs::write(&secret, r#"{"env_vars": {"SECRET": "1"}}"#).unwrap();
        std::os::unix::fs::symlink(&secret, &state).unwrap();
        let err = own_vars(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn scripts_start_from_the_own_variables_and_their_changes_are_returned() {
        let dir = prefix_with(&[(
            "etc/conda/activate.d/x.sh",
            "echo chatter\nexport DERIVED=\"$COST/sub\"\nexport PLAIN=yes\nexport CONDA_PREFIX=/elsewhere\n",
        )]);
        let own = [EnvVar {
            name: "COST".into(),
            value: "$5 `id`".into(),
        }];
        let scripts = read_scripts(dir.path()).unwrap();
        assert!(scripts.iter().all(|s| s.writer.is_none()));
        let (set, not_text) = run_scripts(dir.path(), &scripts, &own).unwrap();
        let got: Vec<(&str, &str)> = set
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("DERIVED", "$5 `id`/sub"), ("PLAIN", "yes")]);
        assert!(not_text.is_empty());
    }

    #[test]
    fn what_runs_is_what_was_read_and_judged() {
        let dir = prefix_with(&[("etc/conda/activate.d/a.sh", "export SEEN=judged\n")]);
        let scripts = read_scripts(dir.path()).unwrap();
        // Swapped after the check, as a group member could.
        std::fs::write(
            dir.path().join("etc/conda/activate.d/a.sh"),
            "export SEEN=swapped\n",
        )
        .unwrap();
        let (set, _) = run_scripts(dir.path(), &scripts, &[]).unwrap();
        assert_eq!(set[0].value, "judged");
        // The system's programs come first on the scripts' PATH.
        let dir = prefix_with(&[("etc/conda/activate.d/p.sh", "export FIRST=${PATH%%:*}\n")]);
        let scripts = read_scripts(dir.path()).unwrap();
        let (set, _) = run_scripts(dir.path(), &scripts, &[]).unwrap();
        assert_eq!(set[0].value, "/usr/bin");
    }

    #[test]
    fn names_that_steer_activation_are_refused() {
        for name in [
            "_ENVMOD_OLD_PATH",
            "_envmod_old_PATH",
            "A-B",
            "1X",
            "",
            "A B",
        ] {
            assert!(refusal(name).is_some(), "{name:?}");
        }
        for name in ["OMP_NUM_THREADS", "_private", "ENVMOD"] {
            assert!(refusal(name).is_none(), "{name:?}");
        }
    }
}
