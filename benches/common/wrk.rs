//! An out-of-process load generator for the router bench: `wrk` (Debian's
//! package; `scripts/bench-router.sh ... wrk` installs it), one thread and
//! eight keep-alive connections on one URL, so the load's own cost is not
//! shared with the handlers' process.

use std::process::Stdio;

pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `wrk --latency` on `url` for `secs`, with the bearer `token` if any.
pub async fn run(
    url: &str,
    token: Option<&str>,
    secs: u64,
    connections: usize,
) -> anyhow::Result<WrkResult> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    if let Some(token) = token {
        command
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"));
    }
    let out = command
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "wrk failed: {text}");
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "wrk saw answers other than 2xx: {text}"
    );
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .ok_or_else(|| anyhow::anyhow!("no `{prefix}` in wrk's output: {text}"))
    };
    Ok(WrkResult {
        rps: line("Requests/sec:")?.parse()?,
        p50_ms: millis(&line("50%")?)?,
        p99_ms: millis(&line("99%")?)?,
    })
}

/// wrk's `451.00us`, `1.23ms` or `1.02s`, in milliseconds.
fn millis(value: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        anyhow::bail!("not a wrk duration: {value}")
    };
    Ok(number.parse::<f64>()? * scale)
}
