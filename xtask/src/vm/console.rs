//! Reading what a guest printed on the serial console: sections between marker lines.

/// The lines of `console`, without the carriage returns the serial line adds.
pub fn lines(console: &str) -> impl Iterator<Item = &str> {
    console.lines().map(|line| line.trim_end_matches('\r'))
}

/// The lines printed between a line `begin` and the next line `end`.
pub struct Section<'a> {
    /// The lines in between.
    pub lines: Vec<&'a str>,
    /// Whether `end` was printed (the guest did not die or time out in the middle).
    pub complete: bool,
}

/// The first section marked by `begin` and `end`; `None` when `begin` was never printed.
pub fn section<'a>(console: &'a str, begin: &str, end: &str) -> Option<Section<'a>> {
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
    fn section_between_markers_with_carriage_returns() {
        let console = "boot\r\n@@A\r\none\r\ntwo\r\n@@B\r\nafter\r\n";
        let found = section(console, "@@A", "@@B").unwrap();
        assert_eq!(found.lines, ["one", "two"]);
        assert!(found.complete);
    }

    #[test]
    fn section_cut_short_is_incomplete_and_missing_one_is_none() {
        let found = section("@@A\none\n", "@@A", "@@B").unwrap();
        assert_eq!(found.lines, ["one"]);
        assert!(!found.complete);
        assert!(section("nothing\n", "@@A", "@@B").is_none());
    }
}
