//! The lines of a spec's ids, so that an id used twice is reported with both places.

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
}

#[derive(Deserialize)]
struct Element {
    id: Spanned<String>,
}

/// `id "x" is used twice (lines 7 and 12)` for the first id `text` declares twice.
pub(super) fn duplicate_id(text: &str) -> Option<String> {
    let ids: Ids = toml::from_str(text).ok()?;
    let line = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut seen = HashMap::new();
    for element in ids.root_port.iter().chain(&ids.switch).chain(&ids.gpu) {
        let id = element.id.get_ref();
        let here = line(element.id.span().start);
        if let Some(first) = seen.insert(id, here) {
            return Some(format!(
                "id {id:?} is used twice (lines {first} and {here})"
            ));
        }
    }
    None
}
