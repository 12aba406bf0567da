//! Amazon Kinesis Data Firehose through the AWS SDK: the clients, one PutRecordBatch call
//! (its body written by the plugin) and its outcome classes, and what List/DescribeDeliveryStream say (data only).

pub mod body;
pub mod client;
pub mod discover;
pub mod put;
pub mod reach;
