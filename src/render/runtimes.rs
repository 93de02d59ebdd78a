//! The runtimes' reference: `tik runtimes`, `tik runtimes show NAME`, and the
//! Markdown of `docs/runtime-reference.md`.

use super::Style;
use std::fmt::Write as _;
use tik_nodes::runtime::{ParamRef, RuntimeRef};

/// One line per runtime: its name, where it comes from, what it is.
pub fn list(refs: &[RuntimeRef], s: Style) -> String {
    let width = refs.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in refs {
        let from = if r.shipped { "shipped" } else { "project" };
        let _ = writeln!(
            out,
            "{}  {from:<7}  {}",
            s.bold(&format!("{:width$}", r.name)),
            r.description
        );
    }
    out.push_str("\ntik runtimes show NAME: its params, services, ports and endpoints.\n");
    out
}

/// What a param takes, in one phrase: `number, default 7077`, `one of "archive",
/// "pip"; default "archive"`, `required, sensitive`.
fn takes(p: &ParamRef) -> String {
    let mut parts = Vec::new();
    if !p.allowed.is_empty() {
        parts.push(format!("one of {}", p.allowed.join(", ")));
    } else if let Some(t) = &p.ty {
        parts.push(t.clone());
    }
    match &p.default {
        Some(d) => parts.push(format!("default {d}")),
        None => parts.push("required".into()),
    }
    if p.sensitive {
        parts.push("sensitive".into());
    }
    parts.join("; ")
}

fn service_on(on: &str) -> &str {
    match on {
        "head" => "the head",
        "workers" => "every worker",
        "all" => "every node",
        other => other,
    }
}

/// Everything a user sets and gets of one runtime.
pub fn show(r: &RuntimeRef, s: Style) -> String {
    let mut out = String::new();
    let from = if r.shipped {
        "shipped with tik".to_string()
    } else {
        format!("this project's runtimes/{}/", r.name)
    };
    let _ = writeln!(out, "{} — {} ({from})", s.bold(&r.name), r.description);
    if !r.requires.is_empty() {
        let _ = writeln!(out, "Requires: {}", r.requires.join(", "));
    }
    if !r.after.is_empty() {
        let _ = writeln!(out, "Runs after: {}", r.after.join(", "));
    }
    if r.download_once {
        let _ = writeln!(out, "{DOWNLOAD_ONCE}");
    }
    if r.scales {
        let _ = writeln!(out, "{SCALES}");
    }
    let _ = writeln!(out, "\n{}", s.bold("Params"));
    if r.params.is_empty() {
        out.push_str("  (none)\n");
    }
    let width = r.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &r.params {
        let _ = writeln!(out, "  {:width$}  {}", p.name, takes(p));
        if !p.description.is_empty() {
            let _ = writeln!(out, "  {:width$}  {}", "", p.description);
        }
    }
    let _ = writeln!(out, "\n{}", s.bold("Services"));
    for v in &r.services {
        let ports = if v.ports.is_empty() {
            String::new()
        } else {
            format!("; ports {}", v.ports.join(", "))
        };
        let _ = writeln!(
            out,
            "  {} on {}{ports}; {}",
            v.name,
            service_on(&v.on),
            v.steps.join(", ")
        );
    }
    if !r.endpoints.is_empty() {
        let _ = writeln!(out, "\n{}", s.bold("Endpoints"));
        for (name, value) in &r.endpoints {
            let _ = writeln!(out, "  {name} = {value}");
        }
        let _ = writeln!(
            out,
            "\nA cluster's endpoints read as cluster.NAME.runtime.{}.endpoint.ENDPOINT.",
            r.name
        );
    }
    let _ = writeln!(
        out,
        "\nUse it: runtime \"{}\" {{ PARAM = VALUE }} in a cluster block.",
        r.name
    );
    out
}

/// A Markdown cell: no line breaks, and `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// What `download_once = true` means, as the reference says it.
const DOWNLOAD_ONCE: &str =
    "Downloads once per cluster: the workers install after the head, from what it downloaded.";

/// What a `scaling` block means, as the reference says it.
const SCALES: &str = "Scales on demand: tells the controller how many more workers its work wants and which are idle (a pool with idle_timeout follows it).";

/// The reference of each runtime, as `docs/runtime-reference.md` holds it.
pub fn markdown(refs: &[RuntimeRef]) -> String {
    let mut out = String::from(
        "# Runtime reference\n\nWhat each shipped runtime takes and offers, made from its definition\n(`modules/runtimes/NAME/runtime.tik.hcl`) by `tik runtimes --markdown`; a test\nfails when the two differ. `tik runtimes show NAME` prints the same for a\nproject's own runtimes too. How runtimes work, and how to write one:\n[runtimes.md](runtimes.md).\n",
    );
    for r in refs {
        let _ = writeln!(out, "\n## {}\n\n{}", r.name, r.description);
        if !r.requires.is_empty() {
            let _ = writeln!(out, "\nRequires: {}.", r.requires.join(", "));
        }
        if !r.after.is_empty() {
            let _ = writeln!(out, "\nRuns after: {}.", r.after.join(", "));
        }
        if r.download_once {
            let _ = writeln!(out, "\n{DOWNLOAD_ONCE}");
        }
        if r.scales {
            let _ = writeln!(out, "\n{SCALES}");
        }
        if !r.params.is_empty() {
            out.push_str("\n| param | takes | description |\n|---|---|---|\n");
            for p in &r.params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    p.name,
                    cell(&takes(p)),
                    cell(&p.description)
                );
            }
        }
        out.push_str("\n| service | runs on | ports | steps |\n|---|---|---|---|\n");
        for v in &r.services {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                v.name,
                service_on(&v.on),
                cell(&v.ports.join(", ")),
                v.steps.join(", ")
            );
        }
        if !r.endpoints.is_empty() {
            out.push_str("\n| endpoint | value |\n|---|---|\n");
            for (name, value) in &r.endpoints {
                let _ = writeln!(out, "| `{name}` | `{}` |", cell(value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tik_engine::diag::Sources;

    /// docs/runtime-reference.md is what `tik runtimes --markdown` prints of the shipped
    /// runtimes: a definition changed without it fails here.
    #[test]
    fn the_runtimes_reference_is_made_from_the_definitions() {
        let empty = tempfile::tempdir().unwrap();
        let (defs, diags) = tik_nodes::runtime::load_all(empty.path(), &mut Sources::default());
        assert!(diags.is_empty(), "{diags:?}");
        let refs: Vec<RuntimeRef> = tik_nodes::runtime::listed(defs.values());
        let made = markdown(&refs);
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runtime-reference.md");
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        if std::env::var_os("TIK_WRITE_DOCS").is_some() {
            std::fs::write(&path, &made).unwrap();
            return;
        }
        assert!(
            written == made,
            "docs/runtime-reference.md differs from the definitions: run\n  TIK_WRITE_DOCS=1 cargo test -p tik the_runtimes_reference\nor cargo run -- runtimes --markdown > docs/runtime-reference.md"
        );
        for r in &refs {
            assert!(
                !r.description.is_empty(),
                "runtime {} has no description",
                r.name
            );
        }
    }
}
