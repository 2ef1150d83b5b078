//! The collectors, each against a file or a loopback server.
//!
//! - `file`: `file:///path.jsonl`: directories, whole lines, the schema.
//! - `http`: `http(s)://`: JSON arrays, batches, retries, rate limits.
//! - `otlp`: `otlp+http(s)://`: OTLP/HTTP JSON log records.
//! - `sentry`: `sentry+http(s)://`: envelopes, events, rate limits, DSNs.
mod file;
mod http;
mod otlp;
mod sentry;
