//! The man pages of `p2pctl`, rendered by `clap_mangen` from the CLI definition itself
//! (`hsa_p2p_runtime::cli::command`), so they cannot drift from the program: `p2pctl(1)` and
//! one page per command (`p2pctl-topo(1)`, …), as `clap_mangen::generate_to` lays them out.
//! Only what clap does not know is added here: FILES and SEE ALSO.

use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use hsa_p2p_runtime::cli::{self, PROGRAM};

/// One rendered page.
#[derive(Debug, Clone)]
pub struct ManPage {
    /// `p2pctl.1`, `p2pctl-topo.1`, …
    pub file_name: String,
    pub roff: String,
}

/// What the pages say beyond the CLI definition.
pub struct Frame<'a> {
    /// The packaged version (`.TH` source field: `hsa-p2p <version>`).
    pub version: &'a str,
    /// `.TH` date, `YYYY-MM-DD`.
    pub date: &'a str,
    /// (path, what it is) for the main page's FILES.
    pub files: &'a [(&'a str, &'a str)],
    /// Pages of other programs for every page's SEE ALSO (`dkms(8)`).
    pub see_also: &'a [&'a str],
}

fn man(command: clap::Command, frame: &Frame) -> Man {
    Man::new(command)
        .date(frame.date)
        .source(format!("hsa-p2p {}", frame.version))
        .manual("User Commands")
}

fn render(man: &Man, extra: &Roff) -> String {
    let mut out = Vec::new();
    man.render(&mut out).expect("rendering into memory");
    let mut text = String::from_utf8(out).expect("roff is UTF-8");
    text.push_str(&extra.render());
    text
}

/// FILES (when given) and SEE ALSO, the sections clap knows nothing about.
fn extra_sections(files: &[(&str, &str)], references: &[String]) -> Roff {
    let mut roff = Roff::new();
    if !files.is_empty() {
        roff.control("SH", ["FILES"]);
        for (path, what) in files {
            roff.control("TP", []);
            roff.text([italic(*path)]);
            roff.text([roman(*what)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (index, reference) in references.iter().enumerate() {
        if index > 0 {
            line.push(roman(", "));
        }
        // `name(section)`: the name bold, the section roman, as man-pages(7) asks.
        match reference.split_once('(') {
            Some((name, section)) => {
                line.push(bold(name));
                line.push(roman(format!("({section}")));
            }
            None => line.push(bold(reference.as_str())),
        }
    }
    roff.text(line);
    roff
}

/// `p2pctl(1)` and one page per visible command.
pub fn pages(frame: &Frame) -> Vec<ManPage> {
    // As clap_mangen::generate_to: no `help` command; building names the commands
    // `p2pctl-<command>`.
    let mut command = cli::command().disable_help_subcommand(true);
    command.build();
    let commands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    let others = frame.see_also.iter().map(|s| (*s).to_owned());

    let mut references: Vec<String> = commands
        .iter()
        .map(|c| format!("{}(1)", c.get_display_name().unwrap_or(c.get_name())))
        .collect();
    references.extend(others.clone());
    let main = man(command, frame);
    let mut pages = vec![ManPage {
        file_name: main.get_filename(),
        roff: render(&main, &extra_sections(frame.files, &references)),
    }];
    for sub in commands {
        let mut references = vec![format!("{PROGRAM}(1)")];
        references.extend(others.clone());
        let page = man(sub, frame);
        pages.push(ManPage {
            file_name: page.get_filename(),
            roff: render(&page, &extra_sections(&[], &references)),
        });
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame<'static> {
        Frame {
            version: "0.1.0",
            date: "2026-01-01",
            files: &[("/sys/x", "the tree")],
            see_also: &["dkms(8)"],
        }
    }

    #[test]
    fn one_page_per_command_from_the_cli_definition() {
        let pages = pages(&frame());
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        let mut expected = vec![format!("{PROGRAM}.1")];
        expected.extend(
            cli::command()
                .get_subcommands()
                .map(|c| format!("{PROGRAM}-{}.1", c.get_name())),
        );
        assert_eq!(names, expected);
        assert!(!names.contains(&"p2pctl-help.1"));
    }

    #[test]
    fn the_main_page_has_the_frame_and_every_option() {
        let main = &pages(&frame())[0].roff;
        assert!(main.contains(".TH p2pctl 1 2026-01-01 \"hsa-p2p 0.1.0\" \"User Commands\""));
        assert!(
            main.contains(".SH FILES\n.TP\n\\fI/sys/x\\fR\nthe tree\n"),
            "{main}"
        );
        assert!(main.contains(".SH \"SEE ALSO\""), "{main}");
        for command in cli::command().get_subcommands() {
            let reference = format!("\\fBp2pctl\\-{}\\fR(1)", command.get_name());
            assert!(main.contains(&reference), "{reference} missing:\n{main}");
        }
        assert!(main.contains("\\-\\-version"), "{main}");
        assert!(main.contains("\\fBdkms\\fR(8)"), "{main}");
    }

    #[test]
    fn command_pages_document_their_options() {
        let pages = pages(&frame());
        let copy = pages
            .iter()
            .find(|p| p.file_name == "p2pctl-copy.1")
            .expect("a page for p2pctl copy");
        for option in ["\\-\\-from", "\\-\\-to", "\\-\\-staged", "\\-\\-device"] {
            assert!(
                copy.roff.contains(option),
                "{option} missing:\n{}",
                copy.roff
            );
        }
        assert!(copy.roff.contains("\\fBp2pctl\\fR(1)"), "{}", copy.roff);
    }
}
