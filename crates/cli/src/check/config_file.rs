//! The plugin's `[OUTPUT]`s of a Fluent Bit configuration file, classic or YAML, with
//! `${VAR}` expanded as Fluent Bit expands it (its own `@SET` / `env:` variables first, then
//! the environment; an unset variable becomes empty).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;
use yaml_rust2::{Yaml, YamlLoader};

/// The plugin's name in `Name` / `name:`.
pub const PLUGIN: &str = "firehose_fanout";

/// `@INCLUDE` / `includes:` nesting deeper than this is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: cannot be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}:{line}: '{text}' is not a 'key value' line")]
    Classic {
        path: String,
        line: usize,
        text: String,
    },
    #[error("{path}: includes nest deeper than {MAX_INCLUDE_DEPTH} files (an include loop?)")]
    TooDeep { path: String },
}

/// One `[OUTPUT]` of the plugin: its properties as written, values expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputSection {
    /// Where it is written: `fluent-bit.conf:60`, `fluent-bit.yaml: pipeline.outputs[0]`.
    pub origin: String,
    /// Every key of the section (Fluent Bit's own too), in order.
    pub properties: Vec<(String, String)>,
    /// `${VAR}`s that were not set (each became an empty string).
    pub unset_vars: Vec<String>,
}

/// What a file holds: every `[OUTPUT]`, and which of them are the plugin's.
#[derive(Debug, Default)]
pub struct Outputs {
    /// The plugin's outputs, with `index` = their place among all outputs (Fluent Bit names
    /// an instance `firehose_fanout.<index>` unless it has an `alias`).
    pub ours: Vec<(usize, OutputSection)>,
    /// How many `[OUTPUT]`s there are in all.
    pub total: usize,
}

/// Reads a classic (`.conf`) or YAML (`.yaml`, `.yml`) Fluent Bit configuration.
pub fn read(path: &Path) -> Result<Outputs, FileError> {
    let mut vars = BTreeMap::new();
    let mut all = Vec::new();
    if is_yaml(path) {
        read_yaml(path, &mut vars, &mut all, 0)?;
    } else {
        read_classic(path, &mut vars, &mut all, 0)?;
    }
    let total = all.len();
    let ours = all
        .into_iter()
        .enumerate()
        .filter(|(_, o)| {
            o.properties
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("name") && v.trim() == PLUGIN)
        })
        .collect();
    Ok(Outputs { ours, total })
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// A file's text, `depth` includes down.
fn read_text(path: &Path, depth: usize) -> Result<String, FileError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(FileError::TooDeep {
            path: path.display().to_string(),
        });
    }
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Files an include names: relative to the including file's folder, `*` as a wildcard in
/// the last part (as Fluent Bit's `@INCLUDE` allows).
fn include_paths(from: &Path, pattern: &str) -> Result<Vec<PathBuf>, FileError> {
    let base = from.parent().unwrap_or(Path::new("."));
    let full = base.join(pattern.trim());
    let Some(name) = full.file_name().and_then(|n| n.to_str()) else {
        return Ok(vec![full]);
    };
    if !name.contains('*') {
        return Ok(vec![full]);
    }
    let dir = full.parent().unwrap_or(Path::new(".")).to_path_buf();
    let entries = std::fs::read_dir(&dir).map_err(|source| FileError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wildcard(name, n))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| wildcard(rest, &tail[i..]))
        }
    }
}

/// Expands `${VAR}`: the file's own variables, then the environment, else empty.
pub fn expand(value: &str, vars: &BTreeMap<String, String>, unset: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // No closing brace: Fluent Bit keeps the text as it is.
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match vars.get(name).cloned().or_else(|| std::env::var(name).ok()) {
            Some(v) => out.push_str(&v),
            None => {
                if !unset.iter().any(|u| u == name) {
                    unset.push(name.to_string());
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

// ----- classic -------------------------------------------------------------------------

fn read_classic(
    path: &Path,
    vars: &mut BTreeMap<String, String>,
    outputs: &mut Vec<OutputSection>,
    depth: usize,
) -> Result<(), FileError> {
    let text = read_text(path, depth)?;
    let shown = path.display().to_string();
    // The section being read, if it is an [OUTPUT].
    let mut current: Option<OutputSection> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(cmd) = line.strip_prefix('@') {
            let (word, arg) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
            if word.eq_ignore_ascii_case("SET") {
                if let Some((k, v)) = arg.split_once('=') {
                    vars.insert(k.trim().to_string(), v.trim().to_string());
                }
            } else if word.eq_ignore_ascii_case("INCLUDE") {
                outputs.extend(current.take());
                for p in include_paths(path, arg)? {
                    read_classic(&p, vars, outputs, depth + 1)?;
                }
            }
            continue;
        }
        if line.starts_with('[') {
            outputs.extend(current.take());
            let section = line.trim_start_matches('[').trim_end_matches(']').trim();
            if section.eq_ignore_ascii_case("OUTPUT") {
                current = Some(OutputSection {
                    origin: format!("{shown}:{}", i + 1),
                    ..Default::default()
                });
            }
            continue;
        }
        let Some(section) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once(char::is_whitespace) else {
            return Err(FileError::Classic {
                path: shown,
                line: i + 1,
                text: line.to_string(),
            });
        };
        let value = expand(value.trim(), vars, &mut section.unset_vars);
        section.properties.push((key.to_string(), value));
    }
    outputs.extend(current);
    Ok(())
}

// ----- YAML ----------------------------------------------------------------------------

fn read_yaml(
    path: &Path,
    vars: &mut BTreeMap<String, String>,
    outputs: &mut Vec<OutputSection>,
    depth: usize,
) -> Result<(), FileError> {
    let shown = path.display().to_string();
    let docs =
        YamlLoader::load_from_str(&read_text(path, depth)?).map_err(|e| FileError::Yaml {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    if let Some(env) = doc["env"].as_hash() {
        for (k, v) in env {
            if let (Some(k), Some(v)) = (scalar(k), scalar(v)) {
                vars.insert(k, v);
            }
        }
    }
    if let Some(includes) = doc["includes"].as_vec() {
        for inc in includes.iter().filter_map(scalar) {
            for p in include_paths(path, &inc)? {
                read_yaml(&p, vars, outputs, depth + 1)?;
            }
        }
    }
    let Some(list) = doc["pipeline"]["outputs"].as_vec() else {
        return Ok(());
    };
    for (i, item) in list.iter().enumerate() {
        let mut section = OutputSection {
            origin: format!("{shown}: pipeline.outputs[{i}]"),
            ..Default::default()
        };
        for (k, v) in item.as_hash().into_iter().flatten() {
            // Nested values (processors) are Fluent Bit's, not plugin properties.
            if let (Some(k), Some(v)) = (scalar(k), scalar(v)) {
                let v = expand(&v, vars, &mut section.unset_vars);
                section.properties.push((k, v));
            }
        }
        outputs.push(section);
    }
    Ok(())
}

/// A scalar as Fluent Bit passes it on: its text.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "ffcheck-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Writes `text` to `dir/name`; its path.
    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn props(o: &OutputSection) -> Vec<(&str, &str)> {
        o.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn expands_file_variables_then_the_environment() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        let mut unset = Vec::new();
        assert_eq!(
            expand("a${FFCHECK_SURELY_UNSET}b${A}", &vars, &mut unset),
            "abx"
        );
        assert_eq!(unset, vec!["FFCHECK_SURELY_UNSET"]);
        assert_eq!(expand("${open", &vars, &mut unset), "${open");
    }

    #[test]
    fn classic_outputs_with_set_include_and_comments() {
        let d = temp("classic");
        file(
            &d,
            "out-extra.conf",
            "[OUTPUT]\n    Name stdout\n    Match *\n",
        );
        let main = file(&d, "main.conf", "@SET PREFIX=logs-\n[SERVICE]\n    Flush 1\n# a comment\n[OUTPUT]\n    Name  firehose_fanout\n    # inside\n    delivery_stream_prefix ${PREFIX}\n    region   ${FFCHECK_NOPE}\n@INCLUDE out-*.conf\n[OUTPUT]\n    Name firehose_fanout\n    Alias second\n",
        );
        let o = read(&main).unwrap();
        assert_eq!(o.total, 3);
        assert_eq!(o.ours.len(), 2);
        let (i, first) = &o.ours[0];
        assert_eq!(*i, 0);
        assert!(first.origin.ends_with("main.conf:5"), "{}", first.origin);
        assert_eq!(
            props(first),
            vec![
                ("Name", "firehose_fanout"),
                ("delivery_stream_prefix", "logs-"),
                ("region", "")
            ]
        );
        assert_eq!(first.unset_vars, vec!["FFCHECK_NOPE"]);
        assert_eq!(o.ours[1].0, 2, "the included stdout output comes between");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn classic_line_without_a_value_is_an_error() {
        let d = temp("classic-bad");
        let a = file(
            &d,
            "a.conf",
            "[OUTPUT]\n    Name firehose_fanout\n    region\n",
        );
        let e = read(&a).unwrap_err().to_string();
        assert!(e.contains("a.conf:3") && e.contains("'region'"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn yaml_outputs_env_and_scalars() {
        let d = temp("yaml");
        let f = file(&d, "f.yaml", "env:\n  STREAMS: a,b\npipeline:\n  outputs:\n    - name: stdout\n      match: '*'\n    - name: firehose_fanout\n      match: kube.*\n      delivery_streams: ${STREAMS}\n      workers: 2\n      retry_limit: false\n      time_key: \"@timestamp\"\n      processors:\n        logs:\n          - name: content_modifier\n",
        );
        let o = read(&f).unwrap();
        assert_eq!((o.total, o.ours.len()), (2, 1));
        let (i, out) = &o.ours[0];
        assert_eq!(*i, 1);
        assert_eq!(
            props(out),
            vec![
                ("name", "firehose_fanout"),
                ("match", "kube.*"),
                ("delivery_streams", "a,b"),
                ("workers", "2"),
                ("retry_limit", "false"),
                ("time_key", "@timestamp"),
            ]
        );
        assert!(
            out.origin.ends_with("pipeline.outputs[1]"),
            "{}",
            out.origin
        );
        let bad = file(&d, "bad.yaml", "pipeline: [\n");
        assert!(matches!(read(&bad), Err(FileError::Yaml { .. })));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_include_loop_is_an_error() {
        let d = temp("loop");
        let a = file(&d, "a.conf", "[OUTPUT]\n    Name x\n@INCLUDE a.conf\n");
        assert!(matches!(read(&a), Err(FileError::TooDeep { .. })));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("out-*.conf", "out-a.conf"));
        assert!(wildcard("*", "x"));
        assert!(!wildcard("out-*.conf", "in-a.conf"));
        assert!(!wildcard("a", "ab"));
    }
}
