//! A tenant's usage drawn as an SVG bar chart, on the server: one bar per
//! hour or day (requests, both planes), each a `<rect class="bar">` that
//! carries its start and value, so the console shows it as it is and a
//! test counts what was drawn. Only numbers and times reach the drawing.

use crate::usage::UsagePoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;

/// The chart of `points` (oldest first).
pub fn requests_chart(points: &[UsagePoint]) -> String {
    let values: Vec<i64> = points
        .iter()
        .map(|p| p.requests_data + p.requests_control)
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = (WIDTH - LEFT) / points.len().max(1) as f64;
    let plot = HEIGHT - BOTTOM;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"Requests per period: {} bars, at most {}\">",
        points.len(),
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
    for (i, (p, v)) in points.iter().zip(&values).enumerate() {
        let h = (*v as f64 / max) * (plot - 16.0);
        let start = p.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        out.push_str(&format!(
            "<rect class=\"bar\" data-start=\"{start}\" data-value=\"{v}\" x=\"{:.1}\" y=\"{:.1}\" \
             width=\"{:.1}\" height=\"{h:.1}\"><title>{start}: {v} requests</title></rect>",
            LEFT + i as f64 * slot + slot * 0.1,
            plot - h,
            slot * 0.8,
        ));
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        out.push_str(&format!(
            "<text class=\"tick\" x=\"{LEFT}\" y=\"{HEIGHT}\">{}</text>\
             <text class=\"tick\" x=\"{WIDTH}\" y=\"{HEIGHT}\" text-anchor=\"end\">{}</text>",
            first.start.format("%Y-%m-%d %H:%M"),
            last.start.format("%Y-%m-%d %H:%M"),
        ));
    }
    out.push_str("</svg>");
    out
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
        assert!(svg.contains("data-start=\"2026-12-06T02:00:00Z\""), "{svg}");
        assert!(requests_chart(&[]).ends_with("</svg>"));
    }
}
