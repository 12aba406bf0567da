//! The verdict on one output, from its settings and what AWS said: per stream status,
//! destination, aggregation decision and why, quotas; which IAM actions failed; problems
//! (the plugin would not deliver) and warnings (it would, with a catch). Text or JSON.

use std::fmt::Write as _;

use firehose_fanout::config::{plain_http_off_host, Aggregation, Config};
use firehose_fanout::firehose::discover::Described;
use firehose_fanout::schedule::Packing;
use serde::Serialize;

use super::probe::{Access, Probe, StreamProbe};
use super::properties::PluginView;

/// The IAM actions the plugin uses.
pub const LIST: &str = "firehose:ListDeliveryStreams";
pub const DESCRIBE: &str = "firehose:DescribeDeliveryStream";
pub const PUT: &str = "firehose:PutRecordBatch";

#[derive(Debug, Serialize)]
pub struct Quota {
    pub records_per_second: f64,
    pub bytes_per_second: f64,
    pub requests_per_second: f64,
}

#[derive(Debug, Serialize)]
pub struct StreamReport {
    pub name: String,
    /// `delivery_streams` or `delivery_stream_prefix`.
    pub from: &'static str,
    /// `ACTIVE`, `CREATING`, ..., `not found` or `unknown`.
    pub status: String,
    pub destination: String,
    pub aggregation: bool,
    pub aggregation_why: String,
    pub quota: Quota,
    /// DescribeDeliveryStream's answer, in words.
    pub describe: String,
    /// The dry PutRecordBatch's answer, in words.
    pub put_record_batch: String,
    /// Records would go to this stream.
    pub usable: bool,
}

#[derive(Debug, Serialize)]
pub struct Action {
    pub action: &'static str,
    /// `allowed`, `denied`, `failed` or `not checked`.
    pub result: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct OutputReport {
    /// The instance name: `alias`, else `firehose_fanout.<n>`.
    pub name: String,
    /// Where the section is written.
    pub origin: String,
    #[serde(rename = "match")]
    pub matches: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    /// Which source of the chain gave the credentials.
    pub credentials: Option<String>,
    /// The access key id's last four characters.
    pub access_key: Option<String>,
    pub actions: Vec<Action>,
    pub streams: Vec<StreamReport>,
    /// What stops delivery (empty: it would deliver).
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub would_deliver: bool,
}

/// The aggregation decision for one stream and why: the setting, and with `auto` what
/// DescribeDeliveryStream showed (the plugin's own destination reading, `Described`).
fn aggregation(cfg: &Config, described: &Result<Option<Described>, String>) -> (bool, String) {
    match (cfg.aggregation, described) {
        (Aggregation::On, _) => (true, "aggregation on".into()),
        (Aggregation::Off, _) => (false, "aggregation off".into()),
        (Aggregation::Auto, Ok(Some(d))) => {
            let raw_text = cfg.encode.log_key.is_some();
            let compressed = cfg.compression != firehose_fanout::config::Compression::None;
            match d.reader.packing(raw_text, compressed) {
                Packing::Single => (false, d.reader.reason().to_string()),
                Packing::Aggregate { max_members: None } => (true, d.reader.reason().to_string()),
                Packing::Aggregate {
                    max_members: Some(m),
                } => (
                    true,
                    format!("at most {m} records each: {}", d.reader.reason()),
                ),
            }
        }
        (Aggregation::Auto, Ok(None)) => (false, "the stream does not exist".into()),
        (Aggregation::Auto, Err(_)) => (
            false,
            "not described: off until DescribeDeliveryStream answers (the plugin keeps asking)"
                .into(),
        ),
    }
}

fn access_words(a: &Access) -> (&'static str, String) {
    match a {
        Access::Allowed(how) => ("allowed", how.clone()),
        Access::Denied(m) => ("denied", m.clone()),
        Access::Failed(m) => ("failed", m.clone()),
        Access::NotChecked(why) => ("not checked", why.clone()),
    }
}

fn show(a: &Access) -> String {
    let (word, detail) = access_words(a);
    if detail.is_empty() || detail == "answered" {
        word.to_string()
    } else {
        format!("{word}: {detail}")
    }
}

/// One action over every stream (`None`: not about a stream): denied anywhere wins, then
/// failed, then allowed. Denials and failures name the streams (their lines carry the
/// messages); a call not about a stream gives its message.
fn summarize(action: &'static str, answers: &[(Option<&str>, &Access)], none: &str) -> Action {
    let by = |want: &'static str| -> Option<Action> {
        let hits: Vec<(Option<&str>, String)> = answers
            .iter()
            .filter(|(_, a)| access_words(a).0 == want)
            .map(|(name, a)| (*name, access_words(a).1))
            .collect();
        let (first_name, first_detail) = hits.first()?.clone();
        let detail = match (want, first_name) {
            ("denied" | "failed", Some(_)) => format!(
                "on {}",
                hits.iter()
                    .filter_map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => first_detail,
        };
        Some(Action {
            action,
            result: want,
            detail,
        })
    };
    by("denied")
        .or_else(|| by("failed"))
        .or_else(|| by("allowed"))
        .or_else(|| by("not checked"))
        .unwrap_or(Action {
            action,
            result: "not checked",
            detail: none.to_string(),
        })
}

fn stream_report(
    cfg: &Config,
    s: &StreamProbe,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> StreamReport {
    let name = &s.name;
    let (status, destination, active) = match &s.described {
        Ok(Some(d)) => (d.status.clone(), d.destination.clone(), Some(d.active)),
        Ok(None) => ("not found".into(), "-".into(), Some(false)),
        Err(_) => ("unknown".into(), "unknown".into(), None),
    };
    let put_ok = matches!(s.put, Access::Allowed(_));
    match (&s.described, active) {
        (Ok(None), _) => problems.push(format!(
            "delivery stream {name} does not exist in {}: create it, or remove it from delivery_streams",
            cfg.region
        )),
        (Ok(Some(d)), Some(false)) => problems.push(format!(
            "delivery stream {name} is {}, not ACTIVE: it takes no records until it is",
            d.status
        )),
        _ => {}
    }
    match &s.put {
        Access::Denied(_) => problems.push(format!(
            "{PUT} is denied on {name}: allow it in the policy of the credentials' role"
        )),
        // A stream that does not exist says so above.
        Access::Failed(m) if !matches!(s.described, Ok(None)) => {
            problems.push(format!("PutRecordBatch on {name} failed: {m}"))
        }
        _ => {}
    }
    if let Access::Denied(_) = &s.describe {
        if cfg.aggregation == Aggregation::Auto {
            warnings.push(format!(
                "{DESCRIBE} is denied on {name}: aggregation stays off for it (each small record is billed as 5 KB); allow it"
            ));
        } else {
            warnings.push(format!("{DESCRIBE} is denied on {name}"));
        }
    }
    let (aggregates, why) = aggregation(cfg, &s.described);
    if let (Aggregation::On, Ok(Some(d))) = (cfg.aggregation, &s.described) {
        if d.reader.packing(false, false) == Packing::Single {
            warnings.push(format!(
                "aggregation on packs many log records into each Firehose record of {name}, but {}",
                d.reader.reason()
            ));
        }
    }
    StreamReport {
        name: name.clone(),
        from: if s.configured {
            "delivery_streams"
        } else {
            "delivery_stream_prefix"
        },
        status,
        destination,
        aggregation: aggregates,
        aggregation_why: why,
        quota: Quota {
            records_per_second: cfg.quota.records,
            bytes_per_second: cfg.quota.bytes,
            requests_per_second: cfg.quota.requests,
        },
        describe: show(&s.describe),
        put_record_batch: show(&s.put),
        usable: put_ok && active != Some(false),
    }
}

/// The verdict on one output.
pub fn build(
    name: String,
    origin: String,
    unset_vars: &[String],
    view: &PluginView,
    cfg: &Config,
    probe: &Probe,
) -> OutputReport {
    let mut problems = Vec::new();
    let mut warnings: Vec<String> = unset_vars
        .iter()
        .map(|v| format!("${{{v}}} is not set: the plugin would see an empty value"))
        .collect();
    warnings.extend(view.notes.iter().cloned());
    for (key, url) in [
        ("endpoint", &cfg.endpoint),
        ("sts_endpoint", &cfg.credentials.sts_endpoint),
    ] {
        if let Some(url) = url.as_deref().filter(|u| plain_http_off_host(u)) {
            warnings.push(format!(
                "{key} {url} is plain http to another host: records and request signatures travel unencrypted; use https"
            ));
        }
    }
    let (credentials, access_key) = match &probe.credentials {
        Ok(c) => (Some(c.source.clone()), Some(c.key_hint.clone())),
        Err(e) => {
            problems.push(format!(
                "no credentials: {e}; give them to the plugin's environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, IRSA, or an instance role)"
            ));
            (None, None)
        }
    };
    match (&probe.discovery, &cfg.stream_prefix) {
        (Some(Err(e)), Some(p)) => problems.push(format!(
            "delivery_stream_prefix {p}: the plugin could not find streams ({e})"
        )),
        (Some(Ok(0)), Some(p)) => problems.push(format!(
            "delivery_stream_prefix {p}: no ACTIVE delivery stream in {} starts with it",
            cfg.region
        )),
        _ => {}
    }
    let streams: Vec<StreamReport> = probe
        .streams
        .iter()
        .map(|s| stream_report(cfg, s, &mut problems, &mut warnings))
        .collect();
    let mut list = summarize(LIST, &[(None, &probe.list)], "");
    if cfg.stream_prefix.is_none() && list.result != "allowed" {
        list.detail = format!(
            "{} (the plugin calls it only with delivery_stream_prefix)",
            list.detail
        );
    } else if cfg.stream_prefix.is_some() && list.result == "denied" {
        problems.push(format!(
            "{LIST} is denied: delivery_stream_prefix cannot find streams; allow it, or name the streams in delivery_streams"
        ));
    }
    let describes: Vec<(Option<&str>, &Access)> = probe
        .streams
        .iter()
        .map(|s| (Some(s.name.as_str()), &s.describe))
        .collect();
    let puts: Vec<(Option<&str>, &Access)> = probe
        .streams
        .iter()
        .map(|s| (Some(s.name.as_str()), &s.put))
        .collect();
    let actions = vec![
        list,
        summarize(DESCRIBE, &describes, "no stream to describe"),
        summarize(PUT, &puts, "no stream to send to"),
    ];
    if streams.is_empty() && problems.is_empty() {
        problems.push("no delivery stream to send to".into());
    }
    OutputReport {
        name,
        origin,
        matches: view.matches.clone(),
        region: cfg.region.clone(),
        endpoint: cfg.endpoint.clone(),
        credentials,
        access_key,
        actions,
        streams,
        would_deliver: problems.is_empty(),
        problems,
        warnings,
    }
}

fn per_second(v: f64, unit: &str) -> String {
    if v >= 1024.0 * 1024.0 && unit == "B" && (v / (1024.0 * 1024.0)).fract() == 0.0 {
        format!("{} MiB/s", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 && unit == "B" && (v / 1024.0).fract() == 0.0 {
        format!("{} KiB/s", v / 1024.0)
    } else {
        format!("{v} {unit}/s")
    }
}

/// The report as aligned lines.
pub fn text(r: &OutputReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "[OUTPUT] {} ({})", r.name, r.origin);
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(o, "  {k:<13}{v}");
    };
    if let Some(m) = &r.matches {
        line("match", m);
    }
    line("region", &r.region);
    line("endpoint", r.endpoint.as_deref().unwrap_or("AWS's"));
    match (&r.credentials, &r.access_key) {
        (Some(c), Some(k)) => line("credentials", &format!("{c}, access key {k}")),
        _ => line("credentials", "none"),
    }
    for (i, a) in r.actions.iter().enumerate() {
        let detail = if a.detail.is_empty() || a.detail == "answered" {
            String::new()
        } else if a.detail.starts_with("on ") {
            format!(" {}", a.detail)
        } else {
            format!(" ({})", a.detail)
        };
        line(
            if i == 0 { "IAM" } else { "" },
            &format!("{:<33}{}{detail}", a.action, a.result),
        );
    }
    for s in &r.streams {
        let _ = writeln!(o, "  stream {} ({})", s.name, s.from);
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(o, "    {k:<16}{v}");
        };
        line("status", &s.status);
        line("destination", &s.destination);
        line(
            "aggregation",
            &format!(
                "{}: {}",
                if s.aggregation { "yes" } else { "no" },
                s.aggregation_why
            ),
        );
        line(
            "quota assumed",
            &format!(
                "{}, {}, {}",
                per_second(s.quota.records_per_second, "records"),
                per_second(s.quota.bytes_per_second, "B"),
                per_second(s.quota.requests_per_second, "requests")
            ),
        );
        line("Describe", &s.describe);
        line("PutRecordBatch", &s.put_record_batch);
    }
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    for p in &r.problems {
        let _ = writeln!(o, "  problem: {p}");
    }
    let _ = writeln!(
        o,
        "  => {}",
        if r.would_deliver {
            "would deliver".to_string()
        } else {
            format!(
                "would NOT deliver: {} problem{}",
                r.problems.len(),
                if r.problems.len() == 1 { "" } else { "s" }
            )
        }
    );
    o
}
