//! What the table and the HTML share: router order, labels and colours, the list of figures, number formatting and
//! escaping.

use crate::results::{RouterResult, SimResults};

/// Routers in report order: Pollen first, then the baselines.
pub(crate) const ROUTER_ORDER: [&str; 4] = ["pollen", "oracle", "direct", "spray_and_wait"];

/// The router every other one is compared with.
pub(crate) const POLLEN: &str = "pollen";

/// Colour-blind-safe palette (Okabe–Ito) for routers beyond the four known ones, and for map roles.
pub(crate) const PALETTE: [&str; 7] = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999933"];

/// Placeholder for a figure that is missing or not a finite number.
pub(crate) const NONE: &str = "—";

/// One router's results with the name it has in [`SimResults::routers`] and its colour in the plots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Router<'a> {
    /// Key in [`SimResults::routers`].
    pub name: &'a str,
    /// Its figures.
    pub result: &'a RouterResult,
    /// Stroke colour in the plots.
    pub colour: &'static str,
    /// Drawn dashed (the oracle, an ideal bound rather than a protocol).
    pub dashed: bool,
}

impl Router<'_> {
    /// Human name for the legend and the HTML.
    pub fn label(&self) -> String {
        router_label(self.name)
    }
}

/// The routers of a run in report order: the four known ones (those present), then any others by name.
pub(crate) fn ordered_routers(results: &SimResults) -> Vec<Router<'_>> {
    let known = ROUTER_ORDER.iter().filter_map(|name| results.routers.get_key_value(*name));
    let others = results.routers.iter().filter(|(name, _)| !ROUTER_ORDER.contains(&name.as_str()));
    known
        .chain(others)
        .enumerate()
        .map(|(i, (name, result))| Router { name, result, colour: router_colour(name, i), dashed: name == "oracle" })
        .collect()
}

/// Legend name of a router key.
pub(crate) fn router_label(name: &str) -> String {
    match name {
        "pollen" => "Pollen".to_owned(),
        "oracle" => "Oracle".to_owned(),
        "direct" => "Direct".to_owned(),
        "spray_and_wait" => "Spray and wait".to_owned(),
        other => other.to_owned(),
    }
}

fn router_colour(name: &str, index: usize) -> &'static str {
    match name {
        "pollen" => "#D55E00",
        "oracle" => "#333333",
        "direct" => "#0072B2",
        "spray_and_wait" => "#009E73",
        _ => PALETTE[(index + 3) % PALETTE.len()],
    }
}

/// How a figure's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A fraction shown as a percentage.
    Percent,
    /// A count.
    Count,
    /// A duration in seconds, shown in s, min or h.
    Seconds,
    /// Any other number.
    Number,
}

/// One row of the summary table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure {
    /// Row label.
    pub label: &'static str,
    /// What it means (HTML footnote).
    pub help: &'static str,
    /// Its value for a router.
    pub value: fn(&RouterResult) -> f64,
    /// How to write it.
    pub kind: Kind,
    /// Whether the table shows "pollen ÷ baseline" for it.
    pub ratio: bool,
}

impl Figure {
    /// The value of this figure for `r`, written out.
    pub fn format(&self, r: &RouterResult) -> String {
        let v = (self.value)(r);
        match self.kind {
            Kind::Percent => fmt_pct(v),
            Kind::Count => fmt_count(v),
            Kind::Seconds => fmt_secs(v),
            Kind::Number => fmt_num(v),
        }
    }
}

/// The rows of the summary table, in order.
pub(crate) const FIGURES: [Figure; 9] = [
    Figure {
        label: "Delivery ratio",
        help: "messages delivered within their TTL ÷ messages created",
        value: |r| r.delivery_ratio,
        kind: Kind::Percent,
        ratio: true,
    },
    Figure {
        label: "Delivered",
        help: "messages delivered",
        value: |r| r.delivered as f64,
        kind: Kind::Count,
        ratio: false,
    },
    Figure {
        label: "Latency, median",
        help: "median time from creation to delivery, delivered messages only",
        value: |r| r.latency_median_s,
        kind: Kind::Seconds,
        ratio: false,
    },
    Figure {
        label: "Latency, 95th pct",
        help: "95th-percentile time from creation to delivery, delivered messages only",
        value: |r| r.latency_p95_s,
        kind: Kind::Seconds,
        ratio: false,
    },
    Figure {
        label: "Overhead (tx/delivered)",
        help: "block transmissions ÷ messages delivered",
        value: |r| r.overhead,
        kind: Kind::Number,
        ratio: true,
    },
    Figure {
        label: "Transmissions",
        help: "block transmissions, completed and cut short",
        value: |r| r.transmissions as f64,
        kind: Kind::Count,
        ratio: false,
    },
    Figure {
        label: "Duplicate ratio",
        help: "block bytes received by nodes that already held them ÷ block bytes new to the receiver",
        value: |r| r.duplicate_ratio,
        kind: Kind::Number,
        ratio: false,
    },
    Figure {
        label: "Energy (J/kB)",
        help: "energy of all nodes ÷ kilobytes delivered, joules per kB",
        value: |r| r.energy_j_per_kb,
        kind: Kind::Number,
        ratio: false,
    },
    Figure {
        label: "Energy (J/node/h)",
        help: "energy per node and hour, joules",
        value: |r| r.energy_j_per_node_hour,
        kind: Kind::Number,
        ratio: false,
    },
];

/// `a ÷ b` written as "1.23×", or [`NONE`] when it is not a finite number.
pub(crate) fn fmt_ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if r.is_finite() {
        format!("{}×", fmt_num(r))
    } else {
        NONE.to_owned()
    }
}

/// A number with three significant digits or so (no exponent), or [`NONE`].
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let a = v.abs();
    let s = if a == 0.0 {
        "0".to_owned()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    };
    // "-0" and friends read badly.
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        "0".to_owned()
    } else {
        s
    }
}

/// A number like [`fmt_num`] without trailing zeros after the point ("0.5", "2", "12.5"), or [`NONE`].
pub(crate) fn fmt_short(v: f64) -> String {
    let s = fmt_num(v);
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A fraction as a percentage ("87.5 %"), or [`NONE`].
pub(crate) fn fmt_pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", v * 100.0)
    } else {
        NONE.to_owned()
    }
}

/// A count with thin grouping ("12 345"), or [`NONE`].
pub(crate) fn fmt_count(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0.0 && digits != "0" {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds, written in the unit that suits it ("42.0 s", "12.5 min", "3.20 h"), or [`NONE`].
pub(crate) fn fmt_secs(v: f64) -> String {
    if !v.is_finite() {
        return NONE.to_owned();
    }
    let (div, unit) = time_unit(v.abs());
    format!("{} {unit}", fmt_num(v / div))
}

/// The unit for showing durations up to `max_s` seconds: divisor and symbol.
pub(crate) fn time_unit(max_s: f64) -> (f64, &'static str) {
    if max_s >= 7_200.0 {
        (3_600.0, "h")
    } else if max_s >= 120.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    }
}

/// Escapes text for HTML and SVG, in element content and in quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Makes a name safe to print to a terminal: control characters become `?`.
pub(crate) fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Median of already sorted finite values (NaN when empty).
pub(crate) fn median_sorted(v: &[f64]) -> f64 {
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The finite values of `v`, sorted ascending.
pub(crate) fn sorted_finite(v: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    out.sort_by(f64::total_cmp);
    out
}

/// At most `max` evenly spaced items of `v`, always keeping the first and the last.
pub(crate) fn downsample<T: Copy>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max || max < 2 {
        return v.to_vec();
    }
    let last = v.len() - 1;
    (0..max).map(|i| v[i * last / (max - 1)]).collect()
}
