//! The syzkaller description of `/dev/hsa_p2p` (`kmod/syzkaller/dev_hsa_p2p.txt` and its
//! `.const` file) says what the ABI in `abi.rs` says: one `ioctl$` per command with the same
//! number and direction, argument structs with the same field names, sizes and offsets, the
//! same flag values. A fuzzer fed a stale description would fuzz a different ABI.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};

use hsa_p2p_core::abi::{self, cmd};

const DESCRIPTION: &str = include_str!("../../syzkaller/dev_hsa_p2p.txt");
const CONSTS: &str = include_str!("../../syzkaller/dev_hsa_p2p.txt.const");

/// One field of an argument block: name, offset, size.
type Layout = Vec<(String, usize, usize)>;

/// The Rust layout of `$ty`, field by field.
macro_rules! layout {
    ($ty:ident { $($field:ident),* $(,)? }) => {{
        let value = abi::$ty::default();
        let layout: Layout = vec![$((
            stringify!($field).to_owned(),
            offset_of!(abi::$ty, $field),
            std::mem::size_of_val(&value.$field),
        )),*];
        let listed: usize = layout.iter().map(|(_, _, size)| size).sum();
        assert_eq!(listed, size_of::<abi::$ty>(), "{}: a field is not listed", stringify!($ty));
        layout
    }};
}

/// Every command: its name in the description, number, and argument layout.
fn abi_commands() -> Vec<(&'static str, u32, Layout)> {
    vec![
        (
            "VERSION",
            cmd::VERSION,
            layout!(VersionArgs { major, minor }),
        ),
        (
            "ALLOC",
            cmd::ALLOC,
            layout!(AllocArgs {
                gpu_id,
                flags,
                size,
                handle,
                reserved,
                vram_offset,
                mmap_offset,
                allocated_size
            }),
        ),
        ("FREE", cmd::FREE, layout!(FreeArgs { handle, reserved })),
        (
            "MAP_PEER",
            cmd::MAP_PEER,
            layout!(MapPeerArgs {
                handle,
                peer_gpu_id,
                bus_address,
                map_type,
                denial_reasons
            }),
        ),
        (
            "UNMAP_PEER",
            cmd::UNMAP_PEER,
            layout!(UnmapPeerArgs {
                handle,
                peer_gpu_id
            }),
        ),
        (
            "COPY",
            cmd::COPY,
            layout!(CopyArgs {
                src_handle,
                dst_handle,
                src_offset,
                dst_offset,
                size,
                flags,
                path,
                nanoseconds
            }),
        ),
        (
            "INFO",
            cmd::INFO,
            layout!(InfoArgs {
                handle,
                gpu_id,
                size,
                vram_offset,
                mmap_offset,
                phys_address,
                peer_count,
                reserved,
                peer_gpu_ids,
                peer_bus_addresses
            }),
        ),
        (
            "COPY_SUBMIT",
            cmd::COPY_SUBMIT,
            layout!(CopySubmitArgs {
                src_handle,
                dst_handle,
                src_offset,
                dst_offset,
                size,
                flags,
                eventfd,
                ticket
            }),
        ),
        (
            "COPY_WAIT",
            cmd::COPY_WAIT,
            layout!(CopyWaitArgs {
                ticket,
                timeout_ns,
                status,
                path,
                nanoseconds
            }),
        ),
    ]
}

#[test]
fn the_checked_commands_are_every_command_of_the_abi() {
    // A command added to abi::cmd::ALL without a line above would go undescribed unnoticed.
    let mut checked: Vec<u32> = abi_commands()
        .iter()
        .map(|(_, number, _)| *number)
        .collect();
    let mut all = cmd::ALL.to_vec();
    checked.sort_unstable();
    all.sort_unstable();
    assert_eq!(checked, all, "abi_commands() against abi::cmd::ALL");
}

/// A field of a described struct: name, type, direction attribute.
type SyzField = (String, String, Option<String>);

/// A struct of the description.
#[derive(Debug)]
struct SyzStruct {
    fields: Vec<SyzField>,
}

/// What the description declares.
#[derive(Debug, Default)]
struct Description {
    /// `ioctl$HSA_P2P_<name>`: (const name of the command, pointer direction, struct name).
    ioctls: BTreeMap<String, (String, String, String)>,
    structs: BTreeMap<String, SyzStruct>,
    /// Resource name -> base type.
    resources: BTreeMap<String, String>,
    /// Flag set name -> values.
    flags: BTreeMap<String, Vec<String>>,
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).map_or(0, |at| at + open.len());
    let end = text[start..]
        .find(close)
        .map_or(text.len(), |at| start + at);
    &text[start..end]
}

fn parse(description: &str) -> Description {
    let mut parsed = Description::default();
    let mut open_struct: Option<(String, Vec<SyzField>)> = None;
    for line in description.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, fields)) = &mut open_struct {
            if line.starts_with('}') {
                let name = name.clone();
                let fields = std::mem::take(fields);
                parsed.structs.insert(name, SyzStruct { fields });
                open_struct = None;
            } else {
                let mut words = line.split_whitespace();
                let field = words.next().expect("field name").to_owned();
                let rest: Vec<&str> = words.collect();
                let (ty, direction) = match rest.last() {
                    Some(last) if last.starts_with('(') => (
                        rest[..rest.len() - 1].join(" "),
                        Some(last.trim_matches(['(', ')']).to_owned()),
                    ),
                    _ => (rest.join(" "), None),
                };
                fields.push((field, ty, direction));
            }
        } else if let Some(name) = line.strip_suffix('{') {
            open_struct = Some((name.trim().to_owned(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("resource ") {
            let name = rest.split('[').next().unwrap().trim().to_owned();
            parsed
                .resources
                .insert(name, between(rest, "[", "]").to_owned());
        } else if let Some(rest) = line.strip_prefix("ioctl$HSA_P2P_") {
            let name = rest.split('(').next().unwrap().to_owned();
            let command = between(rest, "cmd const[", "]").to_owned();
            let pointer = between(rest, "arg ptr[", "]");
            let (direction, target) = pointer.split_once(',').expect("ptr[dir, type]");
            parsed.ioctls.insert(
                name,
                (
                    command,
                    direction.trim().to_owned(),
                    target.trim().to_owned(),
                ),
            );
        } else if let Some((name, values)) = line.split_once(" = ") {
            parsed.flags.insert(
                name.trim().to_owned(),
                values
                    .split(',')
                    .map(|value| value.trim().to_owned())
                    .collect(),
            );
        }
    }
    assert!(open_struct.is_none(), "unterminated struct");
    parsed
}

fn consts() -> BTreeMap<String, u64> {
    CONSTS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("arches"))
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, value)| {
            (
                name.trim().to_owned(),
                value.trim().parse().expect("a number"),
            )
        })
        .collect()
}

/// Size in bytes of a syzlang type as these descriptions use it.
fn type_size(ty: &str, description: &Description) -> usize {
    let base = ty.split('[').next().unwrap();
    let options = between(ty, "[", "]");
    match base {
        "int8" => 1,
        "int16" => 2,
        "int32" => 4,
        "int64" => 8,
        // syzkaller's own resources (sys/linux): a file descriptor is a C int.
        "fd" | "fd_event" => 4,
        "const" | "flags" => type_size(options.rsplit(',').next().unwrap().trim(), description),
        "array" => {
            let inner = &ty["array[".len()..ty.len() - 1];
            let (element, count) = inner.rsplit_once(',').expect("fixed-size array");
            type_size(element.trim(), description) * count.trim().parse::<usize>().unwrap()
        }
        resource => type_size(
            description
                .resources
                .get(resource)
                .unwrap_or_else(|| panic!("unknown type {ty}")),
            description,
        ),
    }
}

/// Offsets of a naturally aligned (C) struct of the given field sizes.
fn c_layout(fields: &[(String, usize)]) -> Layout {
    let mut offset = 0usize;
    fields
        .iter()
        .map(|(name, size)| {
            let align = match *size {
                s if s >= 8 => 8,
                s => s.max(1),
            };
            offset = offset.div_ceil(align) * align;
            let field = (name.clone(), offset, *size);
            offset += size;
            field
        })
        .collect()
}

#[test]
fn every_command_is_described_with_its_number_and_direction() {
    let description = parse(DESCRIPTION);
    let consts = consts();
    let commands = abi_commands();
    let described: Vec<&String> = description.ioctls.keys().collect();
    let mut expected: Vec<&str> = commands.iter().map(|(name, _, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(described, expected, "ioctl$ variants differ from abi::cmd");
    for (name, number, _) in &commands {
        let (constant, direction, _) = &description.ioctls[*name];
        assert_eq!(
            consts.get(constant).copied(),
            Some(u64::from(*number)),
            "{constant} in dev_hsa_p2p.txt.const"
        );
        let expected_direction = match number >> 30 {
            d if d == abi::IOC_WRITE => "in",
            d if d == abi::IOC_READ => "out",
            _ => "inout",
        };
        assert_eq!(
            direction, expected_direction,
            "ioctl${name}'s pointer direction"
        );
    }
}

#[test]
fn every_argument_block_has_the_abi_layout() {
    let description = parse(DESCRIPTION);
    for (name, _, layout) in abi_commands() {
        let (_, direction, target) = &description.ioctls[name];
        let syz = description
            .structs
            .get(target)
            .unwrap_or_else(|| panic!("struct {target} of ioctl${name} not described"));
        let sizes: Vec<(String, usize)> = syz
            .fields
            .iter()
            .map(|(field, ty, _)| (field.clone(), type_size(ty, &description)))
            .collect();
        assert_eq!(c_layout(&sizes), layout, "{target} against abi.rs");
        for (field, _, field_direction) in &syz.fields {
            match (direction.as_str(), field_direction.as_deref()) {
                ("in", Some("out")) | ("out", Some("in")) => {
                    panic!(
                        "{target}.{field}: ({}) in a ptr[{direction}]",
                        field_direction.as_deref().unwrap()
                    )
                }
                _ => {}
            }
        }
    }
}

#[test]
fn copy_flags_are_the_abi_flags() {
    let description = parse(DESCRIPTION);
    let consts = consts();
    let flags: u64 = description.flags["hsa_p2p_copy_flags"]
        .iter()
        .map(|name| consts[name])
        .fold(0, |all, flag| all | flag);
    assert_eq!(flags, u64::from(abi::COPY_FLAGS));
    assert_eq!(consts["HSA_P2P_COPY_DIRECT"], u64::from(abi::COPY_DIRECT));
    assert_eq!(consts["HSA_P2P_COPY_STAGED"], u64::from(abi::COPY_STAGED));
}

#[test]
fn a_stale_description_is_caught() {
    // The checks above must be able to fail: a field dropped from a struct changes the layout.
    let stale = DESCRIPTION.replace("\tminor\tint32\t(out)\n", "");
    let description = parse(&stale);
    let syz = &description.structs["hsa_p2p_version_args"];
    let sizes: Vec<(String, usize)> = syz
        .fields
        .iter()
        .map(|(field, ty, _)| (field.clone(), type_size(ty, &description)))
        .collect();
    assert_ne!(c_layout(&sizes), layout!(VersionArgs { major, minor }));
}
