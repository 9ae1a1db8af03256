//! One access-log line per request on standard output: the time, the token's name,
//! the pipe (or route), the status, the rows returned, the bytes of the body, the
//! milliseconds it took, and for pipes that cache, whether the result was kept. Text
//! for people, or JSON lines (`--log-format json`) for machines. The query string is
//! never logged (it may carry a token).

use std::io::Write;

use serde_json::json;

/// How access lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    /// No access log.
    Off,
}

/// What a handler knows of a request, for its access line (set as a response
/// extension).
#[derive(Debug, Clone, Default)]
pub struct AccessInfo {
    pub token: Option<String>,
    pub pipe: Option<String>,
    pub rows: Option<u64>,
    pub cache: Option<&'static str>,
    pub error_id: Option<String>,
}

/// One request, as logged.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: Option<u64>,
    pub ms: f64,
    pub info: &'a AccessInfo,
}

impl AccessLine<'_> {
    pub fn render(&self, format: LogFormat) -> Option<String> {
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let info = self.info;
        match format {
            LogFormat::Off => None,
            LogFormat::Json => Some(
                json!({
                    "time": time.to_string(),
                    "method": self.method,
                    "path": self.path,
                    "token": info.token,
                    "pipe": info.pipe,
                    "status": self.status,
                    "rows": info.rows,
                    "bytes": self.bytes,
                    "ms": (self.ms * 1000.0).round() / 1000.0,
                    "cache": info.cache,
                    "error_id": info.error_id,
                })
                .to_string(),
            ),
            LogFormat::Text => {
                let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                let mut line = format!(
                    "{time} {} {} status={} token={} pipe={} rows={} bytes={} ms={:.3}",
                    self.method,
                    self.path,
                    self.status,
                    dash(info.token.clone()),
                    dash(info.pipe.clone()),
                    dash(info.rows.map(|r| r.to_string())),
                    dash(self.bytes.map(|b| b.to_string())),
                    self.ms
                );
                if let Some(c) = info.cache {
                    line.push_str(&format!(" cache={c}"));
                }
                if let Some(id) = &info.error_id {
                    line.push_str(&format!(" error_id={id}"));
                }
                Some(line)
            }
        }
    }
}

/// Writes a line to standard output; a closed output is not the request's failure.
pub fn write(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
