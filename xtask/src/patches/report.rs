//! The per-patch table (Markdown, printed and written to `report.md` next to the patches).

use std::fmt::Write as _;

use super::check::{PatchResult, BUILT_DIR};

fn applies(result: &PatchResult) -> String {
    match &result.applies {
        Ok(()) => "yes".to_owned(),
        Err(reason) => format!("**no**: {}", reason.lines().next().unwrap_or_default()),
    }
}

fn builds(result: &PatchResult) -> String {
    match &result.build {
        None => "-".to_owned(),
        Some(build) if !build.ok => format!("**no** ({})", build.log.display()),
        Some(build) => {
            let what = if build.sample_built {
                "yes (hsa_p2p.o)"
            } else {
                "yes (sample not enabled yet)"
            };
            format!("{what}, {} warning(s)", build.warnings.len())
        }
    }
}

fn checkpatch(result: &PatchResult) -> String {
    match &result.checkpatch {
        None => "no totals".to_owned(),
        Some(c) => format!("{} / {} / {}", c.errors, c.warnings, c.checks),
    }
}

fn rustfmt(result: &PatchResult) -> String {
    match &result.rustfmt {
        None => "-".to_owned(),
        Some(r) if r.sample_files.is_empty() => "clean".to_owned(),
        Some(r) => format!("**{} file(s) differ**", r.sample_files.len()),
    }
}

/// The table plus the checkpatch messages and warnings below it.
pub fn render(results: &[PatchResult]) -> String {
    let mut text = format!(
        "| patch | applies | builds (`make CLIPPY=1 {BUILT_DIR}/`) | checkpatch E / W / C | rustfmt |\n\
         |---|---|---|---|---|\n"
    );
    for result in results {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} |",
            result.name,
            applies(result),
            builds(result),
            checkpatch(result),
            rustfmt(result)
        );
    }
    for result in results {
        let messages = result
            .checkpatch
            .as_ref()
            .map(|c| c.messages.clone())
            .unwrap_or_default();
        let warnings = result
            .build
            .as_ref()
            .map(|b| b.warnings.clone())
            .unwrap_or_default();
        let unformatted = result
            .rustfmt
            .as_ref()
            .map(|r| r.sample_files.clone())
            .unwrap_or_default();
        if messages.is_empty() && warnings.is_empty() && unformatted.is_empty() {
            continue;
        }
        let _ = writeln!(text, "\n{}:", result.name);
        for line in messages
            .iter()
            .map(|m| format!("checkpatch {m}"))
            .chain(warnings.iter().map(|w| format!("build {w}")))
            .chain(
                unformatted
                    .iter()
                    .map(|f| format!("rustfmt would change {f}")),
            )
        {
            let _ = writeln!(text, "- {line}");
        }
    }
    let others: usize = results
        .iter()
        .filter_map(|r| r.rustfmt.as_ref())
        .map(|r| r.other_files)
        .max()
        .unwrap_or(0);
    if others > 0 {
        let _ = writeln!(
            text,
            "\n`make rustfmtcheck` also reports {others} file(s) of the base tree (not touched by \
             the series; the rustfmt in PATH differs from the one the tree was formatted with)."
        );
    }
    text
}
