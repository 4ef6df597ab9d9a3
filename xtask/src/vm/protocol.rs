//! The one guest-to-host protocol: what a guest script prints on the serial console and how the
//! host reads it back. Every marker is defined here, and nowhere else.
//!
//! A guest script is a list of shell steps ([`script`]) that count failed steps with `fail`
//! (printed as `@@FAIL <what>`, read by [`failures`]) and exit with their number. Results
//! travel as sections between `@@BEGIN <name>` and `@@END <name>` lines:
//!
//! - a sysfs tree ([`print_tree`], [`read_tree`]): `@@FILE <path>` lines, each followed by
//!   the file's content;
//! - the kernel log ([`print_kernel_log`], [`kernel_log`], [`warnings`]), in `dmesg -r`
//!   format;
//! - JSON documents that the guest's programs wrote ([`print_document`], [`read_document`];
//!   [`print_documents`] and [`read_documents`] for one document per line): the `hwtests`
//!   report, `p2pctl why --json`, `p2pctl bench --json`. They are read into the writers' own
//!   types, never indexed as untyped JSON.
//!
//! The serial line adds carriage returns; the readers drop them. Kernel messages share that
//! line and can land in the middle of a printed line (the tty sends the script's output from
//! its buffer while the kernel writes its records straight to the UART), so every section
//! keeps them off the console while it prints ([`section_step`]).
//!
//! The other way, a guest test asks the host for what only the host can do (remove a GPU from
//! its slot, put it back) on a channel of its own, the guest's second serial port
//! (`super::host_channel`): one [`HostRequest`] per line ([`read_host_request`]), answered by
//! one [`HostReply`] per line ([`host_reply_line`]), both JSON in the guest's own types
//! (`hsa_p2p_hwtests::guest::host_channel`).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

pub use hsa_p2p_hwtests::guest::host_channel::{HostReply, HostRequest};

/// A sysfs tree: relative path -> content.
pub type Tree = BTreeMap<String, String>;

const FAIL: &str = "@@FAIL ";
const BEGIN: &str = "@@BEGIN ";
const END: &str = "@@END ";
const FILE: &str = "@@FILE ";
const KERNEL_LOG: &str = "kernel-log";
const KMEMLEAK: &str = "kmemleak";
const KERNEL_LOG_AT_EXIT: &str = "kernel-log-at-exit";
/// The line the `vm -- CMD` guest prints before the user's command's output.
pub const COMMAND_BANNER: &str = "--- guest: ";
/// The line it prints after it, followed by the exit status.
pub const COMMAND_STATUS: &str = "--- guest command exit status ";

/// The console log level guests boot with (`loglevel=`): the console shows errors and worse.
pub const CONSOLE_LOGLEVEL: u8 = 4;

/// The kernel argument that sets [`CONSOLE_LOGLEVEL`].
pub fn console_loglevel_arg() -> String {
    format!("loglevel={CONSOLE_LOGLEVEL}")
}

fn begin(name: &str) -> String {
    format!("{BEGIN}{name}")
}

fn end(name: &str) -> String {
    format!("{END}{name}")
}

/// The step that prints section `name` around `body`'s output. While it prints, only a panic
/// (`KERN_EMERG`) reaches the console: every other kernel message stays in the ring buffer,
/// which [`print_checker_reports`] prints at exit. Afterwards the console is back at
/// [`CONSOLE_LOGLEVEL`], also when a checker report had raised it to every message (lockdep's
/// `debug_locks_off()` calls `console_verbose()`), which is what once put a kernel message on
/// the line of a section's begin marker.
fn section_step(name: &str, body: &str) -> String {
    format!(
        "dmesg -n 1; echo '{}'; {body}; echo '{}'; dmesg -n {CONSOLE_LOGLEVEL}",
        begin(name),
        end(name)
    )
}

/// A guest script: the `fail` function, `steps` in order, and an exit status that counts the
/// failed steps.
pub fn script(steps: impl IntoIterator<Item = String>) -> String {
    let mut lines = vec![
        "failures=0".to_string(),
        format!("fail() {{ echo \"{FAIL}$*\"; failures=$((failures+1)); }}"),
    ];
    lines.extend(steps);
    lines.push("exit $failures".into());
    lines.join("\n") + "\n"
}

/// The steps that failed (`fail …` in the script).
pub fn failures(console: &str) -> Vec<String> {
    lines(console)
        .filter_map(|line| line.strip_prefix(FAIL))
        .map(str::to_string)
        .collect()
}

/// The step that prints the tree under `root` as section `tree <tag>`.
pub fn print_tree(root: &str, tag: &str) -> String {
    section_step(
        &format!("tree {tag}"),
        &format!(
            "(cd {root} && find . -type f | sort | while read f; do echo \"{FILE}${{f#./}}\"; cat \"$f\"; done)"
        ),
    )
}

/// The tree printed with `tag`; `None` if it was not printed completely.
pub fn read_tree(console: &str, tag: &str) -> Option<Tree> {
    let section = section(console, &format!("tree {tag}"))?;
    if !section.complete {
        return None;
    }
    let mut tree = Tree::new();
    let mut current: Option<String> = None;
    for line in section.lines {
        if let Some(path) = line.strip_prefix(FILE) {
            tree.insert(path.to_string(), String::new());
            current = Some(path.to_string());
        } else if let Some(path) = &current {
            let content = tree.entry(path.clone()).or_default();
            content.push_str(line);
            content.push('\n');
        }
    }
    Some(tree)
}

/// The step that prints the kernel log.
pub fn print_kernel_log() -> String {
    section_step(KERNEL_LOG, "dmesg -r")
}

/// What `/init` prints after every script, for the kernel checker reports the host looks for
/// (`super::splat`): on kernels with kmemleak, its list after an explicit scan (objects younger
/// than 5 s are never reported: it waits that long first); then the whole kernel log, since the
/// console shows only errors (`loglevel=4`) while WARN, lockdep and sysfs reports are warnings.
pub fn print_checker_reports() -> String {
    format!(
        "if [ -w /sys/kernel/debug/kmemleak ]; then\n    sleep 5\n    \
         echo scan > /sys/kernel/debug/kmemleak\n    \
         {}\nfi\n{}",
        section_step(KMEMLEAK, "cat /sys/kernel/debug/kmemleak"),
        section_step(KERNEL_LOG_AT_EXIT, "dmesg -r"),
    )
}

/// The kernel log's lines; `None` when it was not printed.
pub fn kernel_log(console: &str) -> Option<Vec<String>> {
    section(console, KERNEL_LOG).map(|log| log.lines.into_iter().map(str::to_string).collect())
}

/// Kernel log lines with a priority of warning or worse (`<0>`..`<4>` in `dmesg -r` format,
/// facility bits included); a missing log is one such line.
pub fn warnings(console: &str) -> Vec<String> {
    let Some(log) = kernel_log(console) else {
        return vec!["the kernel log was not printed".into()];
    };
    log.into_iter()
        .filter(|line| {
            line.strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .and_then(|(priority, _)| priority.parse::<u32>().ok())
                .is_some_and(|priority| priority & 7 <= 4)
        })
        .collect()
}

/// The step that prints the JSON document in file `path` as section `name`.
pub fn print_document(name: &str, path: &str) -> String {
    section_step(name, &format!("cat {path}; echo"))
}

/// The document printed as section `name`, as a `T`.
pub fn read_document<T: DeserializeOwned>(console: &str, name: &str) -> Result<T, String> {
    let section = section(console, name).ok_or_else(|| format!("the guest printed no {name}"))?;
    serde_json::from_str(&section.lines.join("\n"))
        .map_err(|error| format!("the guest's {name} is not a valid document: {error}"))
}

/// Steps that open and close section `name` around `body`, whose commands print one JSON
/// document per line.
pub fn print_documents(name: &str, body: &str) -> String {
    section_step(name, body)
}

/// Every line of section `name` as a `T`; a line that is not one is an error naming it.
pub fn read_documents<T: DeserializeOwned>(
    console: &str,
    name: &str,
) -> Result<Vec<Result<T, String>>, String> {
    let section = section(console, name).ok_or_else(|| format!("the guest printed no {name}"))?;
    Ok(section
        .lines
        .into_iter()
        .map(|line| serde_json::from_str(line).map_err(|error| format!("{line:?}: {error}")))
        .collect())
}

/// The request on a line of the host channel.
pub fn read_host_request(line: &str) -> Result<HostRequest, String> {
    serde_json::from_str(line.trim())
        .map_err(|error| format!("not a host request: {:?}: {error}", line.trim()))
}

/// The line that answers a request on the host channel.
pub fn host_reply_line(reply: &HostReply) -> String {
    serde_json::to_string(reply).expect("a reply serializes") + "\n"
}

/// What a guest's console shows after [`print_document`] printed `text` as section `name`,
/// with the serial line's carriage returns (for tests of the readers).
#[cfg(test)]
pub fn printed_document(name: &str, text: &str) -> String {
    format!(
        "noise\r\n{}\r\n{}\r\n{}\r\n",
        begin(name),
        text.replace('\n', "\r\n"),
        end(name)
    )
}

/// The lines of `console`, without the carriage returns the serial line adds.
pub fn lines(console: &str) -> impl Iterator<Item = &str> {
    console.lines().map(|line| line.trim_end_matches('\r'))
}

/// The lines of `console` outside every section: what the kernel and the guest's commands
/// printed live.
pub fn outside_sections(console: &str) -> impl Iterator<Item = &str> {
    let mut open: Option<&str> = None;
    lines(console).filter(move |line| {
        if let Some(name) = open {
            if line.strip_prefix(END) == Some(name) {
                open = None;
            }
            return false;
        }
        open = line.strip_prefix(BEGIN);
        open.is_none()
    })
}

/// The lines printed between the begin and end lines of section `name`.
struct Section<'a> {
    lines: Vec<&'a str>,
    /// Whether the end was printed (the guest did not die or time out in the middle).
    complete: bool,
}

/// The first section `name`; `None` when it never began.
fn section<'a>(console: &'a str, name: &str) -> Option<Section<'a>> {
    let (begin, end) = (begin(name), end(name));
    let mut lines = lines(console);
    lines.find(|line| *line == begin)?;
    let mut section = Section {
        lines: Vec::new(),
        complete: false,
    };
    for line in lines {
        if line == end {
            section.complete = true;
            break;
        }
        section.lines.push(line);
    }
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_read_between_their_markers_despite_carriage_returns() {
        let console = "boot\r\n@@BEGIN a\r\none\r\ntwo\r\n@@END a\r\nafter\r\n";
        let found = section(console, "a").unwrap();
        assert_eq!(found.lines, ["one", "two"]);
        assert!(found.complete);
        let cut = section("@@BEGIN a\none\n", "a").unwrap();
        assert_eq!(cut.lines, ["one"]);
        assert!(!cut.complete);
        assert!(section("nothing\n", "a").is_none());
    }

    #[test]
    fn live_lines_are_those_outside_sections() {
        let console = "boot\r\n@@BEGIN a\r\ninside\r\n@@END a\r\nlive\r\n@@BEGIN b\r\ncut";
        assert_eq!(
            outside_sections(console).collect::<Vec<_>>(),
            ["boot", "live"]
        );
    }

    #[test]
    fn a_tree_round_trips_through_a_noisy_console() {
        let console = "boot noise\r\n@@BEGIN tree a\r\n@@FILE generation_id\r\n3\r\n@@FILE nodes/0/gpu_id\r\n0\r\n@@FILE nodes/0/name\r\n\r\n@@END tree a\r\nmore";
        let tree = read_tree(console, "a").unwrap();
        assert_eq!(tree["generation_id"], "3\n");
        assert_eq!(tree["nodes/0/name"], "\n");
        assert_eq!(read_tree(console, "b"), None);
        assert_eq!(read_tree("@@BEGIN tree a\n@@FILE x\n1\n", "a"), None);
        assert!(print_tree("/t", "a").contains("echo '@@BEGIN tree a'"));
    }

    #[test]
    fn every_section_keeps_kernel_messages_off_the_console() {
        let quiet = "dmesg -n 1; echo '@@BEGIN ";
        let restored = format!("; dmesg -n {CONSOLE_LOGLEVEL}");
        for step in [
            print_tree("/t", "a"),
            print_kernel_log(),
            print_document("doc", "/tmp/doc.json"),
            print_documents("docs", "true"),
        ] {
            assert!(step.starts_with(quiet), "{step}");
            assert!(step.ends_with(&restored), "{step}");
        }
        let reports = print_checker_reports();
        assert_eq!(reports.matches(quiet).count(), 2, "{reports}");
        assert!(reports.ends_with(&restored), "{reports}");
    }

    #[test]
    fn warnings_are_priority_4_or_worse() {
        let console = "<6>[1.0] noise before\n@@BEGIN kernel-log\r\n<6>[1.1] hsa_p2p: fine\r\n<4>[1.2] WARNING: bad\r\n<12>[1.3] user warning\r\n<3>[1.4] error\r\n@@END kernel-log\r\n<3> after";
        assert_eq!(
            warnings(console),
            vec![
                "<4>[1.2] WARNING: bad",
                "<12>[1.3] user warning",
                "<3>[1.4] error"
            ]
        );
        assert_eq!(warnings("no log"), vec!["the kernel log was not printed"]);
    }

    #[test]
    fn scripts_count_failed_steps() {
        let text = script(["true || fail step one".to_string()]);
        assert!(text.starts_with("failures=0\nfail() {"));
        assert!(text.ends_with("true || fail step one\nexit $failures\n"));
        assert_eq!(failures("x\n@@FAIL rmmod 3\r\n"), vec!["rmmod 3"]);
    }

    #[test]
    fn host_requests_and_replies_are_json_lines() {
        let request = read_host_request("{\"request\":\"plug\",\"address\":\"0000:03:00.0\"}\r\n");
        assert_eq!(
            request,
            Ok(HostRequest::Plug {
                address: "0000:03:00.0".into()
            })
        );
        assert!(read_host_request("hello").is_err());
        let reply = HostReply {
            ok: true,
            detail: "QEMU added gpu0".into(),
        };
        assert_eq!(
            host_reply_line(&reply),
            "{\"ok\":true,\"detail\":\"QEMU added gpu0\"}\n"
        );
    }

    #[test]
    fn documents_are_read_into_their_types() {
        let console = "@@BEGIN doc\r\n{\"a\": [1,\r\n 2]}\r\n@@END doc\r\n";
        let value: BTreeMap<String, Vec<u32>> = read_document(console, "doc").unwrap();
        assert_eq!(value["a"], [1, 2]);
        assert!(read_document::<u32>(console, "other").is_err());
        let lines = "@@BEGIN why\n1\nx\n@@END why\n";
        let read: Vec<Result<u32, String>> = read_documents(lines, "why").unwrap();
        assert_eq!(read[0], Ok(1));
        assert!(read[1].is_err());
    }
}
