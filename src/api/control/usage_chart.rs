//! Bar charts drawn as SVG on the server: a tenant's requests per hour or
//! day, the fleet's top tenants, each server's utilisation. Each bar is a
//! `<rect class="bar">` that carries its label and value, so the console
//! shows it as it is and a test counts what was drawn. Labels (slugs,
//! server names) are escaped.

use crate::usage::UsagePoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
/// Where the labels under the bars sit (room for their descenders).
const BASELINE: f64 = HEIGHT - 4.0;
/// Up to this many bars, each is named under it; past it, the first and last.
const LABELLED: usize = 12;

/// The chart of `points` (oldest first): requests per period.
pub fn requests_chart(points: &[UsagePoint]) -> String {
    let bars: Vec<(String, i64)> = points
        .iter()
        .map(|p| {
            (
                p.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                p.requests_data + p.requests_control,
            )
        })
        .collect();
    bar_chart(&bars, "requests")
}

/// Bars of `(label, value)`, in order; the labels are escaped.
pub fn bar_chart(bars: &[(String, i64)], unit: &str) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let plot = HEIGHT - BOTTOM;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"{} bars of {}, at most {}\">",
        bars.len(),
        escape(unit),
        max as i64
    );
    out.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{plot}\" x2=\"{WIDTH}\" y2=\"{plot}\"/>\
         <text class=\"tick\" x=\"{}\" y=\"12\" text-anchor=\"end\">{}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{plot}\" text-anchor=\"end\">0</text>",
        LEFT - 6.0,
        max as i64,
        LEFT - 6.0
    ));
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = (*v as f64 / max) * (plot - 16.0);
        let label = escape(label);
        out.push_str(&format!(
            "<rect class=\"bar\" data-label=\"{label}\" data-value=\"{v}\" x=\"{:.1}\" y=\"{:.1}\" \
             width=\"{:.1}\" height=\"{h:.1}\"><title>{label}: {v} {}</title></rect>",
            LEFT + i as f64 * slot + slot * 0.1,
            plot - h,
            slot * 0.8,
            escape(unit),
        ));
    }
    if bars.len() <= LABELLED {
        // Few bars: each is named under it, cut to its width.
        let fits = ((slot / 6.0) as usize).max(3);
        for (i, (label, _)) in bars.iter().enumerate() {
            let shown: String = if label.chars().count() > fits {
                label.chars().take(fits - 1).chain(['…']).collect()
            } else {
                label.clone()
            };
            out.push_str(&format!(
                "<text class=\"tick\" x=\"{:.1}\" y=\"{BASELINE}\" text-anchor=\"middle\">{}</text>",
                LEFT + (i as f64 + 0.5) * slot,
                escape(&shown),
            ));
        }
    } else if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        out.push_str(&format!(
            "<text class=\"tick\" x=\"{LEFT}\" y=\"{BASELINE}\">{}</text>\
             <text class=\"tick\" x=\"{WIDTH}\" y=\"{BASELINE}\" text-anchor=\"end\">{}</text>",
            escape(&first.0),
            escape(&last.0),
        ));
    }
    out.push_str("</svg>");
    out
}

/// Text as SVG (XML) carries it.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_point_is_one_bar_carrying_its_start_and_value() {
        let point = |h: u32, n: i64| UsagePoint {
            start: chrono::DateTime::parse_from_rfc3339(&format!("2026-12-06T{h:02}:00:00Z"))
                .unwrap()
                .into(),
            requests_data: n,
            requests_control: 1,
            statement_ms: 0,
            rows_read: 0,
            rows_written: 0,
            connection_ms: 0,
            storage_bytes: None,
            backup_bytes: None,
        };
        let svg = requests_chart(&[point(1, 9), point(2, 4)]);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(svg.contains("data-value=\"10\""), "{svg}");
        assert!(svg.contains("data-label=\"2026-12-06T02:00:00Z\""), "{svg}");
        assert!(requests_chart(&[]).ends_with("</svg>"));
        let odd = bar_chart(&[("<b>\"x\"&".into(), 3)], "tenants");
        assert!(
            odd.contains("data-label=\"&lt;b&gt;&quot;x&quot;&amp;\""),
            "{odd}"
        );
        assert!(!odd.contains("<b>"), "{odd}");
    }
}
