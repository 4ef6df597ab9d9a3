//! The patch series: what each patch changes and says, committed in a scratch git repository
//! that holds only the kernel files the series touches (copying a 1.5 GB tree into git would
//! take minutes; `git format-patch` needs nothing else), then written out with
//! `git format-patch --cover-letter`.
//!
//! Order, so that every step builds: (1) the shared rules, which nothing builds yet; (2) the
//! driver, its C shims, Makefile and Kconfig entry; (3) the MAINTAINERS entry.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::kconfig;
use super::layout::{self, TreeFile, SAMPLE_DIR};
use crate::util::{capture, run};

/// One patch: a subject, a message body and the full new contents of the files it touches.
pub struct PatchSpec {
    pub subject: String,
    pub body: String,
    pub files: Vec<(String, String)>,
}

/// A `Name <email>` identity for From and Signed-off-by.
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    pub fn parse(text: &str) -> Result<Self> {
        let (name, rest) = text
            .split_once('<')
            .with_context(|| format!("{text:?} is not `Name <email>`"))?;
        let email = rest
            .strip_suffix('>')
            .with_context(|| format!("{text:?} is not `Name <email>`"))?;
        if name.trim().is_empty() || !email.contains('@') {
            bail!("{text:?} is not `Name <email>`");
        }
        Ok(Self {
            name: name.trim().to_owned(),
            email: email.trim().to_owned(),
        })
    }

    pub fn to_line(&self) -> String {
        format!("{} <{}>", self.name, self.email)
    }
}

fn read_base(base: &Path, path: &str) -> Result<String> {
    fs::read_to_string(base.join(path))
        .with_context(|| format!("{path} not found in the base tree {}", base.display()))
}

fn files(list: &[TreeFile]) -> Vec<(String, String)> {
    list.iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect()
}

/// The three patches, from the repository's `kmod/` and the base tree's files.
pub fn plan(base: &Path, kmod: &Path, maintainer: &Identity) -> Result<Vec<PatchSpec>> {
    let sample = layout::sample_files(kmod)?;
    let spdx_note = if sample.core.iter().any(|f| f.spdx_added) {
        "\n\nThe files carry the kernel's SPDX line; in the hsa-p2p repository they\n\
         are also built as a standalone no_std crate."
    } else {
        ""
    };
    let core = PatchSpec {
        subject: "samples: rust: hsa_p2p: add the shared peer-to-peer rules".to_owned(),
        body: format!(
            "Add the rules of the hsa_p2p sample as plain Rust modules that do not\n\
             use the kernel crate: the KFD topology model (nodes, io_links and\n\
             p2p_links), the peer-access gate that mirrors amdgpu's\n\
             amdgpu_device_is_peer_accessible() and reports every failed condition,\n\
             link composition, the topology builder, the descriptor page of an\n\
             emulated GPU and the sysfs \"properties\" text format.\n\
             \n\
             The same files are built and tested on the host as a no_std crate.\n\
             The driver added by the next patch mounts them at its crate root\n\
             with path attributes, so that their crate:: paths resolve unchanged.\n\
             Nothing builds them yet.{spdx_note}"
        ),
        files: files(&sample.core),
    };

    let mut driver_files = files(&sample.driver);
    driver_files.push((
        "samples/rust/Kconfig".to_owned(),
        kconfig::add_kconfig_entry(&read_base(base, "samples/rust/Kconfig")?)?,
    ));
    driver_files.push((
        "samples/rust/Makefile".to_owned(),
        kconfig::add_makefile_line(&read_base(base, "samples/rust/Makefile")?)?,
    ));
    let driver = PatchSpec {
        subject: "samples: rust: add the hsa_p2p PCIe peer-to-peer sample driver".to_owned(),
        body: "Add a sample PCI driver that shows how a Rust driver can use the PCI\n\
               peer-to-peer DMA core for GPUs. It binds emulated GPUs (QEMU\n\
               ivshmem-plain devices whose BAR2 starts with a descriptor page),\n\
               makes a large-BAR GPU a P2PDMA provider, asks\n\
               pci_p2pdma_distance() for every ordered pair of bound GPUs and\n\
               publishes the result, with the reason for every refused pair, as a\n\
               KFD-style topology under /sys/kernel/hsa_p2p/topology. The topology\n\
               is rebuilt and republished on every bind and unbind.\n\
               \n\
               Small C shims reach what the Rust abstractions do not cover yet:\n\
               kobject-based sysfs directories with read-only files, NUMA and\n\
               IOMMU queries, pci_p2pdma_distance() and pcim_p2pdma_init().\n\
               \n\
               The sample depends on PCI_P2PDMA; it is a tristate under SAMPLES_RUST."
            .to_owned(),
        files: driver_files,
    };

    let maintainers = PatchSpec {
        subject: "MAINTAINERS: add an entry for the hsa_p2p Rust sample".to_owned(),
        body: format!(
            "Add a maintainers entry for {SAMPLE_DIR}/ so that changes to the\n\
             sample reach its authors and the Rust for Linux list."
        ),
        files: vec![(
            "MAINTAINERS".to_owned(),
            kconfig::add_maintainers_entry(
                &read_base(base, "MAINTAINERS")?,
                &kconfig::maintainers_entry(&maintainer.to_line()),
            )?,
        )],
    };
    Ok(vec![core, driver, maintainers])
}

/// Every path the series touches, in order of first appearance.
pub fn touched_paths(series: &[PatchSpec]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for patch in series {
        for (path, _) in &patch.files {
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
    }
    paths
}

/// What `git format-patch` wrote.
pub struct WrittenSeries {
    pub cover_letter: PathBuf,
    pub patches: Vec<PathBuf>,
}

/// Settings of [`write`].
pub struct WriteOptions<'a> {
    pub base: &'a Path,
    pub work: &'a Path,
    pub out: &'a Path,
    pub author: &'a Identity,
    /// Unix time for author and committer dates (reproducible output).
    pub date: u64,
    pub reroll_count: Option<u32>,
    pub cover_subject: &'a str,
    pub cover_blurb: &'a str,
}

/// Commits the series in a scratch repository and runs `git format-patch --cover-letter`.
pub fn write(series: &[PatchSpec], options: &WriteOptions) -> Result<WrittenSeries> {
    let work = options.work;
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work)?;
    let git = |args: &[&str]| -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(work)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(["-c", "format.signature=", "-c", "core.abbrev=12"])
            .args(args)
            .env("GIT_AUTHOR_NAME", &options.author.name)
            .env("GIT_AUTHOR_EMAIL", &options.author.email)
            .env("GIT_COMMITTER_NAME", &options.author.name)
            .env("GIT_COMMITTER_EMAIL", &options.author.email)
            .env("GIT_AUTHOR_DATE", format!("@{} +0000", options.date))
            .env("GIT_COMMITTER_DATE", format!("@{} +0000", options.date));
        cmd
    };
    capture(&mut git(&["init", "-q", "-b", "base"]))?;
    // The base commit: the base tree's versions of the files the series modifies.
    for path in touched_paths(series) {
        if options.base.join(&path).is_file() {
            let target = work.join(&path);
            fs::create_dir_all(target.parent().expect("relative path"))?;
            fs::copy(options.base.join(&path), &target)?;
        }
    }
    capture(&mut git(&["add", "-A"]))?;
    capture(&mut git(&["commit", "-q", "--allow-empty", "-m", "base"]))?;
    capture(&mut git(&["tag", "base"]))?;

    for patch in series {
        for (path, contents) in &patch.files {
            let target = work.join(path);
            fs::create_dir_all(target.parent().expect("relative path"))?;
            fs::write(&target, contents)?;
        }
        let message = format!(
            "{}\n\n{}\n\nSigned-off-by: {}\n",
            patch.subject,
            patch.body,
            options.author.to_line()
        );
        let message_file = work.join(".git/PATCH_MESSAGE");
        fs::write(&message_file, message)?;
        capture(&mut git(&["add", "-A"]))?;
        capture(&mut git(&["commit", "-q", "-F", ".git/PATCH_MESSAGE"]))
            .with_context(|| format!("cannot commit {:?}", patch.subject))?;
    }

    let out = options.out;
    fs::create_dir_all(out)?;
    for entry in fs::read_dir(out)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "patch") {
            fs::remove_file(entry.path())?;
        }
    }
    let mut format_patch = git(&[
        "format-patch",
        "-q",
        "--cover-letter",
        "--no-numbered-files",
    ]);
    format_patch.arg("-o").arg(out);
    if let Some(count) = options.reroll_count {
        format_patch.arg(format!("--reroll-count={count}"));
    }
    format_patch.arg("base..HEAD");
    run(&mut format_patch).context("git format-patch failed")?;

    let mut written: Vec<PathBuf> = fs::read_dir(out)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    written.sort();
    let cover_letter = written
        .iter()
        .find(|p| p.to_string_lossy().contains("0000-cover-letter"))
        .cloned()
        .context("git format-patch wrote no cover letter")?;
    let text = fs::read_to_string(&cover_letter)?;
    let text = text
        .replace("*** SUBJECT HERE ***", options.cover_subject)
        .replace("*** BLURB HERE ***", options.cover_blurb.trim_end());
    fs::write(&cover_letter, text)?;
    let patches = written.into_iter().filter(|p| p != &cover_letter).collect();
    Ok(WrittenSeries {
        cover_letter,
        patches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_identities() {
        let id = Identity::parse("Jane Doe <jane@example.org>").unwrap();
        assert_eq!(id.name, "Jane Doe");
        assert_eq!(id.email, "jane@example.org");
        assert_eq!(id.to_line(), "Jane Doe <jane@example.org>");
        assert!(Identity::parse("jane@example.org").is_err());
        assert!(Identity::parse("<jane@example.org>").is_err());
    }

    #[test]
    fn commit_message_lines_fit_75_columns() {
        let base = tempdir_with_base();
        let series = plan(
            &base,
            &crate::util::workspace_root().join("kmod"),
            &Identity::parse("A B <a@b.org>").unwrap(),
        )
        .unwrap();
        assert_eq!(series.len(), 3);
        for patch in &series {
            assert!(patch.subject.len() <= 75, "{}", patch.subject);
            for line in patch.body.lines() {
                assert!(line.len() <= 75, "{line:?}");
            }
        }
        let paths = touched_paths(&series);
        assert!(paths.contains(&"samples/rust/Kconfig".to_owned()));
        assert!(paths.contains(&"MAINTAINERS".to_owned()));
    }

    /// A minimal base tree with the three files the series edits.
    fn tempdir_with_base() -> PathBuf {
        let dir = crate::util::target_dir().join("tmp/patches-series-test");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("samples/rust")).unwrap();
        fs::write(
            dir.join("samples/rust/Kconfig"),
            "config SAMPLE_RUST_DRIVER_PCI\n\ttristate \"x\"\n\nconfig SAMPLE_RUST_SOC\n",
        )
        .unwrap();
        fs::write(
            dir.join("samples/rust/Makefile"),
            "obj-$(CONFIG_SAMPLE_RUST_DRIVER_PCI)\t\t+= rust_driver_pci.o\n",
        )
        .unwrap();
        fs::write(
            dir.join("MAINTAINERS"),
            "HPET\nM:\tA <a@b>\n\nHTE\nM:\tB <b@c>\n",
        )
        .unwrap();
        dir
    }
}
