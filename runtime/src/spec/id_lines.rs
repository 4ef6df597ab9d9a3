//! The lines of a spec's ids, so that an id used twice is reported with both places and an
//! impossible element with its line.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
struct Ids {
    #[serde(default)]
    root_port: Vec<Element>,
    #[serde(default)]
    switch: Vec<Element>,
    #[serde(default)]
    gpu: Vec<Element>,
    #[serde(default)]
    host_bridge: Vec<Element>,
}

impl Ids {
    /// Every element's id with the line it is declared on, in file order per kind.
    fn lines(text: &str) -> Vec<(String, usize)> {
        let Ok(ids) = toml::from_str::<Ids>(text) else {
            return Vec::new();
        };
        let line = |offset: usize| text[..offset].matches('\n').count() + 1;
        (ids.root_port.iter())
            .chain(&ids.switch)
            .chain(&ids.gpu)
            .chain(&ids.host_bridge)
            .map(|element| (element.id.get_ref().clone(), line(element.id.span().start)))
            .collect()
    }
}

#[derive(Deserialize)]
struct Element {
    id: Spanned<String>,
}

/// `id "x" is used twice (lines 7 and 12)` for the first id `text` declares twice.
pub(super) fn duplicate_id(text: &str) -> Option<String> {
    let mut seen = HashMap::new();
    for (id, here) in Ids::lines(text) {
        if let Some(first) = seen.insert(id.clone(), here) {
            return Some(format!(
                "id {id:?} is used twice (lines {first} and {here})"
            ));
        }
    }
    None
}

/// The line of the element a validation `message` is about: the id quoted first, before any
/// `:` (`"g": parent ...`, `gpu "g": ...`, `"a" and "b" both sit ...`), when the spec declares
/// it. A message about something else (`xgmi_hive 0x9: link ["a", "b"] ...`) gets none: the
/// GPU's line would point away from the fault.
pub(super) fn line_of_named_element(text: &str, message: &str) -> Option<usize> {
    let subject = message.split(':').next()?;
    let first_quoted = subject.split('"').nth(1)?;
    Ids::lines(text)
        .into_iter()
        .find(|(id, _)| id == first_quoted)
        .map(|(_, line)| line)
}
