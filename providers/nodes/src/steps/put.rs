//! Files a step copies to its node before its script runs (a step's `put`): a file
//! of this machine's (tik's own binary, for a controller on a head), or files of a
//! directory sent as one tar stream. Each goes as the stdin of a script of its own
//! on the node (over SSH, a channel of its own: the agent's stdin carries requests),
//! written beside its place and moved there whole, so a copy cut short is never
//! taken for the file.

use super::shell_quote;
use std::path::{Path, PathBuf};
use tik_engine::value::{Map, Value};

/// One copy: from `from` on this machine to `to` under the node's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Put {
    pub from: PathBuf,
    /// The directory's files to send, relative to `from`; `None` sends the file
    /// `from` itself.
    pub files: Option<Vec<String>>,
    pub to: String,
    /// For a directory, the hash of its files as the plan read them (`FilesHash`):
    /// files that changed since are not sent.
    pub id: Option<String>,
}

/// What is read in `to`: a path within the node's home, without `..`, and nothing a
/// shell or a terminal would read otherwise.
fn checked_to(to: &str) -> Result<&str, String> {
    let fine = !to.is_empty()
        && !to.starts_with('/')
        && !to.chars().any(char::is_control)
        && to
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if fine {
        Ok(to)
    } else {
        Err(format!(
            "tik copies files only to a path within the node's home, not to {to:?}"
        ))
    }
}

/// A file of a directory: relative, within it, and no name a tar header would read
/// otherwise.
fn checked_file(f: &str) -> Result<&str, String> {
    checked_to(f).map_err(|_| format!("tik does not copy {f:?}: not a path within the directory"))
}

/// The copies a step's `put` attribute asks for, checked.
pub(super) fn of(attrs: &Map) -> Result<Vec<Put>, String> {
    let Some(list) = attrs.get("put") else {
        return Ok(Vec::new());
    };
    let Value::List(items) = list else {
        return Err("a step's put is a list of copies".into());
    };
    items
        .iter()
        .map(|item| {
            let text = |k: &str| item.get(k).and_then(Value::as_str);
            let from = text("from").ok_or("a copy names the file it sends in from")?;
            let to = checked_to(text("to").ok_or("a copy names where it goes in to")?)?;
            let files = match text("files") {
                None => None,
                Some(list) => Some(
                    list.lines()
                        .filter(|l| !l.is_empty())
                        .map(|f| checked_file(f).map(str::to_string))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            Ok(Put {
                from: PathBuf::from(from),
                files,
                to: to.to_string(),
                id: text("id").map(str::to_string),
            })
        })
        .collect()
}

impl Put {
    /// The node's side: its stdin written beside `to`, then moved there whole (a
    /// directory unpacked with tar).
    pub fn script(&self) -> String {
        let to = shell_quote(&self.to);
        let receive = match self.files {
            None => "cat >\"$part\"\nchmod 0644 \"$part\"\n".to_string(),
            Some(_) => "command -v tar >/dev/null 2>&1 || { echo \"tik copies a directory with tar, which this node lacks: install it (apt-get install tar)\" >&2; exit 1; }\n\
                 mkdir \"$part\"\n\
                 tar -xf - -C \"$part\"\n"
                .to_string(),
        };
        format!(
            "set -eu\n\
             mkdir -p \"$TIK_HOME\" && cd \"$TIK_HOME\"\n\
             to={to}\n\
             part=\"$to.part\"\n\
             mkdir -p \"$(dirname -- \"$to\")\"\n\
             rm -rf -- \"$part\"\n\
             {receive}\
             rm -rf -- \"$to\"\n\
             mv -- \"$part\" \"$to\"\n"
        )
    }

    /// What is sent: the file, or the directory's files as a tar stream.
    pub fn input(&self) -> Result<Input, String> {
        match &self.files {
            None => {
                std::fs::metadata(&self.from)
                    .map_err(|e| format!("cannot read {}: {e}", self.from.display()))?;
                Ok(Input::File(self.from.clone()))
            }
            Some(files) => {
                let (bytes, hash) = tar(&self.from, files)?;
                match &self.id {
                    Some(id) if *id != hash => Err(format!(
                        "the files of {} changed since the plan read them: run tik apply again (and keep files that change by themselves, logs or data, outside the project directory)",
                        self.from.display()
                    )),
                    _ => Ok(Input::Bytes(bytes)),
                }
            }
        }
    }

    /// In words, for the step's log.
    pub fn describe(&self) -> String {
        match &self.files {
            None => format!("{} to {}", self.from.display(), self.to),
            Some(f) => format!(
                "{} file{} of {} to {}",
                f.len(),
                if f.len() == 1 { "" } else { "s" },
                self.from.display(),
                self.to
            ),
        }
    }
}

/// A script's stdin: a file read as it goes, or bytes.
pub(super) enum Input {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Input {
    pub async fn reader(self) -> Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>, String> {
        Ok(match self {
            Input::File(p) => Box::new(
                tokio::fs::File::open(&p)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            ),
            Input::Bytes(b) => Box::new(std::io::Cursor::new(b)),
        })
    }
}

const BLOCK: usize = 512;

/// A tar archive (ustar, with GNU's long-name records for a path over 100 bytes) of
/// `files` under `root`: regular files, their mode's execute bits kept; and the hash
/// of what it holds.
pub(super) fn tar(root: &Path, files: &[String]) -> Result<(Vec<u8>, String), String> {
    let mut out = Vec::new();
    let mut hash = crate::on_head::FilesHash::default();
    for f in files {
        let f = checked_file(f)?;
        let path = root.join(f);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("cannot read {f}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("tik copies only regular files, and {f} is not one"));
        }
        let body = std::fs::read(&path).map_err(|e| format!("cannot read {f}: {e}"))?;
        hash.add(f, &body);
        let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
        if f.len() > 100 {
            let mut long = f.as_bytes().to_vec();
            long.push(0);
            out.extend(header("././@LongLink", long.len() as u64, 0o644, b'L'));
            push_padded(&mut out, &long);
        }
        let mode = if executable { 0o755 } else { 0o644 };
        out.extend(header(f, body.len() as u64, mode, b'0'));
        push_padded(&mut out, &body);
    }
    out.extend([0u8; 2 * BLOCK]);
    Ok((out, hash.hex()))
}

fn push_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
}

/// A ustar header: the name (its first 100 bytes: a longer one came before in a
/// long-name record), mode, size, a fixed time, the type and the checksum.
fn header(name: &str, size: u64, mode: u32, kind: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    let mut field = |at: usize, len: usize, value: u64| {
        let text = format!("{value:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(text.as_bytes());
    };
    field(100, 8, u64::from(mode));
    field(108, 8, 0);
    field(116, 8, 0);
    field(124, 12, size);
    field(136, 12, 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_archive_unpacks_with_the_systems_tar_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let long = format!(
            "{}/{}.sh",
            "deep/".repeat(30).trim_end_matches('/'),
            "x".repeat(40)
        );
        let files = vec![
            "main.tik.hcl".to_string(),
            "runtimes/x/start.sh".to_string(),
            "empty".to_string(),
            long.clone(),
        ];
        for (i, f) in files.iter().enumerate() {
            let p = d.path().join("src").join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            // A body of every byte, over a block long, but the empty file.
            let body: Vec<u8> = if f == "empty" {
                Vec::new()
            } else {
                (0..=255u8).cycle().take(700 + i).collect()
            };
            std::fs::write(&p, body).unwrap();
        }
        let start = d.path().join("src/runtimes/x/start.sh");
        std::fs::set_permissions(&start, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut sorted = files.clone();
        sorted.sort();
        let (bytes, hash) = tar(&d.path().join("src"), &sorted).unwrap();
        // The hash a plan computes of the same files (which it lists in order).
        assert_eq!(
            hash,
            crate::on_head::Files::of(&d.path().join("src"))
                .unwrap()
                .hash
        );
        std::fs::write(d.path().join("a.tar"), &bytes).unwrap();
        std::fs::create_dir(d.path().join("out")).unwrap();
        let out = Command::new("tar")
            .arg("-xf")
            .arg(d.path().join("a.tar"))
            .arg("-C")
            .arg(d.path().join("out"))
            .output()
            .expect("tar runs");
        assert!(out.status.success(), "{out:?}");
        for f in &files {
            assert_eq!(
                std::fs::read(d.path().join("out").join(f)).unwrap(),
                std::fs::read(d.path().join("src").join(f)).unwrap(),
                "{f}"
            );
        }
        let mode = |p: &str| {
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(d.path().join("out").join(p))
                    .unwrap()
                    .permissions(),
            ) & 0o111
        };
        assert_ne!(mode("runtimes/x/start.sh"), 0);
        assert_eq!(mode("main.tik.hcl"), 0);
    }

    #[test]
    fn a_copy_goes_only_within_the_nodes_home() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/\nb",
            "./a",
        ] {
            let attrs = Map::from_iter([(
                "put".to_string(),
                Value::List(vec![Value::Object(Map::from_iter([
                    ("from".to_string(), Value::from("/bin/sh")),
                    ("to".to_string(), Value::from(bad)),
                ]))]),
            )]);
            assert!(of(&attrs).is_err(), "{bad:?}");
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "a").unwrap();
        for bad in ["../a", "/etc/passwd"] {
            assert!(tar(d.path(), &[bad.to_string()]).is_err(), "{bad}");
        }
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let e = tar(d.path(), &["link".to_string()]).unwrap_err();
        assert!(e.contains("not one"), "{e}");
    }
}
