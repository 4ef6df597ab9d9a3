//! `p2pctl export slurm|nfd [-o FILE]`.

use std::path::Path;

use anyhow::{bail, Context, Result};

use hsa_p2p_runtime::cli::{ExportArgs, ExportFormat};
use hsa_p2p_runtime::export::{gres_lines, nfd_features};
use hsa_p2p_runtime::report::json::Source;

use crate::output::emit;
use crate::source;

pub fn run(args: &ExportArgs) -> Result<()> {
    if args.gpu_type.is_some() && args.format != ExportFormat::Slurm {
        bail!("--type applies to `export slurm` only");
    }
    let mut loaded = source::load(&args.source)?;
    if let Some(root) = args.source.machine_root(args.machine_root.as_ref()) {
        loaded = loaded.with_machine_facts(&root);
    }
    let described = match &loaded.source {
        Source::Sysfs { path } => path.clone(),
        Source::Spec { path, name } => format!("spec {name} ({path})"),
    };
    let input = loaded.view_input();
    let text = match args.format {
        ExportFormat::Slurm => gres_lines(&input, args.gpu_type.as_deref(), &described),
        ExportFormat::Nfd => nfd_features(&input, &described),
    };
    match &args.output {
        Some(path) => replace_file(path, &text),
        None => Ok(emit(text)?),
    }
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file.
fn replace_file(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let temporary = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}
