//! What every step of a command gets from it: the printer, the process environment read
//! once, the conda settings, the compiled templates and what the site gives the solve; and
//! the channels a solve uses. Apart from `ops`, so that the request builder, which `ops`
//! calls, can take them without importing `ops` back.

use anyhow::Result;
use rattler_conda_types::Channel;

use crate::{
    conda::{self, CondaSettings},
    environ::Environ,
    outputs::modulefile::ModulefileOptions,
    printer::Printer,
    render::Renderer,
};

/// What every step needs from the command that runs the pipeline.
pub(crate) struct Ctx<'a> {
    pub(crate) printer: &'a Printer,
    pub(crate) environ: &'a Environ,
    pub(crate) conda: &'a CondaSettings,
    /// Compiled before anything else: a broken site template must cost nothing.
    pub(crate) renderer: &'a Renderer,
    pub(crate) options: ModulefileOptions,
    /// What the cluster gives the solve: the `module_provides` rules and the site package
    /// names.
    pub(crate) site: &'a crate::site::SiteSettings,
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
    let (list, credentials) =
        conda::channels::resolve_all(raw, &ctx.conda.channel_alias, ctx.environ.cwd())?;
    Ok(Channels {
        list,
        network: conda::Network::new(credentials),
    })
}
