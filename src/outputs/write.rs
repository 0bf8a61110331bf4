//! The life of the outputs around a change: every output is planned and checked before
//! anything on disk changes, written from the installed prefix after the swap (shared with
//! the group as the environment is), and removed where it moved or when the environment
//! goes. What the prefix sets on activation is read here too, since the outputs advertise
//! it, and `export` and `shell-hook` read the same facts the modulefile was written from.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    conda::{self, activation::EnvVar},
    manifest::Manifest,
    outputs::{
        Output, PrefixFacts, activate::Activate, kernel::Kernel, modulefile::Modulefile,
        modulefile::ModulefileOptions,
    },
    printer::Printer,
    render::Renderer,
};

/// What the outputs need from the command that writes them.
#[derive(Clone, Copy)]
pub(crate) struct Outputs<'a> {
    pub(crate) renderer: &'a Renderer,
    pub(crate) options: ModulefileOptions,
    pub(crate) printer: &'a Printer,
}

impl<'a> Outputs<'a> {
    /// Every output, in the order they are written.
    pub(crate) fn all(&self) -> Vec<Box<dyn Output + 'a>> {
        vec![
            Box::new(Modulefile {
                renderer: self.renderer,
                options: self.options,
            }),
            Box::new(self.activate()),
            Box::new(Kernel),
        ]
    }

    pub(crate) fn activate(&self) -> Activate<'a> {
        Activate {
            renderer: self.renderer,
            options: self.options,
        }
    }

    /// Plan every output for `manifest` and check that it can be written, before anything on
    /// disk changes. The facts of the installed prefix are not known yet; the templates and the
    /// destinations are what can fail here.
    pub(crate) fn check(&self, manifest: &Manifest) -> Result<()> {
        for out in self.all() {
            if let Some(planned) = out.plan(manifest, &PrefixFacts::default())? {
                out.check(manifest, &planned)?;
            }
        }
        Ok(())
    }

    /// Write every output for `manifest` from the installed prefix at `real`, and remove what
    /// `old` wrote where the new outputs went elsewhere. When `scripts` runs the activation
    /// scripts, `manifest` records what they set.
    pub(crate) fn write(
        &self,
        manifest: &mut Manifest,
        real: &Path,
        old: Option<&Manifest>,
        scripts: Scripts<'_>,
    ) -> Result<()> {
        let (facts, record) = self.prefix_facts(manifest, real, scripts)?;
        if let Some(record) = record {
            manifest.activation = Some(record);
        }
        for name in &facts.unsafe_vars {
            self.printer.warn(format!(
                "not putting {name} into the modulefile: its value holds a newline or another control character, which the module system would run as shell code"
            ));
        }
        for (name, why) in &facts.refused_vars {
            self.printer.warn(format!(
                "not setting the variable {name:?} of {}: it {why}",
                manifest.name
            ));
        }
        for name in &facts.risky_vars {
            self.printer.warn(format!(
                "{} sets {name}, with which shells or programs run the code its value names: check that you trust it",
                manifest.name
            ));
        }
        let manifest = &*manifest;
        for out in self.all() {
            let planned = out.plan(manifest, &facts)?;
            if let Some(planned) = &planned {
                out.check(manifest, planned)?;
                // The directories this write creates, which a shared environment shares too.
                let created: Vec<PathBuf> = planned
                    .path
                    .ancestors()
                    .skip(1)
                    .take_while(|d| d.symlink_metadata().is_err())
                    .map(Path::to_path_buf)
                    .collect();
                let place_gid = planned
                    .path
                    .ancestors()
                    .skip(1)
                    .find_map(|d| d.symlink_metadata().ok())
                    .map(|m| std::os::unix::fs::MetadataExt::gid(&m));
                out.write(planned)?;
                if let Some(sharing) = &manifest.shared {
                    let mut modes = sharing.modes()?;
                    // Group write only where the group already shares the place (the course's
                    // module root or Jupyter prefix): a kernel in the owner's own data dir
                    // must not open the owner's home to the group. Readable by all anywhere.
                    if modes.gid.is_some() && place_gid != modes.gid {
                        modes = crate::fs::Share {
                            gid: None,
                            group_write: false,
                        };
                    }
                    modes.apply(&planned.path)?;
                    if let Some(dir) = planned.path.parent() {
                        modes.apply(dir)?;
                    }
                    for dir in &created {
                        modes.apply(dir)?;
                    }
                }
            }
            if let Some(old) = old {
                let moved = match (out.plan(old, &PrefixFacts::default())?, &planned) {
                    (Some(o), Some(n)) => o.path != n.path,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if moved {
                    out.remove(old)?;
                }
            }
        }
        Ok(())
    }

    /// Read the installed environment for what the outputs advertise and set; with the record
    /// of what the activation scripts set when `scripts` ran them.
    pub(crate) fn prefix_facts(
        &self,
        manifest: &Manifest,
        real: &Path,
        scripts: Scripts<'_>,
    ) -> Result<(PrefixFacts, Option<Record>)> {
        // Only requested packages become extensions, so an env without specs (the first-day
        // create) skips reading conda-meta, and the thread pool that reading starts.
        let records = if manifest.specs.is_empty() {
            Vec::new()
        } else {
            conda::prefix::installed_records(real)?
        };
        let mut extensions = Vec::new();
        for spec in &manifest.specs {
            let name = conda::specs::spec_package_name(spec)?;
            if let Some(r) = records
                .iter()
                .find(|r| r.repodata_record.package_record.name == name)
            {
                let p = &r.repodata_record.package_record;
                extensions.push(format!("{}/{}", p.name.as_normalized(), p.version));
            }
        }
        let (mut facts, record) = self.activation_facts(manifest, real, scripts)?;
        facts.extensions = extensions;
        Ok((facts, record))
    }

    /// What activating the environment sets: its own variables (data, read as JSON), then what
    /// its scripts set, run now or read back from the manifest. Every name is checked, wherever
    /// it came from: the manifest and the state of a shared environment are the group's to edit.
    pub(crate) fn activation_facts(
        &self,
        manifest: &Manifest,
        real: &Path,
        scripts: Scripts<'_>,
    ) -> Result<(PrefixFacts, Option<Record>)> {
        use conda::activation as act;
        let own = act::own_vars(real)?;
        let mut facts = PrefixFacts::default();
        // Read once: what is judged is what runs.
        let read = match scripts {
            Scripts::Run(_) | Scripts::IfTrusted => Some(act::read_scripts(real)?),
            Scripts::Recorded => None,
        };
        let mut untrusted: Vec<(PathBuf, String)> = read
            .iter()
            .flatten()
            .filter_map(|s| s.writer.as_ref().map(|w| (s.path.clone(), w.phrase())))
            .collect();
        if let Scripts::Run(before) = scripts {
            for (script, why) in before {
                if script.is_file() && !untrusted.iter().any(|(s, _)| s == script) {
                    untrusted.push((script.clone(), why.clone()));
                }
            }
        }
        let run = match (scripts, read) {
            (Scripts::IfTrusted, Some(_)) if !untrusted.is_empty() => {
                for (script, why) in &untrusted {
                    self.printer.warn(format!(
                        "not running {}, an activation script {why}: only a package change runs it, after naming it",
                        script.display()
                    ));
                }
                None
            }
            (_, read) => read,
        };
        let (from_scripts, record) = match run {
            Some(read) => {
                for (script, why) in &untrusted {
                    self.printer.warn(format!(
                        "running {}, an activation script {why}: remove it if you do not trust it",
                        script.display()
                    ));
                }
                let (set, not_text) = act::run_scripts(real, &read, &own)?;
                facts.refused_vars.extend(
                    not_text
                        .into_iter()
                        .map(|n| (n, "has a value that is not UTF-8 text")),
                );
                let record: Record = set.into_iter().map(|v| (v.name, v.value)).collect();
                (record.clone(), Some(record))
            }
            None => match &manifest.activation {
                Some(recorded) => (recorded.clone(), None),
                None => {
                    if matches!(scripts, Scripts::IfTrusted) {
                        self.printer.warn(format!(
                            "the modulefile of {} leaves out what its activation scripts set until the next `envmod install` or `envmod remove` on it",
                            manifest.name
                        ));
                    } else if !act::scripts(real)?.is_empty() {
                        self.printer.warn(format!(
                            "the envmod that built {} did not record what its activate.d scripts set, so its modulefile leaves that out until the next `envmod install` or `envmod remove` on it",
                            manifest.name
                        ));
                    }
                    (Record::new(), None)
                }
            },
        };
        // conda's order: the environment's own variables, then what the scripts change.
        let mut all: Record = own.into_iter().map(|v| (v.name, v.value)).collect();
        all.extend(from_scripts);
        for (name, value) in all {
            if let Some(why) = act::refusal(&name) {
                facts.refused_vars.push((name, why));
            } else if value.chars().any(char::is_control) {
                facts.unsafe_vars.push(name);
            } else {
                if act::runs_code(&name) {
                    facts.risky_vars.push(name.clone());
                }
                facts.env_vars.push(EnvVar { name, value });
            }
        }
        Ok((facts, record))
    }
}

/// Whether a command runs the environment's activate.d scripts, or reads back what they set
/// when they last ran. Only a command that changed the packages (or re-pointed the prefix)
/// runs them: a script a group member adds to a shared environment then runs for nobody
/// until the owner changes the packages, and then with a warning that names it.
#[derive(Clone, Copy)]
pub(crate) enum Scripts<'a> {
    /// Run them, naming first every one that someone else could have written. The scripts
    /// given were untrusted in the tree the new one was cloned from (where a copy may have
    /// given them a new owner), or came from channels the user did not choose; each with
    /// who, as the warning phrases it.
    Run(&'a [(PathBuf, String)]),
    /// Run them only if nobody else could have written any; otherwise read back the record.
    IfTrusted,
    Recorded,
}

pub(crate) type Record = std::collections::BTreeMap<String, String>;
