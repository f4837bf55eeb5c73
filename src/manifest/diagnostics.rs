//! Manifest diagnostics: miette reports with labelled spans in the source.

use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

use super::spec::Span;

/// A manifest file's text, kept for labelling diagnostics.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as given (or a name such as `<stdin>`).
    pub name: String,
    /// The text.
    pub text: Arc<String>,
    /// Byte offset of every character, computed on demand for non-ASCII text.
    char_bytes: Arc<OnceLock<Vec<usize>>>,
}

impl SourceFile {
    /// A source named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: Arc::new(text.into()),
            char_bytes: Arc::new(OnceLock::new()),
        }
    }

    /// Converts a character span (as the YAML parser reports it) into a
    /// byte span of the text.
    pub fn byte_span(&self, span: Span) -> SourceSpan {
        let text = self.text.as_str();
        if text.is_ascii() {
            let start = span.offset.min(text.len());
            let len = span.len.min(text.len() - start);
            return SourceSpan::new(start.into(), len);
        }
        let table = self.char_bytes.get_or_init(|| {
            let mut v: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            v.push(text.len());
            v
        });
        let at = |chars: usize| table.get(chars).copied().unwrap_or(text.len());
        let start = at(span.offset);
        let end = at(span.offset.saturating_add(span.len));
        SourceSpan::new(start.into(), end.saturating_sub(start))
    }

    fn named(&self) -> NamedSource<Arc<String>> {
        NamedSource::new(self.name.clone(), self.text.clone()).with_language("yaml")
    }
}

/// The stable code of a manifest problem. [`DiagnosticCode::as_str`] is
/// the one place that spells each as the `t_minus::manifest::…` string
/// reports, JSON output and docs/exit-codes.md show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticCode {
    /// `t_minus::manifest::syntax`.
    Syntax,
    /// `t_minus::manifest::type`.
    Type,
    /// `t_minus::manifest::unknown_field`.
    UnknownField,
    /// `t_minus::manifest::missing_field`.
    MissingField,
    /// `t_minus::manifest::duplicate_key`.
    DuplicateKey,
    /// `t_minus::manifest::empty`.
    Empty,
    /// `t_minus::manifest::io`.
    Io,
    /// `t_minus::manifest::limit`.
    Limit,
    /// `t_minus::manifest::too_long`.
    TooLong,
    /// `t_minus::manifest::name`.
    Name,
    /// `t_minus::manifest::duplicate_campaign`.
    DuplicateCampaign,
    /// `t_minus::manifest::agent_id`.
    AgentId,
    /// `t_minus::manifest::duplicate_attendee`.
    DuplicateAttendee,
    /// `t_minus::manifest::duration`.
    Duration,
    /// `t_minus::manifest::time`.
    Time,
    /// `t_minus::manifest::time_offset`.
    TimeOffset,
    /// `t_minus::manifest::quorum`.
    Quorum,
    /// `t_minus::manifest::quorum_too_large`.
    QuorumTooLarge,
    /// `t_minus::manifest::quorum_groups`.
    QuorumGroups,
    /// `t_minus::manifest::empty_group`.
    EmptyGroup,
    /// `t_minus::manifest::unknown_group`.
    UnknownGroup,
    /// `t_minus::manifest::fire_policy`.
    FirePolicy,
    /// `t_minus::manifest::unknown_need`.
    UnknownNeed,
    /// `t_minus::manifest::self_need`.
    SelfNeed,
    /// `t_minus::manifest::duplicate_need`.
    DuplicateNeed,
    /// `t_minus::manifest::cycle`.
    Cycle,
    /// `t_minus::manifest::relative_at`.
    RelativeAt,
    /// `t_minus::manifest::fire_time_passed`.
    FireTimePassed,
    /// `t_minus::manifest::final_event`.
    FinalEvent,
    /// `t_minus::manifest::signers`.
    Signers,
    /// `t_minus::manifest::notify`.
    Notify,
    /// `t_minus::manifest::four_eyes`.
    FourEyes,
    /// `t_minus::manifest::requested_by`.
    RequestedBy,
    /// `t_minus::manifest::window`.
    Window,
    /// `t_minus::manifest::outside_windows`.
    OutsideWindows,
    /// `t_minus::manifest::escalation`.
    Escalation,
    /// `t_minus::manifest::github`.
    Github,
    /// `t_minus::manifest::invalid`.
    Invalid,
}

impl DiagnosticCode {
    /// Every code, in the order of docs/exit-codes.md.
    pub const ALL: [DiagnosticCode; 38] = [
        DiagnosticCode::Syntax,
        DiagnosticCode::Type,
        DiagnosticCode::UnknownField,
        DiagnosticCode::MissingField,
        DiagnosticCode::DuplicateKey,
        DiagnosticCode::Empty,
        DiagnosticCode::Io,
        DiagnosticCode::Limit,
        DiagnosticCode::TooLong,
        DiagnosticCode::Name,
        DiagnosticCode::DuplicateCampaign,
        DiagnosticCode::AgentId,
        DiagnosticCode::DuplicateAttendee,
        DiagnosticCode::Duration,
        DiagnosticCode::Time,
        DiagnosticCode::TimeOffset,
        DiagnosticCode::Quorum,
        DiagnosticCode::QuorumTooLarge,
        DiagnosticCode::QuorumGroups,
        DiagnosticCode::EmptyGroup,
        DiagnosticCode::UnknownGroup,
        DiagnosticCode::FirePolicy,
        DiagnosticCode::UnknownNeed,
        DiagnosticCode::SelfNeed,
        DiagnosticCode::DuplicateNeed,
        DiagnosticCode::Cycle,
        DiagnosticCode::RelativeAt,
        DiagnosticCode::FireTimePassed,
        DiagnosticCode::FinalEvent,
        DiagnosticCode::Signers,
        DiagnosticCode::Notify,
        DiagnosticCode::FourEyes,
        DiagnosticCode::RequestedBy,
        DiagnosticCode::Window,
        DiagnosticCode::OutsideWindows,
        DiagnosticCode::Escalation,
        DiagnosticCode::Github,
        DiagnosticCode::Invalid,
    ];

    /// The full code, e.g. `t_minus::manifest::cycle`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticCode::Syntax => "t_minus::manifest::syntax",
            DiagnosticCode::Type => "t_minus::manifest::type",
            DiagnosticCode::UnknownField => "t_minus::manifest::unknown_field",
            DiagnosticCode::MissingField => "t_minus::manifest::missing_field",
            DiagnosticCode::DuplicateKey => "t_minus::manifest::duplicate_key",
            DiagnosticCode::Empty => "t_minus::manifest::empty",
            DiagnosticCode::Io => "t_minus::manifest::io",
            DiagnosticCode::Limit => "t_minus::manifest::limit",
            DiagnosticCode::TooLong => "t_minus::manifest::too_long",
            DiagnosticCode::Name => "t_minus::manifest::name",
            DiagnosticCode::DuplicateCampaign => "t_minus::manifest::duplicate_campaign",
            DiagnosticCode::AgentId => "t_minus::manifest::agent_id",
            DiagnosticCode::DuplicateAttendee => "t_minus::manifest::duplicate_attendee",
            DiagnosticCode::Duration => "t_minus::manifest::duration",
            DiagnosticCode::Time => "t_minus::manifest::time",
            DiagnosticCode::TimeOffset => "t_minus::manifest::time_offset",
            DiagnosticCode::Quorum => "t_minus::manifest::quorum",
            DiagnosticCode::QuorumTooLarge => "t_minus::manifest::quorum_too_large",
            DiagnosticCode::QuorumGroups => "t_minus::manifest::quorum_groups",
            DiagnosticCode::EmptyGroup => "t_minus::manifest::empty_group",
            DiagnosticCode::UnknownGroup => "t_minus::manifest::unknown_group",
            DiagnosticCode::FirePolicy => "t_minus::manifest::fire_policy",
            DiagnosticCode::UnknownNeed => "t_minus::manifest::unknown_need",
            DiagnosticCode::SelfNeed => "t_minus::manifest::self_need",
            DiagnosticCode::DuplicateNeed => "t_minus::manifest::duplicate_need",
            DiagnosticCode::Cycle => "t_minus::manifest::cycle",
            DiagnosticCode::RelativeAt => "t_minus::manifest::relative_at",
            DiagnosticCode::FireTimePassed => "t_minus::manifest::fire_time_passed",
            DiagnosticCode::FinalEvent => "t_minus::manifest::final_event",
            DiagnosticCode::Signers => "t_minus::manifest::signers",
            DiagnosticCode::Notify => "t_minus::manifest::notify",
            DiagnosticCode::FourEyes => "t_minus::manifest::four_eyes",
            DiagnosticCode::RequestedBy => "t_minus::manifest::requested_by",
            DiagnosticCode::Window => "t_minus::manifest::window",
            DiagnosticCode::OutsideWindows => "t_minus::manifest::outside_windows",
            DiagnosticCode::Escalation => "t_minus::manifest::escalation",
            DiagnosticCode::Github => "t_minus::manifest::github",
            DiagnosticCode::Invalid => "t_minus::manifest::invalid",
        }
    }
}

impl fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in the manifests, with a stable code
/// (`t_minus::manifest::…`), labelled spans and a help line.
#[derive(Debug, Clone)]
pub struct ManifestDiagnostic {
    code: DiagnosticCode,
    message: String,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<NamedSource<Arc<String>>>,
    /// Where each label is (line, column, both from 1), when some label sits
    /// on a line too long to show: the report then names the places
    /// instead of printing the line (miette panics on a label more than
    /// 65,535 columns in, and prints megabytes for a huge line).
    places: Option<Vec<(usize, usize, String)>>,
}

/// Longest source line shown in a report, in bytes.
const MAX_SHOWN_LINE: usize = 1024;

impl ManifestDiagnostic {
    /// A diagnostic with `code`.
    pub fn new(code: DiagnosticCode, message: impl Into<String>) -> Self {
        ManifestDiagnostic {
            code,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            source: None,
            places: None,
        }
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Attaches the source the labels point into.
    pub fn in_source(mut self, source: &SourceFile) -> Self {
        self.source = Some(source.named());
        self
    }

    /// Adds a label at a character span of `source` (attaching the source).
    pub fn label(mut self, source: &SourceFile, span: Span, text: impl Into<String>) -> Self {
        if self.source.is_none() {
            self.source = Some(source.named());
        }
        let byte_span = source.byte_span(span);
        self.labels
            .push(LabeledSpan::new_with_span(Some(text.into()), byte_span));
        let text = source.text.as_str();
        let start = byte_span.offset().min(text.len());
        let end = (start + byte_span.len()).min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
        if self.places.is_none() && line_end - line_start > MAX_SHOWN_LINE {
            self.places = Some(Vec::new());
        }
        if let Some(places) = &mut self.places {
            places.clear();
            for l in &self.labels {
                let at = l.offset().min(text.len());
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
                    .chars()
                    .count()
                    + 1;
                places.push((line, column, l.label().unwrap_or("here").to_string()));
            }
        }
        self
    }

    /// The full code, e.g. `t_minus::manifest::cycle`.
    pub fn code_str(&self) -> &'static str {
        self.code.as_str()
    }

    /// The code.
    pub fn kind(&self) -> DiagnosticCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help line, if any.
    pub fn help_str(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The name of the file the labels point into, if any.
    pub fn file(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.name())
    }

    /// The labelled byte spans.
    pub fn labels(&self) -> &[LabeledSpan] {
        &self.labels
    }
}

impl fmt::Display for ManifestDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestDiagnostic {}

impl Diagnostic for ManifestDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let Some(places) = &self.places else {
            return self
                .help
                .as_ref()
                .map(|h| Box::new(h) as Box<dyn fmt::Display>);
        };
        let file = self.file().unwrap_or("the manifest");
        let mut text = self.help.clone().unwrap_or_default();
        for (line, column, label) in places {
            text.push_str(&format!("\n{file}:{line}:{column}: {label}"));
        }
        Some(Box::new(text.trim_start().to_string()))
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.places.is_some() {
            return None;
        }
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() || self.places.is_some() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// Every problem found in one run, in file order. As a miette diagnostic it
/// reports a one-line summary and lists each problem as a related diagnostic;
/// render them one by one with [`Diagnostics::iter`] for the clearest output.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(Vec<ManifestDiagnostic>);

impl Diagnostics {
    /// No problems yet.
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    /// Adds a problem.
    pub fn push(&mut self, d: ManifestDiagnostic) {
        self.0.push(d);
    }

    /// Inserts `problems` before the problem at `index` (at the end when
    /// `index` is the number of problems).
    pub fn insert_all(&mut self, index: usize, problems: Vec<ManifestDiagnostic>) {
        self.0.splice(index..index, problems);
    }

    /// Adds all problems of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ManifestDiagnostic> {
        self.0.iter()
    }

    /// `Ok(value)` when there are no problems, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Renders every problem with `handler`, separated by blank lines.
    /// miette's graphical handler comes with the `cli` feature.
    #[cfg(feature = "cli")]
    pub fn render(&self, handler: &miette::GraphicalReportHandler) -> String {
        let mut out = String::new();
        for d in &self.0 {
            let _ = handler.render_report(&mut out, d);
        }
        out
    }
}

impl IntoIterator for Diagnostics {
    type Item = ManifestDiagnostic;
    type IntoIter = std::vec::IntoIter<ManifestDiagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a ManifestDiagnostic;
    type IntoIter = std::slice::Iter<'a, ManifestDiagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<ManifestDiagnostic> for Diagnostics {
    fn from(d: ManifestDiagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "{}", self.0[0]),
            n => write!(f, "the manifests have {n} problems"),
        }
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic for Diagnostics {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.code(),
            _ => Some(Box::new(DiagnosticCode::Invalid)),
        }
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => Diagnostic::help(one),
            _ => None,
        }
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        match self.0.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.0.as_slice() {
            [one] => Diagnostic::labels(one),
            _ => None,
        }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.len() > 1 {
            Some(Box::new(self.0.iter().map(|d| d as &dyn Diagnostic)))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_documented() {
        let docs = include_str!("../../docs/exit-codes.md");
        let table = &docs[docs.find("### Manifests").expect("the manifest section")..];
        let mut seen = std::collections::HashSet::new();
        for code in DiagnosticCode::ALL {
            let full = code.as_str();
            assert!(seen.insert(full), "{full} twice");
            let short = full
                .strip_prefix("t_minus::manifest::")
                .expect("the prefix");
            assert!(
                table.contains(&format!("`{short}`")),
                "{short} is not in docs/exit-codes.md"
            );
            assert_eq!(ManifestDiagnostic::new(code, "m").code_str(), full);
        }
    }
}
