//! `tik fmt`: the canonical layout of a file. Indents two spaces per nesting level and
//! aligns the `=` of consecutive attributes; comments, strings and heredocs are kept
//! exactly. Only whitespace ever changes, and the result must still parse.

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Code,
    Str,
    Interp(usize),
}

/// What the scanner learnt about one line.
struct LineInfo {
    /// How the line changes the bracket nesting: +2 for `x = [{`, -1 for `}`.
    net: isize,
    /// Inside a heredoc or block comment at the start: left exactly as it is.
    verbatim: bool,
    /// Byte offset of a top-level `=` of an attribute on this line.
    assign: Option<usize>,
    /// The line is complete at its own depth (no bracket or string left open).
    balanced: bool,
}

fn scan(text: &str) -> Vec<LineInfo> {
    let mut infos = Vec::new();
    let mut depth = 0usize;
    let mut stack: Vec<Mode> = vec![Mode::Code];
    let mut heredoc: Option<String> = None;
    let mut block_comment = false;
    for line in text.split('\n') {
        let start_depth = depth;
        let verbatim = heredoc.is_some() || block_comment || stack.len() > 1;
        if let Some(delim) = &heredoc {
            if line.trim() == delim {
                heredoc = None;
            }
            infos.push(LineInfo {
                net: 0,
                verbatim: true,
                assign: None,
                balanced: false,
            });
            continue;
        }
        let mut assign = None;
        let mut first_token = true;
        let bytes = line.as_bytes();
        let mut i = 0;
        let mut opened_heredoc = None;
        let mut min_depth = depth;
        while i < bytes.len() {
            let c = bytes[i];
            let mode = *stack.last().unwrap_or(&Mode::Code);
            if block_comment {
                if line[i..].starts_with("*/") {
                    block_comment = false;
                    i += 2;
                } else {
                    i += 1;
                }
                continue;
            }
            match mode {
                Mode::Str => {
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'"' {
                        stack.pop();
                    } else if (c == b'$' || c == b'%') && bytes.get(i + 1) == Some(&b'{') {
                        stack.push(Mode::Interp(0));
                        i += 2;
                        continue;
                    }
                }
                Mode::Code | Mode::Interp(_) => {
                    if c == b'#' || line[i..].starts_with("//") {
                        break;
                    }
                    if line[i..].starts_with("/*") {
                        block_comment = true;
                        i += 2;
                        continue;
                    }
                    if line[i..].starts_with("<<") && mode == Mode::Code {
                        let rest = line[i + 2..].trim_start_matches('-');
                        let delim: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !delim.is_empty() {
                            opened_heredoc = Some(delim);
                        }
                    }
                    match c {
                        b'"' => stack.push(Mode::Str),
                        b'{' | b'[' | b'(' => match mode {
                            Mode::Interp(n) => {
                                *stack.last_mut().unwrap_or(&mut Mode::Code) = Mode::Interp(n + 1)
                            }
                            _ => depth += 1,
                        },
                        b'}' | b']' | b')' => match mode {
                            Mode::Interp(0) => {
                                stack.pop();
                            }
                            Mode::Interp(n) => {
                                *stack.last_mut().unwrap_or(&mut Mode::Code) = Mode::Interp(n - 1)
                            }
                            _ => {
                                depth = depth.saturating_sub(1);
                                min_depth = min_depth.min(depth);
                            }
                        },
                        b'=' if mode == Mode::Code && depth == start_depth && first_token => {
                            let next = bytes.get(i + 1).copied();
                            let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                            if next != Some(b'=')
                                && next != Some(b'>')
                                && !matches!(prev, b'=' | b'!' | b'<' | b'>')
                            {
                                let key = line[..i].trim();
                                if !key.is_empty()
                                    && key.chars().all(|c| {
                                        c.is_alphanumeric() || c == '_' || c == '-' || c == '"'
                                    })
                                {
                                    assign = Some(i);
                                }
                                first_token = false;
                            }
                        }
                        _ => {}
                    }
                }
            }
            i += 1;
        }
        let balanced = depth == start_depth
            && min_depth == start_depth
            && stack.len() == 1
            && opened_heredoc.is_none()
            && !block_comment;
        if let Some(d) = opened_heredoc {
            heredoc = Some(d);
        }
        infos.push(LineInfo {
            net: depth as isize - start_depth as isize,
            verbatim,
            assign,
            balanced,
        });
    }
    infos
}

/// The indent level of each line, as `terraform fmt` counts it: a line that opens
/// brackets indents what follows by one level however many it opens, and the line
/// that closes them comes back to where the opener stood.
fn levels(infos: &[LineInfo]) -> Vec<usize> {
    let mut indents: Vec<isize> = Vec::new();
    infos
        .iter()
        .map(|info| {
            let mut closed = -info.net;
            while closed > 0 {
                match indents.last_mut() {
                    None => break,
                    Some(top) if closed >= *top => {
                        closed -= *top;
                        indents.pop();
                    }
                    Some(top) => {
                        *top -= closed;
                        closed = 0;
                    }
                }
            }
            let level = indents.len();
            if info.net > 0 {
                indents.push(info.net);
            }
            level
        })
        .collect()
}

/// Formats one file's text; `None` when it is not valid HCL (fmt leaves such files alone).
pub fn format(text: &str) -> Option<String> {
    hcl_edit::parser::parse_body(text).ok()?;
    let lines: Vec<&str> = text.split('\n').collect();
    let infos = scan(text);
    let level = levels(&infos);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for ((line, info), level) in lines.iter().zip(&infos).zip(&level) {
        if info.verbatim {
            out.push(line.to_string());
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.push(String::new());
            continue;
        }
        let indent = level * 2;
        out.push(format!("{:indent$}{trimmed}", ""));
    }
    // Align `=` in runs of single-line attributes at the same depth.
    let mut i = 0;
    while i < out.len() {
        let is_attr = |k: usize| !infos[k].verbatim && infos[k].assign.is_some();
        if !is_attr(i) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut members = Vec::new();
        while j < out.len() && is_attr(j) && level[j] == level[i] {
            members.push(j);
            let multi_line = !infos[j].balanced;
            j += 1;
            if multi_line {
                break;
            }
        }
        let keys: Vec<(String, String)> = members
            .iter()
            .map(|&k| {
                let raw = lines[k];
                let eq = infos[k].assign.unwrap_or(0);
                (
                    raw[..eq].trim().to_string(),
                    raw[eq + 1..].trim().to_string(),
                )
            })
            .collect();
        let width = keys
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (&k, (key, value)) in members.iter().zip(keys) {
            let indent = level[k] * 2;
            out[k] = format!("{:indent$}{key:<width$} = {value}", "");
        }
        i = j.max(i + 1);
    }
    let mut result = out.join("\n");
    let trimmed_len = result.trim_end_matches('\n').len();
    result.truncate(trimmed_len);
    result.push('\n');
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if squash(&result) != squash(text) || hcl_edit::parser::parse_body(&result).is_err() {
        return None;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn indents_and_aligns_but_keeps_comments_strings_and_heredocs() {
        let src = "cluster \"etl\" {\nworkspace = workspace.dev # the shared one\n  head {\n      instance_type=\"m5  large\"\n  disk_gb = 100\n}\n  script = <<EOT\n   keep   this\nEOT\n}\n\n\n";
        let want = "cluster \"etl\" {\n  workspace = workspace.dev # the shared one\n  head {\n    instance_type = \"m5  large\"\n    disk_gb       = 100\n  }\n  script = <<EOT\n   keep   this\nEOT\n}\n";
        assert_eq!(format(src).as_deref(), Some(want));
        assert_eq!(format(want).as_deref(), Some(want));
    }

    #[test]
    fn multi_line_values_end_an_alignment_run() {
        let src = "locals {\n  a = 1\n  long_name = {\n    x = \"${var.y}\"\n  }\n  b = 2\n}\n";
        let want =
            "locals {\n  a         = 1\n  long_name = {\n    x = \"${var.y}\"\n  }\n  b = 2\n}\n";
        assert_eq!(format(src).as_deref(), Some(want));
    }

    #[test]
    fn brackets_opened_on_one_line_indent_once() {
        let src = "locals {\n  s = [{\n      a = 1\n  }]\n}\n";
        let want = "locals {\n  s = [{\n    a = 1\n  }]\n}\n";
        assert_eq!(format(src).as_deref(), Some(want));
    }

    #[test]
    fn invalid_input_is_left_alone() {
        assert_eq!(format("a = {\n"), None);
    }
}
