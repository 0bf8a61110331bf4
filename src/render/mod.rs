//! Templates for everything envmod writes for users to read or load. Defaults are embedded
//! in the binary; a file of the same name in the site's `templates_dir` replaces one, so a
//! site can change its modulefiles without rebuilding envmod.

pub(crate) mod escape;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Template name and built-in text.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "lmod/modulefile.lua",
        include_str!("../../templates/lmod/modulefile.lua"),
    ),
    (
        "tcl/modulefile.tcl",
        include_str!("../../templates/tcl/modulefile.tcl"),
    ),
    (
        "activate/activate.sh",
        include_str!("../../templates/activate/activate.sh"),
    ),
    (
        "activate/activate.fish",
        include_str!("../../templates/activate/activate.fish"),
    ),
];

pub(crate) struct Renderer {
    env: Environment<'static>,
    /// Templates that came from the site's `templates_dir`, for error messages.
    overrides: Vec<(String, PathBuf)>,
}

impl Renderer {
    pub(crate) fn new(templates_dir: Option<&Path>) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("lua", |s: String| escape::lua_quote(&s));
        env.add_filter("tcl", |s: String| escape::tcl_quote(&s));
        env.add_filter("sh", |s: String| escape::sh_quote(&s));
        env.add_filter("fish", |s: String| escape::fish_quote(&s));
        let mut overrides = Vec::new();
        for (name, builtin) in EMBEDDED {
            let (source, origin) = match templates_dir.map(|d| d.join(name)).filter(|p| p.is_file())
            {
                Some(path) => (
                    crate::fs::read_text(&path, crate::fs::SMALL_FILE, crate::fs::Links::Follow)
                        .with_context(|| format!("failed to read template {}", path.display()))?,
                    Some(path),
                ),
                None => (builtin.to_string(), None),
            };
            env.add_template_owned(name.to_string(), source)
                .map_err(|e| template_error(name, origin.clone(), e))?;
            overrides.extend(origin.map(|p| (name.to_string(), p)));
        }
        Ok(Self { env, overrides })
    }

    pub(crate) fn render(&self, name: &str, ctx: impl Serialize) -> Result<String> {
        let tmpl = self.env.get_template(name)?;
        tmpl.render(ctx).map_err(|e| {
            let origin = self
                .overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone());
            template_error(name, origin, e)
        })
    }
}

fn template_error(name: &str, origin: Option<PathBuf>, e: minijinja::Error) -> anyhow::Error {
    let place = origin.map_or_else(
        || format!("built-in template {name}"),
        |p| p.display().to_string(),
    );
    crate::error::UserError::failure(format!("template {place} is invalid: {e:#}"))
        .with_hint("fix the template in templates_dir, or remove it to use the built-in one")
        .into()
}
