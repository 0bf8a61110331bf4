//! Templates for everything envmod writes for users to read or load. Defaults are embedded
//! in the binary; a file of the same name in the site's `templates_dir` replaces one, so a
//! site can change its modulefiles without rebuilding envmod.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result};

use crate::escape;
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

/// The templates of one command, compiled when the first output is rendered: a command
/// that renders nothing never reads the site's templates, so a broken one costs it nothing,
/// and every command that renders uses the site's (none can write with the wrong one).
pub(crate) struct Renderer {
    templates_dir: Option<PathBuf>,
    loaded: OnceLock<Loaded>,
}

struct Loaded {
    env: Environment<'static>,
    /// Templates that came from the site's `templates_dir`, for error messages.
    overrides: Vec<(String, PathBuf)>,
}

impl Renderer {
    pub(crate) fn new(templates_dir: Option<&Path>) -> Self {
        Self {
            templates_dir: templates_dir.map(Path::to_path_buf),
            loaded: OnceLock::new(),
        }
    }

    pub(crate) fn render(&self, name: &str, ctx: impl Serialize) -> Result<String> {
        let loaded = self.loaded()?;
        let tmpl = loaded.env.get_template(name)?;
        tmpl.render(ctx).map_err(|e| {
            let origin = loaded
                .overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone());
            template_error(name, origin, e)
        })
    }

    /// A template that fails to load is not kept: each render names it again.
    fn loaded(&self) -> Result<&Loaded> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded);
        }
        let loaded = Loaded::read(self.templates_dir.as_deref())?;
        Ok(self.loaded.get_or_init(|| loaded))
    }
}

impl Loaded {
    fn read(templates_dir: Option<&Path>) -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_site_template_is_read_only_when_something_is_rendered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lmod")).unwrap();
        let broken = dir.path().join("lmod/modulefile.lua");
        std::fs::write(&broken, "{% if %}").unwrap();
        let renderer = Renderer::new(Some(dir.path()));
        let err = renderer.render("lmod/modulefile.lua", ()).unwrap_err();
        assert!(
            format!("{err:#}").contains(&broken.display().to_string()),
            "{err:#}"
        );
        std::fs::write(&broken, "site {{ name }}").unwrap();
        let text = renderer
            .render("lmod/modulefile.lua", serde_json::json!({"name": "x"}))
            .unwrap();
        assert_eq!(text, "site x");
    }
}
