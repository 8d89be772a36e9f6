//! Turns what serde says about a metadata table into what a user fixes: the key's
//! `Cargo.toml:LINE:COLUMN` (from toml_edit's spans), a "did you mean" among the valid
//! keys (edit distance, as cargo suggests subcommands), and type names from TOML rather
//! than from Rust (`integer`, `array of strings`, `table`, not `i64` or `a sequence`).

use std::path::Path;

use toml_edit::{Item, Value};

/// Levenshtein distance between two short strings (keys, table names).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The valid key closest to `wrong`, if it is close enough to be what was meant: at most
/// a third of its length away (and at least one edit), or the same but for `_` vs `-`.
pub fn did_you_mean<'a>(wrong: &str, valid: &[&'a str]) -> Option<&'a str> {
    let normalized = wrong.replace('_', "-").to_ascii_lowercase();
    if let Some(exact) = valid.iter().find(|v| **v == normalized) {
        return Some(exact);
    }
    let limit = (wrong.chars().count() / 3).max(1);
    valid
        .iter()
        .map(|v| (edit_distance(&normalized, v), *v))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, v)| v)
}

/// serde's `unknown field `x`, expected one of `a`, `b`` (or `expected `a``) → the
/// unknown key and the valid ones.
pub fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let valid = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), valid))
}

/// What a key of the metadata holds, in TOML words, for the keys whose Rust type would
/// make serde say something unhelpful.
fn expected_for(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last = last.split('[').next().unwrap_or(last);
    Some(match last {
        "args" | "platforms" | "health-check" => "an array of strings",
        "exposed-ports" => "an array of ports (8080 or \"8080/tcp\")",
        "env" | "labels" | "annotations" => "a table of strings",
        "workdir" | "user" | "assets" | "assets-dest" | "repository" | "base" => "a string",
        "assets-outside-workspace" | "compose" | "auditable" => "true or false",
        "kubernetes" | "audit" => "a table",
        "severity" => "one of \"low\", \"medium\", \"high\", \"critical\"",
        "ignore" => "an array of { id = \"RUSTSEC-…\", reason = \"…\" } tables",
        _ => return None,
    })
}

/// serde's words for what it found or wanted → TOML's.
fn toml_words(text: &str) -> String {
    let text = text.trim();
    for (rust, toml) in [
        ("a sequence", "an array"),
        ("sequence", "array"),
        ("a map", "a table"),
        ("map", "table"),
        ("floating point", "float"),
        ("a boolean", "true or false"),
        ("unit value", "nothing"),
    ] {
        if let Some(rest) = text.strip_prefix(rust) {
            return format!("{toml}{rest}");
        }
    }
    let integer = [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize",
    ];
    if integer.contains(&text) {
        return "an integer".into();
    }
    if matches!(text, "f32" | "f64") {
        return "a number".into();
    }
    if text.starts_with("struct ") || text.starts_with("enum ") {
        return "a table".into();
    }
    text.to_string()
}

/// A serde message about `key`, in the words of TOML: `invalid type: string "8080",
/// expected a sequence` → `expected an array of ports (8080 or "8080/tcp"), found string
/// "8080"`. Other messages only get their Rust type names replaced.
pub fn user_message(key: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        let expected = expected_for(key).map_or_else(|| toml_words(expected), str::to_string);
        return format!("expected {expected}, found {}", toml_words(found));
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        return format!(
            "expected {}, found {}",
            toml_words(expected),
            toml_words(found)
        );
    }
    message.to_string()
}

/// One step of a key path: a table key or an array index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `kubernetes.network-policy.from[0].pods` → its steps.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Step::Key(key));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// The span of the deepest part of `key` (inside the table at `table`, e.g.
/// `package.metadata.containerize.bin.api`) that the document has: the key itself, or
/// the table's header when the key is not written there (a default that failed).
fn key_span(
    doc: &toml_edit::Document<String>,
    table: &str,
    key: &str,
) -> Option<std::ops::Range<usize>> {
    let mut item: &Item = doc.as_item();
    let mut span = None;
    for step in steps(table).into_iter().chain(steps(key)) {
        let (next, next_span) = match step {
            Step::Key(k) => {
                let found = match item {
                    Item::Table(t) => t.get_key_value(k),
                    Item::Value(Value::InlineTable(t)) => {
                        return match t.get_key_value(k) {
                            Some((key, value)) => value.span().or(key.span()).or(span),
                            None => span,
                        };
                    }
                    _ => None,
                };
                let Some((key, value)) = found else {
                    return span;
                };
                let s = match value {
                    Item::Table(t) if !t.is_implicit() => t.span(),
                    _ => key.span(),
                };
                (value, s)
            }
            Step::Index(i) => match item {
                Item::Value(Value::Array(a)) => {
                    return a.get(i).and_then(Value::span).or(span);
                }
                Item::ArrayOfTables(a) => match a.get(i) {
                    Some(t) => (item, t.span()),
                    None => return span,
                },
                _ => return span,
            },
        };
        item = next;
        span = next_span.or(span);
    }
    span
}

/// `LINE:COLUMN` (1-based) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `crates/api/Cargo.toml:12:1`: where `key` of `table` (`[package.metadata.containerize]`)
/// is written in the manifest at `root/manifest`, or `None` when the file cannot be read
/// or parsed (the error still names the file).
pub fn locate(root: &Path, manifest: &str, table: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join(manifest)).ok()?;
    let doc = toml_edit::Document::parse(text).ok()?;
    let table = table.trim_start_matches('[').trim_end_matches(']');
    let span = key_span(&doc, table, key)?;
    let (line, column) = line_column(doc.raw(), span.start);
    Some(format!("{manifest}:{line}:{column}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_come_from_the_valid_keys() {
        let valid = ["args", "env", "exposed-ports", "labels", "platforms"];
        assert_eq!(did_you_mean("exposed_ports", &valid), Some("exposed-ports"));
        assert_eq!(did_you_mean("expose", &valid), None);
        assert_eq!(did_you_mean("platfroms", &valid), Some("platforms"));
        assert_eq!(did_you_mean("lables", &valid), Some("labels"));
        assert_eq!(did_you_mean("zzz", &valid), None);
        assert_eq!(edit_distance("containerise", "containerize"), 1);
    }

    #[test]
    fn serde_words_become_toml_words() {
        assert_eq!(
            user_message(
                "exposed-ports",
                "invalid type: string \"8080\", expected a sequence"
            ),
            "expected an array of ports (8080 or \"8080/tcp\"), found string \"8080\""
        );
        assert_eq!(
            user_message(
                "kubernetes.replicas",
                "invalid type: string \"2\", expected i32"
            ),
            "expected an integer, found string \"2\""
        );
        assert_eq!(
            user_message("env", "invalid type: sequence, expected a map"),
            "expected a table of strings, found array"
        );
        assert_eq!(
            user_message("x", "port 0 is out of range"),
            "port 0 is out of range"
        );
    }

    #[test]
    fn keys_are_located_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"a\"\n\n[package.metadata.containerize]\nenv = { A = 1 }\nexposed-ports = [8080, 0]\n\n[package.metadata.containerize.bin.api]\nargs = 3\n",
        )
        .unwrap();
        let at = |table, key| locate(dir.path(), "Cargo.toml", table, key);
        let pkg = "[package.metadata.containerize]";
        assert_eq!(at(pkg, "exposed-ports").as_deref(), Some("Cargo.toml:6:1"));
        assert_eq!(
            at(pkg, "exposed-ports[1]").as_deref(),
            Some("Cargo.toml:6:24")
        );
        assert_eq!(at(pkg, "env.A").as_deref(), Some("Cargo.toml:5:13"));
        assert_eq!(
            at("[package.metadata.containerize.bin.api]", "args").as_deref(),
            Some("Cargo.toml:9:1")
        );
        // A key that is not written: the table it belongs in.
        assert_eq!(at(pkg, "user").as_deref(), Some("Cargo.toml:4:1"));
    }
}
