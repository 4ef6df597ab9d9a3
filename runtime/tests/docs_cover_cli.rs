//! The user documentation keeps up with the program: every `p2pctl` command has its section in
//! docs/p2pctl.md, every JSON document its section in docs/json-output.md, and the exit codes
//! are the documented ones.

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;

use hsa_p2p_runtime::cli::Cli;
use hsa_p2p_runtime::report::json::SCHEMAS;

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn spec(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../topologies/{name}.toml"))
        .display()
        .to_string()
}

fn p2pctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_p2pctl"))
        .args(args)
        .output()
        .expect("p2pctl runs")
}

#[test]
fn every_command_has_a_section_in_p2pctl_md() {
    let text = doc("p2pctl.md");
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|command| command.get_name().to_string())
        .collect();
    assert!(commands.len() >= 7, "{commands:?}");
    let missing: Vec<_> = commands
        .iter()
        .filter(|name| !text.contains(&format!("\n### `p2pctl {name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/p2pctl.md has no section for {missing:?}"
    );
}

#[test]
fn every_json_schema_has_a_section_in_json_output_md() {
    let text = doc("json-output.md");
    let missing: Vec<_> = SCHEMAS
        .iter()
        .filter(|schema| !text.contains(&format!("\n## `{schema}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json-output.md has no section for {missing:?}"
    );
}

/// The documents that need no device name a schema of the list (copy and bench set theirs where
/// they are built).
#[test]
fn printed_documents_carry_a_listed_schema() {
    let same_switch = spec("same-switch");
    let commands: [&[&str]; 4] = [
        &["topo", "--spec", &same_switch, "--json"],
        &["matrix", "--spec", &same_switch, "--json"],
        &["predict", &same_switch, "--json"],
        &["why", "gpu0", "gpu1", "--spec", &same_switch, "--json"],
    ];
    for args in commands {
        let output = p2pctl(args);
        assert!(output.status.success(), "{args:?}");
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let schema = document["schema"].as_str().unwrap_or_default().to_string();
        assert!(
            SCHEMAS.contains(&schema.as_str()),
            "{args:?}: schema {schema:?}"
        );
    }
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let cases: [(&[&str], i32); 5] = [
        (&["predict", &spec("same-switch")], 0),
        (&["predict", "/nonexistent/spec.toml"], 1),
        (&["why"], 2),
        (&["no-such-command"], 2),
        (&["matrix", "--bogus-flag"], 2),
    ];
    let text = doc("p2pctl.md");
    let section = &text[text.find("## Exit status").expect("an Exit status section")..];
    for (args, code) in cases {
        assert_eq!(p2pctl(args).status.code(), Some(code), "{args:?}");
        assert!(
            section.contains(&format!("`{code}`")),
            "exit code {code} is not documented"
        );
    }
}
