//! `p2pctl predict SPEC --set KEY=VALUE …`: a spec with some fields changed, for what-if
//! questions (Resizable BAR on, IOMMU on, a card moved).
//!
//! `KEY` is `platform.<field>`, `cpuN.<field>`, or `<id>.<field>` for the GPU, root port,
//! switch or host bridge with that id (a GPU also as `gpuN`, the N-th GPU, as `p2pctl` names
//! it); nested fields are dotted (`gpu0.pcie.gen`). `VALUE` is a TOML value (`true`, `44`,
//! `"remap"`) or else taken as a string (`32G`, `remap`, `sw0.1`). Each setting is applied and
//! checked in turn, so an error names the setting that caused it.

use toml::{Table, Value};

use super::Spec;

/// The arrays of tables whose entries have a string `id`.
const ID_ARRAYS: [(&str, &str); 4] = [
    ("gpu", "GPU"),
    ("root_port", "root port"),
    ("switch", "switch"),
    ("host_bridge", "host bridge"),
];

/// `spec_text` with every `KEY=VALUE` of `settings` applied, parsed and validated.
pub fn apply_settings(spec_text: &str, settings: &[String]) -> Result<Spec, String> {
    let mut table: Table = toml::from_str(spec_text).map_err(|e| e.message().to_string())?;
    let mut spec: Spec = toml::from_str(spec_text).map_err(|e| e.message().to_string())?;
    for setting in settings {
        let fail = |message: String| format!("--set {setting}: {message}");
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| fail("expected KEY=VALUE, e.g. gpu0.bar=32G".into()))?;
        set(&mut table, key.trim(), parse_value(value.trim())).map_err(fail)?;
        let text = toml::to_string(&table).map_err(|e| fail(e.to_string()))?;
        spec = toml::from_str(&text).map_err(|e| fail(e.message().to_string()))?;
        spec.validate().map_err(fail)?;
    }
    Ok(spec)
}

fn parse_value(text: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Sets `key` (dotted) in the spec's table.
fn set(spec: &mut Table, key: &str, value: Value) -> Result<(), String> {
    let (head, fields) = key.split_once('.').ok_or_else(|| {
        format!("{key:?} names no field; write <element>.<field>, e.g. {key}.bar or platform.iommu")
    })?;
    let mut target = element(spec, head)?;
    let path: Vec<&str> = fields.split('.').collect();
    let (last, parents) = path.split_last().unwrap_or((&"", &[]));
    for part in parents {
        target = target
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{part:?} of {key:?} is not a table"))?;
    }
    if last.is_empty() {
        return Err(format!("{key:?} ends without a field name"));
    }
    target.insert(last.to_string(), value);
    Ok(())
}

/// The table `name` stands for: `platform`, `cpuN`, an element's id, or `gpuN`.
fn element<'a>(spec: &'a mut Table, name: &str) -> Result<&'a mut Table, String> {
    if name == "platform" {
        return spec
            .entry("platform")
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .ok_or_else(|| "`platform` is not a table".to_string());
    }
    let index = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
    };
    let array_position = |spec: &Table, array: &str| {
        spec.get(array).and_then(Value::as_array).and_then(|items| {
            items
                .iter()
                .position(|item| item.get("id").and_then(Value::as_str) == Some(name))
        })
    };
    let found = ID_ARRAYS
        .iter()
        .find_map(|(array, _)| array_position(spec, array).map(|i| (*array, i)))
        .or_else(|| index("gpu").map(|i| ("gpu", i)))
        .or_else(|| index("cpu").map(|i| ("cpu", i)));
    let ids: Vec<String> = ID_ARRAYS
        .iter()
        .flat_map(|(array, _)| {
            spec.get(*array)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|item| item.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let unknown = || {
        format!(
            "{name:?} names no GPU, root port, switch or host bridge (ids: {}), and is not \
             platform, cpuN or gpuN",
            ids.join(", ")
        )
    };
    let (array, position) = found.ok_or_else(unknown)?;
    let count = spec
        .get(array)
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    spec.get_mut(array)
        .and_then(Value::as_array_mut)
        .and_then(|items| items.get_mut(position))
        .and_then(Value::as_table_mut)
        .ok_or_else(|| {
            format!(
                "{name:?}: the spec has {count} [[{array}]] entries (0 to {})",
                count.saturating_sub(1)
            )
        })
}
