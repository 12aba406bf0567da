//! The (S3) destination of a delivery stream: what `CreateDeliveryStream`
//! was given and what `DescribeDeliveryStream` reports back.
//!
//! The AWS-shaped sub-structures ([`BufferingHints`],
//! [`ProcessingConfiguration`], [`DynamicPartitioningConfiguration`]) use the
//! exact wire names of the Firehose API (PascalCase), so they are parsed from
//! and written to the API unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{ACCOUNT_ID, REGION};

/// Bucket ARN of a stream created without an explicit destination.
pub const DEFAULT_BUCKET_ARN: &str = "arn:aws:s3:::emulator";

/// Role ARN of a stream created without an explicit destination.
pub fn default_role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/firehose-emulator")
}

/// An (extended) S3 destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationSpec {
    /// `BucketARN`. Default `arn:aws:s3:::emulator`.
    pub bucket_arn: String,
    /// `RoleARN`.
    pub role_arn: String,
    /// `Prefix` (reported only; the output folder always uses the default
    /// `YYYY/MM/DD/HH/` layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `ErrorOutputPrefix` (reported only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
    /// `BufferingHints`; when absent the emulator's defaults apply (and are
    /// reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// `CompressionFormat` (reported only; output objects are never
    /// compressed). Default `UNCOMPRESSED`.
    pub compression_format: String,
    /// `ProcessingConfiguration`. Of the processors, the emulator applies
    /// `AppendDelimiterToRecord` (a `\n` after each record in the output
    /// folder); the others are reported only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfiguration>,
    /// `DynamicPartitioningConfiguration` (reported only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_partitioning_configuration: Option<DynamicPartitioningConfiguration>,
    /// Any other `ExtendedS3DestinationConfiguration` members given at
    /// creation time, echoed by `DescribeDeliveryStream`.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Default for DestinationSpec {
    fn default() -> Self {
        DestinationSpec {
            bucket_arn: DEFAULT_BUCKET_ARN.to_string(),
            role_arn: default_role_arn(),
            prefix: None,
            error_output_prefix: None,
            buffering_hints: None,
            compression_format: "UNCOMPRESSED".to_string(),
            processing_configuration: None,
            dynamic_partitioning_configuration: None,
            extra: Map::new(),
        }
    }
}

/// `BufferingHints` of an S3 destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferingHints {
    /// `SizeInMBs` (1–128).
    #[serde(rename = "SizeInMBs", skip_serializing_if = "Option::is_none")]
    pub size_in_mbs: Option<u32>,
    /// `IntervalInSeconds` (0–900).
    #[serde(rename = "IntervalInSeconds", skip_serializing_if = "Option::is_none")]
    pub interval_in_seconds: Option<u32>,
}

/// `ProcessingConfiguration` of a destination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessingConfiguration {
    /// `Enabled`.
    #[serde(rename = "Enabled", skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `Processors`.
    #[serde(rename = "Processors", default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
}

impl ProcessingConfiguration {
    /// An enabled configuration with the given processors.
    pub fn enabled(processors: Vec<Processor>) -> Self {
        ProcessingConfiguration {
            enabled: Some(true),
            processors,
        }
    }

    /// `true` when enabled and one of the processors has type `kind`.
    pub fn has_processor(&self, kind: &str) -> bool {
        self.enabled == Some(true) && self.processors.iter().any(|p| p.processor_type == kind)
    }
}

/// One data processor (`Lambda`, `RecordDeAggregation`,
/// `AppendDelimiterToRecord`, `MetadataExtraction`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    /// `Type`.
    #[serde(rename = "Type")]
    pub processor_type: String,
    /// `Parameters`.
    #[serde(rename = "Parameters", default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ProcessorParameter>,
}

impl Processor {
    /// A processor of the given type without parameters.
    pub fn new(processor_type: impl Into<String>) -> Self {
        Processor {
            processor_type: processor_type.into(),
            parameters: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.push(ProcessorParameter {
            parameter_name: name.into(),
            parameter_value: value.into(),
        });
        self
    }

    /// The value of parameter `name`, if present.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.parameter_name == name)
            .map(|p| p.parameter_value.as_str())
    }
}

/// One processor parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorParameter {
    /// `ParameterName` (`SubRecordType`, `Delimiter`, `LambdaArn`, ...).
    #[serde(rename = "ParameterName")]
    pub parameter_name: String,
    /// `ParameterValue`.
    #[serde(rename = "ParameterValue")]
    pub parameter_value: String,
}

/// `DynamicPartitioningConfiguration` of an extended S3 destination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicPartitioningConfiguration {
    /// `Enabled`.
    #[serde(rename = "Enabled", skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `RetryOptions`.
    #[serde(rename = "RetryOptions", skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
}

/// `RetryOptions` of dynamic partitioning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOptions {
    /// `DurationInSeconds`.
    #[serde(rename = "DurationInSeconds", skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u32>,
}

impl DestinationSpec {
    /// An S3 destination writing to the given bucket ARN.
    pub fn s3(bucket_arn: impl Into<String>) -> Self {
        DestinationSpec {
            bucket_arn: bucket_arn.into(),
            ..Default::default()
        }
    }

    /// Sets the `Prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the `BufferingHints`.
    pub fn with_buffering_hints(mut self, size_in_mbs: u32, interval_in_seconds: u32) -> Self {
        self.buffering_hints = Some(BufferingHints {
            size_in_mbs: Some(size_in_mbs),
            interval_in_seconds: Some(interval_in_seconds),
        });
        self
    }

    /// Sets the `ProcessingConfiguration`.
    pub fn with_processing(mut self, processing: ProcessingConfiguration) -> Self {
        self.processing_configuration = Some(processing);
        self
    }

    /// Enables (or disables) dynamic partitioning.
    pub fn with_dynamic_partitioning(mut self, enabled: bool) -> Self {
        self.dynamic_partitioning_configuration = Some(DynamicPartitioningConfiguration {
            enabled: Some(enabled),
            retry_options: None,
        });
        self
    }

    /// `true` when the output folder appends `\n` to every record
    /// (an enabled `AppendDelimiterToRecord` processor).
    pub fn appends_delimiter(&self) -> bool {
        self.processing_configuration
            .as_ref()
            .is_some_and(|p| p.has_processor("AppendDelimiterToRecord"))
    }

    /// With dynamic partitioning and an enabled `RecordDeAggregation` processor: the
    /// delimiter records are split on (`SubRecordType` `JSON`: a newline between objects;
    /// `DELIMITED`: the base64 `Delimiter` parameter, decoded; a newline if it is absent).
    pub fn deaggregation_delimiter(&self) -> Option<Vec<u8>> {
        let partitioning = self
            .dynamic_partitioning_configuration
            .as_ref()
            .is_some_and(|d| d.enabled == Some(true));
        let p = self.processing_configuration.as_ref()?;
        if !partitioning || p.enabled != Some(true) {
            return None;
        }
        let deagg = p
            .processors
            .iter()
            .find(|p| p.processor_type == "RecordDeAggregation")?;
        match deagg.parameter("SubRecordType") {
            Some("DELIMITED") => Some(
                deagg
                    .parameter("Delimiter")
                    .and_then(|d| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.decode(d).ok()
                    })
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| b"\n".to_vec()),
            ),
            _ => Some(b"\n".to_vec()),
        }
    }

    /// Reads an `ExtendedS3DestinationConfiguration` (or the older
    /// `S3DestinationConfiguration`) object of a `CreateDeliveryStream`
    /// request.
    pub fn from_aws_configuration(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("the destination configuration must be a JSON object".into());
        };
        let mut spec = DestinationSpec::default();
        let mut extra = Map::new();
        for (key, v) in map {
            match key.as_str() {
                "BucketARN" => spec.bucket_arn = string_member(key, v)?,
                "RoleARN" => spec.role_arn = string_member(key, v)?,
                "Prefix" => spec.prefix = Some(string_member(key, v)?),
                "ErrorOutputPrefix" => spec.error_output_prefix = Some(string_member(key, v)?),
                "CompressionFormat" => spec.compression_format = string_member(key, v)?,
                "BufferingHints" => spec.buffering_hints = Some(typed_member(key, v)?),
                "ProcessingConfiguration" => {
                    spec.processing_configuration = Some(typed_member(key, v)?)
                }
                "DynamicPartitioningConfiguration" => {
                    spec.dynamic_partitioning_configuration = Some(typed_member(key, v)?)
                }
                _ => {
                    extra.insert(key.clone(), v.clone());
                }
            }
        }
        if !spec.bucket_arn.starts_with("arn:") {
            return Err(format!("BucketARN {:?} is not an ARN", spec.bucket_arn));
        }
        if let Some(h) = spec.buffering_hints {
            if let Some(size) = h.size_in_mbs {
                if !(1..=128).contains(&size) {
                    return Err(format!(
                        "BufferingHints.SizeInMBs must be 1..=128, got {size}"
                    ));
                }
            }
            if let Some(secs) = h.interval_in_seconds {
                if secs > 900 {
                    return Err(format!(
                        "BufferingHints.IntervalInSeconds must be 0..=900, got {secs}"
                    ));
                }
            }
        }
        spec.extra = extra;
        Ok(spec)
    }

    /// The `ExtendedS3DestinationDescription` of `DescribeDeliveryStream`;
    /// `effective_hints` are the buffering hints in force.
    pub fn extended_s3_description(&self, effective_hints: BufferingHints) -> Value {
        let mut out = Map::new();
        for (k, v) in &self.extra {
            // The configuration shape of the backup destination is described
            // under another name.
            let key = if k == "S3BackupConfiguration" {
                "S3BackupDescription"
            } else {
                k.as_str()
            };
            out.insert(key.to_string(), v.clone());
        }
        for (k, v) in self.s3_description_members(effective_hints) {
            out.insert(k, v);
        }
        out.entry("S3BackupMode")
            .or_insert_with(|| Value::String("Disabled".into()));
        if let Some(p) = &self.processing_configuration {
            out.insert("ProcessingConfiguration".into(), json!(p));
        }
        if let Some(d) = &self.dynamic_partitioning_configuration {
            out.insert("DynamicPartitioningConfiguration".into(), json!(d));
        }
        Value::Object(out)
    }

    /// The plain `S3DestinationDescription` (reported next to the extended
    /// one, as the real service does).
    pub fn s3_description(&self, effective_hints: BufferingHints) -> Value {
        Value::Object(self.s3_description_members(effective_hints))
    }

    fn s3_description_members(&self, hints: BufferingHints) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("RoleARN".into(), json!(self.role_arn));
        out.insert("BucketARN".into(), json!(self.bucket_arn));
        if let Some(p) = &self.prefix {
            out.insert("Prefix".into(), json!(p));
        }
        if let Some(p) = &self.error_output_prefix {
            out.insert("ErrorOutputPrefix".into(), json!(p));
        }
        out.insert("BufferingHints".into(), json!(hints));
        out.insert("CompressionFormat".into(), json!(self.compression_format));
        let encryption = self
            .extra
            .get("EncryptionConfiguration")
            .cloned()
            .unwrap_or_else(|| json!({"NoEncryptionConfig": "NoEncryption"}));
        out.insert("EncryptionConfiguration".into(), encryption);
        let logging = self
            .extra
            .get("CloudWatchLoggingOptions")
            .cloned()
            .unwrap_or_else(|| json!({"Enabled": false}));
        out.insert("CloudWatchLoggingOptions".into(), logging);
        out
    }
}

/// The ARN of a delivery stream.
pub fn stream_arn(name: &str) -> String {
    format!("arn:aws:firehose:{REGION}:{ACCOUNT_ID}:deliverystream/{name}")
}

fn string_member(key: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{key} must be a string"))
}

fn typed_member<T: serde::de::DeserializeOwned>(key: &str, v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_describes_extended_s3() {
        let conf = json!({
            "RoleARN": "arn:aws:iam::1:role/r",
            "BucketARN": "arn:aws:s3:::b",
            "Prefix": "logs/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "CompressionFormat": "GZIP",
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "RecordDeAggregation", "Parameters": [
                    {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
                {"Type": "AppendDelimiterToRecord"}
            ]},
            "DynamicPartitioningConfiguration": {"Enabled": true},
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"BucketARN": "arn:aws:s3:::backup"}
        });
        let spec = DestinationSpec::from_aws_configuration(&conf).unwrap();
        assert_eq!(spec.bucket_arn, "arn:aws:s3:::b");
        assert_eq!(spec.prefix.as_deref(), Some("logs/"));
        assert!(spec.appends_delimiter());
        let p = spec.processing_configuration.as_ref().unwrap();
        assert_eq!(p.processors[0].parameter("SubRecordType"), Some("JSON"));
        let hints = spec.buffering_hints.unwrap();
        let d = spec.extended_s3_description(hints);
        assert_eq!(d["BufferingHints"]["SizeInMBs"], 64);
        assert_eq!(d["CompressionFormat"], "GZIP");
        assert_eq!(d["S3BackupMode"], "Enabled");
        assert_eq!(d["S3BackupDescription"]["BucketARN"], "arn:aws:s3:::backup");
        assert_eq!(
            d["ProcessingConfiguration"],
            conf["ProcessingConfiguration"]
        );
        assert_eq!(d["DynamicPartitioningConfiguration"]["Enabled"], true);
        assert_eq!(
            d["EncryptionConfiguration"]["NoEncryptionConfig"],
            "NoEncryption"
        );
    }

    #[test]
    fn rejects_bad_configuration() {
        assert!(DestinationSpec::from_aws_configuration(&json!([])).is_err());
        assert!(DestinationSpec::from_aws_configuration(&json!({"BucketARN": 5})).is_err());
        assert!(DestinationSpec::from_aws_configuration(&json!({"BucketARN": "bucket"})).is_err());
        assert!(DestinationSpec::from_aws_configuration(
            &json!({"BucketARN": "arn:aws:s3:::b", "BufferingHints": {"SizeInMBs": 0}})
        )
        .is_err());
    }
}
