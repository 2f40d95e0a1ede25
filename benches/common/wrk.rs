//! An out-of-process load generator for the router bench: `wrk` (Debian's
//! package; `scripts/bench-router.sh ... wrk` installs it), one thread and
//! eight keep-alive connections on one URL, so the load's own cost is not
//! shared with the handlers' process.

use std::process::Stdio;

use super::drive::LoadResult;

/// `wrk --latency` on `url` for `secs`, with the bearer `token` if any.
pub async fn run(
    url: &str,
    token: Option<&str>,
    secs: u64,
    connections: usize,
) -> anyhow::Result<LoadResult> {
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
    let rps: f64 = line("Requests/sec:")?.parse()?;
    Ok(LoadResult {
        rps,
        p50: millis(&line("50%")?)?,
        p99: millis(&line("99%")?)?,
        // Any answer but 2xx failed the run above.
        refused: 0.0,
        requests: (rps * secs as f64).round() as usize,
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
