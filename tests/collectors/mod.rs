//! The collectors, each against a file or a loopback server.
//!
//! - `file`: `file:///path.jsonl`: directories, whole lines, the schema.
//! - `http`: `http(s)://`: JSON arrays, batches, retries, rate limits.
//! - `otlp`: `otlp+http(s)://`: OTLP/HTTP JSON log records.
//! - `sentry`: `sentry+http(s)://`: envelopes, events, rate limits, DSNs.
//! - `headers`: configured headers and gzip bodies on the wire.
//! - `from_env`: collectors configured by OpenTelemetry and Sentry variables.
mod file;
mod from_env;
mod headers;
mod http;
mod otlp;
mod sentry;
