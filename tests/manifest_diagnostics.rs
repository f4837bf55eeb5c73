//! Every kind of manifest problem, as the user sees it: one insta snapshot
//! of the rendered miette report (no colour) per case.

use chrono::{DateTime, Utc};
use t_minus::manifest::{self, Diagnostics, Limits, ValidateOptions};

const DIR: &str = "tests/fixtures/manifests";

fn handler() -> miette::GraphicalReportHandler {
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
}

fn problems(paths: &[&str], options: &ValidateOptions) -> Diagnostics {
    let paths: Vec<String> = paths.iter().map(|p| format!("{DIR}/{p}")).collect();
    match manifest::check(&paths, options) {
        Ok(v) => panic!("{paths:?} validated: {:?}", v.summary()),
        Err(d) => d,
    }
}

/// Renders every problem of `file` and checks their codes.
fn render(file: &str, codes: &[&str]) -> String {
    render_with(file, codes, &ValidateOptions::default())
}

fn render_with(file: &str, codes: &[&str], options: &ValidateOptions) -> String {
    let diags = problems(&[file], options);
    let got: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
    let want: Vec<String> = codes
        .iter()
        .map(|c| format!("t_minus::manifest::{c}"))
        .collect();
    assert_eq!(got, want, "codes of {file}");
    for d in &diags {
        assert!(d.help_str().is_some(), "{} has no help", d.code_str());
    }
    diags.render(&handler())
}

#[test]
fn syntax_error() {
    insta::assert_snapshot!(render("invalid/syntax.yaml", &["syntax"]));
}

#[test]
fn unknown_field() {
    insta::assert_snapshot!(render("invalid/unknown-field.yaml", &["unknown_field"]));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(render("invalid/wrong-type.yaml", &["type"]));
}

#[test]
fn missing_at() {
    insta::assert_snapshot!(render("invalid/missing-at.yaml", &["missing_field"]));
}

#[test]
fn duplicate_key() {
    insta::assert_snapshot!(render("invalid/duplicate-key.yaml", &["duplicate_key"]));
}

#[test]
fn unknown_need() {
    insta::assert_snapshot!(render("invalid/unknown-need.yaml", &["unknown_need"]));
}

#[test]
fn self_need() {
    insta::assert_snapshot!(render("invalid/self-need.yaml", &["self_need"]));
}

#[test]
fn cycle() {
    let out = render("invalid/cycle.yaml", &["cycle"]);
    assert!(out.contains("review → deploy → review"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn three_cycle_labels_every_edge() {
    let out = render("invalid/cycle-three.yaml", &["cycle"]);
    assert!(out.contains("a → b → c → a"), "{out}");
    for label in ["b needs a", "c needs b", "a needs c"] {
        assert!(out.contains(label), "{label} missing:\n{out}");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn quorum_too_large() {
    insta::assert_snapshot!(render(
        "invalid/quorum-too-large.yaml",
        &["quorum_too_large"]
    ));
}

#[test]
fn gates_every_problem_with_its_span() {
    insta::assert_snapshot!(render(
        "invalid/gates.yaml",
        &[
            "agent_id",
            "four_eyes",
            "agent_id",
            "window",
            "window",
            "window",
            "outside_windows",
            "outside_windows",
        ]
    ));
}

#[test]
fn four_eyes_without_a_requester() {
    insta::assert_snapshot!(render(
        "invalid/four-eyes-no-requester.yaml",
        &["four_eyes"]
    ));
}

#[test]
fn requested_by_must_be_the_applying_identity() {
    let options = ValidateOptions {
        requester: Some(t_minus::AgentId("mallory".into())),
        ..Default::default()
    };
    let diags = problems(&["invalid/gates.yaml"], &options);
    let got: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
    assert_eq!(got[0], "t_minus::manifest::requested_by", "{got:?}");
    // Without `requested_by`, the identity is the requester: the
    // four-eyes problem of `unnamed` names mallory, who does not attend.
    let ok = manifest::check(
        &[format!("{DIR}/invalid/four-eyes-no-requester.yaml")],
        &options,
    )
    .unwrap();
    let event = &ok.campaigns[0].events[0];
    assert_eq!(event.requested_by, Some(t_minus::AgentId("mallory".into())));
    assert!(event.four_eyes);
}

#[test]
fn quorum_groups_every_problem_with_its_span() {
    insta::assert_snapshot!(render(
        "invalid/groups.yaml",
        &[
            "unknown_group",
            "duplicate_attendee",
            "empty_group",
            "name",
            "quorum_too_large",
            "quorum_groups",
        ]
    ));
}

#[test]
fn duplicate_attendee() {
    insta::assert_snapshot!(render(
        "invalid/duplicate-attendee.yaml",
        &["duplicate_attendee"]
    ));
}

#[test]
fn duplicate_campaign_in_one_file() {
    insta::assert_snapshot!(render(
        "invalid/duplicate-campaign.yaml",
        &["duplicate_campaign"]
    ));
}

#[test]
fn duplicate_campaign_across_files_of_a_directory() {
    let diags = problems(&["dup-dir"], &ValidateOptions::default());
    assert_eq!(diags.len(), 1);
    insta::assert_snapshot!(diags.render(&handler()));
}

#[test]
fn bad_durations() {
    insta::assert_snapshot!(render(
        "invalid/bad-duration.yaml",
        &["duration", "duration"]
    ));
}

#[test]
fn bad_time() {
    insta::assert_snapshot!(render("invalid/bad-time.yaml", &["time"]));
}

#[test]
fn time_without_offset() {
    insta::assert_snapshot!(render("invalid/time-without-offset.yaml", &["time_offset"]));
}

#[test]
fn relative_at_shorter_than_t_minus() {
    insta::assert_snapshot!(render("invalid/relative-at-short.yaml", &["relative_at"]));
}

#[test]
fn invalid_names() {
    insta::assert_snapshot!(render("invalid/invalid-name.yaml", &["name", "name"]));
}

#[test]
fn bad_quorum_fire_policy_and_agent_id() {
    insta::assert_snapshot!(render(
        "invalid/bad-values.yaml",
        &["quorum", "fire_policy", "agent_id"]
    ));
}

#[test]
fn fire_time_passed_when_checking_against_now() {
    let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let options = ValidateOptions {
        now: Some(now),
        ..Default::default()
    };
    insta::assert_snapshot!(render_with(
        "invalid/fire-time-passed.yaml",
        &["fire_time_passed"],
        &options
    ));
    // Without `now` the manifest alone is fine.
    let paths = [format!("{DIR}/invalid/fire-time-passed.yaml")];
    assert!(manifest::check(&paths, &ValidateOptions::default()).is_ok());
}

#[test]
fn every_problem_of_every_document_in_one_run() {
    insta::assert_snapshot!(render(
        "invalid/many.yaml",
        &[
            "unknown_field",
            "duration",
            "quorum_too_large",
            "time",
            "unknown_need",
            "self_need"
        ]
    ));
}

#[test]
fn problems_of_several_files_in_one_run() {
    let diags = problems(
        &[
            "invalid/cycle.yaml",
            "valid/multi.yaml",
            "invalid/cycle-three.yaml",
        ],
        &ValidateOptions::default(),
    );
    let codes: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
    assert_eq!(
        codes,
        ["t_minus::manifest::cycle", "t_minus::manifest::cycle"]
    );
    // The summary diagnostic lists them all as related reports.
    let report = miette::Report::new(diags);
    let mut out = String::new();
    handler().render_report(&mut out, report.as_ref()).unwrap();
    assert!(out.contains("the manifests have 2 problems"), "{out}");
    assert!(out.contains("a → b → c → a"), "{out}");
}

#[test]
fn missing_file_and_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_str().unwrap().to_string();
    let missing = format!("{empty}/nope.yaml");
    let diags = manifest::check(&[missing, empty], &ValidateOptions::default()).unwrap_err();
    let codes: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
    assert_eq!(codes, ["t_minus::manifest::io", "t_minus::manifest::empty"]);
}

#[test]
fn valid_manifests_summarise() {
    let paths = [format!("{DIR}/valid/multi.yaml")];
    let desired = manifest::check(&paths, &ValidateOptions::default()).unwrap();
    assert_eq!(
        desired.summary().to_string(),
        "2 campaigns, 3 events, 1 edge"
    );
    let beta = desired.campaign("beta").unwrap();
    let keys: Vec<&str> = beta.events.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["first", "second"]);
    assert_eq!(beta.events[1].quorum_count(), 1);
    assert_eq!(beta.events[1].payload, serde_json::json!([1, 2, 3]));
}

// --- Input limits: hostile input is refused quickly with a clear error. ---

fn limit_problem(name: &str, text: &str) -> String {
    let start = std::time::Instant::now();
    let parsed = manifest::parse_str(name, text);
    let diags = manifest::validate(&parsed, &ValidateOptions::default()).unwrap_err();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    let first = diags.iter().next().unwrap();
    assert_eq!(first.code_str(), "t_minus::manifest::limit", "{first:?}");
    first.message().to_string()
}

#[test]
fn alias_bomb_is_refused() {
    // The "billion laughs": each level repeats the previous one ten times.
    let mut text = String::from(
        "campaign: bomb\nevents:\n  x:\n    at: +1m\n    payload:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let prev = i - 1;
        text.push_str(&format!(
            "      a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let msg = limit_problem("bomb.yaml", &text);
    assert!(!msg.is_empty());
}

#[test]
fn absurd_nesting_is_refused() {
    let depth = 10_000;
    let text = format!(
        "campaign: deep\nevents:\n  x:\n    at: +1m\n    payload: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    limit_problem("deep.yaml", &text);
}

#[test]
fn huge_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap(); // sparse: 100 MB of NULs
    let start = std::time::Instant::now();
    let diags = manifest::check(&[&path], &ValidateOptions::default()).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_millis(500));
    let d = diags.iter().next().unwrap();
    assert_eq!(d.code_str(), "t_minus::manifest::limit");
    assert!(d.message().contains("104857600 bytes"), "{}", d.message());
    // A lower limit applies to text held in memory too.
    let limits = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    let mut m = manifest::Manifests::default();
    m.add_str("small.yaml", "campaign: a-bit-too-long\n", &limits);
    assert_eq!(
        m.problems.iter().next().unwrap().code_str(),
        "t_minus::manifest::limit"
    );
}

/// Parses `text` under `limits` and returns the first problem's message,
/// which must be a limit.
fn limit_message_with(limits: &Limits, text: &str) -> String {
    let mut m = manifest::Manifests::default();
    m.add_str("m.yaml", text, limits);
    let d = m.problems.iter().next().expect("a problem");
    assert_eq!(d.code_str(), "t_minus::manifest::limit", "{d:?}");
    d.message().to_string()
}

#[test]
fn node_limit_follows_the_file_size_limit() {
    let limits = Limits::default();
    assert_eq!(limits.max_file_bytes, 16 * 1024 * 1024);
    assert_eq!(
        limits.max_nodes,
        limits.max_file_bytes as usize * manifest::NODES_PER_BYTE + limits.max_alias_replay
    );
    assert_eq!(Limits::for_file_bytes(8_000).max_nodes, 26_000);

    // One document beyond the node limit: stopped by the YAML parser.
    let limits = Limits {
        max_nodes: 100,
        ..Limits::default()
    };
    let events: String = (0..50).map(|i| format!("  e{i}:\n    at: +1m\n")).collect();
    let text = format!("campaign: c\nevents:\n{events}");
    let msg = limit_message_with(&limits, &text);
    assert!(
        msg.contains("limit of 100 YAML nodes") && msg.contains(&format!("({} bytes)", text.len())),
        "{msg}"
    );

    // Documents each within the limit, beyond it together.
    let doc: String = (0..10).map(|i| format!("  e{i}:\n    at: +1m\n")).collect();
    let text: String = (0..5)
        .map(|d| format!("---\ncampaign: c{d}\nevents:\n{doc}"))
        .collect();
    let msg = limit_message_with(&limits, &text);
    assert!(
        msg.contains("limit of 100 YAML nodes") && msg.contains(&format!("({} bytes)", text.len())),
        "{msg}"
    );
}

#[test]
fn limit_errors_name_the_limit_and_the_input_size() {
    let limits = Limits::default();
    let deep = format!(
        "campaign: deep\nevents:\n  x:\n    at: +1m\n    payload: {}{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let msg = limit_message_with(&limits, &deep);
    assert!(
        msg.contains("deeper than the limit of 32 levels")
            && msg.contains(&format!("({} bytes)", deep.len())),
        "{msg}"
    );
    let docs: String = (0..1_001)
        .map(|i| format!("---\ncampaign: c{i}\n"))
        .collect();
    let msg = limit_message_with(&limits, &docs);
    assert!(msg.contains("limit of 1000 documents"), "{msg}");
    let msg = limit_message_with(
        &Limits {
            max_file_bytes: 10,
            ..limits
        },
        "campaign: a-bit-too-long\n",
    );
    assert!(
        msg.contains("is 25 bytes, more than the limit of 10 bytes"),
        "{msg}"
    );
}

/// A campaign of events with ten attendees each, written in `style`, as
/// large as fits in `bytes` (and at least 97% of it).
fn campaign_filling(bytes: usize, style: &str) -> (String, usize) {
    let attendees: Vec<String> = (0..10).map(|a| format!("agent-{a}")).collect();
    let mut text = String::from("campaign: big\nevents:\n");
    let mut events = 0;
    loop {
        let event = match style {
            "block" => format!(
                "  e{events}:\n    at: +1h\n    attendees: [{}]\n",
                attendees.join(", ")
            ),
            "block lists" => format!(
                "  e{events}:\n    at: +1h\n    attendees:\n{}",
                attendees
                    .iter()
                    .map(|a| format!("      - {a}\n"))
                    .collect::<String>()
            ),
            "flow" => format!(
                "  e{events}: {{at: +1h, attendees: [{}]}}\n",
                attendees.join(",")
            ),
            "dense" => format!("  e{events}: {{at: +1h, attendees: [a,b,c,d,e,f,g,h,i,j]}}\n"),
            other => panic!("no style {other}"),
        };
        if text.len() + event.len() > bytes {
            break;
        }
        text.push_str(&event);
        events += 1;
    }
    assert!(text.len() * 100 >= bytes * 97, "{} of {bytes}", text.len());
    (text, events)
}

/// Checks that a campaign filling `limits`' size limit in each style
/// validates.
fn manifests_up_to_the_size_limit_validate(limits: &Limits) {
    for style in ["block", "block lists", "flow", "dense"] {
        let bytes = usize::try_from(limits.max_file_bytes).unwrap();
        let (text, events) = campaign_filling(bytes, style);
        let mut m = manifest::Manifests::default();
        m.add_str("big.yaml", &text, limits);
        let problems: Vec<String> = m.problems.iter().map(|d| d.message().to_string()).collect();
        assert!(problems.is_empty(), "{style}: {problems:?}");
        let valid = manifest::validate(&m, &ValidateOptions::default())
            .unwrap_or_else(|d| panic!("{style}: {d}"));
        assert_eq!(
            valid.summary().to_string(),
            format!("1 campaign, {events} events, 0 edges"),
            "{style}"
        );
    }
}

#[test]
fn manifests_of_any_style_up_to_the_size_limit_validate() {
    // The limits scale with the size limit: a file filling 1 MiB stands for
    // one filling the default 16 MiB (which the ignored test below checks).
    manifests_up_to_the_size_limit_validate(&Limits::for_file_bytes(1024 * 1024));
}

#[test]
#[ignore = "validates four 16 MiB manifests: slow in a debug build"]
fn manifests_of_any_style_up_to_the_default_size_limit_validate() {
    manifests_up_to_the_size_limit_validate(&Limits::default());
}

#[test]
fn shape_and_semantic_problems_of_one_document_in_one_run() {
    let diags = problems(
        &["invalid/shape-and-semantic.yaml"],
        &ValidateOptions::default(),
    );
    let text = std::fs::read_to_string(format!("{DIR}/invalid/shape-and-semantic.yaml")).unwrap();
    // Each problem's code and the rest of the line its first label starts
    // on.
    let got: Vec<(String, String)> = diags
        .iter()
        .map(|d| {
            let label = d
                .labels()
                .first()
                .unwrap_or_else(|| panic!("{d:?} has no label"));
            let at = &text[label.offset()..];
            (
                d.code_str()
                    .trim_start_matches("t_minus::manifest::")
                    .to_string(),
                at.lines().next().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("unknown_field", "colour: blue"),
        ("unknown_field", "atendees: [alice]"),
        ("type", "alice"),
        ("missing_field", "attendees: [dave]"),
        ("duration", "soon"),
        ("quorum_too_large", "5"),
        ("unknown_need", "reviw]"),
        ("duration", "forever"),
    ]
    .iter()
    .map(|(c, t)| (c.to_string(), t.to_string()))
    .collect();
    assert_eq!(got, want);
    for d in &diags {
        assert!(d.help_str().is_some(), "{} has no help", d.code_str());
        assert_eq!(
            d.file(),
            Some(format!("{DIR}/invalid/shape-and-semantic.yaml").as_str())
        );
    }
}

#[test]
fn text_fields_over_their_limits_point_at_the_field() {
    let text = format!(
        "campaign: big\ndescription: {}\nevents:\n  a:\n    kind: {}\n    at: +1h\n    attendees: [x]\n  b:\n    description: {}\n    at: +1h\n    attendees: [x]\n  c:\n    at: +1h\n    attendees: [x]\n    payload: {{ blob: {} }}\n",
        "c".repeat(4097),
        "k".repeat(65),
        "d".repeat(4097),
        "p".repeat(65_536),
    );
    let parsed = manifest::parse_str("big.yaml", &text);
    let diags = manifest::validate(&parsed, &ValidateOptions::default()).unwrap_err();
    let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.code_str(), d.message())).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for (code, _) in &got {
        assert_eq!(*code, "t_minus::manifest::too_long");
    }
    let messages: Vec<&str> = got.iter().map(|(_, m)| *m).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the kind is 65 bytes long; the limit is 64")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the description is 4097 bytes long; the limit is 4096")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("campaign big: the description is 4097 bytes")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the payload is 65547 bytes long; the limit is 65536")),
        "{messages:?}"
    );
    // Each points at its field: the kind's and descriptions' spans cover
    // their text, the payload's the event's key.
    for d in diags.iter() {
        let label = &d.labels()[0];
        let covered = &text[label.offset()..label.offset() + label.len()];
        if d.message().contains("kind") {
            assert_eq!(covered, "k".repeat(65));
        } else if d.message().contains("payload") {
            assert_eq!(covered, "c");
        } else {
            assert_eq!(covered.len(), 4097);
        }
    }
}
