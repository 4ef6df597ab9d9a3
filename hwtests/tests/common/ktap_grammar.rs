//! A checker of the KTAP v1 line grammar (Documentation/dev-tools/ktap.rst), strict where
//! kunit.py and LAVA's parser are: version line, plan, numbered results in order matching the
//! plan, `# ` diagnostics, subtests indented four spaces and closed by a parent result line.

/// One result line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KtapResult {
    /// `ok` (true) or `not ok` (false).
    pub ok: bool,
    /// Test number.
    pub number: usize,
    /// Description (test name).
    pub name: String,
    /// The directive after `# ` (`SKIP reason`), if any.
    pub directive: Option<String>,
    /// Results of its subtests, if it had any.
    pub subtests: Vec<KtapResult>,
}

fn parse_result(line: &str) -> Result<(bool, usize, String, Option<String>), String> {
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix("ok ") {
        (true, rest)
    } else {
        return Err(format!("not a result line: {line:?}"));
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let number: usize = number
        .parse()
        .map_err(|_| format!("bad test number in {line:?}"))?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.split_once(" # ") {
        Some((name, directive)) => (name, Some(directive.to_string())),
        None => (rest, None),
    };
    if name.is_empty() || name.contains('#') || name.contains(char::is_whitespace) {
        return Err(format!("bad test name {name:?} in {line:?}"));
    }
    if let Some(directive) = &directive {
        let keyword = directive.split_whitespace().next().unwrap_or("");
        if !["SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR"].contains(&keyword) {
            return Err(format!("unknown directive in {line:?}"));
        }
    }
    Ok((ok, number, name.to_string(), directive))
}

struct Lines<'a> {
    lines: Vec<&'a str>,
    at: usize,
}

impl Lines<'_> {
    fn peek(&self) -> Option<&str> {
        self.lines.get(self.at).copied()
    }
}

fn indent(depth: usize) -> String {
    " ".repeat(4 * depth)
}

/// Parses one (sub)test block at `depth`: version line, plan, then results (each possibly
/// preceded by diagnostics and a nested block).
fn parse_block(lines: &mut Lines<'_>, depth: usize) -> Result<Vec<KtapResult>, String> {
    let prefix = indent(depth);
    let version = lines.peek().ok_or("missing version line")?;
    if version != format!("{prefix}KTAP version 1") {
        return Err(format!(
            "expected `KTAP version 1` at depth {depth}, got {version:?}"
        ));
    }
    lines.at += 1;
    // kunit prints `# Subtest: name` between the version and the plan.
    while let Some(line) = lines.peek() {
        if line.starts_with(&format!("{prefix}# ")) {
            lines.at += 1;
        } else {
            break;
        }
    }
    let plan_line = lines.peek().ok_or("missing plan")?;
    let plan: usize = plan_line
        .strip_prefix(&format!("{prefix}1.."))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("expected a plan `1..N` at depth {depth}, got {plan_line:?}"))?;
    lines.at += 1;
    let mut results = Vec::new();
    let child = indent(depth + 1);
    while results.len() < plan {
        let line = lines
            .peek()
            .ok_or_else(|| format!("plan 1..{plan} but only {} results", results.len()))?;
        if line.starts_with(&format!("{prefix}# ")) || line == format!("{prefix}#") {
            lines.at += 1;
            continue;
        }
        let subtests = if line.starts_with(&format!("{child}KTAP version 1")) {
            parse_block(lines, depth + 1)?
        } else {
            Vec::new()
        };
        let line = lines.peek().ok_or("missing result line")?;
        let body = line
            .strip_prefix(&prefix)
            .filter(|body| !body.starts_with(' '))
            .ok_or_else(|| format!("wrong indentation at depth {depth}: {line:?}"))?;
        let (ok, number, name, directive) = parse_result(body)?;
        if number != results.len() + 1 {
            return Err(format!("test number {number} out of order in {line:?}"));
        }
        lines.at += 1;
        results.push(KtapResult {
            ok,
            number,
            name,
            directive,
            subtests,
        });
    }
    Ok(results)
}

/// Parses a whole KTAP document; every line must be accounted for.
pub fn parse(document: &str) -> Result<Vec<KtapResult>, String> {
    let mut lines = Lines {
        lines: document.lines().collect(),
        at: 0,
    };
    let results = parse_block(&mut lines, 0)?;
    if let Some(extra) = lines.peek() {
        return Err(format!("trailing line after the last result: {extra:?}"));
    }
    Ok(results)
}
