//! The ABI structs are written twice on purpose: in the plugin (`firehose_fanout::ffi::abi`)
//! and in the test host (`flb_host::abi`), so that one shared definition cannot hide a
//! layout bug from the tests. This test holds both to the committed header instead: a C
//! program (`tests/c/layout.c`) prints what the C compiler makes of
//! `include/firehose_fanout.h` (size and alignment of every struct, offset and size of
//! every field), and each Rust definition must match it exactly.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use firehose_fanout::ffi::abi as plugin;
use flb_host::abi as host;

/// A struct's layout: size, alignment, and offset and size of each field by C name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Layout {
    size: usize,
    align: usize,
    fields: BTreeMap<String, (usize, usize)>,
}

fn field_size<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// The layout of a Rust struct, its fields named as in C: `"c_name" => rust_field`.
macro_rules! rust_layout {
    ($ty:ty { $($c:literal => $f:ident),* $(,)? }) => {
        Layout {
            size: size_of::<$ty>(),
            align: align_of::<$ty>(),
            fields: [$((
                $c.to_string(),
                (offset_of!($ty, $f), field_size(|s: &$ty| &s.$f)),
            )),*]
            .into_iter()
            .collect(),
        }
    };
}

fn plugin_layouts() -> BTreeMap<&'static str, Layout> {
    BTreeMap::from([
        (
            "flb_plugin_proxy_def",
            rust_layout!(plugin::FlbPluginProxyDef {
                "type" => type_,
                "proxy" => proxy,
                "flags" => flags,
                "name" => name,
                "description" => description,
                "event_type" => event_type,
                "config_map" => config_map,
            }),
        ),
        (
            "flb_api",
            rust_layout!(plugin::FlbApi {
                "output_get_property" => output_get_property,
                "input_get_property" => input_get_property,
                "output_get_cmt_instance" => output_get_cmt_instance,
                "input_get_cmt_instance" => input_get_cmt_instance,
                "log_print" => log_print,
                "input_log_check" => input_log_check,
                "output_log_check" => output_log_check,
                "custom_get_property" => custom_get_property,
                "custom_log_check" => custom_log_check,
            }),
        ),
        (
            "flb_plugin_proxy_context",
            rust_layout!(plugin::FlbPluginProxyContext {
                "remote_context" => remote_context,
                "proxy" => proxy,
            }),
        ),
        (
            "flbgo_output_plugin",
            rust_layout!(plugin::FlbGoOutputPlugin {
                "name" => name,
                "api" => api,
                "o_ins" => o_ins,
                "context" => context,
            }),
        ),
    ])
}

fn host_layouts() -> BTreeMap<&'static str, Layout> {
    BTreeMap::from([
        (
            "flb_plugin_proxy_def",
            rust_layout!(host::FlbPluginProxyDef {
                "type" => type_,
                "proxy" => proxy,
                "flags" => flags,
                "name" => name,
                "description" => description,
                "event_type" => event_type,
                "config_map" => config_map,
            }),
        ),
        (
            "flb_api",
            rust_layout!(host::FlbApi {
                "output_get_property" => output_get_property,
                "input_get_property" => input_get_property,
                "output_get_cmt_instance" => output_get_cmt_instance,
                "input_get_cmt_instance" => input_get_cmt_instance,
                "log_print" => log_print,
                "input_log_check" => input_log_check,
                "output_log_check" => output_log_check,
                "custom_get_property" => custom_get_property,
                "custom_log_check" => custom_log_check,
            }),
        ),
        (
            "flb_plugin_proxy_context",
            rust_layout!(host::FlbPluginProxyContext {
                "remote_context" => remote_context,
                "proxy" => proxy,
            }),
        ),
        (
            "flbgo_output_plugin",
            rust_layout!(host::FlbgoOutputPlugin {
                "name" => name,
                "api" => api,
                "o_ins" => o_ins,
                "context" => context,
            }),
        ),
    ])
}

/// The differences between `rust` and `c`, one sentence each. `prefix`: the header shows
/// only the first fields of the struct (the rest is Fluent Bit-private), so the Rust
/// struct may be larger.
fn diff(who: &str, name: &str, rust: &Layout, c: &Layout, prefix: bool) -> Vec<String> {
    let mut out = Vec::new();
    let size_ok = if prefix {
        rust.size >= c.size
    } else {
        rust.size == c.size
    };
    if !size_ok {
        out.push(format!(
            "{who} struct {name}: size {} in Rust, {} in C",
            rust.size, c.size
        ));
    }
    if rust.align != c.align {
        out.push(format!(
            "{who} struct {name}: alignment {} in Rust, {} in C",
            rust.align, c.align
        ));
    }
    for (field, c_at) in &c.fields {
        match rust.fields.get(field) {
            None => out.push(format!("{who} struct {name}: field {field} not checked")),
            Some(r_at) if r_at != c_at => out.push(format!(
                "{who} struct {name}.{field}: (offset, size) {r_at:?} in Rust, {c_at:?} in C"
            )),
            Some(_) => {}
        }
    }
    for field in rust.fields.keys() {
        if !c.fields.contains_key(field) {
            out.push(format!(
                "{who} struct {name}: field {field} is not in the header"
            ));
        }
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What `tests/c/layout.c` prints, compiled against the committed header.
fn c_layouts() -> BTreeMap<String, Layout> {
    let root = root();
    // One file per call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let exe = std::env::temp_dir().join(format!("ff-abi-layout-{}-{n}", std::process::id()));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("tests/c/layout.c"))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("running the C compiler");
    assert!(status.success(), "compiling tests/c/layout.c failed");
    let run = Command::new(&exe).output().expect("running the C program");
    std::fs::remove_file(&exe).ok();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8(run.stdout).expect("UTF-8 output");
    let mut out: BTreeMap<String, Layout> = BTreeMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| -> usize { s.parse().unwrap_or_else(|_| panic!("{line}")) };
        match w.as_slice() {
            ["struct", name, size, align] => {
                let l = out.entry(name.to_string()).or_default();
                (l.size, l.align) = (num(size), num(align));
            }
            ["field", name, field, offset, size] => {
                out.entry(name.to_string())
                    .or_default()
                    .fields
                    .insert(field.to_string(), (num(offset), num(size)));
            }
            _ => panic!("unexpected line from layout.c: {line}"),
        }
    }
    out
}

/// Every struct of the header and its fields' names, read from the header itself (so a
/// field added there and forgotten in `layout.c` fails the test).
fn header_fields(header: &Path) -> BTreeMap<String, Vec<String>> {
    let mut text = std::fs::read_to_string(header).expect("read the header");
    while let Some(start) = text.find("/*") {
        let end = text[start..].find("*/").expect("comment end") + start + 2;
        text.replace_range(start..end, " ");
    }
    let mut out = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("struct ") {
        rest = &rest[at + "struct ".len()..];
        let Some((raw_name, body)) = rest.split_once('{') else {
            break;
        };
        let name = raw_name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            // `struct x *p` in a declaration, not a definition
            continue;
        }
        let body = &body[..body.find("};").expect("struct end")];
        let fields = body
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                let ident = match d.split_once("(*") {
                    Some((_, after)) => after.split(')').next().unwrap_or(""),
                    None => d
                        .rsplit(|c: char| c.is_whitespace() || c == '*')
                        .next()
                        .unwrap_or(""),
                };
                ident.trim().to_string()
            })
            .collect();
        out.insert(name.to_string(), fields);
        rest = &rest[raw_name.len() + 1 + body.len()..];
    }
    out
}

#[test]
fn plugin_and_host_structs_match_the_header() {
    let header = root().join("include/firehose_fanout.h");
    let c = c_layouts();

    // layout.c covers every struct and field of the header.
    let from_header = header_fields(&header);
    assert_eq!(
        from_header.keys().collect::<Vec<_>>(),
        [
            "flb_api",
            "flb_plugin_proxy_context",
            "flb_plugin_proxy_def",
            "flbgo_output_plugin"
        ],
        "structs of the header"
    );
    for (name, fields) in &from_header {
        let printed: Vec<&String> = c
            .get(name)
            .map(|l| l.fields.keys().collect())
            .unwrap_or_default();
        let mut declared: Vec<&String> = fields.iter().collect();
        declared.sort();
        assert_eq!(
            printed, declared,
            "tests/c/layout.c must print every field of struct {name}"
        );
    }
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        from_header.keys().collect::<Vec<_>>()
    );

    let mut problems = Vec::new();
    for (who, rust) in [("plugin", plugin_layouts()), ("flb-host", host_layouts())] {
        assert_eq!(
            rust.keys().copied().collect::<Vec<&str>>(),
            c.keys().map(String::as_str).collect::<Vec<&str>>(),
            "{who}: a Rust layout for every struct of the header"
        );
        for (name, layout) in &rust {
            // flb-host's flbgo_output_plugin also declares the Fluent Bit-private fields
            // the header leaves out; the plugin's stops where the header does.
            let prefix = who == "flb-host" && *name == "flbgo_output_plugin";
            problems.extend(diff(who, name, layout, &c[*name], prefix));
        }
    }
    // The test host's private fields start where the header's struct ends.
    assert_eq!(
        offset_of!(host::FlbgoOutputPlugin, cb_init),
        c["flbgo_output_plugin"].size,
        "flb-host's first Fluent Bit-private field of flbgo_output_plugin"
    );
    assert!(
        problems.is_empty(),
        "ABI layout drift:\n{}",
        problems.join("\n")
    );
}

/// The comparison itself catches a drift that keeps the size (a field's type changed
/// within padding) and one that moves a field.
#[test]
fn a_drift_is_caught() {
    #[allow(dead_code)]
    #[repr(C)]
    struct Widened {
        type_: i32,
        proxy: i32,
        flags: i32,
        name: *mut u8,
        description: *mut u8,
        event_type: i64, // int in C: same offsets and size, different field size
        config_map: *mut u8,
    }
    #[allow(dead_code)]
    #[repr(C)]
    struct Swapped {
        remote_context: *mut u8,
        pad: u8,
        proxy: *mut u8,
    }
    let c = c_layouts();
    let widened = rust_layout!(Widened {
        "type" => type_,
        "proxy" => proxy,
        "flags" => flags,
        "name" => name,
        "description" => description,
        "event_type" => event_type,
        "config_map" => config_map,
    });
    assert_eq!(widened.size, c["flb_plugin_proxy_def"].size);
    let d = diff(
        "test",
        "flb_plugin_proxy_def",
        &widened,
        &c["flb_plugin_proxy_def"],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].contains("event_type"), "{d:?}");

    let swapped = rust_layout!(Swapped {
        "remote_context" => remote_context,
        "proxy" => proxy,
    });
    let d = diff(
        "test",
        "flb_plugin_proxy_context",
        &swapped,
        &c["flb_plugin_proxy_context"],
        false,
    );
    assert!(d.iter().any(|p| p.contains("size")), "{d:?}");
    assert!(d.iter().any(|p| p.contains(".proxy")), "{d:?}");
    // An unchecked field is a failure too.
    let mut partial = plugin_layouts()["flb_api"].clone();
    partial.fields.remove("log_print");
    let d = diff("test", "flb_api", &partial, &c["flb_api"], false);
    assert_eq!(d, ["test struct flb_api: field log_print not checked"]);
}
