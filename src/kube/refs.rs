//! `containerize://<binary>` references in a user's YAML → built image references, the
//! way `ko resolve` replaces `ko://` ones.
//!
//! The replacement is textual, scalar by scalar, so comments, key order, anchors and
//! formatting of the rest of the file stay exactly as written (re-serializing would lose
//! them). Comments are left alone. The input and the result must both parse as YAML.

use std::collections::BTreeMap;

use super::KubeError;

/// The scheme of a reference to a binary of the workspace.
pub const SCHEME: &str = "containerize://";

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Where the comment of a line starts (a `#` at the start or after whitespace, outside
/// quotes), if it has one.
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

/// Replaces every `containerize://<name>` outside comments with `images[name]`.
/// `file` names the input in errors.
pub fn replace(
    text: &str,
    images: &BTreeMap<String, String>,
    file: &str,
) -> Result<String, KubeError> {
    let yaml_error = |e: serde_saphyr::Error| KubeError::InputYaml {
        file: file.to_string(),
        message: e.to_string(),
    };
    serde_saphyr::from_multiple::<serde_json::Value>(text).map_err(yaml_error)?;
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let code_end = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(code_end);
        let mut rest = code;
        while let Some(at) = rest.find(SCHEME) {
            out.push_str(&rest[..at]);
            let after = &rest[at + SCHEME.len()..];
            let len = after.find(|c| !name_char(c)).unwrap_or(after.len());
            let name = &after[..len];
            let Some(reference) = images.get(name) else {
                return Err(KubeError::UnknownRef {
                    name: name.to_string(),
                    file: file.to_string(),
                    line: n + 1,
                    known: images.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            };
            out.push_str(reference);
            rest = &after[len..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    serde_saphyr::from_multiple::<serde_json::Value>(&out).map_err(yaml_error)?;
    Ok(out)
}

/// The binaries `text` references (outside comments), sorted, each once: what `resolve`
/// builds.
pub fn names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let mut rest = &line[..comment_start(line).unwrap_or(line.len())];
        while let Some(at) = rest.find(SCHEME) {
            let after = &rest[at + SCHEME.len()..];
            let len = after.find(|c| !name_char(c)).unwrap_or(after.len());
            names.push(after[..len].to_string());
            rest = &after[len..];
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> BTreeMap<String, String> {
        [("api".to_string(), "ghcr.io/o/api@sha256:abc".to_string())].into()
    }

    #[test]
    fn replaces_scalars_and_keeps_everything_else() {
        let input = "\
# deploy the API: containerize://api stays in this comment
apiVersion: apps/v1   # trailing comment
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: api
          image: containerize://api # pinned at build time
        - name: quoted
          image: \"containerize://api\"
---
zeta: 1
alpha: 2
";
        let out = replace(input, &images(), "in.yaml").unwrap();
        assert_eq!(
            out,
            input
                .replace(
                    "image: containerize://api #",
                    "image: ghcr.io/o/api@sha256:abc #"
                )
                .replace("\"containerize://api\"", "\"ghcr.io/o/api@sha256:abc\"")
        );
        assert!(out.contains("# deploy the API: containerize://api stays"));
        assert_eq!(names(input), ["api"]);
        assert_eq!(
            names("a: containerize://web\nb: [containerize://api, containerize://web]\n"),
            ["api", "web"]
        );
    }

    #[test]
    fn unknown_binaries_name_file_line_and_what_was_built() {
        let e = replace(
            "a: 1\nimage: containerize://nope\n",
            &images(),
            "k8s/app.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "`containerize://nope` in k8s/app.yaml:2 names no image of this build"
        );
        let e = replace("a: [\n", &images(), "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.yaml is not valid YAML"), "{e}");
    }
}
