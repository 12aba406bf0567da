//! What the plugin sees of an `[OUTPUT]`: Fluent Bit keeps some keys to itself, the first of
//! a repeated key is the one read, and the rest go to `Config::from_lookup` (which ignores
//! keys it does not know).

use firehose_fanout::config::{keys, Config, ConfigError};

/// Keys Fluent Bit consumes itself before an external output plugin can read them.
const FLUENT_BIT_KEYS: &[&str] = &[
    "name",
    "match",
    "match_regex",
    "alias",
    "log_level",
    "log_suppress_interval",
    "host",
    "port",
    "ipv6",
    "retry_limit",
    "workers",
    "storage.total_limit_size",
    "tls",
];

/// Prefixes of key families Fluent Bit consumes.
const FLUENT_BIT_PREFIXES: &[&str] = &["tls.", "net."];

fn fluent_bit_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    FLUENT_BIT_KEYS.contains(&k.as_str()) || FLUENT_BIT_PREFIXES.iter().any(|p| k.starts_with(p))
}

/// An `[OUTPUT]` as the plugin will see it.
#[derive(Debug, Clone, Default)]
pub struct PluginView {
    /// Properties the plugin can read (lower-case keys, first occurrence).
    pub plugin: Vec<(String, String)>,
    /// Notes about the keys: kept by Fluent Bit, unknown, repeated.
    pub notes: Vec<String>,
    /// `alias`, if set.
    pub alias: Option<String>,
    /// `match` / `match_regex`, if set.
    pub matches: Option<String>,
}

impl PluginView {
    /// Splits `properties` (as written; `overrides` replace or add keys, as `-p` does).
    pub fn new(properties: &[(String, String)], overrides: &[(String, String)]) -> PluginView {
        let mut view = PluginView::default();
        let mut all: Vec<(String, String)> = Vec::new();
        for (k, v) in properties {
            let k = k.to_ascii_lowercase();
            if all.iter().any(|(seen, _)| *seen == k) {
                let note = format!("{k} is set more than once: the plugin reads the first value");
                if !fluent_bit_key(&k) && !view.notes.contains(&note) {
                    view.notes.push(note);
                }
                continue;
            }
            all.push((k, v.clone()));
        }
        for (k, v) in overrides {
            let k = k.to_ascii_lowercase();
            match all.iter_mut().find(|(seen, _)| *seen == k) {
                Some(slot) => slot.1 = v.clone(),
                None => all.push((k, v.clone())),
            }
        }
        for (k, v) in all {
            match k.as_str() {
                "alias" => view.alias = Some(v.clone()),
                "match" | "match_regex" => view.matches = Some(v.clone()),
                _ => {}
            }
            if fluent_bit_key(&k) {
                if k == keys::PORT {
                    view.notes.push(format!(
                        "port {v} is kept by Fluent Bit: the plugin never sees it; write the port into endpoint (https://host:{v})"
                    ));
                } else if k == keys::TLS_CA_FILE {
                    view.notes.push(format!(
                        "tls.ca_file is kept by Fluent Bit: the plugin never sees it; set ca_file {v} instead"
                    ));
                }
                continue;
            }
            if !keys::ALL.contains(&k.as_str()) {
                view.notes.push(format!(
                    "{k} is not a key of the plugin (a typo?): it is ignored"
                ));
            }
            view.plugin.push((k, v));
        }
        view
    }

    /// The plugin's own configuration code on these properties.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| {
            self.plugin
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fluent_bit_keys_stay_out_and_plugin_keys_go_in() {
        let v = PluginView::new(
            &p(&[
                ("Name", "firehose_fanout"),
                ("Match", "kube.*"),
                ("Region", "eu-west-1"),
                ("delivery_streams", "a"),
                ("workers", "2"),
                ("storage.total_limit_size", "5G"),
                ("tls.verify", "on"),
                ("net.keepalive", "on"),
                ("Retry_Limit", "False"),
                ("alias", "fh"),
            ]),
            &[],
        );
        assert_eq!(
            v.plugin,
            p(&[("region", "eu-west-1"), ("delivery_streams", "a")])
        );
        assert_eq!(v.alias.as_deref(), Some("fh"));
        assert_eq!(v.matches.as_deref(), Some("kube.*"));
        assert!(v.notes.is_empty(), "{:?}", v.notes);
        assert_eq!(v.config().expect("valid").region, "eu-west-1");
    }

    #[test]
    fn notes_for_kept_unknown_and_repeated_keys() {
        let v = PluginView::new(
            &p(&[
                ("port", "4443"),
                ("tls.ca_file", "/ca.pem"),
                ("regoin", "x"),
                ("region", "a"),
                ("REGION", "b"),
            ]),
            &p(&[("delivery_streams", "s")]),
        );
        let notes = v.notes.join("\n");
        assert!(notes.contains("port 4443 is kept by Fluent Bit"), "{notes}");
        assert!(notes.contains("set ca_file /ca.pem"), "{notes}");
        assert!(notes.contains("regoin is not a key"), "{notes}");
        assert!(notes.contains("region is set more than once"), "{notes}");
        let c = v.config().expect("valid");
        assert_eq!(
            (c.region.as_str(), c.streams.clone()),
            ("a", vec!["s".to_string()])
        );
    }

    #[test]
    fn overrides_replace() {
        let v = PluginView::new(&p(&[("region", "a")]), &p(&[("Region", "b")]));
        assert_eq!(v.plugin, p(&[("region", "b")]));
    }
}
