//! Charts as inline SVG, drawn on the server: a time chart (lines with their points,
//! vertical markers for deployments) and an interval chart (an estimate with its
//! interval against a true value, per group). Elements carry classes and `data-`
//! attributes (`circle.point[data-series=p95]`, `line.marker[data-action=promote]`)
//! that styles and tests select; every point has a `<title>`, the browser's tooltip.

use maud::{Markup, html};

/// Chart size in SVG units (the page scales it to its width).
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// A linear map from a domain of values to a range of pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    /// A scale of `[d0, d1]` onto `[r0, r1]`; an empty domain is widened so every value
    /// maps to the middle of the range rather than dividing by zero.
    pub fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        let (d0, d1) = if d1 > d0 {
            (d0, d1)
        } else {
            let pad = d0.abs().max(1.0) * 0.5;
            (d0 - pad, d0 + pad)
        };
        Scale { d0, d1, r0, r1 }
    }

    pub fn map(&self, v: f64) -> f64 {
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Round tick values covering `[lo, hi]`: about `n` steps of 1, 2 or 5 times a power of
/// ten, the first at or below `lo` and the last at or above `hi`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return vec![0.0, 1.0];
    }
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + lo.abs().max(1.0))
    };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor();
    let end = (hi / step).ceil();
    let mut ticks = Vec::new();
    let mut i = start;
    while i <= end && ticks.len() < 100 {
        // Multiplying (not adding steps) keeps ticks like 0.3 free of drift.
        let t = i * step;
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        i += 1.0;
    }
    ticks
}

/// Tick steps on a time axis, in seconds.
const TIME_STEPS: &[i64] = &[
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    15 * 60,
    30 * 60,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    14 * 86_400,
    30 * 86_400,
    90 * 86_400,
    365 * 86_400,
];

/// Round times inside `[t0, t1]` (microseconds since the epoch, UTC), about `n` of
/// them, with their labels (the time of day within a day, else the date).
pub fn time_ticks(t0: i64, t1: i64, n: usize) -> Vec<(i64, String)> {
    let span_s = ((t1 - t0).max(0) as f64) / 1e6;
    let step_s = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span_s / (*s as f64) <= n.max(1) as f64)
        .unwrap_or(365 * 86_400);
    let step = step_s * 1_000_000;
    let mut t = t0.div_euclid(step) * step;
    if t < t0 {
        t += step;
    }
    let format = if step_s >= 86_400 {
        "%Y-%m-%d"
    } else if span_s > 86_400.0 {
        "%m-%d %H:%M"
    } else if step_s >= 60 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let mut ticks = Vec::new();
    while t <= t1 && ticks.len() < 100 {
        ticks.push((t, format_time(t, format)));
        t += step;
    }
    ticks
}

/// A time (microseconds since the epoch) in UTC with a chrono format.
pub fn format_time(us: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.format(format).to_string())
        .unwrap_or_else(|| us.to_string())
}

/// A number in a few characters: 950, 1.2k, 3.4M, 0.25.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if x == x.trunc() || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// One line of a time chart.
pub struct Line {
    /// Its name: the legend's text and the points' `data-series`.
    pub name: &'static str,
    /// (time in microseconds since the epoch, value).
    pub points: Vec<(i64, f64)>,
}

/// A change marked on the time axis (a deployment, promotion or rollback).
pub struct Marker {
    pub at_us: i64,
    /// `deploy`, `promote` or `rollback`: its `data-action` and style.
    pub action: String,
    pub label: String,
}

/// A chart of lines over time with their points, and markers at given times.
pub struct TimeChart<'a> {
    /// Names the chart (`data-chart`).
    pub id: &'a str,
    pub title: &'a str,
    pub lines: Vec<Line>,
    pub markers: &'a [Marker],
    /// The time axis' domain, microseconds since the epoch.
    pub t0: i64,
    pub t1: i64,
    /// How the y axis and the tooltips write a value.
    pub format: fn(f64) -> String,
}

impl TimeChart<'_> {
    pub fn render(&self) -> Markup {
        let x = Scale::new(self.t0 as f64, self.t1 as f64, LEFT, WIDTH - RIGHT);
        let max = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let yticks = nice_ticks(0.0, if max > 0.0 { max } else { 1.0 }, 4);
        let ymax = yticks.last().copied().unwrap_or(1.0);
        let y = Scale::new(0.0, ymax, HEIGHT - BOTTOM, TOP);
        let xticks = time_ticks(self.t0, self.t1, 6);
        let visible: Vec<&Marker> = self
            .markers
            .iter()
            .filter(|m| m.at_us >= self.t0 && m.at_us <= self.t1)
            .collect();
        let format = self.format;
        html! {
            figure.chart data-chart=(self.id) {
                figcaption { (self.title) }
                svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
                    role="img" aria-label=(self.title) {
                    g.grid {
                        @for t in &yticks {
                            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(r(y.map(*t))) y2=(r(y.map(*t))) {}
                            text.ylabel x=(LEFT - 6.0) y=(r(y.map(*t) + 4.0)) text-anchor="end" { (format(*t)) }
                        }
                    }
                    g.xaxis {
                        line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM) {}
                        @for (t, label) in &xticks {
                            line x1=(r(x.map(*t as f64))) x2=(r(x.map(*t as f64))) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM + 5.0) {}
                            text.xlabel x=(r(x.map(*t as f64))) y=(HEIGHT - BOTTOM + 18.0) text-anchor="middle" { (label) }
                        }
                        text.xlabel x=(WIDTH - RIGHT) y=(HEIGHT - 4.0) text-anchor="end" { "UTC" }
                    }
                    @for m in &visible {
                        @let mx = r(x.map(m.at_us as f64));
                        g.marker data-action=(m.action) {
                            line.marker data-action=(m.action) x1=(mx) x2=(mx) y1=(TOP - 8.0) y2=(HEIGHT - BOTTOM) {
                                title { (m.label) }
                            }
                            text.markerlabel x=(mx + 3.0) y=(TOP - 12.0) { (m.action) }
                        }
                    }
                    @for (i, l) in self.lines.iter().enumerate() {
                        @let pts: Vec<(f64, f64)> = l.points.iter().filter(|p| p.1.is_finite()).map(|p| (r(x.map(p.0 as f64)), r(y.map(p.1)))).collect();
                        g class={"series s" (i)} data-series=(l.name) {
                            @if pts.len() > 1 {
                                polyline.line points=(polyline(&pts)) {}
                            }
                            @for ((cx, cy), (t, v)) in pts.iter().zip(l.points.iter().filter(|p| p.1.is_finite())) {
                                circle.point data-series=(l.name) data-t=(t) data-v=(v) cx=(cx) cy=(cy) r="3" {
                                    title { (l.name) " " (format(*v)) " at " (format_time(*t, "%Y-%m-%d %H:%M:%S")) " UTC" }
                                }
                            }
                        }
                    }
                }
                ul.legend {
                    @for (i, l) in self.lines.iter().enumerate() {
                        li class={"s" (i)} { span.swatch {} (l.name) }
                    }
                    @if !visible.is_empty() {
                        li.markers { span.swatch {} "deployments, promotions and rollbacks" }
                    }
                }
            }
        }
    }
}

/// One group of an interval chart.
pub struct IntervalRow {
    pub label: String,
    /// The true value (production's).
    pub truth: f64,
    pub estimate: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Whether the truth is inside the interval (`None`: no interval).
    pub inside: Option<bool>,
}

/// Per group, a horizontal bar from `low` to `high` with the estimate as a tick, and
/// the true value as a dot (filled when inside the interval, hollow and red when not).
pub fn interval_chart(id: &str, title: &str, rows: &[IntervalRow]) -> Markup {
    const ROW: f64 = 20.0;
    const LABEL: f64 = 220.0;
    let height = TOP + ROW * rows.len() as f64 + BOTTOM;
    let values = rows.iter().flat_map(|g| {
        [Some(g.truth), Some(g.estimate), g.low, g.high]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
    });
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (0.0, 1.0)
    };
    let ticks = nice_ticks(lo, hi, 6);
    let x = Scale::new(
        ticks.first().copied().unwrap_or(lo),
        ticks.last().copied().unwrap_or(hi),
        LABEL,
        WIDTH - RIGHT,
    );
    let bottom = height - BOTTOM;
    html! {
        figure.chart.intervals data-chart=(id) {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (height)}
                role="img" aria-label=(title) {
                g.grid {
                    @for t in &ticks {
                        line x1=(r(x.map(*t))) x2=(r(x.map(*t))) y1=(TOP - 6.0) y2=(bottom) {}
                        text.xlabel x=(r(x.map(*t))) y=(bottom + 16.0) text-anchor="middle" { (short_number(*t)) }
                    }
                }
                @for (i, g) in rows.iter().enumerate() {
                    @let cy = TOP + ROW * i as f64 + ROW / 2.0;
                    @let inside = match g.inside { Some(true) => "yes", Some(false) => "no", None => "none" };
                    g.group data-group=(g.label) data-inside=(inside) {
                        text.glabel x=(LABEL - 8.0) y=(r(cy + 4.0)) text-anchor="end" { (truncate(&g.label, 32)) }
                        @if let (Some(l), Some(h)) = (g.low, g.high) {
                            line.interval x1=(r(x.map(l))) x2=(r(x.map(h))) y1=(r(cy)) y2=(r(cy)) {
                                title { "95% interval " (short_number(l)) " – " (short_number(h)) }
                            }
                            line.whisker x1=(r(x.map(l))) x2=(r(x.map(l))) y1=(r(cy - 5.0)) y2=(r(cy + 5.0)) {}
                            line.whisker x1=(r(x.map(h))) x2=(r(x.map(h))) y1=(r(cy - 5.0)) y2=(r(cy + 5.0)) {}
                        }
                        rect.estimate data-v=(g.estimate) x=(r(x.map(g.estimate) - 1.5)) y=(r(cy - 7.0)) width="3" height="14" {
                            title { "estimate " (short_number(g.estimate)) }
                        }
                        circle.truth data-v=(g.truth) data-inside=(inside) cx=(r(x.map(g.truth))) cy=(r(cy)) r="4" {
                            title { "production " (short_number(g.truth)) }
                        }
                    }
                }
            }
            ul.legend {
                li.l-interval { span.swatch {} "staging's estimate and its 95% interval" }
                li.l-truth { span.swatch {} "production's value (red: outside the interval)" }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Coordinates to a tenth of a unit: small pages, and no float noise.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn polyline(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x},{y}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_ends_and_survive_an_empty_domain() {
        let s = Scale::new(0.0, 10.0, 100.0, 200.0);
        assert_eq!(s.map(0.0), 100.0);
        assert_eq!(s.map(10.0), 200.0);
        assert_eq!(s.map(5.0), 150.0);
        // Inverted range (y grows downwards).
        let y = Scale::new(0.0, 4.0, 200.0, 0.0);
        assert_eq!(y.map(1.0), 150.0);
        let flat = Scale::new(7.0, 7.0, 0.0, 100.0);
        assert_eq!(flat.map(7.0), 50.0);
        assert!(flat.map(7.0).is_finite());
    }

    #[test]
    fn ticks_are_round_and_cover_the_domain() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(0.0, 0.9, 4), vec![0.0, 0.5, 1.0]);
        assert_eq!(
            nice_ticks(0.0, 0.6, 3),
            vec![0.0, 0.2, 0.4, 0.6000000000000001]
        );
        let t = nice_ticks(3.0, 1234.0, 4);
        assert!(t[0] <= 3.0 && *t.last().unwrap() >= 1234.0, "{t:?}");
        assert_eq!(t[1] - t[0], 500.0);
        // Degenerate input still gives an axis.
        assert!(nice_ticks(5.0, 5.0, 4).len() >= 2);
        assert_eq!(nice_ticks(f64::NAN, 1.0, 4), vec![0.0, 1.0]);
    }

    #[test]
    fn time_ticks_are_round_and_inside() {
        // 2024-01-01T00:00:00Z plus 90 seconds: ticks every 15 s.
        let t0 = 1_704_067_200_000_000;
        let ticks = time_ticks(t0 + 1, t0 + 90_000_000, 6);
        assert_eq!(ticks[0].0, t0 + 15_000_000);
        assert_eq!(ticks[0].1, "00:00:15");
        assert!(ticks.iter().all(|(t, _)| *t > t0 && *t <= t0 + 90_000_000));
        let days = time_ticks(t0, t0 + 4 * 86_400_000_000, 6);
        assert_eq!(days[0].1, "2024-01-01");
        assert_eq!(days.len(), 5);
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(950.0), "950");
        assert_eq!(short_number(12_500.0), "12.5k");
        assert_eq!(short_number(3_400_000.0), "3.4M");
        assert_eq!(short_number(0.25), "0.25");
    }

    #[test]
    fn a_time_chart_has_its_points_and_markers() {
        let t0 = 1_704_067_200_000_000;
        let markers = vec![Marker {
            at_us: t0 + 30_000_000,
            action: "promote".into(),
            label: "promote <v2> by \"eve\"".into(),
        }];
        let chart = TimeChart {
            id: "latency",
            title: "Latency <ms>",
            lines: vec![Line {
                name: "p95",
                points: vec![(t0, 1.0), (t0 + 60_000_000, 3.0)],
            }],
            markers: &markers,
            t0,
            t1: t0 + 60_000_000,
            format: short_number,
        }
        .render()
        .into_string();
        assert_eq!(
            chart
                .matches(r#"<circle class="point" data-series="p95""#)
                .count(),
            2,
            "{chart}"
        );
        assert!(
            chart.contains(r#"<line class="marker" data-action="promote""#),
            "{chart}"
        );
        // Labels are escaped like any text.
        assert!(
            chart.contains("promote &lt;v2&gt; by &quot;eve&quot;"),
            "{chart}"
        );
        assert!(chart.contains("Latency &lt;ms&gt;"), "{chart}");
        // SVG elements are closed: the HTML parser nests unclosed foreign elements.
        assert_eq!(
            chart.matches("<circle").count(),
            chart.matches("</circle>").count()
        );
        assert_eq!(
            chart.matches("<line").count(),
            chart.matches("</line>").count()
        );
    }

    #[test]
    fn an_interval_chart_marks_values_outside() {
        let rows = vec![
            IntervalRow {
                label: "north".into(),
                truth: 10.0,
                estimate: 11.0,
                low: Some(8.0),
                high: Some(12.0),
                inside: Some(true),
            },
            IntervalRow {
                label: "<south>".into(),
                truth: 20.0,
                estimate: 12.0,
                low: Some(9.0),
                high: Some(15.0),
                inside: Some(false),
            },
        ];
        let chart = interval_chart("won", "won", &rows).into_string();
        assert_eq!(chart.matches(r#"class="interval""#).count(), 2);
        assert!(chart.contains(r#"data-inside="no""#));
        assert!(chart.contains("&lt;south&gt;"));
    }
}
