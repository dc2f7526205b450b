//! SVG plots (plotters, SVG backend: text is SVG `<text>`, no font files): per scenario, the
//! designs' blast radius and exposure window with their 95% CIs; per swept scenario, the
//! Pareto view of blast radius against operational cost (failed tasks, credentials issued).

use crate::design::Design;
use crate::params::Assignment;
use crate::run::Row;
use crate::{mean_ci, stat};
use plotters::coord::Shift;
use plotters::prelude::*;

const PALETTE: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
];

fn color(d: Design) -> RGBColor {
    PALETTE[Design::ALL.iter().position(|x| *x == d).unwrap_or(0)]
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// The name at a whole-number axis position, nothing between.
fn label_at(names: &[&str], at: f64) -> String {
    let i = at.round();
    if (at - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).map_or(String::new(), |s| (*s).to_string())
    } else {
        String::new()
    }
}

/// Bars with 95% CI whiskers, one per design.
fn bars(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    values: &[(Design, (f64, f64))],
) -> Result<(), String> {
    let top = values.iter().map(|(_, (m, ci))| m + ci).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let n = values.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..top)
        .map_err(err)?;
    let names: Vec<&str> = values.iter().map(|(d, _)| d.name()).collect();
    let label = |x: &f64| label_at(&names, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(values.len())
        .x_label_formatter(&label)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(values.iter().enumerate().map(|(i, (d, (m, _)))| {
            let x = i as f64;
            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *m)], color(*d).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(values.iter().enumerate().filter(|(_, (_, (_, ci)))| *ci > 0.0).map(|(i, (_, (m, ci)))| {
            let x = i as f64;
            PathElement::new(vec![(x, (m - ci).max(0.0)), (x, m + ci)], BLACK.stroke_width(2))
        }))
        .map_err(err)?;
    Ok(())
}

/// `compare-<scenario>.svg`: blast radius (pairs weighted by sensitivity) and exposure window
/// per design, means with 95% CIs; `run` (seed and replications) goes in the titles.
pub fn compare(rows: &[Row], scenario: &str, run: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(550);
        let weighted: Vec<(Design, (f64, f64))> =
            Design::ALL.iter().map(|d| (*d, stat(rows, scenario, *d, "blast_radius_weighted"))).collect();
        bars(&left, &format!("{scenario}: blast radius (weighted), {run}"), "pairs × (1 + sensitivity)", &weighted)?;
        let window: Vec<(Design, (f64, f64))> = Design::ALL
            .iter()
            .map(|d| {
                let (m, ci) = stat(rows, scenario, *d, "exposure_window_s");
                (*d, (m / 3600.0, ci / 3600.0))
            })
            .collect();
        bars(&right, &format!("{scenario}: exposure window, {run}"), "hours usable after a leak", &window)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One point of the Pareto view: a design under one assignment, means over replications.
#[derive(Debug, Clone)]
pub struct Point {
    pub design: Design,
    pub params: Assignment,
    pub cost: f64,
    pub blast: f64,
}

/// Labels for the points of one design: points at the same place are drawn once, labelled
/// with only the parameter values that place depends on (`ttl=60`, not every rotation
/// period that gives the same result).
fn labelled(pts: &[&Point]) -> Vec<(f64, f64, String)> {
    let mut places: Vec<(f64, f64, Vec<&Assignment>)> = Vec::new();
    for p in pts {
        match places.iter_mut().find(|(c, b, _)| (c - p.cost).abs() < 1e-9 && (b - p.blast).abs() < 1e-9) {
            Some(place) => place.2.push(&p.params),
            None => places.push((p.cost, p.blast, vec![&p.params])),
        }
    }
    let all = |i: usize| -> Vec<f64> {
        let mut v: Vec<f64> = pts.iter().filter_map(|p| p.params.0.get(i).map(|x| x.1)).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    places
        .into_iter()
        .map(|(c, b, group)| {
            let width = group.first().map_or(0, |a| a.0.len());
            let parts: Vec<String> = (0..width)
                .filter_map(|i| {
                    let mut here: Vec<f64> = group.iter().filter_map(|a| a.0.get(i).map(|x| x.1)).collect();
                    here.sort_by(f64::total_cmp);
                    here.dedup();
                    let name = group.first().and_then(|a| a.0.get(i)).map_or("", |x| x.0.name());
                    // A parameter whose every value lands here does not matter here.
                    (here != all(i))
                        .then(|| format!("{name}={}", here.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("/")))
                })
                .collect();
            (c, b, parts.join(" "))
        })
        .collect()
}

/// The points of `scenario` with `cost_metric` as the cost, one per (design, assignment), in
/// row order.
pub fn points(rows: &[Row], scenario: &str, cost_metric: &str) -> Vec<Point> {
    let mut keys: Vec<(Design, &Assignment)> = Vec::new();
    for r in rows.iter().filter(|r| r.scenario == scenario) {
        if !keys.iter().any(|(d, a)| *d == r.design && **a == r.params) {
            keys.push((r.design, &r.params));
        }
    }
    keys.into_iter()
        .map(|(d, a)| {
            let mine: Vec<_> =
                rows.iter().filter(|r| r.scenario == scenario && r.design == d && r.params == *a).collect();
            let of = |m: &str| mean_ci(&mine.iter().filter_map(|r| r.metrics.get(m)).collect::<Vec<_>>()).0;
            Point { design: d, params: a.clone(), cost: of(cost_metric), blast: of("blast_radius") }
        })
        .collect()
}

/// The points no other point beats on both cost and blast radius (lower is better), by cost.
pub fn frontier(points: &[Point]) -> Vec<Point> {
    let beaten = |p: &Point| {
        points.iter().any(|q| q.cost <= p.cost && q.blast <= p.blast && (q.cost < p.cost || q.blast < p.blast))
    };
    let mut f: Vec<Point> = points.iter().filter(|p| !beaten(p)).cloned().collect();
    f.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.blast.total_cmp(&b.blast)));
    f
}

fn pareto_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x_desc: &str,
    pts: &[Point],
) -> Result<(), String> {
    let xmax = pts.iter().map(|p| p.cost).fold(0.0f64, f64::max).max(1.0) * 1.1;
    let ymax = pts.iter().map(|p| p.blast).fold(0.0f64, f64::max).max(1.0) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("blast radius (pairs)").draw().map_err(err)?;
    let f = frontier(pts);
    chart.draw_series(LineSeries::new(f.iter().map(|p| (p.cost, p.blast)), BLACK.stroke_width(1))).map_err(err)?;
    for d in Design::ALL {
        let mine: Vec<&Point> = pts.iter().filter(|p| p.design == d).collect();
        if mine.is_empty() {
            continue;
        }
        chart
            .draw_series(mine.iter().map(|p| Circle::new((p.cost, p.blast), 5, color(d).filled())))
            .map_err(err)?
            .label(d.name())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color(d).filled()));
        chart
            .draw_series(labelled(&mine).into_iter().map(|(c, b, label)| {
                EmptyElement::at((c, b)) + Text::new(label, (8, -4), ("sans-serif", 11).into_font())
            }))
            .map_err(err)?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().map_err(err)?;
    Ok(())
}

/// `pareto-<scenario>.svg`: blast radius against failed tasks and against credentials
/// issued, a point per design and parameter values, the non-dominated ones joined; `run`
/// (seed and replications) goes in the titles.
pub fn pareto(rows: &[Row], scenario: &str, run: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(600);
        pareto_panel(
            &left,
            &format!("{scenario}: vs failed tasks, {run}"),
            "failed tasks",
            &points(rows, scenario, "failed_tasks"),
        )?;
        pareto_panel(
            &right,
            &format!("{scenario}: vs issuance, {run}"),
            "credentials issued",
            &points(rows, scenario, "credentials_issued"),
        )?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// `tornado-<scenario>.svg`: for claim `k`, each parameter's bar from its low-end to its
/// high-end statistic (mean paired difference), widest first, the base value a vertical line.
pub fn tornado(points: &[crate::sensitivity::Point], scenario: &str, k: usize, run: &str) -> Result<String, String> {
    let base = points.iter().find(|p| p.kind == "base").map_or(0.0, |p| p.claims.statistics()[k]);
    let mut bars: Vec<(&str, f64, f64)> = crate::sensitivity::ranges()
        .iter()
        .filter_map(|r| {
            let at = |kind: &str| {
                points.iter().find(|p| p.kind == kind && p.moved == Some(r.param)).map(|p| p.claims.statistics()[k])
            };
            Some((r.param.name(), at("low")?, at("high")?))
        })
        .collect();
    bars.sort_by(|a, b| (b.2 - b.1).abs().total_cmp(&(a.2 - a.1).abs()));
    let lo = bars.iter().flat_map(|b| [b.1, b.2]).fold(base, f64::min);
    let hi = bars.iter().flat_map(|b| [b.1, b.2]).fold(base, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = bars.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{scenario}: {} — {run}", crate::claims::KEYS[k]), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(130)
            .build_cartesian_2d((lo - pad)..(hi + pad), -0.5f64..n - 0.5)
            .map_err(err)?;
        let names: Vec<&str> = bars.iter().map(|b| b.0).collect();
        let label = |y: &f64| label_at(&names, *y);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&label)
            .x_desc("mean paired difference (above 0: the claim's way); low end red, high end blue")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(bars.iter().enumerate().flat_map(|(i, (_, low, high))| {
                let y = i as f64;
                [
                    Rectangle::new([(base.min(*low), y - 0.35), (base.max(*low), y)], PALETTE[0].mix(0.8).filled()),
                    Rectangle::new([(base.min(*high), y), (base.max(*high), y + 0.35)], PALETTE[4].mix(0.8).filled()),
                ]
            }))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(base, -0.5), (base, n - 0.5)], BLACK.stroke_width(2))))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
