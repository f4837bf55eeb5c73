//! Reading manifest files: paths and directories, input limits, YAML
//! documents into [`CampaignSpec`]s.

use std::path::{Path, PathBuf};

use serde_saphyr::{budget, options, Error as YamlError, Options};

use super::diagnostics::{DiagnosticCode, Diagnostics, ManifestDiagnostic, SourceFile};
use super::spec::{CampaignSpec, Span};

/// Input limits. A manifest beyond any of them is refused with a
/// `t_minus::manifest::limit` diagnostic before (or while) parsing, so hostile
/// input (an alias bomb, a huge file, absurd nesting) fails fast. Each
/// diagnostic names the limit, its value and how big the input was.
///
/// The number of YAML nodes a file may hold follows from its size: every node
/// written out takes at least one byte of text, and the densest YAML spends
/// half a byte per node (`{a,b,c}`: a key and its empty value per two
/// bytes), so [`NODES_PER_BYTE`] nodes per byte of the file-size limit admit
/// every file within that limit, whatever its style. Only aliases can make
/// more nodes than the text spells, and they have limits of their own, which
/// the node limit adds on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes (default 16 MiB: a campaign of
    /// 100,000 events with ten attendees each, written out in block style,
    /// takes about 13 MB).
    pub max_file_bytes: u64,
    /// Deepest nesting of mappings and sequences (default 32).
    pub max_depth: usize,
    /// Most YAML nodes (mappings, sequences, scalars) per file: by default
    /// [`NODES_PER_BYTE`] per byte of the file-size limit plus the
    /// alias-replay limit, so that no file within the size limit is refused
    /// for its node count unless aliases expand it.
    pub max_nodes: usize,
    /// Most aliases (`*ref`) per file (default 1,000).
    pub max_aliases: usize,
    /// Most nodes replayed from aliases per file (default 10,000).
    pub max_alias_replay: usize,
    /// Most documents (campaigns) per file (default 1,000).
    pub max_documents: usize,
}

/// YAML nodes allowed per byte of the file-size limit: more than the densest
/// text holds (see [`Limits`]).
pub const NODES_PER_BYTE: usize = 2;

/// The default file-size limit: 16 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits::for_file_bytes(DEFAULT_MAX_FILE_BYTES)
    }
}

impl Limits {
    /// The default limits for files of at most `max_file_bytes` bytes: the
    /// node limit is [`NODES_PER_BYTE`] per byte of it plus the
    /// alias-replay limit, the others are fixed (nesting 32, 1,000 aliases,
    /// 10,000 alias-replayed nodes, 1,000 documents).
    pub fn for_file_bytes(max_file_bytes: u64) -> Self {
        let max_alias_replay = 10_000;
        Limits {
            max_file_bytes,
            max_depth: 32,
            max_nodes: usize::try_from(max_file_bytes)
                .unwrap_or(usize::MAX)
                .saturating_mul(NODES_PER_BYTE)
                .saturating_add(max_alias_replay),
            max_aliases: 1_000,
            max_alias_replay,
            max_documents: 1_000,
        }
    }

    fn budget(&self) -> Option<serde_saphyr::Budget> {
        budget! {
            max_reader_input_bytes: Some(usize::try_from(self.max_file_bytes).unwrap_or(usize::MAX)),
            max_depth: self.max_depth,
            max_nodes: self.max_nodes,
            max_events: self.max_nodes.saturating_mul(4),
            max_aliases: self.max_aliases,
            max_anchors: self.max_aliases,
            max_documents: self.max_documents,
        }
    }

    fn options(&self) -> Options {
        options! {
            budget: self.budget(),
            alias_limits: serde_saphyr::alias_limits! {
                max_total_replayed_events: self.max_alias_replay,
                max_replay_stack_depth: 16,
                max_alias_expansions_per_anchor: self.max_aliases,
            },
            with_snippet: false,
            // `!!python/object` and other unknown tags are errors, not
            // silently dropped.
            reject_unsupported_tags: true,
        }
    }
}

/// One campaign document and the file it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// Index into [`Manifests::sources`].
    pub file: usize,
    /// The parsed document.
    pub spec: CampaignSpec,
}

/// Parsed manifests: every document that parsed, plus the problems found so
/// far (unreadable files, YAML errors, unknown fields, wrong types). Pass it
/// to [`super::validate()`] for the full check; that reports these problems
/// together with every semantic one.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// The files read, in order.
    pub sources: Vec<SourceFile>,
    /// The campaign documents that parsed, in file and document order.
    pub documents: Vec<Document>,
    /// Problems found while reading and parsing.
    pub problems: Diagnostics,
}

impl Manifests {
    /// Parses one more file's text (named `name` in diagnostics).
    pub fn add_str(&mut self, name: &str, text: &str, limits: &Limits) {
        let file = self.sources.len();
        let source = SourceFile::new(name, text);
        self.sources.push(source.clone());
        if text.len() as u64 > limits.max_file_bytes {
            self.problems
                .push(too_large(name, text.len() as u64, limits));
            return;
        }
        // The whole file against the limits first, streaming the parser's
        // events without building anything: a file beyond the node, depth or
        // document limit is refused after one pass of the parser, at no
        // memory cost, before the documents are built. (A syntax error is
        // left to the parse below, which places it.)
        let scan = limits.budget().map(|budget| {
            serde_saphyr::budget::check_yaml_budget(
                text,
                budget,
                serde_saphyr::budget::EnforcingPolicy::AllContent,
            )
        });
        if let Some(Ok(report)) = scan {
            if let Some(breach) = &report.breached {
                let what = breach_message(breach, limits);
                self.problems.push(
                    ManifestDiagnostic::new(
                        DiagnosticCode::Limit,
                        format!("{name} ({} bytes) holds {what}", text.len()),
                    )
                    .help("split the campaigns over several files; the limits apply to each file"),
                );
                return;
            }
        }
        let mut reader = std::io::Cursor::new(text.as_bytes());
        let mut count = 0usize;
        // The YAML library applies its budget to each document on its own;
        // the limits are per file, so count documents and nodes across them.
        let mut nodes = 0usize;
        // Documents that do not fit the format, for the recovering pass:
        // (index among the documents, where its spec goes in
        // `self.documents`, where its diagnostic is in `self.problems`, the
        // code and character offset of that diagnostic).
        let mut misfits: Vec<(usize, usize, usize, DiagnosticCode, Option<u64>)> = Vec::new();
        let mut limited = false;
        for doc in serde_saphyr::read_with_options::<_, CampaignSpec>(&mut reader, limits.options())
        {
            count += 1;
            if count > limits.max_documents {
                self.problems.push(too_many(
                    name,
                    text.len(),
                    format!("more than the limit of {} documents", limits.max_documents),
                ));
                break;
            }
            match doc {
                Ok(spec) => {
                    nodes = nodes.saturating_add(spec_nodes(&spec));
                    self.documents.push(Document { file, spec });
                    if nodes > limits.max_nodes {
                        self.problems.push(too_many(
                            name,
                            text.len(),
                            format!(
                                "more than the limit of {} YAML nodes (at least {nodes} in its first {count} documents)",
                                limits.max_nodes
                            ),
                        ));
                        break;
                    }
                }
                Err(e) => {
                    let code = classify(e.without_snippet(), "");
                    self.problems.push(yaml_diagnostic(&source, &e, limits));
                    if code == DiagnosticCode::Limit {
                        limited = true;
                        break;
                    }
                    if matches!(
                        code,
                        DiagnosticCode::UnknownField
                            | DiagnosticCode::MissingField
                            | DiagnosticCode::Type
                    ) {
                        let offset = e.without_snippet().location().map(|l| l.span().offset());
                        misfits.push((
                            count - 1,
                            self.documents.len(),
                            self.problems.len(),
                            code,
                            offset,
                        ));
                    }
                }
            }
        }
        if !misfits.is_empty() && !limited {
            self.recover(&source, file, misfits, limits);
        }
        if count == 0 {
            self.problems.push(
                ManifestDiagnostic::new(DiagnosticCode::Empty, format!("{name} holds no campaign"))
                    .help("a manifest holds one campaign per YAML document: `campaign: NAME` and `events:`"),
            );
        }
    }

    /// The recovering pass over the documents of `source` the fast parse
    /// stopped in: every other shape problem of each (after the one already
    /// reported), and its spec built from what fits, for the semantic
    /// checks.
    fn recover(
        &mut self,
        source: &SourceFile,
        file: usize,
        misfits: Vec<(usize, usize, usize, DiagnosticCode, Option<u64>)>,
        limits: &Limits,
    ) {
        let mut trees = super::recover::trees(&source.text, limits.options());
        // From the last, so that the positions of the earlier ones hold.
        for (doc, position, after, code, offset) in misfits.into_iter().rev() {
            let Some(tree) = trees.get_mut(doc).and_then(Option::take) else {
                continue;
            };
            let (problems, spec) = super::recover::recover(tree);
            let mut reported = false;
            let mut found = Vec::new();
            for p in problems {
                let same = p.code == code && offset == u64::try_from(p.span.offset).ok();
                if same && !reported {
                    reported = true; // the fast parse's diagnostic
                    continue;
                }
                let (help, label) = help_and_label(p.code);
                let span = Span {
                    len: p.span.len.max(1),
                    ..p.span
                };
                found.push(
                    ManifestDiagnostic::new(p.code, clean_message(&p.message))
                        .help(help)
                        .label(source, span, label),
                );
            }
            let at = after.min(self.problems.len());
            self.problems.insert_all(at, found);
            if let Some(spec) = spec {
                let at = position.min(self.documents.len());
                self.documents.insert(at, Document { file, spec });
            }
        }
    }

    /// Reads one file.
    pub fn add_file(&mut self, path: &Path, limits: &Limits) {
        let name = path.display().to_string();
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > limits.max_file_bytes => {
                self.problems.push(too_large(&name, meta.len(), limits));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                self.problems.push(io_problem(&name, &e));
                return;
            }
        }
        // Read at most one byte past the limit: a device or pipe (`/dev/zero`)
        // reports no length, so the check above cannot catch it.
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path).and_then(|file| {
            use std::io::Read;
            file.take(limits.max_file_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
        });
        if read.is_ok() && bytes.len() as u64 > limits.max_file_bytes {
            self.problems.push(
                ManifestDiagnostic::new(
                    DiagnosticCode::Limit,
                    format!(
                        "{name} holds more than the limit of {} bytes",
                        limits.max_file_bytes
                    ),
                )
                .help("point at a regular manifest file; a manifest larger than this is refused"),
            );
            return;
        }
        match read.map(|_| bytes) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => self.add_str(&name, &text, limits),
                Err(e) => self.problems.push(
                    ManifestDiagnostic::new(
                        DiagnosticCode::Io,
                        format!(
                            "{name} is not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                    .help("save the manifest as UTF-8"),
                ),
            },
            Err(e) => self.problems.push(io_problem(&name, &e)),
        }
    }

    /// Reads a path: a file, or every `*.yaml` / `*.yml` file directly in a
    /// directory, in name order.
    pub fn add_path(&mut self, path: &Path, limits: &Limits) {
        if !path.is_dir() {
            self.add_file(path, limits);
            return;
        }
        match manifest_files(path) {
            Ok(files) if files.is_empty() => self.problems.push(
                ManifestDiagnostic::new(
                    DiagnosticCode::Empty,
                    format!("{} holds no *.yaml or *.yml file", path.display()),
                )
                .help("point at manifest files or at a directory that holds some"),
            ),
            Ok(files) => {
                for file in files {
                    self.add_file(&file, limits);
                }
            }
            Err(e) => self
                .problems
                .push(io_problem(&path.display().to_string(), &e)),
        }
    }
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn too_large(name: &str, bytes: u64, limits: &Limits) -> ManifestDiagnostic {
    ManifestDiagnostic::new(
        DiagnosticCode::Limit,
        format!(
            "{name} is {bytes} bytes, more than the limit of {} bytes",
            limits.max_file_bytes
        ),
    )
    .help("split the campaigns over several files; a manifest larger than this is refused unread")
}

fn too_many(name: &str, bytes: usize, what: String) -> ManifestDiagnostic {
    ManifestDiagnostic::new(
        DiagnosticCode::Limit,
        format!("{name} ({bytes} bytes) holds {what}"),
    )
    .help("split the campaigns over several files")
}

/// What a file beyond the YAML library's budget holds: which limit, its
/// value and how far the input got.
fn breach_message(breach: &serde_saphyr::budget::BudgetBreach, limits: &Limits) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Nodes { nodes } => format!(
            "more than the limit of {} YAML nodes (stopped counting at {nodes})",
            limits.max_nodes
        ),
        B::Events { events } => format!(
            "more than the limit of {} YAML nodes (stopped after {events} parser events)",
            limits.max_nodes
        ),
        B::Depth { depth } => format!(
            "mappings and sequences nested deeper than the limit of {} levels (reached {depth})",
            limits.max_depth
        ),
        B::Aliases { aliases } => format!(
            "more than the limit of {} aliases (reached {aliases})",
            limits.max_aliases
        ),
        B::Anchors { anchors } => format!(
            "more than the limit of {} anchors (reached {anchors})",
            limits.max_aliases
        ),
        B::Documents { documents } => format!(
            "more than the limit of {} documents (reached {documents})",
            limits.max_documents
        ),
        B::InputBytes { input_bytes } => format!(
            "more than the limit of {} bytes (read {input_bytes})",
            limits.max_file_bytes
        ),
        B::AliasAnchorRatio { aliases, anchors } => format!(
            "{aliases} aliases of {anchors} anchors, more than the limit of 10 aliases per anchor"
        ),
        other => format!("input beyond a parser limit ({other:?})"),
    }
}

/// The message for an error of the YAML library that stopped at one of
/// [`Limits`]: which limit, its value and how far the input got.
fn limit_message(err: &YamlError, limits: &Limits, source: &SourceFile) -> Option<String> {
    let what = match err {
        YamlError::Budget { breach, .. } => breach_message(breach, limits),
        YamlError::AliasReplayLimitExceeded {
            total_replayed_events,
            max_total_replayed_events,
            ..
        } => format!(
            "aliases that replay more than the limit of {max_total_replayed_events} nodes (reached {total_replayed_events})"
        ),
        YamlError::AliasExpansionLimitExceeded {
            expansions,
            max_expansions_per_anchor,
            ..
        } => format!(
            "an anchor used more than the limit of {max_expansions_per_anchor} times (reached {expansions})"
        ),
        YamlError::AliasReplayStackDepthExceeded {
            depth, max_depth, ..
        } => format!(
            "aliases nested deeper than the limit of {max_depth} levels (reached {depth})"
        ),
        _ => return None,
    };
    Some(format!(
        "{} ({} bytes) holds {what}",
        source.name,
        source.text.len()
    ))
}

/// A lower bound of the YAML nodes a parsed campaign was written with.
fn spec_nodes(spec: &CampaignSpec) -> usize {
    fn json_nodes(v: &serde_json::Value) -> usize {
        1 + match v {
            serde_json::Value::Array(a) => a.iter().map(json_nodes).sum(),
            serde_json::Value::Object(o) => o.values().map(|v| 1 + json_nodes(v)).sum(),
            _ => 0,
        }
    }
    fn list<T>(l: &Option<super::spec::Spanned<Vec<T>>>) -> usize {
        l.as_ref().map_or(0, |l| 2 + l.value.len())
    }
    let defaults = spec
        .defaults
        .as_ref()
        .map_or(0, |d| 12 + list(&d.value.attendees));
    let events: usize = spec
        .events
        .0
        .iter()
        .map(|(_, e)| {
            let e = &e.value;
            6 + e.attendees.as_ref().map_or(0, |a| 2 + a.value.len())
                + list(&e.needs)
                + e.payload.as_ref().map_or(0, json_nodes)
                + 2 * [
                    e.kind.is_some(),
                    e.description.is_some(),
                    e.t_minus.is_some(),
                    e.quorum.is_some(),
                    e.fire.is_some(),
                    e.max_defer.is_some(),
                ]
                .iter()
                .filter(|set| **set)
                .count()
        })
        .sum();
    4 + defaults + events
}

fn io_problem(name: &str, e: &std::io::Error) -> ManifestDiagnostic {
    ManifestDiagnostic::new(DiagnosticCode::Io, format!("cannot read {name}: {e}"))
        .help("check the path and its permissions")
}

/// Converts a YAML or shape error into a diagnostic at its location.
fn yaml_diagnostic(source: &SourceFile, err: &YamlError, limits: &Limits) -> ManifestDiagnostic {
    let inner = err.without_snippet();
    let limit = limit_message(inner, limits, source);
    let named = limit.is_some();
    let message = limit.unwrap_or_else(|| clean_message(&inner.to_string()));
    let code = classify(inner, &message);
    let (help, label) = help_and_label(code);
    match inner.location() {
        Some(loc) if loc.line() > 0 => {
            let d = ManifestDiagnostic::new(code, message).help(help);
            let span = loc.span();
            let span = Span {
                offset: usize::try_from(span.offset()).unwrap_or(usize::MAX),
                len: usize::try_from(span.len()).unwrap_or(0).max(1),
            };
            d.label(source, span, label)
        }
        _ if named => ManifestDiagnostic::new(code, message)
            .help(help)
            .in_source(source),
        _ => ManifestDiagnostic::new(code, format!("{}: {message}", source.name))
            .help(help)
            .in_source(source),
    }
}

/// Drops the location the YAML library appends or prepends to its messages
/// (the label shows it) and keeps the first line.
fn clean_message(raw: &str) -> String {
    let mut msg = raw.lines().next().unwrap_or("").trim().to_string();
    if let Some(rest) = msg.strip_prefix("error: ") {
        msg = rest.to_string();
    }
    if msg.starts_with("line ") {
        if let Some((_, rest)) = msg.split_once(": ") {
            msg = rest.to_string();
        }
    }
    if let Some(pos) = msg.rfind(" at line ") {
        if msg[pos..].contains("column") {
            msg.truncate(pos);
        }
    }
    // Advice meant for programmers using the YAML library, not for users.
    if let Some(pos) = msg.find(", set DuplicateKeyPolicy") {
        msg.truncate(pos);
    }
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        msg = format!("duplicate key `{key}`");
    }
    for (from, to) in [
        ("expected sequence start", "expected a list"),
        ("expected mapping start", "expected a mapping"),
        ("expected string scalar", "expected a string"),
    ] {
        if let Some(rest) = msg.strip_prefix(from) {
            msg = format!("{to}{rest}");
        }
    }
    msg
}

/// The code of a YAML or shape error.
fn classify(err: &YamlError, message: &str) -> DiagnosticCode {
    match err {
        YamlError::SerdeUnknownField { .. } => DiagnosticCode::UnknownField,
        YamlError::SerdeMissingField { .. } => DiagnosticCode::MissingField,
        YamlError::SerdeInvalidType { .. }
        | YamlError::Unexpected { .. }
        | YamlError::SerdeInvalidValue { .. }
        | YamlError::SerdeInvalidLength { .. }
        | YamlError::NullIntoString { .. }
        | YamlError::InvalidScalar { .. }
        | YamlError::InvalidBooleanStrict { .. } => DiagnosticCode::Type,
        YamlError::DuplicateMappingKey { .. } => DiagnosticCode::DuplicateKey,
        YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. }
        | YamlError::IOError { .. } => DiagnosticCode::Limit,
        _ if message.contains("budget") || message.contains("limit") => DiagnosticCode::Limit,
        _ => DiagnosticCode::Syntax,
    }
}

/// The help line and label of a parse-time diagnostic.
fn help_and_label(code: DiagnosticCode) -> (&'static str, &'static str) {
    match code {
        DiagnosticCode::UnknownField => (
            "remove or rename the field; the schema (schemas/campaign.schema.json) lists the fields",
            "unknown field",
        ),
        DiagnosticCode::MissingField => (
            "every campaign needs `campaign:` and every event needs `at:`",
            "in this mapping",
        ),
        DiagnosticCode::Type => (
            "check the value's type against the schema (schemas/campaign.schema.json)",
            "wrong type",
        ),
        DiagnosticCode::DuplicateKey => (
            "each key may appear once in a mapping; remove or rename one",
            "duplicate key",
        ),
        DiagnosticCode::Limit => (
            "the input exceeds t-minus's manifest limits (size, nesting, aliases); write the campaign out plainly",
            "limit exceeded here",
        ),
        _ => ("fix the YAML syntax at the marked place", "here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The YAML nodes the parser counts in `text`, with no limit in the way.
    fn nodes_of(text: &str) -> usize {
        let budget = Limits::for_file_bytes(1 << 30).budget().expect("a budget");
        let report = serde_saphyr::budget::check_yaml_budget(
            text,
            budget,
            serde_saphyr::budget::EnforcingPolicy::AllContent,
        )
        .expect("valid YAML");
        assert!(report.breached.is_none(), "{:?}", report.breached);
        report.nodes
    }

    #[test]
    fn the_node_limit_admits_the_densest_yaml() {
        // The densest ways to spell nodes: keys with empty values, empty
        // items, one-character scalars, empty collections, single-pair
        // mappings in a flow sequence.
        let dense = [
            format!("{{{}a}}", "a,".repeat(5_000)),
            format!("[{}a]", "a,".repeat(5_000)),
            "?\n".repeat(5_000),
            "-\n".repeat(5_000),
            "a:\n".repeat(5_000),
            format!("[{}[]]", "[],".repeat(5_000)),
            format!("[{}{{}}]", "{},".repeat(5_000)),
            format!("[{}a: b]", "a: b,".repeat(5_000)),
            format!("[{}: ]", ": ,".repeat(5_000)),
        ];
        for text in &dense {
            let nodes = nodes_of(text);
            assert!(
                nodes <= text.len() * NODES_PER_BYTE,
                "{nodes} nodes in {} bytes: {:?}",
                text.len(),
                &text[..text.len().min(20)]
            );
        }
        // Every file within the size limit is within the node limit.
        let limits = Limits::for_file_bytes(16 * 1024 * 1024);
        assert_eq!(limits.max_nodes, 16 * 1024 * 1024 * NODES_PER_BYTE + 10_000);
        assert_eq!(Limits::default(), limits);
        let small = Limits::for_file_bytes(8_000);
        assert_eq!(
            small.max_nodes,
            8_000 * NODES_PER_BYTE + small.max_alias_replay
        );
        // A limit too large for memory saturates instead of overflowing.
        assert_eq!(Limits::for_file_bytes(u64::MAX).max_nodes, usize::MAX);
    }

    #[test]
    fn cleans_messages() {
        assert_eq!(
            clean_message(
                "duplicate mapping key: deploy, set DuplicateKeyPolicy in Options if acceptable"
            ),
            "duplicate key `deploy`"
        );
        assert_eq!(
            clean_message("unknown field `x`, expected one of a, b at line 13, column 7"),
            "unknown field `x`, expected one of a, b"
        );
        assert_eq!(
            clean_message("error: line 1 column 11: expected string scalar\n --> x"),
            "expected a string"
        );
    }
}
