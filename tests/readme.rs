//! The README against the binary, so it cannot drift: the configuration reference equals what
//! `vigil config` prints, every `VIGIL_*` variable it names exists, every subcommand is listed,
//! the monitors example is a valid monitors file, and the set-up block holds the two commands CI
//! runs. Needs nothing running.
//!
//! The README's API examples are run against `vigil up --demo` by `tests/it/e2e.rs`.

#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const README: &str = include_str!("../README.md");

/// `vigil ARGS` without the caller's `VIGIL_*` environment; its stdout.
fn vigil(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIL_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vigil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The body of the first fenced block with `lang` after `heading`.
fn block_after(heading: &str, lang: &str) -> &'static str {
    let at = README
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let open = format!("```{lang}\n");
    let start = at + README[at..].find(&open).unwrap() + open.len();
    let end = start + README[start..].find("```").unwrap();
    &README[start..end]
}

/// `a.b.c = value` for every leaf of a TOML document.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

fn leaves(toml_text: &str) -> BTreeMap<String, toml::Value> {
    let value: toml::Value = toml::from_str(toml_text).unwrap();
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out
}

#[test]
fn configuration_reference_is_what_vigil_config_prints() {
    let documented = leaves(block_after("### Reference", "toml"));
    let actual = leaves(&vigil(&["config"]));
    let missing: Vec<_> = actual
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let extra: Vec<_> = documented
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "settings missing from the README: {missing:?}; in the README but not in `vigil config`: {extra:?}"
    );
    for (key, value) in &actual {
        assert_eq!(&documented[key], value, "default of {key}");
    }
    assert!(actual.len() > 50, "{}", actual.len());
}

#[test]
fn every_environment_variable_named_exists() {
    let mut known = String::new();
    for args in [
        &["--help"][..],
        &["up", "--help"],
        &["ingest", "--help"],
        &["process", "--help"],
        &["serve", "--help"],
        &["notify", "--help"],
        // Variables named by settings (`secrets.key-env`).
        &["config"],
    ] {
        known.push_str(&vigil(args));
    }
    // The local stack's own variables.
    known.push_str(include_str!("../scripts/stack"));
    let named: BTreeSet<&str> = README
        .match_indices("VIGIL_")
        .map(|(i, _)| {
            let rest = &README[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    assert!(named.len() >= 15, "{named:?}");
    let unknown: Vec<&&str> = named.iter().filter(|v| !known.contains(**v)).collect();
    assert!(
        unknown.is_empty(),
        "README names unknown variables: {unknown:?}"
    );
}

#[test]
fn every_subcommand_is_listed() {
    let help = vigil(&["--help"]);
    let commands: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"up"), "{help}");
    let listed = block_after("## The `vigil` command", "text");
    for command in commands {
        assert!(
            listed.contains(&format!("\n  {command} ")),
            "`vigil {command}` is not in the README's command list"
        );
    }
}

#[test]
fn set_up_block_is_the_demo_then_the_tests() {
    let commands: Vec<&str> = block_after("## Set up", "sh")
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim())
        .collect();
    assert_eq!(
        commands,
        [
            "scripts/stack up && cargo run --release -- up --demo",
            "scripts/test"
        ]
    );
    assert!(include_str!("../.ci/run").contains("exec scripts/test"));
    // The banner shown under it is checked against the real one in `src/up.rs`.
}

#[test]
fn monitors_example_is_a_valid_monitors_file() {
    let yaml = block_after("## Monitors", "yaml");
    let monitors = vigil_ingest::plan::parse_monitors("README.md", yaml)
        .unwrap_or_else(|e| panic!("the README's monitors example is invalid: {e}"));
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0].id, "checkout-api");
    assert_eq!(monitors[0].assertions.len(), 4);
}

#[test]
fn notification_examples_are_a_valid_monitors_file() {
    let yaml = [
        block_after("### Channels", "yaml"),
        block_after("### Routing and grouping", "yaml"),
        block_after("### Maintenance windows", "yaml"),
    ]
    .concat();
    let file = vigil_ingest::plan::parse_file("README.md", &yaml)
        .unwrap_or_else(|e| panic!("the README's notification examples are invalid: {e}"));
    let kinds: Vec<&str> = file
        .channels
        .iter()
        .flatten()
        .map(|c| c.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "webhook",
            "alertmanager",
            "slack",
            "pagerduty",
            "email",
            "console"
        ]
    );
    assert_eq!(file.maintenance.as_ref().map(Vec::len), Some(2));
    // Every receiver the routing example names is one of the example channels.
    let plan = vigil_ingest::plan::FilePlan::default()
        .with_notify(
            "README.md",
            &file,
            &vigil_ingest::plan::NotifyCurrent::default(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.len(), 9);
}
