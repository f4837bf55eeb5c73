//! Shell completions, the man page and `--help`: what makes t-minus feel
//! native in a shell. None of these touches a store.

use crate::cli_support;

use cli_support::T;

/// Every subcommand path, e.g. `["plan"]`, `["campaign", "add"]`, read
/// from `t-minus --help` output so the test follows the real command tree.
fn subcommands(t: &T, path: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let out = t.run_args(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut found = Vec::new();
    let mut in_commands = false;
    for line in out.stdout.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            // Only entries (two spaces, then the name), not wrapped help text.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.is_empty() || name == "help" {
                continue;
            }
            let mut sub: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            sub.push(name.to_string());
            let refs: Vec<&str> = sub.iter().map(String::as_str).collect();
            let nested = subcommands(t, &refs);
            found.push(sub);
            found.extend(nested);
        }
    }
    found
}

fn all_subcommands(t: &T) -> Vec<Vec<String>> {
    let subs = subcommands(t, &[]);
    assert!(subs.len() >= 20, "{subs:?}");
    subs
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    let t = T::new().without_db_flag();
    let subs = all_subcommands(&t);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = t.run(&format!("completions {shell}"));
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.len() > 1000, "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("t-minus"), "{shell}");
        for sub in &subs {
            let name = sub.last().unwrap();
            assert!(
                out.stdout.contains(name.as_str()),
                "the {shell} completions do not mention `{}`",
                sub.join(" ")
            );
        }
    }
    // bash: every subcommand path appears as a case of the script (clap
    // writes a `-` in a name as it writes the step to a nested subcommand).
    let bash = t.run("completions bash").stdout;
    for sub in &subs {
        let case =
            format!("t__minus__subcmd__{}", sub.join("__subcmd__")).replace('-', "__subcmd__");
        assert!(bash.contains(&case), "bash completions lack {case}");
    }
    assert!(
        !t.dir().join("tminus.db").exists(),
        "completions created a store"
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let t = T::new();
    let out = t.run("completions tcsh");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("possible values"), "{}", out.stderr);
}

#[test]
fn the_man_page_has_name_synopsis_and_every_subcommand() {
    let t = T::new().without_db_flag();
    let out = t.run("man");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let page = out.stdout;
    assert!(page.contains(".TH t-minus 1"), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH COMMANDS",
        ".SH NOTES",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for sub in all_subcommands(&t) {
        let heading = format!(".SS \"t\\-minus {}\"", sub.join(" ").replace('-', "\\-"));
        assert!(page.contains(&heading), "the man page lacks {heading}");
    }
    // Exit codes are documented in it.
    assert!(page.contains("Exit codes"));
    assert!(!t.dir().join("tminus.db").exists(), "man created a store");
}

#[test]
fn the_man_page_renders_without_roff_warnings() {
    // Only where groff is installed.
    let Ok(groff) = std::process::Command::new("groff")
        .arg("--version")
        .output()
    else {
        return;
    };
    if !groff.status.success() {
        return;
    }
    let t = T::new();
    let dir = t.dir().join("page.1");
    std::fs::write(&dir, t.ok("man")).unwrap();
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_help_has_an_example_and_the_exit_codes() {
    let t = T::new();
    let mut paths = vec![Vec::new()];
    paths.extend(all_subcommands(&t));
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = t.run_args(&args);
        assert_eq!(out.code, 0);
        let help = out.stdout;
        let name = format!("t-minus {}", path.join(" "));
        assert!(help.contains("Example"), "`{name} --help` has no example");
        assert!(
            help.contains("Exit codes:"),
            "`{name} --help` does not give the exit codes"
        );
        assert!(
            help.contains(&format!("  {}", name.trim())),
            "`{name} --help`'s example does not show the command"
        );
    }
}

#[test]
fn campaign_show_prints_order_and_every_event() {
    let t = T::new();
    t.ok("campaign create rel");
    t.ok("campaign add rel checkpoint +10m --attendees ci");
    t.ok("campaign add rel review +20m --quorum 2 --attendees alice,bob,carol");
    t.ok("campaign add rel lint +20m --attendees lint-bot");
    t.ok("campaign link rel checkpoint review");
    t.ok("campaign link rel checkpoint lint");
    insta::assert_snapshot!("campaign_show", t.ok("campaign show rel"));
    t.ok("campaign create empty");
    insta::assert_snapshot!("campaign_show_empty", t.ok("campaign show empty"));
    let stderr = t.fail("campaign show nope");
    assert!(stderr.contains("t_minus::not_found::campaign"), "{stderr}");
}
