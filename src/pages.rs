//! HTML pages rendered with minijinja: built-in templates, operator overrides.
//!
//! Why one place: the login page, the error pages (403, 404, 503, logged out),
//! the stale-follows report and the demo's hello app share a look
//! (`base.html`) and one rendering path. The built-in templates are compiled
//! into the binary; an operator's `templates_dir` may override any of them by
//! file name. Template names end in `.html`, so minijinja auto-escapes every
//! value.

use std::path::Path;

use serde::Serialize;

/// Templates compiled into the binary: (name, source).
const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("message.html", include_str!("../templates/message.html")),
    (
        "policy_denied.html",
        include_str!("../templates/policy_denied.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    (
        "oidc_logout.html",
        include_str!("../templates/oidc_logout.html"),
    ),
    (
        "oidc_reauth.html",
        include_str!("../templates/oidc_reauth.html"),
    ),
    ("hello.html", include_str!("../templates/hello.html")),
    (
        "stale_follows.html",
        include_str!("../templates/stale_follows.html"),
    ),
];

/// Why a page could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    #[error("template {name}: {source}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
    #[error("cannot read templates_dir {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// The page renderer.
pub struct Pages {
    env: minijinja::Environment<'static>,
}

impl Pages {
    /// Built-in templates, then every `*.html` in `templates_dir` replacing
    /// (or adding to) them. Every template is compiled here, so a broken
    /// override fails at startup, not on a visitor's request.
    pub fn new(templates_dir: Option<&Path>) -> Result<Self, PagesError> {
        let mut env = minijinja::Environment::new();
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .map_err(|source| PagesError::Template {
                    name: (*name).to_string(),
                    source,
                })?;
        }
        if let Some(dir) = templates_dir {
            let dir_err = |source| PagesError::Dir {
                path: dir.display().to_string(),
                source,
            };
            for entry in std::fs::read_dir(dir).map_err(dir_err)? {
                let path = entry.map_err(dir_err)?.path();
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if !name.ends_with(".html") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).map_err(dir_err)?;
                env.add_template_owned(name.clone(), source)
                    .map_err(|source| PagesError::Template { name, source })?;
            }
        }
        Ok(Self { env })
    }

    /// Renders template `name` with `context`.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, PagesError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|source| PagesError::Template {
                name: name.to_string(),
                source,
            })?;
        template
            .render(minijinja::value::Serde(context))
            .map_err(|source| PagesError::Template {
                name: name.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pages_render_and_escape() {
        let pages = Pages::new(None).unwrap();
        let html = pages
            .render("message.html", minijinja::context! { title => "Nope", message => "<script>x</script>", status => 403 })
            .unwrap();
        assert!(html.contains("Nope"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }

    #[test]
    fn templates_dir_overrides_builtins_and_bad_templates_fail_early() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("message.html"), "custom {{ title }}").unwrap();
        let pages = Pages::new(Some(dir.path())).unwrap();
        assert_eq!(
            pages
                .render("message.html", minijinja::context! { title => "x" })
                .unwrap(),
            "custom x"
        );
        std::fs::write(dir.path().join("message.html"), "{% if %}").unwrap();
        assert!(Pages::new(Some(dir.path())).is_err());
    }
}
