//! The user's own record of where the outputs of an environment go: its module system and
//! module root, and its kernel. The manifest says the same, but it lives inside the
//! environment, where every member of a shared environment's group can write it, and a
//! forged one would have this user's envmod write a modulefile or a kernel into this
//! user's home, or remove a file elsewhere. The record lives in the user's private data
//! directory (`<data dir>/envmod/outputs/`), is written whenever this user's envmod writes
//! the outputs, and is compared with the manifest before the next command writes or removes
//! any; a place the user never chose is refused, naming the field. The prefix the manifest
//! names (a link that resolves to the environment today may point elsewhere tomorrow) and
//! the group it is shared with (a forged one would have this user's envmod give the tree
//! to another of this user's groups) are recorded for the same reason.
//!
//! What a group member may change is left alone: packages, specs, the Python version and
//! the module name that follows it. The places outside the environment are the record's,
//! and so are the modules it is built on, which this user's envmod loads (a module the
//! group can write, or a path, would run as this user). The channels are recorded too: a
//! group member may install from another, but this user's next package change that would
//! install from channels other than the ones this user last used names them first
//! (`channels`). What the modules and the site Python provided (`provided`) is recorded as
//! well: a stand-in a member adds would make this user's next solve leave out a package it
//! was asked for, and a site-packages directory of theirs would make their files count as
//! installed. A member's `install --ignore-site-packages`, which only counts fewer of the
//! site's packages, is left alone. A user with no record of an environment (one that
//! someone else created, or an older envmod did) takes the manifest as it is, once, and
//! records it.

use std::{
    io::Read,
    os::unix::{
        ffi::OsStrExt,
        fs::{DirBuilderExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::{
    environ::Environ,
    error::UserError,
    manifest::{KernelInfo, Manifest, Provisions, Sharing},
    outputs::modulefile,
    printer::Printer,
    render::escape::{sh_quote, shown},
    site::ModuleSystem,
};

/// A record is a few hundred bytes; anything much larger is not one.
const MAX_RECORD: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    /// The environment's real path, as the file name's hash cannot say it.
    prefix: PathBuf,
    /// The prefix as the manifest names it, which outputs are written under.
    named: PathBuf,
    shared: Option<Sharing>,
    module: Option<RecordedModule>,
    kernel: Option<KernelInfo>,
    /// The modules the environment was built on, which every `module load` and `kernel add`
    /// loads as this user. `None` in a record of an older envmod.
    #[serde(default)]
    modules: Option<Vec<String>>,
    /// The channels this user's last package change installed from. A group member may
    /// install from others, so a difference is named, not refused.
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// The site Python it was built on, which this user chose: envmod starts it (to compile,
    /// to look for ipykernel) even where it cannot tell who else could have put it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    python: Option<PathBuf>,
    /// What the modules and the site Python provided, which every solve of this user's
    /// rests on: a stand-in there leaves a package out, a site-packages directory makes its
    /// distributions count as installed. Absent in a record of an envmod that wrote none
    /// into the manifest either, so absent means nothing was provided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provided: Option<Provisions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RecordedModule {
    system: ModuleSystem,
    root: PathBuf,
}

/// The outputs a command sets anew from its own flags: for them the manifest's value is
/// not acted on, and the recorded one is what the command replaces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Replacing {
    /// `module --relocate`: the prefix becomes the path the user named.
    pub(crate) prefix: bool,
    /// `share`.
    pub(crate) shared: bool,
    pub(crate) module_system: bool,
    pub(crate) module_root: bool,
    pub(crate) kernel: bool,
    /// `delete --force`, which loads no module: the recorded modules are not acted on.
    pub(crate) modules: bool,
    /// `delete --force`, which solves nothing: what the modules provided is not acted on.
    pub(crate) provided: bool,
}

impl Replacing {
    pub(crate) const NOTHING: Self = Self {
        prefix: false,
        shared: false,
        module_system: false,
        module_root: false,
        kernel: false,
        modules: false,
        provided: false,
    };
    pub(crate) const EVERYTHING: Self = Self {
        prefix: true,
        shared: true,
        module_system: true,
        module_root: true,
        kernel: true,
        modules: true,
        provided: true,
    };
}

fn record_path(env: &Environ, real: &Path) -> PathBuf {
    let digest =
        rattler_digest::compute_bytes_digest::<rattler_digest::Sha256>(real.as_os_str().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    env.xdg_dir("XDG_DATA_HOME", ".local/share")
        .join("envmod/outputs")
        .join(format!("{hex}.json"))
}

fn read(env: &Environ, real: &Path) -> Option<Record> {
    let path = record_path(env, real);
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_RECORD).read_to_string(&mut text).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    (record.prefix == real).then_some(record)
}

/// The manifest with this user's recorded outputs in the places `replacing` names, after
/// checking that it agrees with the record everywhere else. With no record, the manifest
/// as it is.
pub(crate) fn trusted(
    env: &Environ,
    real: &Path,
    manifest: &Manifest,
    replacing: Replacing,
    cli: &str,
) -> Result<Manifest> {
    let Some(record) = read(env, real) else {
        return Ok(manifest.clone());
    };
    if let Some((field, theirs, yours, hint)) = difference(&record, manifest, replacing, cli) {
        return Err(UserError::failure(format!(
            "`{field}` in {} is {theirs}, but the outputs you last wrote for {} had {yours}; envmod does not act on what you did not choose",
            Manifest::path_in(real).display(),
            manifest.name
        ))
        .with_hint(format!(
            "someone who can write that file changed it; nothing was changed. {hint}"
        ))
        .into());
    }
    let mut out = manifest.clone();
    if replacing.module_system || replacing.module_root {
        out.module = record
            .module
            .as_ref()
            .map(|r| modulefile::info_for(manifest, r.system, &r.root));
    }
    if replacing.kernel {
        out.kernel = record.kernel.clone();
    }
    Ok(out)
}

/// Whether the manifest agrees with the record (or there is none).
pub(crate) fn agrees(env: &Environ, real: &Path, manifest: &Manifest) -> bool {
    read(env, real).is_none_or(|r| difference(&r, manifest, Replacing::NOTHING, "").is_none())
}

/// Whether this user's envmod wrote the outputs of the environment at `real`.
pub(crate) fn wrote(env: &Environ, real: &Path) -> bool {
    read(env, real).is_some()
}

/// The first recorded place the manifest names otherwise: the field, the manifest's value,
/// the recorded one, and the commands that take either.
fn difference(
    record: &Record,
    manifest: &Manifest,
    replacing: Replacing,
    cli: &str,
) -> Option<(&'static str, String, String, String)> {
    let module_of = |m: Option<&RecordedModule>| match m {
        Some(m) => format!("--module-system {} --module-root {}", m.system.as_str(), {
            sh_quote(&m.root.to_string_lossy())
        }),
        None => "--module-system none".to_string(),
    };
    let theirs = manifest.module.as_ref().map(|m| RecordedModule {
        system: m.system,
        root: m.root.clone(),
    });
    let module_hint = || {
        format!(
            "If that was meant, make it yours: `envmod module {cli} {}`; to keep yours: `envmod module {cli} {}`",
            module_of(theirs.as_ref()),
            module_of(record.module.as_ref())
        )
    };
    let show = |p: &Path| p.display().to_string();
    if !replacing.prefix && manifest.prefix != record.named {
        return Some((
            "prefix",
            show(&manifest.prefix),
            show(&record.named),
            format!(
                "Put {} back there, or make the path you named its prefix: `envmod module {cli} --relocate`",
                show(&record.named)
            ),
        ));
    }
    if !replacing.shared && manifest.shared != record.shared {
        let say = |s: &Option<Sharing>| match s {
            Some(Sharing { group: Some(g) }) => format!("shared with the group {g}"),
            Some(Sharing { group: None }) => "shared read-only".to_string(),
            None => "not shared".to_string(),
        };
        let share = |s: &Option<Sharing>| match s {
            Some(Sharing { group: Some(g) }) => format!("`envmod share {cli} --group {g}`"),
            Some(Sharing { group: None }) => format!("`envmod share {cli}`"),
            None => "putting `shared` back in that file".to_string(),
        };
        return Some((
            "shared",
            say(&manifest.shared),
            say(&record.shared),
            format!(
                "If that was meant, make it yours: {}; to keep yours: {}",
                share(&manifest.shared),
                share(&record.shared)
            ),
        ));
    }
    if let Some(yours) = record.modules.as_ref().filter(|_| !replacing.modules) {
        let names: Vec<String> = manifest
            .modules
            .iter()
            .map(|m| m.full_name.clone())
            .collect();
        if &names != yours {
            let say = |names: &[String]| match names {
                [] => "no modules".to_string(),
                _ => shown(&names.join(" ")).into_owned(),
            };
            return Some((
                "modules",
                say(&names),
                say(yours),
                format!(
                    "Put the list back as it was ({}); to build on other modules, create the environment again with them loaded",
                    say(yours)
                ),
            ));
        }
    }
    if !replacing.provided
        && let Some(found) =
            provided_difference(record.provided.as_ref(), manifest.provided.as_ref())
    {
        return Some(found);
    }
    match (&theirs, &record.module) {
        (Some(t), Some(r)) => {
            if !replacing.module_system && t.system != r.system {
                return Some((
                    "module.system",
                    t.system.as_str().into(),
                    r.system.as_str().into(),
                    module_hint(),
                ));
            }
            if !replacing.module_root && t.root != r.root {
                return Some(("module.root", show(&t.root), show(&r.root), module_hint()));
            }
        }
        (None, None) => {}
        (t, r) if !(replacing.module_system && replacing.module_root) => {
            let say = |m: &Option<RecordedModule>| match m {
                Some(m) => format!("a modulefile under {}", m.root.display()),
                None => "no modulefile".to_string(),
            };
            return Some(("module", say(t), say(r), module_hint()));
        }
        _ => {}
    }
    if replacing.kernel || manifest.kernel == record.kernel {
        return None;
    }
    let kernel_hint = match &manifest.kernel {
        Some(k) => {
            let place = k
                .dir
                .parent()
                .filter(|kernels| kernels.ends_with("share/jupyter/kernels"))
                .and_then(|kernels| kernels.ancestors().nth(3))
                .map(|p| format!(" --prefix {}", sh_quote(&p.to_string_lossy())))
                .unwrap_or_default();
            format!(
                "If that kernel was meant, make it yours: `envmod kernel add {cli} --name {}{place}`; `envmod kernel remove {cli}` removes yours and drops it",
                k.name
            )
        }
        None => format!(
            "To keep your kernel, add it again (`envmod kernel add {cli} …`); `envmod kernel remove {cli}` removes it"
        ),
    };
    let say = |k: &Option<KernelInfo>| match k {
        Some(k) => format!("the kernel {} in {}", k.name, k.dir.display()),
        None => "no kernel".to_string(),
    };
    let field = match (&manifest.kernel, &record.kernel) {
        (Some(t), Some(r)) if t.dir == r.dir && t.display_name != r.display_name => {
            "kernel.display_name"
        }
        (Some(t), Some(r)) if t.dir == r.dir && t.module_vars != r.module_vars => {
            "kernel.module_vars"
        }
        (Some(t), Some(r)) if t.dir == r.dir => "kernel",
        (Some(_), Some(_)) => "kernel.dir",
        _ => "kernel",
    };
    Some((
        field,
        say(&manifest.kernel),
        say(&record.kernel),
        kernel_hint,
    ))
}

/// Where the manifest's `provided` is not what this user's envmod recorded, unless it only
/// counts fewer of the site Python's packages (a member's `install --ignore-site-packages`:
/// the solve then installs conda's, as any member may). What else a member could put there
/// is what this user's solves would take as given: a module's stand-in pins a name, so a
/// package asked for is left out, and a directory of the member's fakes the site's packages.
fn provided_difference(
    yours: Option<&Provisions>,
    theirs: Option<&Provisions>,
) -> Option<(&'static str, String, String, String)> {
    let none = Provisions::default();
    let (yours, theirs) = (yours.unwrap_or(&none), theirs.unwrap_or(&none));
    let put_back = |what: String| {
        format!(
            "Put `provided` back as it was ({what}); to build on what the modules and the site Python provide now, create the environment again"
        )
    };
    if theirs.modules != yours.modules {
        let say = |p: &Provisions| match p.modules.as_slice() {
            [] => "no module stand-ins".to_string(),
            modules => at_most(
                modules
                    .iter()
                    .map(|m| format!("module {} provides {}", m.module, m.provides.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        return Some((
            "provided.modules",
            say(theirs),
            say(yours),
            put_back(say(yours)),
        ));
    }
    if theirs.site_packages.is_empty() || theirs.site_packages == yours.site_packages {
        return None;
    }
    let say = |p: &Provisions| match p.site_packages.as_slice() {
        [] => "no site packages".to_string(),
        dirs => at_most(format!(
            "the site packages in {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    Some((
        "provided.site_packages",
        say(theirs),
        say(yours),
        put_back(say(yours)),
    ))
}

/// `text` with its control characters escaped, cut to a line's worth: a member's list can be
/// as long as the manifest.
fn at_most(text: String) -> String {
    const MAX: usize = 300;
    let shown = shown(&text).into_owned();
    match shown.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

/// Whose channels a saved record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// This command installed from the manifest's channels: they are the user's now.
    Used,
    /// This command installed nothing: the recorded ones stay (the manifest's, the first
    /// time), so a group member's edit is not taken as the user's by a `freeze`.
    Kept,
}

/// The channels `real`'s record says this user's last package change installed from.
pub(crate) fn channels(env: &Environ, real: &Path) -> Option<Vec<String>> {
    read(env, real)?.channels
}

/// Whether `exe` is the site Python this user built the environment at `real` on.
pub(crate) fn chose_python(env: &Environ, real: &Path, exe: &Path) -> bool {
    read(env, real).and_then(|r| r.python).as_deref() == Some(exe)
}

/// Record where the outputs of `manifest` went; a failure costs only the check next time,
/// so it is a warning.
pub(crate) fn save(
    env: &Environ,
    real: &Path,
    manifest: &Manifest,
    channels: Channels,
    printer: &Printer,
) {
    let last = read(env, real);
    let channels = match channels {
        Channels::Used => None,
        Channels::Kept => last.as_ref().and_then(|r| r.channels.clone()),
    }
    .unwrap_or_else(|| manifest.channels.clone());
    // The site Python never changes after create; the recorded one is the one chosen then.
    let python = last.and_then(|r| r.python).or_else(|| {
        (manifest.python.mode == crate::manifest::PythonMode::Site)
            .then(|| manifest.python.site.executable.clone())
    });
    let record = Record {
        prefix: real.to_path_buf(),
        named: manifest.prefix.clone(),
        shared: manifest.shared.clone(),
        module: manifest.module.as_ref().map(|m| RecordedModule {
            system: m.system,
            root: m.root.clone(),
        }),
        kernel: manifest.kernel.clone(),
        modules: Some(
            manifest
                .modules
                .iter()
                .map(|m| m.full_name.clone())
                .collect(),
        ),
        channels: Some(channels),
        python,
        provided: manifest
            .provided
            .clone()
            .filter(|p| p != &Provisions::default()),
    };
    let path = record_path(env, real);
    let result = (|| -> Result<()> {
        let dir = path.parent().expect("record path has a directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        crate::fs::write_atomic(&path, serde_json::to_string_pretty(&record)?.as_bytes())
    })();
    if let Err(e) = result {
        printer.warn(format!(
            "could not record where the outputs of {} went ({e:#}); the next command takes its manifest as it is",
            manifest.name
        ));
    }
}

/// Forget the record of a removed environment.
pub(crate) fn forget(env: &Environ, real: &Path) {
    let _ = std::fs::remove_file(record_path(env, real));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::modulefile::tests::manifest;

    fn world() -> (tempfile::TempDir, Environ) {
        let dir = tempfile::tempdir().unwrap();
        let env = Environ::from_pairs(&[("XDG_DATA_HOME", dir.path().to_str().unwrap())], "/");
        (dir, env)
    }

    #[test]
    fn the_record_names_a_moved_place_and_keeps_what_members_may_change() {
        let (_dir, env) = world();
        let real = PathBuf::from("/home/alice/.envmod/envs/myenv");
        let printer = Printer::new(crate::printer::Verbosity::Quiet);
        let m = manifest(false, ModuleSystem::Lmod);
        // No record yet: the manifest as it is.
        assert!(trusted(&env, &real, &m, Replacing::NOTHING, "-n myenv").is_ok());
        save(&env, &real, &m, Channels::Used, &printer);

        let mut specs = m.clone();
        specs.specs.push("numpy".into());
        specs.python.site.minor = 12;
        specs.module = Some(modulefile::info_for(
            &specs,
            ModuleSystem::Lmod,
            &m.module.as_ref().unwrap().root,
        ));
        assert!(agrees(&env, &real, &specs));

        let mut moved = m.clone();
        moved.module = Some(modulefile::info_for(
            &m,
            ModuleSystem::Lmod,
            Path::new("/home/alice/.config"),
        ));
        let err = trusted(&env, &real, &moved, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`module.root`"), "{err}");
        assert!(!agrees(&env, &real, &moved));
        // A command that sets the root from its own flag replaces the recorded one.
        let replacing = Replacing {
            module_root: true,
            ..Replacing::NOTHING
        };
        let t = trusted(&env, &real, &moved, replacing, "-n myenv").unwrap();
        assert_eq!(t.module.unwrap().root, m.module.as_ref().unwrap().root);

        let mut kernel = m.clone();
        kernel.kernel = Some(KernelInfo {
            name: "myenv".into(),
            display_name: "x".into(),
            dir: "/home/alice/.local/share/jupyter/kernels/myenv".into(),
            module_vars: Vec::new(),
        });
        let err = trusted(&env, &real, &kernel, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`kernel`"), "{err}");
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("envmod kernel add -n myenv --name myenv"),
            "{err:?}"
        );

        let mut elsewhere = m.clone();
        elsewhere.prefix = "/home/alice/link-to-myenv".into();
        let err = trusted(&env, &real, &elsewhere, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`prefix`"), "{err}");
        let mut shared = m.clone();
        shared.shared = Some(Sharing {
            group: Some("students".into()),
        });
        let err = trusted(&env, &real, &shared, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`shared`"), "{err}");
        let replacing = Replacing {
            shared: true,
            ..Replacing::NOTHING
        };
        assert!(trusted(&env, &real, &shared, replacing, "-n myenv").is_ok());

        let mut modules = m.clone();
        modules.modules.push(crate::site::modules::LoadedModule {
            full_name: "tools/1.0".into(),
            file: None,
        });
        let err = trusted(&env, &real, &modules, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`modules`"), "{err}");
        assert!(err.to_string().contains("tools/1.0"), "{err}");
        assert!(!agrees(&env, &real, &modules));
        assert!(trusted(&env, &real, &modules, Replacing::EVERYTHING, "-n myenv").is_ok());

        // Channels: a command that installed nothing keeps the ones last used.
        let mut channels = m.clone();
        channels.channels = vec!["file:///elsewhere".into()];
        save(&env, &real, &channels, Channels::Kept, &printer);
        assert_eq!(super::channels(&env, &real), Some(m.channels.clone()));
        save(&env, &real, &channels, Channels::Used, &printer);
        assert_eq!(
            super::channels(&env, &real),
            Some(channels.channels.clone())
        );

        forget(&env, &real);
        assert!(agrees(&env, &real, &moved));
    }
    #[test]
    fn what_was_provided_is_the_users_and_an_old_record_means_nothing_was() {
        use crate::site::provides::ModuleProvision;
        let (_dir, env) = world();
        let real = PathBuf::from("/home/alice/.envmod/envs/myenv");
        let printer = Printer::new(crate::printer::Verbosity::Quiet);
        let mut m = manifest(false, ModuleSystem::Lmod);
        let site = Provisions {
            site_packages: vec!["/usr/lib/python3/dist-packages".into()],
            ..Provisions::default()
        };
        m.provided = Some(site.clone());
        save(&env, &real, &m, Channels::Used, &printer);

        let stand_in = |provides: &str| Provisions {
            modules: vec![ModuleProvision {
                module: "tools/1.0".into(),
                rule: "tools/*".into(),
                provides: vec![provides.into()],
            }],
            ..site.clone()
        };
        let mut forged = m.clone();
        forged.provided = Some(stand_in("numpy 99"));
        let err = trusted(&env, &real, &forged, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().contains("`provided.modules`"), "{err}");
        assert!(err.to_string().contains("numpy 99"), "{err}");
        assert!(!agrees(&env, &real, &forged));
        assert!(trusted(&env, &real, &forged, Replacing::EVERYTHING, "-n myenv").is_ok());

        let mut elsewhere = m.clone();
        elsewhere.provided = Some(Provisions {
            site_packages: vec!["/home/ta/fake".into()],
            ..Provisions::default()
        });
        let err = trusted(&env, &real, &elsewhere, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(
            err.to_string().contains("`provided.site_packages`"),
            "{err}"
        );
        assert!(err.to_string().contains("/home/ta/fake"), "{err}");

        // A member's --ignore-site-packages counts fewer of them: accepted.
        let mut ignored = m.clone();
        ignored.provided = Some(Provisions {
            ignore_site_packages: true,
            ..Provisions::default()
        });
        assert!(agrees(&env, &real, &ignored));

        // A long list is cut to a line's worth, its control characters escaped.
        let mut long = m.clone();
        long.provided = Some(stand_in(&format!("\u{1b}[2J{}", "x".repeat(100_000))));
        let err = trusted(&env, &real, &long, Replacing::NOTHING, "-n myenv").unwrap_err();
        assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
        assert!(!err.to_string().contains('\u{1b}'), "{err}");

        // A record an older envmod wrote has no `provided`: the manifest it wrote had none.
        let path = record_path(&env, &real);
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("provided");
        std::fs::write(&path, old.to_string()).unwrap();
        let mut before = m.clone();
        before.provided = None;
        assert!(agrees(&env, &real, &before));
        assert!(agrees(&env, &real, &ignored));
        assert!(!agrees(&env, &real, &m));
        assert!(!agrees(&env, &real, &forged));
    }
}
