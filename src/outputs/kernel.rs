//! The Jupyter kernel: `<data dir>/kernels/<name>/kernel.json`. Its argv does not start
//! Python bare: a small bash launcher sets up what `module load NAME/pyX.Y` would (the
//! recorded modules, then the environment, through `bin/activate`) and then execs
//! `python -m ipykernel_launcher`. So a notebook gets the `LD_LIBRARY_PATH` of the env's
//! gcc, MPI or CUDA modules as the terminal does. Where the compute node has no module
//! system, or not those modules, the launcher sets the variables the modules set when the
//! kernel was added, and says so in the kernel log.
//!
//! `metadata.envmod.prefix` in kernel.json names the environment: it is how envmod knows a
//! kernel is its own to replace or remove, and which kernels have lost their environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use crate::{
    environ::Environ,
    error::UserError,
    escape::sh_quote,
    manifest::{KernelInfo, Manifest},
    outputs::{Output, Planned, PrefixFacts, Unsound},
    printer::Printer,
    site::modules,
};

pub(crate) struct Kernel;

/// The kernels directory of a Jupyter data dir: `$JUPYTER_DATA_DIR`, else
/// `$XDG_DATA_HOME/jupyter` (`~/.local/share/jupyter`), as `jupyter --data-dir` says; or
/// `<DIR>/share/jupyter` for `--prefix DIR`, as `jupyter kernelspec install --prefix` does.
pub(crate) fn kernels_dir(env: &Environ, prefix: Option<&Path>) -> PathBuf {
    match prefix {
        Some(p) => p.join("share/jupyter/kernels"),
        None => env
            .get("JUPYTER_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| env.xdg_dir("XDG_DATA_HOME", ".local/share").join("jupyter"))
            .join("kernels"),
    }
}

/// A kernel name Jupyter accepts: letters, digits, `.`, `_`, `-`, lowercased; anything else
/// becomes `_`. The name is one directory below a kernels directory, so a name of nothing
/// or only dots (`.`, `..`), which would put kernel.json into the kernels directory or
/// above it, is refused.
pub(crate) fn kernel_name(raw: &str) -> Result<String> {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c == '.') {
        return Err(UserError::usage(format!(
            "invalid kernel name {raw:?}: it names no directory of its own below the kernels directory"
        ))
        .with_hint("give --name a name with a letter or digit, such as `cs101`")
        .into());
    }
    Ok(name)
}

/// What Jupyter shows is text on one line: a newline or an escape sequence in it would
/// reach every terminal and log that prints the kernel list.
pub(crate) fn check_display_name(shown: &str) -> Result<()> {
    if shown.chars().any(char::is_control) {
        return Err(UserError::usage(format!(
            "the kernel display name {shown:?} holds a control character (a newline, tab or escape)"
        ))
        .with_hint("give --display-name plain text on one line")
        .into());
    }
    Ok(())
}

/// The first field of a kernel record that envmod could not have written: a name that is
/// not a kernel name, a directory other than `<kernels dir>/<name>`, or a variable name
/// the launcher could not set without running it as code.
pub(crate) fn unsound(kernel: &KernelInfo) -> Option<Unsound> {
    if kernel_name(&kernel.name).ok().as_deref() != Some(kernel.name.as_str()) {
        return Some(Unsound {
            field: "kernel.name",
            detail: format!("is {:?}, not a kernel name", kernel.name),
        });
    }
    if kernel.display_name.chars().any(char::is_control) {
        return Some(Unsound {
            field: "kernel.display_name",
            detail: format!("{:?} holds a control character", kernel.display_name),
        });
    }
    let in_kernels_dir = kernel
        .dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "kernels");
    if !super::is_plain_absolute(&kernel.dir)
        || kernel.dir.file_name() != Some(std::ffi::OsStr::new(&kernel.name))
        || !in_kernels_dir
    {
        return Some(Unsound {
            field: "kernel.dir",
            detail: format!(
                "is {:?}, not <a kernels directory>/{}",
                kernel.dir, kernel.name
            ),
        });
    }
    if let Some(v) = kernel
        .module_vars
        .iter()
        .find(|v| !is_shell_name(&v.name) || v.value.chars().any(char::is_control))
    {
        return Some(Unsound {
            field: "kernel.module_vars",
            detail: format!(
                "sets {:?}, which is not a shell variable name with a one-line value",
                v.name
            ),
        });
    }
    None
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The environment a kernel.json was written for, if envmod wrote it.
pub(crate) fn owner_of(kernel_json: &Path) -> Option<PathBuf> {
    let text =
        crate::fs::read_text(kernel_json, crate::fs::SMALL_FILE, crate::fs::Links::Refuse).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["metadata"]["envmod"]["prefix"]
        .as_str()
        .map(PathBuf::from)
}

/// The kernel `manifest` gets: its name, display name and place, and what its modules set.
pub(crate) fn plan_kernel(
    manifest: &Manifest,
    name: Option<&str>,
    display_name: Option<&str>,
    prefix: Option<&Path>,
    environ: &Environ,
    printer: &Printer,
) -> Result<KernelInfo> {
    let name = kernel_name(name.unwrap_or(manifest.name.as_str()))?;
    if let Some(shown) = display_name {
        check_display_name(shown)?;
    }
    let module_names: Vec<String> = manifest
        .modules
        .iter()
        .map(|m| m.full_name.clone())
        .collect();
    let module_vars = match modules::module_vars(environ, &module_names)? {
        Some(vars) => vars
            .into_iter()
            .filter(|v| is_shell_name(&v.name))
            .collect(),
        None => {
            if !module_names.is_empty() {
                printer.warn(format!(
                    "no module system here: the kernel cannot record what {} set; where a compute node has no module system it starts without them",
                    module_names.join(" ")
                ));
            }
            Vec::new()
        }
    };
    Ok(KernelInfo {
        display_name: display_name.map_or_else(
            || {
                format!(
                    "{} (py{})",
                    manifest.name,
                    manifest.python.site.short_version()
                )
            },
            str::to_string,
        ),
        dir: kernels_dir(environ, prefix).join(&name),
        name,
        module_vars,
    })
}

/// ipykernel must import in the environment; envmod does not install it behind the user's
/// back. Looked for without running the environment's code: starting its interpreter would
/// run every `.pth` file in its site-packages, which the group of a shared environment can
/// write. So its own site-packages are read from disk, and in site mode the site's packages
/// are asked of the site interpreter itself (`site`: the one envmod may start, or why not),
/// started outside the environment, which finds ipykernel without importing it.
pub(crate) fn require_ipykernel(
    manifest: &Manifest,
    real: &Path,
    site: Option<Result<&Path, String>>,
) -> Result<()> {
    if has_package(real, "ipykernel") {
        return Ok(());
    }
    // pip writes with the user's umask, so in a shared environment it could leave files
    // that only this user can read; envmod install keeps the shared modes.
    let hint = match manifest.shared {
        Some(_) => format!(
            "envmod install {} ipykernel, which keeps the shared environment's modes",
            manifest.cli_target()
        ),
        None => format!(
            "envmod install {} ipykernel, or `pip install ipykernel` after `module load {}`",
            manifest.cli_target(),
            manifest.module_name()
        ),
    };
    let found = match site {
        None => false,
        Some(Err(why)) => {
            return Err(UserError::failure(format!(
                "{} has no ipykernel of its own, and {why}, so it cannot look for the site's",
                manifest.name
            ))
            .with_hint(hint)
            .into());
        }
        Some(Ok(python)) => site_has_ipykernel(python),
    };
    if found {
        return Ok(());
    }
    Err(UserError::failure(format!(
        "{} has no ipykernel, which a Jupyter kernel needs",
        manifest.name
    ))
    .with_hint(hint)
    .into())
}

/// Whether the site interpreter `python`, started isolated outside any environment, finds
/// ipykernel (without importing it).
pub(crate) fn site_has_ipykernel(python: &Path) -> bool {
    crate::site::run::output(
        std::process::Command::new(python)
            .args([
                "-I",
                "-c",
                "import importlib.util, sys; sys.exit(importlib.util.find_spec('ipykernel') is None)",
            ])
            .current_dir("/"),
        crate::site::run::IMPORT,
    )
    .is_ok_and(|out| out.status.success())
}

/// Whether a `lib/python*/site-packages` of `prefix` holds the package `name`.
fn has_package(prefix: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("python")
            && e.path()
                .join("site-packages")
                .join(name)
                .join("__init__.py")
                .is_file()
    })
}

fn launcher(manifest: &Manifest, kernel: &KernelInfo) -> String {
    let prefix = manifest.prefix.to_string_lossy();
    let modules: Vec<String> = manifest
        .modules
        .iter()
        .map(|m| sh_quote(&m.full_name))
        .collect();
    let mut fallback = String::new();
    for v in &kernel.module_vars {
        if v.prepend {
            fallback.push_str(&format!(
                "    export {n}={v}\"${{{n}:+:${n}}}\"\n",
                n = v.name,
                v = sh_quote(&v.value)
            ));
        } else {
            fallback.push_str(&format!("    export {}={}\n", v.name, sh_quote(&v.value)));
        }
    }
    let names = manifest
        .modules
        .iter()
        .map(|m| m.full_name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        r#"# envmod kernel launcher for {name}: the recorded modules, the environment, then ipykernel.
modules=({modules})
use_modules=0
if [ ${{#modules[@]}} -gt 0 ]; then
    if [ "$(type -t module)" != function ]; then
        for init in "${{LMOD_PKG:+$LMOD_PKG/init/bash}}" "${{MODULESHOME:+$MODULESHOME/init/bash}}"; do
            if [ -n "$init" ] && [ -r "$init" ]; then . "$init"; break; fi
        done
    fi
    if [ "$(type -t module)" = function ]; then
        use_modules=1
        for m in "${{modules[@]}}"; do
            module is-avail "$m" >/dev/null 2>&1 || use_modules=0
        done
    fi
fi
if [ $use_modules = 0 ]; then
    if [ ${{#modules[@]}} -gt 0 ]; then
        echo {warning} >&2
    fi
{fallback}    export ENVMOD_SKIP_MODULES=1
fi
. {activate} || exit 1
unset ENVMOD_SKIP_MODULES
exec {python} -m ipykernel_launcher -f "$1"
"#,
        name = manifest.name,
        warning = sh_quote(&format!(
            "envmod: modules {names} cannot be loaded here; the kernel uses the variables they set when the kernel was added"
        )),
        modules = modules.join(" "),
        activate = sh_quote(&format!("{prefix}/bin/activate")),
        python = sh_quote(&format!("{prefix}/bin/python")),
    )
}

impl Output for Kernel {
    fn what(&self) -> &'static str {
        "Jupyter kernel"
    }

    fn plan(&self, manifest: &Manifest, _facts: &PrefixFacts) -> Result<Option<Planned>> {
        let Some(kernel) = &manifest.kernel else {
            return Ok(None);
        };
        // The launcher is shell code: nothing goes into it that `unsound` would refuse.
        if let Some(u) = unsound(kernel) {
            return Err(super::inconsistent(&manifest.prefix, u.field, &u.detail));
        }
        let spec = json!({
            "argv": [
                "/bin/bash", "-c", launcher(manifest, kernel),
                format!("envmod-kernel-{}", kernel.name), "{connection_file}"
            ],
            "display_name": kernel.display_name,
            "language": "python",
            "interrupt_mode": "signal",
            "metadata": {
                "debugger": true,
                "envmod": {
                    "prefix": manifest.prefix,
                    "module": manifest.module_name().to_string(),
                    "generated_by": format!("envmod {}", env!("CARGO_PKG_VERSION")),
                }
            }
        });
        Ok(Some(Planned {
            path: kernel.dir.join("kernel.json"),
            content: serde_json::to_string_pretty(&spec)? + "\n",
        }))
    }

    fn check(&self, manifest: &Manifest, planned: &Planned) -> Result<()> {
        let path = &planned.path;
        if path.symlink_metadata().is_err() {
            return Ok(());
        }
        match owner_of(path) {
            Some(owner) if owner == manifest.prefix => Ok(()),
            Some(owner) => Err(UserError::failure(format!(
                "the kernel {} belongs to the environment at {}",
                path.parent().unwrap_or(path).display(),
                owner.display()
            ))
            .with_hint("choose another name with --name; nothing was changed")
            .into()),
            None => Err(UserError::failure(format!(
                "{} is a kernel envmod did not write",
                path.display()
            ))
            .with_hint("choose another name with --name; nothing was changed")
            .into()),
        }
    }

    fn write(&self, planned: &Planned) -> Result<()> {
        crate::fs::write_placed(&planned.path, planned.content.as_bytes(), None)
    }

    fn remove(&self, manifest: &Manifest) -> Result<Vec<PathBuf>> {
        let Some(kernel) = &manifest.kernel else {
            return Ok(Vec::new());
        };
        remove_dir_if_ours(&kernel.dir, &manifest.prefix)
    }
}

/// Remove the kernel directory `dir` if its kernel.json was written for `prefix`.
pub(crate) fn remove_dir_if_ours(dir: &Path, prefix: &Path) -> Result<Vec<PathBuf>> {
    let json = dir.join("kernel.json");
    match owner_of(&json) {
        Some(owner) if owner == prefix => {
            std::fs::remove_file(&json)
                .with_context(|| format!("failed to remove {}", json.display()))?;
            // Only succeeds when nothing else is in it.
            let _ = std::fs::remove_dir(dir);
            Ok(vec![json])
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        outputs::modulefile::tests::manifest, site::ModuleSystem, site::modules::ModuleVar,
    };

    /// The kernelspec and its launcher, as Jupyter will read them.
    #[test]
    fn kernel_json_with_modules() {
        let mut m = manifest(true, ModuleSystem::Lmod);
        m.kernel = Some(KernelInfo {
            name: "myenv".into(),
            display_name: "myenv (py3.11)".into(),
            dir: PathBuf::from("/home/alice/.local/share/jupyter/kernels/myenv"),
            module_vars: vec![
                ModuleVar {
                    name: "PATH".into(),
                    value: "/apps/gcc/12.2/bin".into(),
                    prepend: true,
                },
                ModuleVar {
                    name: "GCC_VERSION".into(),
                    value: "12.2".into(),
                    prepend: false,
                },
            ],
        });
        let planned = Kernel.plan(&m, &PrefixFacts::default()).unwrap().unwrap();
        let spec: serde_json::Value = serde_json::from_str(&planned.content).unwrap();
        assert_eq!(owner_of_text(&planned.content), Some(m.prefix.clone()));
        insta::assert_snapshot!(
            spec["argv"][2]
                .as_str()
                .unwrap()
                .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
        );
        assert_eq!(spec["argv"][4], "{connection_file}");
        assert_eq!(spec["display_name"], "myenv (py3.11)");
    }

    /// Run by real bash as Jupyter runs it (`bash -c LAUNCHER NAME CONNECTION_FILE`), with no
    /// module system: every recorded value reaches the kernel's process as the same bytes.
    #[test]
    fn the_launcher_sets_recorded_values_literally() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("planted");
        let prefix = dir.path().join("env");
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::write(prefix.join("bin/activate"), ":\n").unwrap();
        let python = prefix.join("bin/python");
        std::fs::write(&python, "#!/bin/sh\nexec /usr/bin/env -0\n").unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = planted.display();
        let values = [
            format!("$(touch {p}) `touch {p}` $HOME $5 $$"),
            format!("it's \"q\" \\ %s ]] }} {{ [exec touch {p}]; touch {p}"),
            "ä € 😀 ~ * ?".to_string(),
        ];
        let mut m = manifest(true, ModuleSystem::Lmod);
        m.prefix = prefix.clone();
        let mut module_vars: Vec<ModuleVar> = values
            .iter()
            .enumerate()
            .map(|(i, v)| ModuleVar {
                name: format!("SITE_VAR_{i}"),
                value: v.clone(),
                prepend: false,
            })
            .collect();
        module_vars.push(ModuleVar {
            name: "SITE_PATH".into(),
            value: values[0].clone(),
            prepend: true,
        });
        let kernel = KernelInfo {
            name: "k".into(),
            display_name: "k".into(),
            dir: dir.path().join("kernels/k"),
            module_vars,
        };
        let out = std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg(launcher(&m, &kernel))
            .args(["envmod-kernel-k", "/nonexistent/connection.json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SITE_PATH", "/site")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: std::collections::BTreeMap<&[u8], &[u8]> = out
            .stdout
            .split(|b| *b == 0)
            .filter_map(|r| {
                let eq = r.iter().position(|b| *b == b'=')?;
                Some((&r[..eq], &r[eq + 1..]))
            })
            .collect();
        for (i, v) in values.iter().enumerate() {
            let name = format!("SITE_VAR_{i}");
            assert_eq!(
                env.get(name.as_bytes()).copied(),
                Some(v.as_bytes()),
                "{name}"
            );
        }
        assert_eq!(
            env.get(&b"SITE_PATH"[..]).copied(),
            Some(format!("{}:/site", values[0]).as_bytes())
        );
        assert!(!planted.exists(), "a recorded value ran as a command");
    }

    #[test]
    fn kernel_names_are_one_directory() {
        assert_eq!(kernel_name("My Env").unwrap(), "my_env");
        assert_eq!(kernel_name("../x").unwrap(), ".._x");
        for bad in ["", ".", "..", "..."] {
            let err = kernel_name(bad).unwrap_err();
            assert!(err.to_string().contains("kernel name"), "{bad:?}: {err}");
        }
        assert!(check_display_name("CS 101 — données").is_ok());
        assert!(check_display_name("a\nb").is_err());
        assert!(check_display_name("\x1b[31mred").is_err());
    }

    #[test]
    fn a_kernel_record_envmod_could_not_have_written_is_named() {
        let good = KernelInfo {
            name: "cs101".into(),
            display_name: "CS 101".into(),
            dir: PathBuf::from("/shared/course/share/jupyter/kernels/cs101"),
            module_vars: vec![ModuleVar {
                name: "GCC_ROOT".into(),
                value: "/apps/gcc".into(),
                prepend: false,
            }],
        };
        assert_eq!(unsound(&good), None);
        let field = |edit: &dyn Fn(&mut KernelInfo)| {
            let mut k = good.clone();
            edit(&mut k);
            unsound(&k).map(|u| u.field)
        };
        assert_eq!(field(&|k| k.name = "..".into()), Some("kernel.name"));
        assert_eq!(field(&|k| k.name = "CS101".into()), Some("kernel.name"));
        assert_eq!(
            field(&|k| k.display_name = "x\ny".into()),
            Some("kernel.display_name")
        );
        for dir in [
            "/home/alice/.bashrc",
            "/shared/course/share/jupyter/kernels/other",
            "/shared/course/share/jupyter/kernels/../cs101",
            "/shared/course/share/jupyter/cs101",
            "relative/kernels/cs101",
        ] {
            assert_eq!(field(&|k| k.dir = dir.into()), Some("kernel.dir"), "{dir}");
        }
        for name in ["X=1; touch /tmp/p; Y", "1ABC", "A-B", ""] {
            assert_eq!(
                field(&|k| k.module_vars[0].name = name.into()),
                Some("kernel.module_vars"),
                "{name:?}"
            );
        }
        assert_eq!(
            field(&|k| k.module_vars[0].value = "a\nb".into()),
            Some("kernel.module_vars")
        );
    }

    fn owner_of_text(text: &str) -> Option<PathBuf> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        value["metadata"]["envmod"]["prefix"]
            .as_str()
            .map(PathBuf::from)
    }
}
