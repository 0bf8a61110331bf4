//! `envmod module`: rewrite an environment's modulefile from its manifest. `create` uses the
//! same writer, so a regenerated modulefile is byte for byte what `create` would write.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{
    env::{
        lock::{EnvLock, write_atomic},
        manifest::{Manifest, ModuleInfo},
    },
    error::UserError,
    printer::Printer,
    render::{
        Renderer,
        context::{ModulefileContext, ModulefileOptions, PrefixFacts},
    },
    settings::EnvTarget,
    site::{ModuleSystem, modules::is_envmod_modulefile},
};

pub struct ModuleSettings {
    pub target: EnvTarget,
    /// `None` keeps the system the environment was created with.
    pub system: Option<Option<ModuleSystem>>,
    pub root: Option<PathBuf>,
    pub default_root: PathBuf,
    pub templates_dir: Option<PathBuf>,
    pub options: ModulefileOptions,
}

/// Where the modulefile for `manifest` goes under `root`.
pub fn modulefile_path(manifest: &Manifest, system: ModuleSystem, root: &Path) -> PathBuf {
    let module = manifest.module_name();
    let dir = root.join(module.name.as_str());
    match system {
        ModuleSystem::Lmod => dir.join(format!("{}.lua", module.version)),
        ModuleSystem::Tcl => dir.join(&module.version),
    }
}

/// Fail if `path` exists and is not envmod's: a site's or a user's own modulefile is never
/// overwritten.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.symlink_metadata().is_ok() && !is_envmod_modulefile(path) {
        return Err(UserError::failure(format!(
            "modulefile {} already exists and was not written by envmod",
            path.display()
        ))
        .with_hint("move it away, or choose another --module-root")
        .into());
    }
    Ok(())
}

pub fn render(
    manifest: &Manifest,
    system: ModuleSystem,
    renderer: &Renderer,
    options: &ModulefileOptions,
    facts: &PrefixFacts,
) -> Result<String> {
    let ctx = ModulefileContext::new(manifest, options, facts);
    match system {
        ModuleSystem::Lmod => renderer.render("lmod/modulefile.lua", ctx),
        ModuleSystem::Tcl => renderer.render("tcl/modulefile.tcl", ctx),
    }
}

/// Render and write the modulefile by rename. Returns what goes into the manifest.
pub fn write(
    manifest: &Manifest,
    system: ModuleSystem,
    root: &Path,
    renderer: &Renderer,
    options: &ModulefileOptions,
) -> Result<ModuleInfo> {
    let facts = prefix_facts(manifest)?;
    let text = render(manifest, system, renderer, options, &facts)?;
    let file = modulefile_path(manifest, system, root);
    check_writable(&file)?;
    let dir = file.parent().expect("modulefile has a parent");
    std::fs::create_dir_all(dir).map_err(|e| {
        UserError::failure(format!(
            "cannot create module directory {}: {e}",
            dir.display()
        ))
        .with_hint("choose a writable --module-root, or set module_root in the config")
    })?;
    write_atomic(&file, text.as_bytes())?;
    Ok(ModuleInfo {
        system,
        root: root.to_path_buf(),
        name: manifest.module_name(),
        file,
    })
}

/// Read the installed environment for what the modulefile advertises and sets.
pub fn prefix_facts(manifest: &Manifest) -> Result<PrefixFacts> {
    // Only requested packages become extensions, so an env without specs (the first-day
    // create) skips reading conda-meta, and the thread pool that reading starts.
    let records = if manifest.specs.is_empty() {
        Vec::new()
    } else {
        rattler_conda_types::PrefixRecord::collect_from_prefix::<rattler_conda_types::PrefixRecord>(
            &manifest.prefix,
        )
        .with_context(|| {
            format!(
                "failed to read {}",
                manifest.prefix.join("conda-meta").display()
            )
        })?
    };
    let mut extensions = Vec::new();
    for spec in &manifest.specs {
        let name = spec_name_of(spec);
        if let Some(r) = records
            .iter()
            .find(|r| r.repodata_record.package_record.name.as_normalized() == name)
        {
            let p = &r.repodata_record.package_record;
            extensions.push(format!("{}/{}", p.name.as_normalized(), p.version));
        }
    }
    let env_vars = crate::conda::activation::env_vars(&manifest.prefix)?
        .into_iter()
        .filter(|v| is_env_name(&v.name))
        .collect();
    Ok(PrefixFacts {
        extensions,
        env_vars,
    })
}

/// The package name at the start of a match spec string (`numpy>=1.26` → `numpy`).
pub fn spec_name_of(spec: &str) -> String {
    spec.trim()
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Remove a modulefile envmod wrote, and its `NAME/` directory once empty.
pub fn remove_file(file: &Path) -> Result<()> {
    if !is_envmod_modulefile(file) {
        return Ok(());
    }
    std::fs::remove_file(file).with_context(|| format!("failed to remove {}", file.display()))?;
    if let Some(dir) = file.parent() {
        // Only succeeds when empty, which is the only case we want.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

pub fn run(s: ModuleSettings, printer: &Printer) -> Result<()> {
    let _lock = EnvLock::acquire(&s.target.prefix, &s.target.name)?;
    let mut manifest = crate::commands::delete::read_manifest(&s.target)?;
    let system = match s.system {
        Some(choice) => choice,
        None => manifest.module.as_ref().map(|m| m.system),
    };
    let Some(system) = system else {
        return Err(UserError::usage(format!(
            "environment {} has no module system to write for",
            manifest.name
        ))
        .with_hint("pass --module-system lmod or --module-system tcl")
        .into());
    };
    let root = s
        .root
        .or_else(|| manifest.module.as_ref().map(|m| m.root.clone()))
        .unwrap_or(s.default_root);
    let renderer = Renderer::new(s.templates_dir.as_deref())?;
    let old = manifest.module.clone();
    let info = write(&manifest, system, &root, &renderer, &s.options)?;
    if let Some(old) = old.filter(|o| o.file != info.file) {
        remove_file(&old.file)?;
    }
    printer.info(format!("wrote {}", info.file.display()));
    manifest.module = Some(info);
    manifest.write_into(&manifest.prefix.clone())?;
    Ok(())
}
