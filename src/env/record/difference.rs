//! Where a manifest differs from the record, field by field, and what to run to keep either
//! side: the refusals `trusted` gives name the field, both values and both commands.

use std::path::Path;

use super::{Record, RecordedModule, Replacing};
use crate::{
    escape::{sh_quote, shown},
    manifest::{KernelInfo, Manifest, Provisions, Sharing},
};

/// The first recorded place the manifest names otherwise: the field, the manifest's value,
/// the recorded one, and the commands that take either.
pub(super) fn difference(
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
