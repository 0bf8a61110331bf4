//! What every step of a command gets from it: the printer, the process environment read
//! once, the conda settings, the compiled templates and what the site gives the solve; and
//! the channels a solve uses. Apart from `plan` and `apply`, so that the request builder,
//! which the planners call, can take them without importing a planner back.

use anyhow::Result;
use rattler_conda_types::Channel;

use crate::{
    conda::{self, CondaSettings, specs::Spec},
    environ::Environ,
    outputs::{modulefile::ModulefileOptions, write::Outputs},
    printer::Printer,
    render::Renderer,
};

/// What every step needs from the command that runs the pipeline.
pub(crate) struct Ctx<'a> {
    pub(crate) printer: &'a Printer,
    pub(crate) environ: &'a Environ,
    pub(crate) conda: &'a CondaSettings,
    /// The site's templates, read when the first output is rendered.
    pub(crate) renderer: &'a Renderer,
    pub(crate) options: ModulefileOptions,
    /// What the cluster gives the solve: the `module_provides` rules and the site package
    /// names.
    pub(crate) site: &'a crate::site::SiteSettings,
}

impl Ctx<'_> {
    pub(crate) fn outputs(&self) -> Outputs<'_> {
        Outputs {
            renderer: self.renderer,
            options: self.options,
            printer: self.printer,
        }
    }
}

/// Resolved channels, free of secrets, and the client that authenticates to them; the
/// install that follows the solve downloads with the same client.
#[derive(Default)]
pub(crate) struct Channels {
    pub(crate) list: Vec<Channel>,
    pub(crate) network: conda::Network,
}

/// Resolve channel arguments against the alias and the working directory.
pub(crate) fn channels(raw: &[String], ctx: &Ctx<'_>) -> Result<Channels> {
    channels_for(raw, &mut [], ctx)
}

/// [`channels`], and the channels `specs` name (`chan::pkg`), resolved the same way: each
/// is searched too (after `raw`, as conda does), and its spec then names the resolved
/// channel, since the solver keeps only records from the very channel a spec names.
pub(crate) fn channels_for(raw: &[String], specs: &mut [Spec], ctx: &Ctx<'_>) -> Result<Channels> {
    let mut all = raw.to_vec();
    let written: Vec<Option<String>> = specs
        .iter()
        .map(|s| s.channel().map(conda::channels::as_written))
        .collect();
    for w in written.iter().flatten() {
        if !all.contains(w) {
            all.push(w.clone());
        }
    }
    let (resolved, credentials) =
        conda::channels::resolve_all(&all, &ctx.conda.channel_alias, ctx.environ.cwd())?;
    for (spec, w) in specs.iter_mut().zip(&written) {
        if let Some(w) = w {
            let at = all.iter().position(|a| a == w).expect("added above");
            spec.set_channel(resolved[at].clone());
        }
    }
    // `-c chan` and `chan::pkg` (or the URL they both name) are one channel, searched once.
    let mut list: Vec<Channel> = Vec::with_capacity(resolved.len());
    for channel in resolved {
        if !list.iter().any(|c| c.base_url == channel.base_url) {
            list.push(channel);
        }
    }
    Ok(Channels {
        list,
        network: conda::Network::new(credentials),
    })
}
