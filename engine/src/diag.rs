//! Diagnostics: errors that name the file, line and column, show the line with a caret
//! under the span, and suggest a fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One loaded source file.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Every file the configuration was read from; a `FileId` indexes into it.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<Arc<SourceFile>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

impl Sources {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(Arc::new(SourceFile { path, text }));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().map(|f| f.as_ref())
    }
}

/// Where a diagnostic points: a file and a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: FileId,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// Extra places worth showing (for a cycle: each reference in it).
    pub notes: Vec<(String, Option<Location>)>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn at(mut self, file: FileId, span: Option<Range<usize>>) -> Self {
        self.location = span.map(|span| Location { file, span });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn note(mut self, text: impl Into<String>, location: Option<Location>) -> Self {
        self.notes.push((text.into(), location));
        self
    }

    /// Renders the diagnostic as rustc does: message, `--> file:line:col`, the line, a caret.
    pub fn render(&self, sources: &Sources) -> String {
        // `=` lines stand under the gutter's `|`, which widens with the line numbers.
        let gutter = std::iter::once(&self.location)
            .chain(self.notes.iter().map(|(_, l)| l))
            .flatten()
            .map(|l| {
                line_col(&sources.get(l.file).text, l.span.start)
                    .0
                    .to_string()
                    .len()
            })
            .max()
            .unwrap_or(1);
        let mut out = format!("error: {}\n", self.message);
        if let Some(loc) = &self.location {
            out.push_str(&snippet(sources, loc));
        }
        for (text, loc) in &self.notes {
            out.push_str(&format!("{:gutter$} = note: {text}\n", ""));
            if let Some(loc) = loc {
                out.push_str(&snippet(sources, loc));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{:gutter$} = help: {help}\n", ""));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn snippet(sources: &Sources, loc: &Location) -> String {
    let file = sources.get(loc.file);
    let text = &file.text;
    let start = floor_char_boundary(text, loc.span.start.min(text.len()));
    let (line, col) = line_col(text, start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let end = floor_char_boundary(text, loc.span.end.clamp(start, line_end));
    let width = text[start..end].chars().count().max(1);
    let gutter = line.to_string().len();
    let pad: String = text[line_start..start]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "{:g$}--> {}:{line}:{col}\n{:g$} |\n{line} | {line_text}\n{:g$} | {pad}{}\n",
        "",
        display_path(&file.path),
        "",
        "",
        "^".repeat(width),
        g = gutter
    )
}

fn display_path(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = p.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    p.display().to_string()
}

/// A list of diagnostics, the error type of loading and evaluating configuration.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn render(&self, sources: &Sources) -> String {
        self.0
            .iter()
            .map(|d| d.render(sources))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Adds `d`, unless the same message at the same place is there already (a
    /// runtime's service is evaluated once per node, its mistake said once).
    pub fn push(&mut self, d: Diagnostic) {
        if !self
            .0
            .iter()
            .any(|o| o.message == d.message && o.location == d.location)
        {
            self.0.push(d)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// "did you mean" for a misspelt name: the closest candidate within a small edit distance.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean \"{c}\"?"))
}

/// Edits between two names, a swap of two neighbouring letters counting as one
/// (optimal string alignment): `sprak` is one edit from `spark`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_of_neighbouring_letters_is_one_edit() {
        assert_eq!(edit_distance("sprak", "spark"), 1);
        assert_eq!(edit_distance("titel", "title"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("sprak", ["spark", "etl"]).as_deref(),
            Some("did you mean \"spark\"?")
        );
        assert_eq!(did_you_mean("zzzzz", ["spark"]), None);
    }

    #[test]
    fn renders_file_line_column_and_caret() {
        let mut sources = Sources::default();
        let id = sources.add(
            PathBuf::from("/x/main.tik.hcl"),
            "a = 1\n  bad = 2\n".into(),
        );
        let d = Diagnostic::new("Unsupported attribute \"bad\"")
            .at(id, Some(8..11))
            .help("did you mean \"bar\"?");
        let text = d.render(&sources);
        assert!(text.contains("--> /x/main.tik.hcl:2:3"), "{text}");
        assert!(text.contains("2 |   bad = 2\n  |   ^^^\n"), "{text}");
        assert!(text.contains("help: did you mean"), "{text}");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("instanc_type", ["instance_type", "disk_gb"]).as_deref(),
            Some("did you mean \"instance_type\"?")
        );
        assert_eq!(did_you_mean("zzz", ["instance_type"]), None);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("é = 1\nab", 7), (2, 1));
        assert_eq!(line_col("é = x", 5), (1, 5));
    }
}
