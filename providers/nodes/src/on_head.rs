//! `controller { on = "head" }`: the cluster's head runs tik's controller as a
//! service, the shipped `_controller` runtime. Apply copies it tik's binary, the
//! configuration's files as applied and the state backend's settings; the controller
//! there plans with the variables state records.

use crate::steps::shell_quote;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tik_engine::diag::{Diagnostic, Diagnostics};
use tik_engine::value::{Map, Value};

/// The runtime that runs the controller.
pub const RUNTIME: &str = "_controller";

/// What the command line tells the provider for a controller on a head: the binary
/// to copy, the project the files come from, the backend's settings as
/// `.tik/backend.json` holds them (with paths made absolute), and the environment the
/// controller needs (where the local provider keeps its machines, a state key's
/// variable). The controller on the head gets it back whole in `ORIGIN`, so that its
/// own plans give the `_controller` service the same params as the apply that
/// installed it, and do not install it again.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bundle {
    pub binary: PathBuf,
    /// What tells one build of the binary from another (its size and time): another
    /// one is copied to the head again.
    #[serde(default)]
    pub binary_id: String,
    /// The system and machine the binary runs on, as `uname -s` and `uname -m` say
    /// them (`Linux x86_64`).
    #[serde(default)]
    pub platform: String,
    pub project: PathBuf,
    pub backend: String,
    pub env: Vec<(String, String)>,
}

/// The platform this binary was built for, as `uname -s` and `uname -m` name it.
pub fn this_platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    format!("{os} {}", std::env::consts::ARCH)
}

/// What tells a build of the binary at `path` from another: its size and when it
/// was written.
pub fn binary_id(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return String::new();
    };
    let written = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}-{written}", meta.len())
}

/// The variable that hands the controller on a head the bundle it was installed with.
pub const ORIGIN: &str = "TIK_CONTROLLER_ORIGIN";

impl Bundle {
    /// The `export` lines of the controller's environment: the bundle's, and the
    /// bundle itself in `ORIGIN`.
    fn exports(&self) -> String {
        let mut lines: String = self
            .env
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
            .collect();
        let origin = serde_json::to_string(self).unwrap_or_default();
        lines.push_str(&format!("export {ORIGIN}={}\n", shell_quote(&origin)));
        lines
    }
}

/// The project's files as the head gets them, relative to the project, and a hash
/// of their contents: every file of the project directory (what its configuration
/// reads with `file()` and its runtimes' scripts too), but what tik keeps for
/// itself in `.tik/` (its fetched modules are copied), git's, and state files.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub files: Vec<String>,
    pub hash: String,
}

/// At most this much is copied to a head.
const MOST_FILES: usize = 10_000;
const MOST_BYTES: u64 = 100 << 20;

impl Files {
    pub fn of(root: &Path) -> Result<Files, String> {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let mut found: Vec<String> = Vec::new();
        let mut bytes = 0u64;
        let mut todo: Vec<PathBuf> = vec![root.clone()];
        while let Some(dir) = todo.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            for e in entries.flatten() {
                let path = e.path();
                let Ok(rel) = path.strip_prefix(&root) else {
                    continue;
                };
                let rel = rel.to_string_lossy().into_owned();
                let Ok(kind) = e.file_type() else { continue };
                if kind.is_dir() {
                    let skipped = rel == ".git"
                        || (rel == ".tik" || rel.starts_with(".tik/"))
                            && rel != ".tik/modules"
                            && !rel.starts_with(".tik/modules/")
                            && !".tik/modules".starts_with(&rel);
                    if !skipped {
                        todo.push(path);
                    }
                    continue;
                }
                // Regular files only (a link may lead anywhere); no state.
                if !kind.is_file()
                    || rel.contains(".tikstate")
                    || rel.starts_with(".tik/") && !rel.starts_with(".tik/modules/")
                {
                    continue;
                }
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                found.push(rel);
                if found.len() > MOST_FILES || bytes > MOST_BYTES {
                    return Err(format!(
                        "the project directory holds more than {MOST_FILES} files or {} MB, too much to copy to a head",
                        MOST_BYTES >> 20
                    ));
                }
            }
        }
        found.sort();
        let mut hash = FilesHash::default();
        for rel in &found {
            let text =
                std::fs::read(root.join(rel)).map_err(|e| format!("cannot read {rel}: {e}"))?;
            hash.add(rel, &text);
        }
        Ok(Files {
            hash: hash.hex(),
            files: found,
        })
    }
}

/// The hash of a project's files, each by its path and contents: what a plan
/// computes, and what the copy apply sends must have.
#[derive(Default)]
pub struct FilesHash(Sha256);

impl FilesHash {
    pub fn add(&mut self, rel: &str, contents: &[u8]) {
        self.0.update(rel.as_bytes());
        self.0.update([0]);
        self.0.update(contents);
        self.0.update([0]);
    }

    pub fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A `runtime "_controller"` block written by hand: refused, as tik fills it.
pub fn written_by_hand(config: &Map, what: &str) -> Result<(), Diagnostics> {
    let written = config.get("runtime").and_then(|r| r.get(RUNTIME)).is_some();
    if written {
        return Err(Diagnostic::new(format!(
            "{what}: runtime \"{RUNTIME}\" is tik's own controller service"
        ))
        .help("ask for it with controller { on = \"head\" } in the cluster, and remove the runtime block")
        .into());
    }
    Ok(())
}

/// Whether the cluster's block asks for a controller on its head.
pub fn asked(config: &Map) -> bool {
    config
        .get("controller")
        .and_then(|c| c.get("on"))
        .and_then(Value::as_str)
        == Some("head")
}

/// What a step of the `_controller` runtime copies to the head, by step name.
pub type Puts = Vec<(&'static str, Value)>;

/// The cluster's block with the `_controller` runtime added, its params filled, and
/// what its steps copy to the head (by step: `install` the binary, `configure` the
/// project's files); or why it cannot be.
pub fn with_controller(
    config: &Map,
    label: &str,
    bundle: Option<&Bundle>,
    root: &Path,
    what: &str,
) -> Result<(Map, Puts), Diagnostics> {
    let fail = |message: String, help: &str| -> Diagnostics {
        Diagnostic::new(format!("{what}: {message}"))
            .help(help)
            .into()
    };
    let Some(bundle) = bundle else {
        return Err(fail(
            "controller on = \"head\" needs tik to say where its binary and state are, and it did not".into(),
            "run it with the tik command line",
        ));
    };
    let provider = config
        .get("workspace")
        .and_then(|w| w.get("provider"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A head of the local provider is this machine; any other is elsewhere, and
    // reads the state where it is shared, with its own credentials.
    let backend = if provider == "local" {
        bundle.backend.clone()
    } else {
        remote_backend(&bundle.backend).map_err(|e| {
            fail(
                e,
                "keep the state where the head can read it: tik { backend \"s3\" { ... } }, then tik init --migrate-state",
            )
        })?
    };
    let files = Files::of(root).map_err(|e| {
        fail(
            e,
            "keep data the configuration does not read outside the project directory",
        )
    })?;
    if let Some(bad) = files.files.iter().find(|f| f.chars().any(char::is_control)) {
        return Err(fail(
            format!("the file {bad:?} of the configuration has a control character in its name: the head cannot be given it"),
            "rename the file",
        ));
    }
    let interval = config
        .get("controller")
        .and_then(|c| c.get("interval"))
        .and_then(Value::as_f64)
        .unwrap_or(5.0);
    if let Some((bad, _)) = bundle.env.iter().find(|(k, _)| {
        k.is_empty()
            || k.starts_with(|c: char| c.is_ascii_digit())
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        return Err(fail(
            format!("{bad:?} is not a name an environment variable can have"),
            "name the encryption key's variable with letters, digits and _",
        ));
    }
    let mut env = bundle.exports();
    if provider != "local" {
        // A profile the backend block names is this machine's credentials: the head
        // reads the state with its own.
        env.push_str("export TIK_BACKEND_PROFILE=''\n");
    }
    let mut params = Map::new();
    for (k, v) in [
        ("cluster", Value::from(label)),
        ("interval", Value::Number(interval)),
        ("platform", Value::from(bundle.platform.clone())),
        ("config_hash", Value::from(files.hash.clone())),
        ("backend", Value::from(backend)),
        ("env", Value::from(env)),
    ] {
        params.insert(k.into(), v);
    }
    let mut config = config.clone();
    let mut runtimes = match config.get("runtime") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    runtimes.insert(RUNTIME.into(), Value::Object(params));
    config.insert("runtime".into(), Value::Object(runtimes));
    let copy = |pairs: &[(&str, String)]| {
        Value::List(vec![Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                .collect(),
        )])
    };
    let puts = vec![
        (
            "install",
            copy(&[
                ("from", bundle.binary.display().to_string()),
                ("to", "controller/bin/tik.new".into()),
                ("id", bundle.binary_id.clone()),
            ]),
        ),
        (
            "configure",
            copy(&[
                ("from", bundle.project.display().to_string()),
                ("files", files.files.join("\n")),
                ("to", "controller/project.new".into()),
                ("id", files.hash.clone()),
            ]),
        ),
    ];
    Ok((config, puts))
}

/// The backend's settings as a head elsewhere than this machine uses them: a state
/// file here is out of its reach, and a profile of this machine's credentials is
/// not on it (it reads the state with its own, its cloud role's).
fn remote_backend(text: &str) -> Result<String, String> {
    let mut recorded: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("tik could not read its backend's settings: {e}"))?;
    let kind = recorded["backend"]["kind"].as_str().unwrap_or("local");
    if kind == "local" {
        return Err(
            "controller on = \"head\" needs the state where the head can read it, and it is in a file on this machine".into(),
        );
    }
    for at in ["/backend/settings", "/backend_config"] {
        if let Some(settings) = recorded.pointer_mut(at).and_then(|v| v.as_object_mut()) {
            if settings.contains_key("profile") {
                settings.insert("profile".into(), serde_json::Value::from(""));
            }
        }
    }
    serde_json::to_string_pretty(&recorded)
        .map_err(|e| format!("tik could not write its backend's settings: {e}"))
}

/// Adds the copies `with_controller` asked for to the `_controller` runtime's steps.
pub fn add_puts(specs: &mut [tik_engine::provider::ResourceSpec], puts: &[(&str, Value)]) {
    for spec in specs.iter_mut() {
        let of = |k: &str| spec.config.get(k).and_then(Value::as_str);
        if of("runtime") != Some(RUNTIME) {
            continue;
        }
        let Some((_, put)) = puts.iter().find(|(step, _)| of("step") == Some(step)) else {
            continue;
        };
        spec.config.insert("put".into(), put.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_elsewhere_reads_shared_state_with_its_own_credentials() {
        let local = r#"{"backend": {"kind": "local", "settings": {"path": "/p/tik.tikstate"}}}"#;
        let e = remote_backend(local).unwrap_err();
        assert!(e.contains("in a file on this machine"), "{e}");
        let s3 = r#"{"backend": {"kind": "s3", "settings": {"bucket": "b", "key": "k", "profile": "dev"}},
                     "backend_config": {"profile": "ops", "endpoint": "http://e"}}"#;
        let out: serde_json::Value = serde_json::from_str(&remote_backend(s3).unwrap()).unwrap();
        assert_eq!(out["backend"]["settings"]["profile"], "");
        assert_eq!(out["backend_config"]["profile"], "");
        assert_eq!(out["backend"]["settings"]["bucket"], "b");
        assert_eq!(out["backend_config"]["endpoint"], "http://e");
        assert!(remote_backend("not json").is_err());
    }

    #[test]
    fn the_head_gets_the_projects_files_but_tiks_own_gits_and_state() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "main.tik.hcl",
            "runtimes/x/runtime.tik.hcl",
            "runtimes/x/start.sh",
            "templates/inventory.tpl",
            ".git/config",
            ".tik/backend.json",
            ".tik/local/workspaces/dev/clusters/etl/head/home/controller/project/main.tik.hcl",
            ".tik/modules/net/main.tik.hcl",
            "tik.tikstate",
            "tik.tikstate.journal",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let files = Files::of(d.path()).unwrap();
        assert_eq!(
            files.files,
            [
                ".tik/modules/net/main.tik.hcl",
                "main.tik.hcl",
                "runtimes/x/runtime.tik.hcl",
                "runtimes/x/start.sh",
                "templates/inventory.tpl",
            ]
        );
        // Another content, another hash.
        std::fs::write(d.path().join("runtimes/x/start.sh"), "changed").unwrap();
        assert_ne!(Files::of(d.path()).unwrap().hash, files.hash);
    }
}
