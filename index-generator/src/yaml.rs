//! YAML with line numbers: a document becomes a `serde_json::Value` (for the JSON schema and for
//! typed reads) plus the line of every node, so each problem can name its line.
//!
//! YAML 1.2 core schema, as devfile tooling reads it: `version: 1.0` is a float, `yes` a string.
//! Duplicate keys are an error.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// A parsed YAML document.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// JSON pointer (`/commands/0/exec/component`) → (line of the node, line of its key).
    lines: HashMap<String, (usize, usize)>,
}

/// A YAML syntax error at a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl Document {
    pub fn parse(text: &str) -> Result<Document, SyntaxError> {
        let docs = MarkedYaml::load_from_str(text)
            .map_err(|e| SyntaxError { line: e.marker().line(), message: e.info().to_string() })?;
        let mut lines = HashMap::new();
        let value = match docs.as_slice() {
            [] => Value::Null,
            [doc] => convert(doc, &mut String::new(), 0, &mut lines)?,
            [_, second, ..] => {
                return Err(SyntaxError {
                    line: second.span.start.line(),
                    message: "more than one YAML document in the file".to_string(),
                });
            }
        };
        Ok(Document { value, lines })
    }

    /// Line of the node at `pointer`, or of its closest ancestor that has one (1 at worst).
    pub fn line(&self, pointer: &str) -> usize {
        let mut p = pointer;
        loop {
            if let Some((line, _)) = self.lines.get(p) {
                return *line;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 1,
            }
        }
    }

    /// Line of the key under which the node at `pointer` sits (the node's line for list items).
    pub fn key_line(&self, pointer: &str) -> usize {
        match self.lines.get(pointer) {
            Some((_, key)) => *key,
            None => self.line(pointer),
        }
    }

    /// The node at a JSON pointer.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }
}

/// Appends `token` to a JSON pointer, escaped as RFC 6901 says.
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn convert(
    node: &MarkedYaml<'_>,
    pointer: &mut String,
    key_line: usize,
    lines: &mut HashMap<String, (usize, usize)>,
) -> Result<Value, SyntaxError> {
    let line = node.span.start.line();
    lines.insert(pointer.clone(), (line, if key_line == 0 { line } else { key_line }));
    Ok(match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => scalar_value(&Scalar::parse_from_cow(text.clone())),
        YamlData::Tagged(_, inner) => convert(inner, pointer, key_line, lines)?,
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                push_token(pointer, &i.to_string());
                out.push(convert(item, pointer, 0, lines)?);
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (key, item) in entries {
                let name = key_string(key)?;
                let len = pointer.len();
                push_token(pointer, &name);
                let v = convert(item, pointer, key.span.start.line(), lines)?;
                pointer.truncate(len);
                out.insert(name, v);
            }
            Value::Object(out)
        }
        YamlData::Alias(_) | YamlData::BadValue => {
            return Err(SyntaxError { line, message: "a value that cannot be read (bad tag or alias)".to_string() });
        }
    })
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        // NaN and infinities have no JSON form; as strings they still fail a `number` schema.
        Scalar::FloatingPoint(f) => {
            Number::from_f64(f.into_inner()).map_or_else(|| Value::String(f.to_string()), Value::Number)
        }
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// Mapping keys become strings, as YAML-to-JSON conversion does (`8080: x` → `"8080"`).
fn key_string(key: &MarkedYaml<'_>) -> Result<String, SyntaxError> {
    let scalar = match &key.data {
        YamlData::Value(s) => s.clone(),
        YamlData::Representation(text, _, _) => Scalar::parse_from_cow(text.clone()),
        YamlData::Tagged(_, inner) => return key_string(inner),
        _ => {
            return Err(SyntaxError {
                line: key.span.start.line(),
                message: "a mapping key must be a scalar".to_string(),
            });
        }
    };
    Ok(match scalar {
        Scalar::Null => "null".to_string(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_nodes_and_keys() {
        let doc = Document::parse("schemaVersion: 2.2.0\nmetadata:\n  name: go\n  version: 1.0\ncommands:\n  - id: run\n    exec:\n      component: rt\n").unwrap();
        assert_eq!(doc.get("/metadata/version"), Some(&serde_json::json!(1.0)));
        assert_eq!(doc.line("/metadata/name"), 3);
        assert_eq!(doc.line("/metadata"), 3);
        assert_eq!(doc.key_line("/metadata"), 2);
        assert_eq!(doc.line("/commands/0/exec/component"), 8);
        assert_eq!(doc.line("/commands/0"), 6);
        assert_eq!(doc.line("/commands/0/missing/deeper"), 6);
        assert_eq!(doc.line(""), 1);
    }

    #[test]
    fn core_schema_scalars() {
        let doc = Document::parse("a: yes\nb: 0x10\nc: ~\nd: '1.0'\n8080: port\n").unwrap();
        assert_eq!(doc.value, serde_json::json!({"a": "yes", "b": 16, "c": null, "d": "1.0", "8080": "port"}));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = Document::parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let dup = Document::parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(dup.line, 3);
        assert!(dup.message.contains("duplicate"), "{dup:?}");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(Document::parse("").unwrap().value, Value::Null);
    }
}
