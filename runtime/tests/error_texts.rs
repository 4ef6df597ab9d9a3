//! The errors users see most, as they see them: a table of bad inputs, each run's command line,
//! exit code and message in one transcript snapshot per kind of mistake.

mod common;

use common::{transcript, transcript_in};

/// Runs every command line and joins the transcripts.
fn transcripts(dir: Option<&std::path::Path>, commands: &[&[&str]]) -> String {
    commands
        .iter()
        .map(|args| match dir {
            Some(dir) => transcript_in(dir, args),
            None => transcript(args),
        })
        .map(|text| text + "\n")
        .collect()
}

/// Naming a GPU or node that is not there, or a CPU where a GPU is needed.
#[test]
fn unknown_gpus_and_nodes() {
    let same_switch = "topologies/same-switch.toml";
    let tree = "runtime/tests/fixtures/predicted/same-switch";
    let text = transcripts(
        None,
        &[
            &["why", "gpu0", "gpu9", "--spec", same_switch],
            &["why", "large", "x", "--spec", "topologies/small-bar.toml"],
            &["why", "1", "9", "--spec", same_switch],
            &["why", "0", "1", "--spec", same_switch],
            &["copy", "--root", tree, "--from", "gpu0", "--to", "large"],
            &[
                "copy",
                "--root",
                tree,
                "--from",
                "gpu0",
                "--to",
                "gpu1",
                "--device",
                "/nonexistent",
            ],
            &["matrix", "--spec", same_switch, "--gpus", "gpu0,cpu0"],
            &["matrix", "--spec", same_switch, "--gpus", "gpu9"],
        ],
    );
    insta::assert_snapshot!("unknown-gpus-and-nodes", text);
}

/// Trees that are missing or malformed: each error names the file, and the line where there
/// is one.
#[test]
fn missing_and_malformed_trees() {
    let malformed = "runtime/tests/fixtures/malformed";
    let mut commands: Vec<Vec<String>> =
        vec![
            vec!["copy", "--root", "/nonexistent", "--from", "0", "--to", "1"]
                .into_iter()
                .map(String::from)
                .collect(),
        ];
    let mut names: Vec<String> = std::fs::read_dir(common::repo().join(malformed))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        commands.push(vec![
            "topo".into(),
            "--root".into(),
            format!("{malformed}/{name}"),
        ]);
    }
    let commands: Vec<Vec<&str>> = commands
        .iter()
        .map(|args| args.iter().map(String::as_str).collect())
        .collect();
    let commands: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
    insta::assert_snapshot!("missing-and-malformed-trees", transcripts(None, &commands));
}

/// Bad specs: each error names the file and the line (and the field) at fault.
#[test]
fn bad_specs_name_the_file_and_line() {
    let gpu = |extra: &str| {
        format!(
            "name = \"bad\"\n[[cpu]]\n[[root_port]]\nid = \"rp0\"\n[[gpu]]\nid = \"g\"\n\
             parent = \"rp0\"\nvram = \"1G\"\n{extra}"
        )
    };
    let specs = [
        ("unknown-field.toml", gpu("varm = 1\n")),
        ("bad-size.toml", gpu("bar = \"lots\"\n")),
        (
            "overflowing-size.toml",
            gpu("bar = \"18446744073709551615\"\n"),
        ),
        (
            "no-such-parent.toml",
            gpu("").replace("parent = \"rp0\"", "parent = \"rp9\""),
        ),
        (
            "duplicate-id.toml",
            gpu("[[gpu]]\nid = \"g\"\nparent = \"rp0\"\nvram = \"1G\"\n"),
        ),
        (
            "id-like-a-node.toml",
            gpu("").replace("id = \"g\"", "id = \"node3\""),
        ),
        ("not-toml.toml", "name = \"bad\"\n[[cpu]\n".to_string()),
        // pcie_p2p is amdgpu's parameter only with CONFIG_HSA_AMD_P2P.
        (
            "pcie-p2p-without-the-option.toml",
            gpu("").replace(
                "[[cpu]]",
                "[platform]\nkernel = \"before-p2p-links\"\npcie_p2p = false\n[[cpu]]",
            ),
        ),
    ];
    let scratch = tempfile::tempdir().unwrap();
    for (file, text) in &specs {
        std::fs::write(scratch.path().join(file), text).unwrap();
    }
    let mut commands: Vec<[&str; 2]> = specs.iter().map(|(file, _)| ["predict", *file]).collect();
    commands.push(["predict", "missing.toml"]);
    commands.push(["predict", "."]);
    let commands: Vec<&[&str]> = commands.iter().map(|args| args.as_slice()).collect();
    insta::assert_snapshot!("bad-specs", transcripts(Some(scratch.path()), &commands));
}

/// Command lines clap refuses: exit code 2 and clap's usage text.
#[test]
fn usage_errors() {
    let text = transcripts(
        None,
        &[
            &["matrix", "--spec", "topologies/two-socket.toml", "--csv"],
            &["why", "gpu0"],
            &["predict"],
            &["frobnicate"],
        ],
    );
    insta::assert_snapshot!("usage-errors", text);
}
