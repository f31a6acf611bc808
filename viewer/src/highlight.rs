//! A small YAML highlighter for devfiles: line by line, it marks comments, keys, list dashes,
//! quoted strings, numbers and booleans, and block scalars (`|`, `>`). It never changes the text:
//! stripping the tags and unescaping gives back the input exactly, so the page can copy it.
//!
//! Good enough for the block style devfiles are written in; flow collections (`[a, b]`) are
//! shown as plain values.

/// HTML for `yaml`: escaped text with `<span class="y-…">` around tokens.
pub fn yaml_to_html(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() * 2);
    // The indentation of the key that opened a block scalar: deeper lines are its text.
    let mut block: Option<usize> = None;
    for line in yaml.split_inclusive('\n') {
        let (text, newline) = match line.strip_suffix('\n') {
            Some(text) => (text, "\n"),
            None => (line, ""),
        };
        let indent = text.len() - text.trim_start_matches(' ').len();
        if let Some(opened) = block {
            if text.trim().is_empty() || indent > opened {
                span(&mut out, "y-str", text);
                out.push_str(newline);
                continue;
            }
            block = None;
        }
        if highlight_line(&mut out, text) {
            block = Some(indent);
        }
        out.push_str(newline);
    }
    out
}

/// Appends one line; returns whether it opens a block scalar.
fn highlight_line(out: &mut String, line: &str) -> bool {
    let body = line.trim_start_matches(' ');
    out.push_str(&line[..line.len() - body.len()]);
    if body.starts_with('#') {
        span(out, "y-comment", body);
        return false;
    }
    let mut rest = body;
    // List dashes, possibly several (`- - x`).
    while let Some(after) = rest.strip_prefix("- ").or_else(|| (rest == "-").then_some("")) {
        span(out, "y-dash", "-");
        let spaces = &rest[1..rest.len() - after.len()];
        out.push_str(spaces);
        let trimmed = after.trim_start_matches(' ');
        out.push_str(&after[..after.len() - trimmed.len()]);
        rest = trimmed;
    }
    let value = match key_end(rest) {
        Some(end) => {
            span(out, "y-key", &rest[..end]);
            escape_into(out, ":");
            &rest[end + 1..]
        }
        None => rest,
    };
    highlight_value(out, value)
}

/// Where the key of `text` ends (the index of its `:`), when it starts with `key:`.
fn key_end(text: &str) -> Option<usize> {
    let first = text.chars().next()?;
    if first == '"' || first == '\'' {
        let close = text[1..].find(first)? + 1;
        return text[close + 1..].starts_with(':').then_some(close + 1).filter(|&i| is_key_colon(text, i));
    }
    if matches!(first, '[' | '{' | '|' | '>' | '&' | '*' | '!' | '%' | '@' | '`') {
        return None;
    }
    let mut search = 0;
    while let Some(i) = text[search..].find(':') {
        let i = search + i;
        if text[..i].contains(" #") {
            return None;
        }
        if is_key_colon(text, i) {
            return Some(i);
        }
        search = i + 1;
    }
    None
}

fn is_key_colon(text: &str, i: usize) -> bool {
    matches!(text[i + 1..].chars().next(), None | Some(' '))
}

/// Appends a value (with a trailing comment, if any); returns whether it opens a block scalar.
fn highlight_value(out: &mut String, value: &str) -> bool {
    let trimmed = value.trim_start_matches(' ');
    out.push_str(&value[..value.len() - trimmed.len()]);
    if trimmed.is_empty() {
        return false;
    }
    if trimmed.starts_with('#') {
        span(out, "y-comment", trimmed);
        return false;
    }
    let (token, comment) = split_comment(trimmed);
    let bare = token.trim_end();
    let class = if bare.starts_with('|') || bare.starts_with('>') {
        "y-block"
    } else if bare.starts_with('"') || bare.starts_with('\'') {
        "y-str"
    } else if matches!(bare, "true" | "false" | "null" | "~" | "True" | "False" | "Null") || bare.parse::<f64>().is_ok()
    {
        "y-lit"
    } else if bare.starts_with('&') || bare.starts_with('*') {
        "y-anchor"
    } else {
        "y-plain"
    };
    span(out, class, bare);
    out.push_str(&token[bare.len()..]);
    if let Some(comment) = comment {
        span(out, "y-comment", comment);
    }
    class == "y-block"
}

/// Splits `value #comment` at a `#` that follows a space and is outside quotes.
fn split_comment(value: &str) -> (&str, Option<&str>) {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in value.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && i == 0 => quote = Some(c),
            None if c == '#' && previous == ' ' && i > 0 => return (&value[..i], Some(&value[i..])),
            None => {}
        }
        previous = c;
    }
    (value, None)
}

fn span(out: &mut String, class: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push_str("\">");
    escape_into(out, text);
    out.push_str("</span>");
}

/// HTML-escapes `text` (for element content and attribute values alike).
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the tags and undoes the escaping.
    fn text_of(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn highlighting_keeps_the_text_and_marks_tokens() {
        let yaml = "schemaVersion: 2.2.0 # the schema\nmetadata:\n  name: \"go\"\n  tags: [Go]\n# <script>alert(1)</script>\ncommands:\n  - id: build\n    exec:\n      commandLine: |\n        go build -o a:b main.go\n\n        echo 'done' # not a comment\n      workingDir: ${PROJECT_SOURCE}\n  - - nested\n    - \"x: y\": true\nurl: http://example.com:8080/a\n";
        let html = yaml_to_html(yaml);
        assert_eq!(text_of(&html), yaml);
        assert!(html.contains("<span class=\"y-key\">schemaVersion</span>:"));
        assert!(html.contains("<span class=\"y-plain\">2.2.0</span> <span class=\"y-comment\"># the schema</span>"));
        assert!(html.contains("<span class=\"y-str\">&quot;go&quot;</span>"));
        assert!(html.contains("<span class=\"y-comment\"># &lt;script&gt;alert(1)&lt;/script&gt;</span>"));
        assert!(html.contains("<span class=\"y-dash\">-</span> <span class=\"y-key\">id</span>"));
        assert!(html.contains("<span class=\"y-block\">|</span>"));
        // The block scalar's lines are text, whatever they look like.
        assert!(html.contains("<span class=\"y-str\">        go build -o a:b main.go</span>"));
        assert!(html.contains("<span class=\"y-str\">        echo &#x27;done&#x27; # not a comment</span>"));
        assert!(html.contains("<span class=\"y-key\">workingDir</span>"));
        assert!(
            html.contains("<span class=\"y-key\">url</span>: <span class=\"y-plain\">http://example.com:8080/a</span>")
        );
        assert!(!html.contains("<script>"));
    }
}
