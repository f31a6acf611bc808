//! Problems found in a registry repository. Broken input is data: scanning returns the index
//! together with every problem, and one bad stack never hides another's.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem: where (file relative to the registry root, 1-based line or 0 when it has none),
/// which rule, and what is wrong in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub rule: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: impl Into<String>, line: usize, rule: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, file: file.into(), line, rule: rule.into(), message: message.into() }
    }

    pub fn warning(file: impl Into<String>, line: usize, rule: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, file: file.into(), line, rule: rule.into(), message: message.into() }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line` (or just `file` when there is no line).
    pub fn location(&self) -> String {
        if self.line == 0 { self.file.clone() } else { format!("{}:{}", self.file, self.line) }
    }
}

/// `error: stacks/go/devfile.yaml:12: [devfile/schema:type] metadata.version: 1.0 is not of type "string"`
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: [{}] {}", self.severity, self.location(), self.rule, self.message)
    }
}

/// Sorts problems the way they are reported: by file, line, rule, then message.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| (&a.file, a.line, &a.rule, &a.message).cmp(&(&b.file, b.line, &b.rule, &b.message)));
}
