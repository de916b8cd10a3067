//! Small SVG toolkit for the report: a panel with axes, ticks, grid and labels, lines, bars and a legend.
//!
//! Coordinates are written with one decimal; every piece of text goes through [`escape`]. Styling comes from the
//! report's stylesheet through classes (`ax`, `grid`, `tick`, `lab`, `ttl`, `note`).

use std::fmt::Write as _;

use super::common::escape;

/// Ticks aimed for on an axis.
pub(crate) const TICKS: usize = 6;

/// How tick labels are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TickFmt {
    /// Plain numbers (thousands as "k" from 10 000 on).
    Number,
    /// Fractions as percentages.
    Percent,
    /// Seconds, as "30 s", "10 min", "2 h", "1 d".
    Duration,
}

/// Round durations (seconds) a logarithmic time axis may tick at.
const ROUND_DURATIONS: [f64; 23] = [
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1_200.0,
    1_800.0,
    3_600.0,
    7_200.0,
    10_800.0,
    21_600.0,
    43_200.0,
    86_400.0,
    172_800.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
    31_536_000.0,
];

/// The subset of [`ROUND_DURATIONS`] kept when a time axis spans too many of them: powers of ten up to a minute, then
/// a minute, ten minutes, an hour, six hours, a day, a week, a month, a year.
const MAJOR_DURATIONS: [f64; 10] =
    [1.0, 10.0, 60.0, 600.0, 3_600.0, 21_600.0, 86_400.0, 604_800.0, 2_592_000.0, 31_536_000.0];

/// A linear or logarithmic axis with its ticks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    /// Lower end of the axis.
    pub lo: f64,
    /// Upper end of the axis.
    pub hi: f64,
    /// Tick positions, `lo..=hi`.
    pub ticks: Vec<f64>,
    /// Distance between ticks.
    pub step: f64,
    /// Axis title (with unit).
    pub label: String,
    /// Tick label format.
    pub fmt: TickFmt,
    /// Logarithmic (then `lo > 0`).
    pub log: bool,
}

impl Axis {
    /// An axis covering `min..=max` with round ticks. Non-finite or empty ranges fall back to something drawable.
    pub fn nice(min: f64, max: f64, label: impl Into<String>, fmt: TickFmt) -> Self {
        // Clamped so that the span itself stays finite.
        let (mut min, mut max) = if min.is_finite() && max.is_finite() {
            (min.clamp(-1e300, 1e300), max.clamp(-1e300, 1e300))
        } else {
            (0.0, 1.0)
        };
        if min > max {
            std::mem::swap(&mut min, &mut max);
        }
        if max - min <= f64::EPSILON * max.abs().max(1.0) {
            if min == 0.0 {
                max = 1.0;
            } else {
                let pad = min.abs() * 0.1;
                min -= pad;
                max += pad;
            }
        }
        let raw = (max - min) / TICKS as f64;
        let mag = 10f64.powf(raw.log10().floor());
        let norm = raw / mag;
        let step = mag
            * if norm <= 1.0 {
                1.0
            } else if norm <= 2.0 {
                2.0
            } else if norm <= 5.0 {
                5.0
            } else {
                10.0
            };
        let lo = (min / step).floor() * step;
        let hi = (max / step).ceil() * step;
        let n = ((hi - lo) / step).round().clamp(1.0, 100.0) as usize;
        let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
        Axis { lo, hi: lo + n as f64 * step, ticks, step, label: label.into(), fmt, log: false }
    }

    /// A logarithmic time axis (seconds) covering `min..=max`, from round duration to round duration, at least 1 s.
    pub fn log_duration(min: f64, max: f64, label: impl Into<String>) -> Self {
        let min = if min.is_finite() && min > 1.0 { min } else { 1.0 };
        let max = if max.is_finite() && max > min { max } else { min * 10.0 };
        let lo = ROUND_DURATIONS.iter().rev().copied().find(|&d| d <= min).unwrap_or(1.0);
        let hi = ROUND_DURATIONS.iter().copied().find(|&d| d >= max).unwrap_or(max);
        let within = |d: &f64| *d >= lo && *d <= hi;
        let mut ticks: Vec<f64> = ROUND_DURATIONS.iter().copied().filter(within).collect();
        if ticks.len() > 8 {
            ticks = MAJOR_DURATIONS.iter().copied().filter(within).collect();
            // Keep the ends labelled unless they would crowd a major tick (closer than a third of a decade).
            for end in [lo, hi] {
                if ticks.iter().all(|t| (t.log10() - end.log10()).abs() > 0.33) {
                    ticks.push(end);
                }
            }
            ticks.sort_by(f64::total_cmp);
        }
        Axis { lo, hi, ticks, step: 1.0, label: label.into(), fmt: TickFmt::Duration, log: true }
    }

    /// Where `v` lies along the axis, 0 at `lo` to 1 at `hi`, clamped.
    pub fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            if v <= 0.0 {
                0.0
            } else {
                (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
            }
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_nan() {
            0.0
        } else {
            f.clamp(0.0, 1.0)
        }
    }

    /// An axis spanning exactly `lo..=hi` (which must be finite with `lo < hi`), ticked at round values inside it.
    pub fn fitted(lo: f64, hi: f64, label: impl Into<String>) -> Self {
        let nice = Axis::nice(lo, hi, label, TickFmt::Number);
        let eps = 1e-9 * nice.step;
        let ticks: Vec<f64> = nice.ticks.iter().copied().filter(|t| *t >= lo - eps && *t <= hi + eps).collect();
        Axis { lo, hi, ticks, ..nice }
    }

    /// Fixed 0–100 % axis.
    pub fn percent(label: impl Into<String>) -> Self {
        Axis {
            lo: 0.0,
            hi: 1.0,
            ticks: (0..=5).map(|i| f64::from(i) * 0.2).collect(),
            step: 0.2,
            label: label.into(),
            fmt: TickFmt::Percent,
            log: false,
        }
    }

    /// `v` as a tick label.
    pub fn tick_label(&self, v: f64) -> String {
        let decimals = |step: f64| (-(step.log10() + 1e-9).floor()).clamp(0.0, 6.0) as usize;
        match self.fmt {
            TickFmt::Percent => format!("{:.*} %", decimals(self.step * 100.0), v * 100.0),
            TickFmt::Number if self.hi.abs().max(self.lo.abs()) >= 10_000.0 => {
                format!("{:.*}k", decimals(self.step / 1000.0), v / 1000.0)
            }
            TickFmt::Number => format!("{:.*}", decimals(self.step), v),
            TickFmt::Duration => duration_label(v),
        }
    }
}

/// A round duration in its natural unit: "30 s", "10 min", "2 h", "1 d".
fn duration_label(s: f64) -> String {
    let (div, unit) = if s >= 86_400.0 {
        (86_400.0, "d")
    } else if s >= 3_600.0 {
        (3_600.0, "h")
    } else if s >= 60.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    };
    let v = s / div;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// What the x axis of a panel is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XAxis {
    /// A number line.
    Linear(Axis),
    /// Named slots of equal width (bar groups).
    Categories {
        /// One label per slot.
        labels: Vec<String>,
        /// Axis title.
        label: String,
    },
}

/// A rectangle in SVG coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// One legend item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// Text.
    pub label: String,
    /// Colour.
    pub colour: String,
    /// Sample drawn before the text.
    pub mark: Mark,
}

/// The sample in a legend item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// A filled dot.
    Dot,
    /// An open diamond.
    Diamond,
    /// A filled square (bars).
    Swatch,
}

impl Mark {
    /// A line mark, dashed or not.
    pub fn line(dashed: bool) -> Self {
        if dashed {
            Mark::Dashed
        } else {
            Mark::Line
        }
    }
}

/// Opens an `<svg>` of `w`×`h` user units that scales to its container, with an accessible title.
pub(crate) fn open(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"{t}\">\
         <title>{t}</title>",
        t = escape(title)
    )
}

/// Closes what [`open`] opened.
pub(crate) const CLOSE: &str = "</svg>";

/// Height of one legend row.
const LEGEND_ROW: f64 = 20.0;

/// Position of each legend item (x offset from the legend's left, row), wrapping to fit `width`.
fn legend_layout(keys: &[Key], width: f64) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(keys.len());
    let (mut x, mut row) = (0.0, 0);
    for k in keys {
        // Roughly 6.5 units per character at the legend's font size.
        let item_w = 30.0 + 6.5 * k.label.chars().count() as f64 + 16.0;
        if x > 0.0 && x + item_w > width {
            x = 0.0;
            row += 1;
        }
        out.push((x, row));
        x += item_w;
    }
    out
}

fn legend_rows(keys: &[Key], width: f64) -> usize {
    legend_layout(keys, width).last().map_or(0, |(_, row)| row + 1)
}

/// Where [`Panel::new`] puts the plot area inside `outer` (to fit data to it beforehand, as the map does).
pub(crate) fn plot_area(outer: Rect, title: &str, legend: &[Key]) -> Rect {
    let legend_h = LEGEND_ROW * legend_rows(legend, outer.w - 72.0) as f64;
    let title_h = if title.is_empty() { 6.0 } else { 22.0 };
    Rect {
        x: outer.x + 58.0,
        y: outer.y + title_h + legend_h + 6.0,
        w: (outer.w - 58.0 - 14.0).max(10.0),
        h: (outer.h - title_h - legend_h - 6.0 - 44.0).max(10.0),
    }
}

/// A plot area with axes inside `outer`, drawn into `out`.
#[derive(Debug)]
pub(crate) struct Panel {
    /// The plot area (inside the axes).
    pub area: Rect,
    /// x axis.
    pub x: XAxis,
    /// y axis.
    pub y: Axis,
    /// SVG markup so far.
    pub out: String,
}

impl Panel {
    /// Draws title, legend, grid, ticks and axis titles; the data goes on top with the other methods.
    pub fn new(outer: Rect, title: &str, legend: &[Key], x: XAxis, y: Axis) -> Self {
        let area = plot_area(outer, title, legend);
        let title_h = if title.is_empty() { 6.0 } else { 22.0 };
        let mut p = Panel { area, x, y, out: String::new() };
        if !title.is_empty() {
            let _ = write!(
                p.out,
                "<text class=\"ttl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                outer.x + 4.0,
                outer.y + 16.0,
                escape(title)
            );
        }
        if !legend.is_empty() {
            p.legend(outer.x + 58.0, outer.y + title_h + 12.0, outer.w - 72.0, legend);
        }
        p.axes();
        p
    }

    fn axes(&mut self) {
        let Rect { x, y, w, h } = self.area;
        let (bottom, right) = (y + h, x + w);
        let mut grid = String::new();
        for &t in &self.y.ticks {
            let py = self.py(t);
            let _ = write!(grid, "M{x:.1} {py:.1}H{right:.1}");
            let _ = write!(
                self.out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x - 6.0,
                py + 4.0,
                escape(&self.y.tick_label(t))
            );
        }
        let x_label = match &self.x {
            XAxis::Linear(axis) => {
                for &t in &axis.ticks {
                    let px = self.px(t);
                    let _ = write!(grid, "M{px:.1} {y:.1}V{bottom:.1}");
                    let _ = write!(
                        self.out,
                        "<text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        bottom + 16.0,
                        escape(&axis.tick_label(t))
                    );
                }
                axis.label.clone()
            }
            XAxis::Categories { labels, label } => {
                // Leave out labels that would collide: about 28 units per label.
                let every = ((labels.len() as f64 * 28.0 / w).ceil() as usize).max(1);
                for (i, l) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
                    let _ = write!(
                        self.out,
                        "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        self.slot_centre(i),
                        bottom + 16.0,
                        escape(l)
                    );
                }
                label.clone()
            }
        };
        let grid_path = format!("<path class=\"grid\" d=\"{grid}\"/>");
        self.out.insert_str(0, &grid_path);
        let _ = write!(self.out, "<path class=\"ax\" d=\"M{x:.1} {y:.1}V{bottom:.1}H{right:.1}\"/>");
        let _ = write!(
            self.out,
            "<text class=\"lab\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x + w / 2.0,
            bottom + 36.0,
            escape(&x_label)
        );
        let (lx, ly) = (x - 46.0, y + h / 2.0);
        let _ = write!(
            self.out,
            "<text class=\"lab\" x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 {lx:.1} {ly:.1})\">{}</text>",
            escape(&self.y.label)
        );
    }

    fn legend(&mut self, x0: f64, y0: f64, width: f64, keys: &[Key]) {
        for (k, (dx, row)) in keys.iter().zip(legend_layout(keys, width)) {
            let (x, y) = (x0 + dx, y0 + row as f64 * LEGEND_ROW);
            let c = escape(&k.colour);
            let _ = match k.mark {
                Mark::Line => write!(self.out, "<path d=\"M{x:.1} {y:.1}h22\" stroke=\"{c}\" stroke-width=\"2.5\"/>"),
                Mark::Dashed => write!(
                    self.out,
                    "<path d=\"M{x:.1} {y:.1}h22\" stroke=\"{c}\" stroke-width=\"2.5\" stroke-dasharray=\"6 4\"/>"
                ),
                Mark::Dot => write!(self.out, "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{c}\"/>", x + 11.0),
                Mark::Diamond => write!(
                    self.out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"white\" stroke=\"{c}\" \
                     stroke-width=\"2\" transform=\"rotate(45 {:.1} {y:.1})\"/>",
                    x + 6.5,
                    y - 4.5,
                    x + 11.0
                ),
                Mark::Swatch => write!(
                    self.out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{c}\"/>",
                    x + 5.0,
                    y - 6.0
                ),
            };
            let _ = write!(
                self.out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 28.0,
                y + 4.0,
                escape(&k.label)
            );
        }
    }

    /// x of value `v` (linear axes; clamped to the plot area).
    pub fn px(&self, v: f64) -> f64 {
        match &self.x {
            XAxis::Linear(a) => self.area.x + a.frac(v) * self.area.w,
            XAxis::Categories { .. } => self.area.x,
        }
    }

    /// y of value `v` (clamped to the plot area).
    pub fn py(&self, v: f64) -> f64 {
        self.area.y + self.area.h * (1.0 - self.y.frac(v))
    }

    /// Width of one category slot.
    pub fn slot_width(&self) -> f64 {
        match &self.x {
            XAxis::Categories { labels, .. } => self.area.w / labels.len().max(1) as f64,
            XAxis::Linear(_) => self.area.w,
        }
    }

    /// x of the centre of category slot `i`.
    pub fn slot_centre(&self, i: usize) -> f64 {
        self.area.x + (i as f64 + 0.5) * self.slot_width()
    }

    /// A polyline through finite `points` (data coordinates).
    pub fn line(&mut self, points: &[(f64, f64)], colour: &str, dashed: bool) {
        let mut d = String::new();
        for &(x, y) in points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
            let cmd = if d.is_empty() { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.1} {:.1}", self.px(x), self.py(y));
        }
        if d.is_empty() {
            return;
        }
        let dash = if dashed { " stroke-dasharray=\"6 4\"" } else { "" };
        let _ = write!(self.out, "<path class=\"ln\" d=\"{d}\" stroke=\"{}\"{dash}/>", escape(colour));
    }

    /// Bar `j` of `n` in category slot `i`, of height `v` (skipped when not finite).
    pub fn bar(&mut self, i: usize, j: usize, n: usize, v: f64, colour: &str, tooltip: &str) {
        if !v.is_finite() {
            return;
        }
        let slot = self.slot_width();
        let inner = slot * 0.8;
        let bw = inner / n.max(1) as f64;
        let x = self.area.x + i as f64 * slot + slot * 0.1 + j as f64 * bw;
        let (top, base) = (self.py(v), self.py(self.y.lo.max(0.0)));
        let _ = write!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
            top.min(base),
            (bw - 1.0).max(0.5),
            (base - top).abs(),
            escape(colour),
            escape(tooltip)
        );
    }

    /// A centred note in the plot area (e.g. "no deliveries").
    pub fn note(&mut self, text: &str) {
        let _ = write!(
            self.out,
            "<text class=\"note\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            self.area.x + self.area.w / 2.0,
            self.area.y + self.area.h / 2.0,
            escape(text)
        );
    }
}

/// A complete single-panel SVG: `draw` adds the data to a panel that fills a `w`×`h` canvas.
pub(crate) fn single(
    w: f64,
    h: f64,
    title: &str,
    legend: &[Key],
    x: XAxis,
    y: Axis,
    draw: impl FnOnce(&mut Panel),
) -> String {
    let mut panel = Panel::new(Rect { x: 0.0, y: 0.0, w, h }, "", legend, x, y);
    draw(&mut panel);
    let mut out = open(w, h, title);
    out.push_str(&panel.out);
    out.push_str(CLOSE);
    out
}
