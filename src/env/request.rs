//! The one place a solve request is made. Everything a solve sees besides the channels'
//! repodata is decided here, from the settings, the `Environ` and the manifest: the site
//! Python, what the recorded modules provide, the site Python's own packages, what the
//! prefix holds now, and the virtual packages. `conda::solve` then only solves.
//!
//! What the modules provide comes from the manifest's [`Provisions`], never from the shell
//! of the moment: a CUDA environment keeps its `__cuda` on a login node with no module
//! loaded, and an MPI environment keeps its site MPI after a `module purge`.

use std::path::PathBuf;

use anyhow::Result;
use rattler_conda_types::{GenericVirtualPackage, PackageName, RepoDataRecord, Subdir, Version};

use crate::{
    conda::{
        self,
        solve::{Constraint, Provided, Solution, SolveRequest},
        specs::Spec,
    },
    env::ctx::{Channels, Ctx},
    manifest::Provisions,
    printer::Printer,
    site::{
        distributions,
        provides::{self, ModuleProvision},
        python::Interpreter,
        virtual_packages::{self, ModuleVirtual, Overrides},
    },
};

pub(crate) struct Inputs<'a> {
    pub(crate) platform: Subdir,
    pub(crate) channels: &'a Channels,
    pub(crate) specs: Vec<Spec>,
    /// Site mode on this platform: the interpreter. `None` in conda mode and for another
    /// platform.
    pub(crate) site_python: Option<&'a Interpreter>,
    /// What the site gave: `None` for an environment made before envmod knew stand-ins,
    /// which is solved as it was then.
    pub(crate) provisions: Option<&'a Provisions>,
    /// What the prefix holds now (a change): favored, so that a change moves little else.
    pub(crate) installed: Vec<RepoDataRecord>,
    /// More constraints, with what gave them: the variant a file's modules gave, where conda
    /// builds stand in for them here.
    pub(crate) constraints: Vec<Constraint>,
}

/// A solve's request, and what was applied to it that the solution alone does not show.
pub(crate) struct Request<'a> {
    pub(crate) solve: SolveRequest<'a>,
    /// The modules' virtual packages that entered the solve.
    virtuals: Vec<(GenericVirtualPackage, String)>,
}

/// What the modules give a solve on `platform`, with the machine's virtual packages.
pub(crate) struct Site {
    pub(crate) stand_ins: provides::StandIns,
    /// The machine's (or the platform's assumed ones), `CONDA_OVERRIDE_*` applied, and the
    /// modules' where neither decides.
    pub(crate) virtual_packages: Vec<GenericVirtualPackage>,
    /// The modules' virtual packages that were used, each with its module.
    pub(crate) from_modules: Vec<(GenericVirtualPackage, String)>,
}

/// What `modules` provide on `platform`, and the virtual packages a solve there sees.
pub(crate) fn site(modules: &[ModuleProvision], platform: Subdir, ctx: &Ctx<'_>) -> Result<Site> {
    let overrides = Overrides::from_environ(ctx.environ);
    let mut virtual_packages = virtual_packages::for_platform(platform, &overrides)?;
    let stand_ins = provides::stand_ins(modules, platform)?;
    let given: Vec<(GenericVirtualPackage, String)> = stand_ins
        .virtuals
        .iter()
        .map(|v| (v.value.clone(), v.module.clone()))
        .collect();
    let mut from_modules = Vec::new();
    for merged in virtual_packages::merge_module_virtuals(&mut virtual_packages, &given, &overrides)
    {
        match merged {
            ModuleVirtual::Used { package, module } => from_modules.push((package, module)),
            ModuleVirtual::Passed(note) => ctx.printer.detail(note),
        }
    }
    Ok(Site {
        stand_ins,
        virtual_packages,
        from_modules,
    })
}

/// The request for `inputs`. Notes on what was passed over go to `-v`.
pub(crate) fn build<'a>(inputs: Inputs<'a>, ctx: &Ctx<'_>) -> Result<Request<'a>> {
    let modules = inputs.provisions.map_or(&[][..], |p| &p.modules[..]);
    let Site {
        stand_ins: given,
        virtual_packages,
        from_modules: virtuals,
    } = site(modules, inputs.platform, ctx)?;
    let stand_ins = given
        .records
        .into_iter()
        .map(|r| Provided {
            record: r.value,
            origin: format!("module {}", r.module),
        })
        .collect();
    let constraints = given
        .constraints
        .into_iter()
        .map(|c| Constraint {
            spec: c.value,
            origin: format!("module {}", c.module),
        })
        .chain(inputs.constraints)
        .collect();
    let site_packages = match (inputs.site_python, inputs.provisions) {
        (Some(_), Some(p)) if !p.ignore_site_packages && !p.site_packages.is_empty() => {
            site_packages(&p.site_packages, inputs.platform, ctx)
        }
        _ => Vec::new(),
    };
    let site_python = inputs
        .site_python
        .map(conda::solve::site_python_record)
        .transpose()?;
    Ok(Request {
        solve: SolveRequest {
            platform: inputs.platform,
            channels: &inputs.channels.list,
            network: &inputs.channels.network,
            specs: inputs.specs,
            site_python,
            stand_ins,
            site_packages,
            installed: inputs.installed,
            constraints,
            virtual_packages,
        },
        virtuals,
    })
}

/// The site Python's distributions in `dirs`, read now (the site may have upgraded one since
/// the environment was made), as the records they count as.
fn site_packages(dirs: &[PathBuf], platform: Subdir, ctx: &Ctx<'_>) -> Vec<Provided> {
    let read = distributions::read(dirs);
    for note in &read.skipped {
        ctx.printer.detail(note);
    }
    ctx.printer.detail(format!(
        "read {} site packages from {} directories in {:.2?}",
        read.dists.len(),
        dirs.len(),
        read.elapsed
    ));
    distributions::site_records(&read.dists, &ctx.site.names, platform)
        .into_iter()
        .map(|s| Provided {
            origin: format!("the site Python's {} {}", s.dist.name, s.dist.version),
            record: s.record,
        })
        .collect()
}

/// What a solve chose, with what the site gave it.
pub(crate) struct Solved {
    pub(crate) solution: Solution,
    virtuals: Vec<(GenericVirtualPackage, String)>,
    constraints: Vec<Constraint>,
}

impl Solved {
    pub(crate) fn into_records(self) -> Vec<RepoDataRecord> {
        self.solution.records
    }

    /// One line per stand-in the solution rests on: `openmpi 4.1.6 ← module openmpi/4.1.6`,
    /// `__cuda 12.2 ← module cuda/12.2 (no CUDA driver here)`, `cuda-version 12.2.* ← module
    /// cuda/12.2`. A stand-in nothing needed is only named under `-v`.
    pub(crate) fn report(&self, printer: &Printer) {
        let mut from_site = Vec::new();
        for p in &self.solution.provided {
            let r = &p.record.package_record;
            let shown = format!("{} {}", r.name.as_normalized(), r.version);
            if provides::is_module_stand_in(&p.record.url) {
                printer.info(format!("{shown} ← {}", p.origin));
            } else {
                from_site.push(shown);
            }
        }
        if !from_site.is_empty() {
            printer.info(format!("from the site Python: {}", from_site.join(", ")));
        }
        for shadow in &self.solution.shadowed {
            let conda = &shadow.conda.package_record;
            printer.info(format!(
                "{} {} in the env shadows {}",
                conda.name.as_normalized(),
                conda.version,
                shadow.site.origin
            ));
        }
        for (package, module) in &self.virtuals {
            let line = virtual_line(package, module);
            if depends_on(&self.solution.records, package.name.as_normalized()) {
                printer.info(line);
            } else {
                printer.detail(format!("{line}: nothing needed it"));
            }
        }
        for c in &self.constraints {
            let line = format!("{} ← {}", c.spec, c.origin);
            let name = c.spec.name.as_exact().map(|n| n.as_normalized().to_owned());
            let used = name.is_some_and(|n| {
                self.solution
                    .records
                    .iter()
                    .any(|r| r.package_record.name.as_normalized() == n)
            });
            if used {
                printer.info(line);
            } else {
                printer.detail(format!("{line}: nothing needed it"));
            }
        }
    }
}

impl Site {
    /// For a lock, which has no solve to report: one line per stand-in the lock marks and
    /// per module virtual package a locked package needs, as [`Solved::report`] words them.
    pub(crate) fn report_for(
        &self,
        marked: &[(PackageName, Version, String)],
        records: &[RepoDataRecord],
        printer: &Printer,
    ) {
        for r in &self.stand_ins.records {
            let p = &r.value.package_record;
            if marked.iter().any(|(name, _, _)| name == &p.name) {
                printer.info(format!(
                    "{} {} ← module {}",
                    p.name.as_normalized(),
                    p.version,
                    r.module
                ));
            }
        }
        for (package, module) in &self.from_modules {
            if depends_on(records, package.name.as_normalized()) {
                printer.info(virtual_line(package, module));
            }
        }
    }
}

/// `__cuda 12.2 ← module cuda/12.2 (no CUDA driver here)`.
fn virtual_line(package: &GenericVirtualPackage, module: &str) -> String {
    format!(
        "{} ← module {module} ({})",
        virtual_packages::shown(package),
        virtual_packages::none_here(package)
    )
}

/// Whether any of `records` depends on the package `name`.
fn depends_on(records: &[RepoDataRecord], name: &str) -> bool {
    records.iter().any(|r| {
        r.package_record
            .depends
            .iter()
            .any(|d| d.split_whitespace().next() == Some(name))
    })
}

/// Build the request for `inputs` and solve it.
pub(crate) async fn solve(inputs: Inputs<'_>, ctx: &Ctx<'_>) -> Result<Solved> {
    let request = build(inputs, ctx)?;
    let constraints = request.solve.constraints.clone();
    let solution = conda::solve::solve(ctx.conda, request.solve, ctx.printer).await?;
    Ok(Solved {
        solution,
        virtuals: request.virtuals,
        constraints,
    })
}
