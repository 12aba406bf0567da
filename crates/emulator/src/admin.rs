//! Small JSON admin API, so that another process (a CLI) can steer a running
//! emulator. Every answer is JSON: `{"ok": true, ...}` or `{"error": "..."}`.
//!
//! | Method and path                 | Body                                              |
//! |---------------------------------|---------------------------------------------------|
//! | `GET /admin/streams`            | – (lists streams with status, quota, faults)      |
//! | `POST /admin/streams`           | a [`StreamSpec`] (creates, or updates if present) |
//! | `DELETE /admin/streams/<name>`  | –                                                 |
//! | `POST /admin/faults`            | `{"stream": "<name>"?, "faults": Faults}`          |
//! | `POST /admin/quota`             | `{"stream": "<name>", "quota": Quota \| null}`     |
//! | `POST /admin/status`            | `{"stream": "<name>", "status": "CREATING"}`       |
//! | `POST /admin/outage`            | `{"stream": "<name>"?, "duration_ms": n?, "end": bool?}` |
//! | `POST /admin/flush`             | – (writes buffered output objects now)            |
//! | `GET /admin/records/<name>`     | – (`{"records": ["<base64>", ...]}`)               |
//! | `DELETE /admin/records/<name>`  | – (forgets the stored records)                    |
//!
//! [`Faults`] and [`Quota`] use the same JSON shape as the configuration
//! file (durations as `*_ms`).

use std::time::Duration;

use base64::Engine as _;
use hyper::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{validate_stream_name, Faults, Quota, StreamSpec, StreamStatus};
use crate::server::EmulatorHandle;

/// An admin answer: HTTP status and JSON body.
pub type AdminReply = (u16, Value);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    #[serde(default)]
    stream: Option<String>,
    faults: Faults,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    stream: String,
    quota: Option<Quota>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    stream: String,
    status: StreamStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageBody {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    end: bool,
}

fn ok() -> AdminReply {
    (200, json!({"ok": true}))
}

fn error(status: u16, message: impl Into<String>) -> AdminReply {
    (status, json!({"error": message.into()}))
}

fn no_stream(name: &str) -> AdminReply {
    error(404, format!("no delivery stream named {name:?}"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminReply> {
    serde_json::from_slice(body).map_err(|e| error(400, format!("malformed JSON body: {e}")))
}

/// Handles `method path` below `/admin/`.
pub fn handle(handle: &EmulatorHandle, method: &Method, path: &str, body: &[u8]) -> AdminReply {
    match route(handle, method, path, body) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn route(
    handle: &EmulatorHandle,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<AdminReply, AdminReply> {
    let rest = path.trim_start_matches("/admin").trim_matches('/');
    let (resource, name) = match rest.split_once('/') {
        Some((r, n)) => (r, Some(n)),
        None => (rest, None),
    };
    Ok(match (method, resource, name) {
        (&Method::GET, "streams", None) => {
            let streams: Vec<Value> = handle
                .stream_specs()
                .into_iter()
                .map(|(spec, status)| {
                    json!({
                        "name": spec.name,
                        "status": status,
                        "quota": spec.quota,
                        "faults": spec.faults,
                        "destination": spec.destination,
                        "records": handle.record_count(&spec.name),
                    })
                })
                .collect();
            (200, json!({ "streams": streams }))
        }
        (&Method::POST, "streams", None) => {
            let spec: StreamSpec = parse(body)?;
            validate_stream_name(&spec.name).map_err(|e| error(400, e))?;
            handle.create_stream(spec);
            ok()
        }
        (&Method::DELETE, "streams", Some(name)) => {
            if handle.delete_stream(name) {
                ok()
            } else {
                no_stream(name)
            }
        }
        (&Method::POST, "faults", None) => {
            let b: FaultsBody = parse(body)?;
            match b.stream.as_deref() {
                Some(name) if !handle.stream_names().iter().any(|n| n == name) => no_stream(name),
                stream => {
                    handle.set_faults(stream, b.faults);
                    ok()
                }
            }
        }
        (&Method::POST, "quota", None) => {
            let b: QuotaBody = parse(body)?;
            if handle.try_set_quota(&b.stream, b.quota) {
                ok()
            } else {
                no_stream(&b.stream)
            }
        }
        (&Method::POST, "status", None) => {
            let b: StatusBody = parse(body)?;
            if handle.set_status(&b.stream, b.status) {
                ok()
            } else {
                no_stream(&b.stream)
            }
        }
        (&Method::POST, "outage", None) => {
            let b: OutageBody = parse(body)?;
            let stream = b.stream.as_deref();
            let done = if b.end {
                handle.end_outage(stream)
            } else {
                let duration = match b.duration_ms {
                    Some(ms) if !ms.is_finite() || ms < 0.0 => {
                        return Err(error(400, "duration_ms must be a number >= 0"))
                    }
                    Some(ms) => Some(Duration::from_secs_f64(ms / 1000.0)),
                    None => None,
                };
                handle.start_outage(stream, duration)
            };
            match (done, stream) {
                (true, _) | (false, None) => ok(),
                (false, Some(name)) => no_stream(name),
            }
        }
        (&Method::POST, "flush", None) => match handle.flush_output() {
            Ok(()) => ok(),
            Err(e) => error(500, format!("flush failed: {e}")),
        },
        (&Method::GET, "records", Some(name)) => {
            if !handle.stream_names().iter().any(|n| n == name) {
                return Ok(no_stream(name));
            }
            let engine = base64::engine::general_purpose::STANDARD;
            let records: Vec<String> = handle
                .records(name)
                .iter()
                .map(|r| engine.encode(r))
                .collect();
            (200, json!({ "records": records }))
        }
        (&Method::DELETE, "records", Some(name)) => {
            if handle.clear_records(name) {
                ok()
            } else {
                no_stream(name)
            }
        }
        (_, "streams" | "faults" | "quota" | "status" | "outage" | "flush" | "records", _) => {
            error(405, format!("{method} is not supported on {path}"))
        }
        _ => error(404, format!("no admin endpoint {path}")),
    })
}
