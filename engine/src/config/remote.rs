//! Module sources in git: `git::URL[//DIR][?ref=REF]`. `tik init` fetches each into
//! `.tik/modules/<key>/` (the key is a hash of the URL and ref); every other command
//! reads the modules from there, and refuses a source that was not fetched, so a
//! plan never reaches the network for its configuration and always reads what init
//! fetched.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a module's `source` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory relative to the calling module's.
    Local(String),
    Git(GitSource),
}

/// A directory in a git repository, at a branch, tag or commit.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct GitSource {
    /// What `git clone` is given.
    pub url: String,
    /// The module's directory in the repository ("" for its top).
    pub dir: String,
    /// A branch, tag or commit; none: the repository's default branch.
    pub reference: Option<String>,
}

/// Why a source cannot be used, and what to write instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: String,
}

impl Problem {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            help: help.into(),
        }
    }
}

const FORMS: &str = "a module source is a local directory (./dir or ../dir) or a directory in a \
                     git repository: git::https://host/org/repo.git//dir?ref=v1.0.0";

impl Source {
    pub fn parse(source: &str) -> Result<Source, Problem> {
        if source.starts_with("./") || source.starts_with("../") {
            return Ok(Source::Local(source.to_string()));
        }
        let Some(rest) = source.strip_prefix("git::") else {
            let help = match source.split_once('/') {
                Some((host, _)) if host.contains('.') && !source.contains("://") => format!(
                    "for a git repository write git::https://{}.git",
                    source.trim_end_matches('/')
                ),
                _ if source.starts_with("https://") || source.starts_with("ssh://") => {
                    format!("for a git repository write git::{source}")
                }
                _ if source.starts_with('/') => {
                    "write the directory relative to this file's, starting with ./ or ../"
                        .to_string()
                }
                _ => FORMS.to_string(),
            };
            return Err(Problem::new(
                format!("module source \"{source}\" is neither a local directory nor a git source"),
                help,
            ));
        };
        let (location, query) = match rest.rsplit_once('?') {
            Some((l, q)) => (l, Some(q)),
            None => (rest, None),
        };
        let mut reference = None;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("ref", r)) if !r.is_empty() => reference = Some(r.to_string()),
                Some(("ref", _)) => {
                    return Err(Problem::new(
                        format!("module source \"{source}\" has an empty ref"),
                        "name a branch, tag or commit: ?ref=v1.0.0",
                    ))
                }
                _ => {
                    return Err(Problem::new(
                        format!("module source \"{source}\" has an unknown option \"{pair}\""),
                        "a git source takes one option, the branch, tag or commit: ?ref=v1.0.0",
                    ))
                }
            }
        }
        // The module's directory follows a `//` after the URL's own (`https://`).
        let after_scheme = location.find("://").map_or(0, |i| i + 3);
        let (url, dir) = match location[after_scheme..].find("//") {
            Some(i) => (
                &location[..after_scheme + i],
                location[after_scheme + i + 2..].trim_matches('/'),
            ),
            None => (location, ""),
        };
        if url.is_empty() || url.ends_with("://") {
            return Err(Problem::new(
                format!("module source \"{source}\" names no repository"),
                FORMS,
            ));
        }
        if dir.split('/').any(|part| part == "..") {
            return Err(Problem::new(
                format!("module source \"{source}\" leaves its repository with \"..\""),
                "name a directory inside the repository after the //",
            ));
        }
        Ok(Source::Git(GitSource {
            url: url.to_string(),
            dir: dir.to_string(),
            reference,
        }))
    }
}

impl GitSource {
    /// The directory name of this repository at this ref under `.tik/modules/`.
    fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.url.as_bytes());
        h.update([0]);
        h.update(self.reference.as_deref().unwrap_or("").as_bytes());
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The source as the user writes it.
    pub fn display(&self) -> String {
        let mut s = format!("git::{}", self.url);
        if !self.dir.is_empty() {
            s.push_str("//");
            s.push_str(&self.dir);
        }
        if let Some(r) = &self.reference {
            s.push_str("?ref=");
            s.push_str(r);
        }
        s
    }
}

/// What the store does with a git source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Read what `tik init` fetched; refuse a source it did not.
    Never,
    /// Fetch what is not fetched yet (`tik init`).
    Missing,
    /// Fetch every source again, for branches that moved (`tik init --upgrade`).
    Again,
}

/// A repository `tik init` fetched, for its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub source: String,
    pub commit: String,
}

/// The fetched repositories under `.tik/modules/`.
pub struct Store {
    root: PathBuf,
    fetch: Fetch,
    /// The keys fetched by this run: fetched once, however many modules use them.
    done: HashSet<String>,
    pub fetched: Vec<Fetched>,
}

impl Store {
    pub fn new(root: PathBuf, fetch: Fetch) -> Store {
        Store {
            root,
            fetch,
            done: HashSet::new(),
            fetched: Vec::new(),
        }
    }

    /// The module's directory, fetched first when the store fetches.
    pub fn dir(&mut self, source: &GitSource) -> Result<PathBuf, Problem> {
        let key = source.key();
        let repo = self.root.join(&key);
        let fetch = match self.fetch {
            _ if self.done.contains(&key) => false,
            Fetch::Never => false,
            Fetch::Missing => !repo.is_dir(),
            Fetch::Again => true,
        };
        if fetch {
            let commit = clone(source, &self.root, &key)?;
            self.done.insert(key);
            self.fetched.push(Fetched {
                source: without_dir(source),
                commit,
            });
        } else if !repo.is_dir() {
            return Err(Problem::new(
                format!("module source {} is not fetched yet", source.display()),
                "run tik init to fetch it (and again whenever a git source changes)",
            ));
        }
        let dir = repo.join(&source.dir);
        if !dir.is_dir() {
            let mut found: Vec<String> = std::fs::read_dir(&repo)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect();
            found.sort();
            return Err(Problem::new(
                format!(
                    "{} has no directory \"{}\"",
                    without_dir(source),
                    source.dir
                ),
                if found.is_empty() {
                    "its top has no directories: leave out the //dir".to_string()
                } else {
                    format!("its top directories are: {}", found.join(", "))
                },
            ));
        }
        Ok(dir)
    }
}

fn without_dir(source: &GitSource) -> String {
    GitSource {
        dir: String::new(),
        ..source.clone()
    }
    .display()
}

/// Clones the source's repository at its ref into `root/key` (through a directory of
/// its own, renamed into place once complete) and returns the commit it is at.
fn clone(source: &GitSource, root: &Path, key: &str) -> Result<String, Problem> {
    std::fs::create_dir_all(root).map_err(|e| {
        Problem::new(
            format!("cannot create {}: {e}", root.display()),
            "tik keeps fetched modules there; check its permissions",
        )
    })?;
    let partial = root.join(format!(".{key}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let result = clone_into(source, &partial).and_then(|commit| {
        let repo = root.join(key);
        let _ = std::fs::remove_dir_all(&repo);
        std::fs::rename(&partial, &repo).map_err(|e| {
            Problem::new(
                format!("cannot move the fetched module to {}: {e}", repo.display()),
                "check the permissions of .tik/modules",
            )
        })?;
        Ok(commit)
    });
    let _ = std::fs::remove_dir_all(&partial);
    result
}

fn clone_into(source: &GitSource, into: &Path) -> Result<String, Problem> {
    let url = &source.url;
    let failed = |what: &str, said: String| {
        Problem::new(
            format!("cannot fetch {}: {what}: {said}", without_dir(source)),
            "check the URL and the ref, and that git can reach it (try: git ls-remote URL)",
        )
    };
    match &source.reference {
        None => {
            git(&["clone", "--quiet", "--depth", "1", "--", url], Some(into))
                .map_err(|said| failed("git clone failed", said))?;
        }
        Some(r) => {
            // A branch or tag comes shallow; a commit needs the history to find it in.
            if let Err(said) = git(
                &["clone", "--quiet", "--depth", "1", "--branch", r, "--", url],
                Some(into),
            ) {
                let commit_like =
                    (4..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit());
                if !commit_like {
                    let what = if said.contains("not found in upstream") {
                        format!("no branch or tag \"{r}\"")
                    } else {
                        "git clone failed".to_string()
                    };
                    return Err(failed(&what, said));
                }
                let _ = std::fs::remove_dir_all(into);
                git(
                    &["clone", "--quiet", "--no-checkout", "--", url],
                    Some(into),
                )
                .map_err(|said| failed("git clone failed", said))?;
                git_in(into, &["checkout", "--quiet", "--detach", r])
                    .map_err(|said| failed(&format!("no branch, tag or commit \"{r}\""), said))?;
            }
        }
    }
    git_in(into, &["rev-parse", "HEAD"]).map_err(|said| failed("git rev-parse failed", said))
}

/// Runs git in the clone `repo`.
fn git_in(repo: &Path, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new("git");
    c.arg("-C").arg(repo).args(args);
    run_git(c)
}

/// Runs `git ARGS DEST`.
fn git(args: &[&str], dest: Option<&Path>) -> Result<String, String> {
    let mut c = Command::new("git");
    c.args(args);
    if let Some(d) = dest {
        c.arg(d);
    }
    run_git(c)
}

/// Runs git (never asking for a password: it fails instead) and returns what it
/// printed, or what it said on failure.
fn run_git(mut c: Command) -> Result<String, String> {
    // A repository named by the environment (tik run from a git hook) is not the
    // clone's.
    for v in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        c.env_remove(v);
    }
    let out = c
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git ({e}); install it (Debian: apt-get install git)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.trim();
        Err(if said.is_empty() {
            format!("git exited with {}", out.status)
        } else {
            said.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_source(url: &str, dir: &str, reference: Option<&str>) -> Source {
        Source::Git(GitSource {
            url: url.into(),
            dir: dir.into(),
            reference: reference.map(str::to_string),
        })
    }

    #[test]
    fn sources_are_split_into_url_directory_and_ref() {
        for (text, want) in [
            ("./m", Source::Local("./m".into())),
            ("../m/n", Source::Local("../m/n".into())),
            (
                "git::https://example.com/acme/tik-modules.git//monitoring?ref=v1.2.0",
                git_source(
                    "https://example.com/acme/tik-modules.git",
                    "monitoring",
                    Some("v1.2.0"),
                ),
            ),
            (
                "git::https://example.com/acme/m.git",
                git_source("https://example.com/acme/m.git", "", None),
            ),
            (
                "git::file:///srv/git/m.git//a/b/?ref=main",
                git_source("file:///srv/git/m.git", "a/b", Some("main")),
            ),
            (
                "git::git@example.com:acme/m.git//x",
                git_source("git@example.com:acme/m.git", "x", None),
            ),
            (
                "git::/srv/git/m//x?ref=abc123",
                git_source("/srv/git/m", "x", Some("abc123")),
            ),
        ] {
            assert_eq!(Source::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn a_source_that_is_neither_says_what_to_write() {
        for (text, message, help) in [
            (
                "github.com/acme/m",
                "is neither a local directory nor a git source",
                "git::https://github.com/acme/m.git",
            ),
            (
                "https://example.com/m.git",
                "is neither",
                "git::https://example.com/m.git",
            ),
            ("/abs/m", "is neither", "starting with ./ or ../"),
            ("acme/m/net", "is neither", "git::https://host/org/repo.git"),
            (
                "git::https://x/m.git?ref=",
                "has an empty ref",
                "?ref=v1.0.0",
            ),
            (
                "git::https://x/m.git?depth=1",
                "unknown option \"depth=1\"",
                "one option",
            ),
            (
                "git::https://x/m.git//../etc",
                "leaves its repository",
                "after the //",
            ),
            ("git::", "names no repository", "git::https://"),
        ] {
            let p = Source::parse(text).unwrap_err();
            assert!(p.message.contains(message), "{text}: {p:?}");
            assert!(p.help.contains(help), "{text}: {p:?}");
        }
    }

    #[test]
    fn a_source_reads_back_as_written() {
        let text = "git::https://example.com/m.git//mon?ref=v1";
        let Ok(Source::Git(g)) = Source::parse(text) else {
            panic!("a git source")
        };
        assert_eq!(g.display(), text);
        assert_ne!(
            g.key(),
            GitSource {
                reference: Some("v2".into()),
                ..g.clone()
            }
            .key(),
            "each ref is fetched on its own"
        );
    }
}
