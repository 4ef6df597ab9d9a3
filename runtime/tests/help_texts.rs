//! `p2pctl --help` and every subcommand's `--help` as snapshots: the text a new user reads
//! first, reviewed like any other output.

mod common;

use common::p2pctl;

#[test]
fn help_of_p2pctl_and_each_subcommand() {
    insta::assert_snapshot!("help", p2pctl(&["--help"]));
    let commands = [
        "topo", "matrix", "why", "predict", "dot", "heatmap", "export", "copy", "bench", "snapshot",
    ];
    for command in commands {
        insta::assert_snapshot!(format!("help-{command}"), p2pctl(&[command, "--help"]));
    }
}
