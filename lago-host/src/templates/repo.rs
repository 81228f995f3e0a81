//! Template repositories in Lago's JSON shape.
//!
//! ```json
//! {"name": "embedded",
//!  "sources": {"local": {"type": "file", "args": {"root": "/var/lib/lago/repos/embedded"}}},
//!  "templates": {"lago-tiny": {"versions": {"v1": {"source": "local", "handle": "lago-tiny-v1.qcow2", "timestamp": 1700000000}}}}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::source::{http_get_string, Source};
use super::TemplateError;

/// One repository: named sources and the templates they serve.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateRepo {
    pub name: String,
    pub sources: BTreeMap<String, SourceSpec>,
    pub templates: BTreeMap<String, TemplateSpec>,
    /// Where the repository document was read from (for messages).
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SourceSpec {
    #[serde(rename = "type")]
    pub source_type: String,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

impl SourceSpec {
    /// The [`Source`] this entry describes; `name` is its key in the
    /// repository read from `origin` (for messages and relative roots).
    pub(crate) fn to_source(&self, name: &str, origin: &str) -> Result<Source, TemplateError> {
        let arg = |key: &str| {
            self.args.get(key).ok_or_else(|| TemplateError::BadRepo {
                origin: origin.to_string(),
                reason: format!(
                    "source {name:?} of type {:?} needs args.{key}",
                    self.source_type
                ),
            })
        };
        match self.source_type.as_str() {
            "file" => Ok(Source::File {
                root: file_root(arg("root")?, origin),
            }),
            "http" => Ok(Source::Http {
                baseurl: arg("baseurl")?.trim_end_matches('/').to_string(),
            }),
            other => Err(TemplateError::BadRepo {
                origin: origin.to_string(),
                reason: format!(
                    "source {name:?} has type {other:?}; expected \"file\" or \"http\""
                ),
            }),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateSpec {
    pub versions: BTreeMap<String, VersionSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VersionSpec {
    pub source: String,
    pub handle: String,
    /// When the version was made, in seconds since the epoch (Lago's
    /// `timestamp`). An integer or a fraction: lago-images wrote file mtimes
    /// as floats, and Lago compared them as numbers. Absent means 0.
    #[serde(default)]
    pub timestamp: f64,
}

/// A template version chosen from a repository, with its source ready to fetch.
#[derive(Debug, Clone)]
pub struct ResolvedVersion {
    pub repo: String,
    pub template: String,
    pub version: String,
    pub handle: String,
    pub source: Source,
}

impl ResolvedVersion {
    /// The name of the image in the store: `repo:template:version`, as Lago.
    pub fn store_name(&self) -> String {
        format!("{}:{}:{}", self.repo, self.template, self.version)
    }
}

impl TemplateRepo {
    /// Reads a repository document from a local file or an http(s) URL.
    pub fn load(location: &str) -> Result<Self, TemplateError> {
        let text = if is_url(location) {
            http_get_string(location)?
        } else {
            std::fs::read_to_string(location).map_err(|source| match source.kind() {
                // A path the user gave that names nothing: theirs to fix.
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    TemplateError::BadRepo {
                        origin: location.to_string(),
                        reason: "no such file (a repository is a repo.json file or URL)"
                            .to_string(),
                    }
                }
                _ => TemplateError::Io {
                    what: format!("reading template repository {location}"),
                    source,
                },
            })?
        };
        Self::parse(&text, location)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, TemplateError> {
        let mut repo: TemplateRepo =
            serde_json::from_str(text).map_err(|e| TemplateError::BadRepo {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        repo.origin = origin.to_string();
        let bad = |reason: String| TemplateError::BadRepo {
            origin: origin.to_string(),
            reason,
        };
        check_store_name("repository name", &repo.name).map_err(bad)?;
        for (template, spec) in &repo.templates {
            check_store_name("template name", template).map_err(bad)?;
            for version in spec.versions.keys() {
                check_store_name(&format!("version name of template {template}"), version)
                    .map_err(bad)?;
            }
        }
        Ok(repo)
    }

    /// Finds repository `name` in the `template_repos` folder: the first
    /// `*.json` below it (sorted by path, symlinks not followed, as Lago's
    /// `find DIR -name '*.json'`) that is a repository whose `name` field is
    /// `name`. Files that are not repositories are skipped.
    pub fn find_by_name(name: &str, repos_dir: &Path) -> Result<Self, TemplateError> {
        check_store_name("repository name", name).map_err(|reason| TemplateError::BadRepo {
            origin: "--template-repo-name".into(),
            reason,
        })?;
        let mut files = Vec::new();
        json_files(repos_dir, 0, &mut files);
        files.sort();
        for file in &files {
            match Self::load(&file.to_string_lossy()) {
                Ok(repo) if repo.name == name => return Ok(repo),
                Ok(_) => {}
                Err(e) => tracing::debug!("not a template repository: {e}"),
            }
        }
        Err(TemplateError::RepoNotFound {
            name: name.to_string(),
            searched: vec![format!("{}/**/*.json", repos_dir.display())],
        })
    }

    /// The named version of a template, or its newest by timestamp.
    pub fn resolve(
        &self,
        template: &str,
        version: Option<&str>,
    ) -> Result<ResolvedVersion, TemplateError> {
        let spec = self
            .templates
            .get(template)
            .ok_or_else(|| TemplateError::TemplateNotFound {
                template: template.to_string(),
                repo: self.name.clone(),
                available: self.templates.keys().cloned().collect(),
            })?;
        let (version_name, version) =
            match version {
                Some(v) => spec.versions.get_key_value(v).ok_or_else(|| {
                    TemplateError::VersionNotFound {
                        template: template.to_string(),
                        version: v.to_string(),
                        available: spec.versions.keys().cloned().collect(),
                    }
                })?,
                None => spec
                    .versions
                    .iter()
                    .max_by(|(an, a), (bn, b)| {
                        a.timestamp.total_cmp(&b.timestamp).then_with(|| an.cmp(bn))
                    })
                    .ok_or_else(|| TemplateError::VersionNotFound {
                        template: template.to_string(),
                        version: "(newest)".to_string(),
                        available: Vec::new(),
                    })?,
            };
        let source_spec =
            self.sources
                .get(&version.source)
                .ok_or_else(|| TemplateError::BadRepo {
                    origin: self.origin.clone(),
                    reason: format!(
                        "template {template} version {version_name} names source {:?}, \
                         which the repository does not define",
                        version.source
                    ),
                })?;
        Ok(ResolvedVersion {
            repo: self.name.clone(),
            template: template.to_string(),
            version: version_name.clone(),
            handle: version.handle.clone(),
            source: source_spec.to_source(&version.source, &self.origin)?,
        })
    }
}

/// Names from a repository become file names in the template store
/// (`repo:template:version`): letters, digits, '.', '_', '+' and '-',
/// starting with a letter or digit, at most 128 characters (so no '/', no
/// '..', no ':', no leading '.').
pub fn check_store_name(what: &str, name: &str) -> Result<(), String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if first_ok && rest_ok && name.len() <= 128 {
        return Ok(());
    }
    Err(format!(
        "{what} {name:?} is not allowed: expected letters, digits, '.', '_', '+' and '-', \
         starting with a letter or digit, at most 128 characters"
    ))
}

/// Depth of folders [`TemplateRepo::find_by_name`] looks into.
const MAX_REPO_DEPTH: usize = 8;

/// The `*.json` regular files below `dir` (not through symlinks).
fn json_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        let p = e.path();
        if t.is_dir() && depth < MAX_REPO_DEPTH {
            json_files(&p, depth + 1, out);
        } else if t.is_file() && p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

pub(crate) fn is_url(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

/// A file source's root: environment variables (`$VAR`, `${VAR}`) and a
/// leading `~` expanded as Lago's `expanduser(expandvars(root))` (an
/// undefined variable is kept as written), relative roots taken from the
/// repository file's folder.
pub(crate) fn file_root(root: &str, origin: &str) -> PathBuf {
    let env = |n: &str| std::env::var(n).ok().or_else(|| Some(format!("${n}")));
    let root = crate::initfile::expand_vars(root, &env).unwrap_or_else(|_| root.to_string());
    let root = match (root.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => root,
    };
    let root = PathBuf::from(root);
    if root.is_absolute() || is_url(origin) {
        return root;
    }
    Path::new(origin)
        .parent()
        .map(|dir| dir.join(&root))
        .unwrap_or(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = r#"{
        "name": "r",
        "sources": {"local": {"type": "file", "args": {"root": "/srv/t"}}},
        "templates": {"el": {"versions": {
            "v1": {"source": "local", "handle": "el-v1", "timestamp": 10},
            "v2": {"source": "local", "handle": "el-v2", "timestamp": 20},
            "v0": {"source": "local", "handle": "el-v0", "timestamp": 5}}}}
    }"#;

    #[test]
    fn newest_version_by_timestamp() {
        let repo = TemplateRepo::parse(REPO, "/x/repo.json").expect("parse");
        let v = repo.resolve("el", None).expect("resolve");
        assert_eq!(v.version, "v2");
        assert_eq!(v.handle, "el-v2");
        assert_eq!(v.store_name(), "r:el:v2");
    }

    /// Issue 18: lago-images and the public Lago template server wrote
    /// fractional timestamps; the largest one is the newest.
    #[test]
    fn fractional_timestamps() {
        let text = r#"{
            "name": "r",
            "sources": {"local": {"type": "file", "args": {"root": "/srv/t"}}},
            "templates": {"el": {"versions": {
                "v1": {"source": "local", "handle": "el-v1", "timestamp": 1536249262.123},
                "v2": {"source": "local", "handle": "el-v2", "timestamp": 1536249262.9},
                "v3": {"source": "local", "handle": "el-v3", "timestamp": 1536249262}}}}
        }"#;
        let repo = TemplateRepo::parse(text, "/x/repo.json").expect("parse");
        assert_eq!(repo.resolve("el", None).expect("resolve").version, "v2");
        let text = text.replace("1536249262.9", "\"soon\"");
        let e = TemplateRepo::parse(&text, "/x/repo.json").expect_err("a string");
        assert!(e.to_string().contains("invalid type"), "{e}");
    }

    #[test]
    fn named_version_and_errors() {
        let repo = TemplateRepo::parse(REPO, "/x/repo.json").expect("parse");
        assert_eq!(repo.resolve("el", Some("v0")).expect("v0").handle, "el-v0");
        let err = repo.resolve("el", Some("v9")).expect_err("missing version");
        assert!(err.to_string().contains("v9"), "{err}");
        let err = repo.resolve("nope", None).expect_err("missing template");
        assert!(err.to_string().contains("el"), "lists available: {err}");
    }

    #[test]
    fn names_that_would_leave_the_store_are_refused() {
        for (from, to) in [
            ("\"name\": \"r\"", "\"name\": \"/tmp/evil\""),
            ("\"name\": \"r\"", "\"name\": \"..\""),
            ("\"el\": {", "\"../../x\": {"),
            ("\"v1\": {", "\".hidden\": {"),
            ("\"v2\": {", "\"a:b\": {"),
        ] {
            let text = REPO.replacen(from, to, 1);
            assert_ne!(text, REPO, "{to}");
            let err = TemplateRepo::parse(&text, "/x/repo.json").expect_err(to);
            assert!(err.to_string().contains("is not allowed"), "{err}");
            assert!(err.to_string().contains("/x/repo.json"), "{err}");
        }
        let err = TemplateRepo::find_by_name("../etc", Path::new("/x")).expect_err("name");
        assert!(err.to_string().contains("is not allowed"), "{err}");
    }

    #[test]
    fn relative_file_root_is_beside_the_repo_file() {
        assert_eq!(
            file_root("imgs", "/a/b/repo.json"),
            PathBuf::from("/a/b/imgs")
        );
        assert_eq!(file_root("/abs", "/a/b/repo.json"), PathBuf::from("/abs"));
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            file_root("~/t", "/a/r.json"),
            PathBuf::from(format!("{home}/t"))
        );
        assert_eq!(
            file_root("$HOME/t", "/a/r.json"),
            PathBuf::from(format!("{home}/t"))
        );
        assert_eq!(
            file_root("/x/$LAGO_NOT_SET_ANYWHERE/t", "/a/r.json"),
            PathBuf::from("/x/$LAGO_NOT_SET_ANYWHERE/t")
        );
    }

    #[test]
    fn repo_found_by_its_name_field_anywhere_below() {
        let dir = tempfile::tempdir().expect("tmp");
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::write(dir.path().join("junk.json"), "{not json").expect("write");
        std::fs::write(
            dir.path().join("other.json"),
            REPO.replace("\"r\"", "\"o\""),
        )
        .expect("write");
        std::fs::write(deep.join("whatever.json"), REPO).expect("write");
        let repo = TemplateRepo::find_by_name("r", dir.path()).expect("found");
        assert_eq!(repo.name, "r");
        assert!(
            repo.origin.ends_with("a/b/whatever.json"),
            "{}",
            repo.origin
        );
        let e = TemplateRepo::find_by_name("none", dir.path()).expect_err("missing");
        assert!(e.to_string().contains("none"), "{e}");
        assert!(e.to_string().contains("--template-repo-path"), "{e}");
        // the embedded one: how to build it
        let e = TemplateRepo::find_by_name("embedded", dir.path()).expect_err("missing");
        assert!(e.to_string().contains("sudo lago-build-template"), "{e}");
    }
}
