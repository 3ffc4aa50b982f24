//! The overview above the table: counts and a histogram of how long the
//! followed accounts have been silent, as geometry for an inline SVG.
//!
//! Why computed here: the chart is drawn on the server (no chart library,
//! no script, the page CSP stays strict), so the bars' positions are plain
//! numbers the template writes into `<rect>`s. Bars are whole months of
//! inactivity (30.44 days) from 0 to 23, then one bar for 24 months and
//! more; accounts that never posted get a bar of their own, set apart. The
//! threshold is a line at its exact place on the month axis, and bars past
//! it are marked stale. Heights are on a square-root scale (said under the
//! chart), so a few silent months stay visible next to a tall "active" bar.

use serde::Serialize;
use time::OffsetDateTime;

use super::fetch::Activity;
use super::stale::InactiveBy;

/// Month bars before the "never" bar (0..=23 and "24+").
pub const MONTH_BARS: usize = 25;
/// Hundredths of a day in an average month (30.44 days).
const MONTH_CENTIDAYS: u64 = 3044;

// Chart geometry in SVG user units (the SVG scales to the page width).
const LEFT: u32 = 40;
const SLOT: u32 = 22;
const BAR: u32 = 18;
const NEVER_GAP: u32 = 18;
const TOP: u32 = 18;
const PLOT_HEIGHT: u32 = 140;

/// One bar, ready for the template.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub count: usize,
    /// "3 months", "24+ months", "never posted".
    pub label: String,
    /// Past the threshold (or never posted).
    pub stale: bool,
}

/// An axis label under the bars.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Tick {
    pub x: u32,
    pub text: String,
}

/// Everything the overview shows.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub width: u32,
    pub height: u32,
    pub baseline: u32,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// Where the threshold line is drawn.
    pub threshold_x: u32,
    pub max_count: usize,
    pub never: usize,
    pub silent_over_year: usize,
    /// A sentence for screen readers.
    pub description: String,
}

/// Whole months since `at`, as days / 30.44; the future counts as 0.
fn months_since(days: u64) -> u64 {
    days.saturating_mul(100) / MONTH_CENTIDAYS
}

/// The overview of `activity` (every followed account the node knows).
pub fn overview(
    activity: &[Activity],
    threshold_days: u32,
    by: InactiveBy,
    now: OffsetDateTime,
) -> Overview {
    let mut counts = [0usize; MONTH_BARS];
    let mut never = 0usize;
    let mut silent_over_year = 0usize;
    for account in activity {
        let at = match by {
            InactiveBy::LastPost => account.last_post_at,
            InactiveBy::LastRootPost => account.last_root_post_at,
        };
        let Some(at) = at else {
            never += 1;
            continue;
        };
        let seconds = (now - at.assume_utc()).whole_seconds().max(0);
        let days = u64::try_from(seconds / 86_400).unwrap_or(0);
        if days > 365 {
            silent_over_year += 1;
        }
        let month = usize::try_from(months_since(days))
            .unwrap_or(MONTH_BARS - 1)
            .min(MONTH_BARS - 1);
        counts[month] += 1;
    }
    let max_count = counts.iter().copied().chain([never]).max().unwrap_or(0);
    let height_of = |count: usize| -> u32 {
        if max_count == 0 || count == 0 {
            return 0;
        }
        // Square-root scale: a follow list is usually dominated by the
        // recently active, and a linear scale would flatten every month of
        // silence to nothing. At least 1 unit so one account stays visible.
        let ratio = (count as f64 / max_count as f64).sqrt();
        ((ratio * f64::from(PLOT_HEIGHT)).round() as u32).clamp(1, PLOT_HEIGHT)
    };
    let baseline = TOP + PLOT_HEIGHT;
    let threshold_months_x100 = u64::from(threshold_days) * 10_000 / MONTH_CENTIDAYS;
    let mut bars = Vec::with_capacity(MONTH_BARS + 1);
    for (month, count) in counts.iter().copied().enumerate() {
        let x = LEFT + month as u32 * SLOT;
        let height = height_of(count);
        let label = match month {
            m if m == MONTH_BARS - 1 => format!("{m}+ months"),
            1 => "1 month".to_string(),
            m => format!("{m} months"),
        };
        bars.push(Bar {
            x,
            y: baseline - height,
            width: BAR,
            height,
            count,
            label,
            // The whole month lies past the threshold.
            stale: (month as u64) * 100 >= threshold_months_x100,
        });
    }
    let never_x = LEFT + MONTH_BARS as u32 * SLOT + NEVER_GAP;
    let never_height = height_of(never);
    bars.push(Bar {
        x: never_x,
        y: baseline - never_height,
        width: BAR,
        height: never_height,
        count: never,
        label: "never posted".to_string(),
        stale: true,
    });
    let axis_end = LEFT + (MONTH_BARS as u32 - 1) * SLOT;
    let threshold_x =
        u32::try_from(u64::from(LEFT) + threshold_months_x100 * u64::from(SLOT) / 100)
            .unwrap_or(axis_end)
            .min(axis_end);
    let mut ticks: Vec<Tick> = [0usize, 6, 12, 18]
        .iter()
        .map(|&month| Tick {
            x: LEFT + month as u32 * SLOT,
            text: month.to_string(),
        })
        .collect();
    ticks.push(Tick {
        x: axis_end,
        text: "24+".to_string(),
    });
    ticks.push(Tick {
        x: never_x,
        text: "never".to_string(),
    });
    let description = format!(
        "Of {} followed accounts, {} posted within a month, {} have been silent for more than a year and {} never posted. The line marks the threshold of {} days.",
        activity.len(),
        counts[0],
        silent_over_year,
        never,
        threshold_days
    );
    Overview {
        width: never_x + BAR + 28,
        height: baseline + 30,
        baseline,
        bars,
        ticks,
        threshold_x,
        max_count,
        never,
        silent_over_year,
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::AccountName;
    use crate::report::fetch::parse_chain_time;

    fn activity(name: &str, last_post: &str) -> Activity {
        Activity {
            name: AccountName::parse(name).unwrap(),
            last_post: last_post.into(),
            last_post_at: parse_chain_time("last_post", last_post).unwrap(),
            last_root_post: last_post.into(),
            last_root_post_at: parse_chain_time("last_root_post", last_post).unwrap(),
        }
    }

    #[test]
    fn accounts_fall_in_month_bars_never_apart_and_the_threshold_is_placed() {
        let now = time::macros::datetime!(2020-03-01 12:00 UTC);
        let data = [
            activity("today", "2020-03-01T00:00:00"),
            activity("twenty-nine", "2020-02-01T12:00:00"),
            activity("forty-one", "2020-01-20T12:00:00"),
            activity("ancient", "2016-01-01T00:00:00"),
            activity("never", "1970-01-01T00:00:00"),
            activity("future", "2020-04-01T00:00:00"),
        ];
        let view = overview(&data, 40, InactiveBy::LastPost, now);
        let counts: Vec<usize> = view.bars.iter().map(|b| b.count).collect();
        let mut expected = vec![0; MONTH_BARS + 1];
        expected[0] = 3; // today, twenty-nine, future
        expected[1] = 1; // forty-one: 41 days = 1.35 months
        expected[MONTH_BARS - 1] = 1; // ancient
        expected[MONTH_BARS] = 1; // never
        assert_eq!(counts, expected);
        assert_eq!(view.max_count, 3);
        assert_eq!(view.never, 1);
        assert_eq!(view.silent_over_year, 1);
        // The tallest bar fills the plot; empty bars have no height.
        assert_eq!(view.bars[0].height, PLOT_HEIGHT);
        assert_eq!(view.bars[0].y, TOP);
        assert_eq!(view.bars[2].height, 0);
        // Square-root scale: one account of three is sqrt(1/3) of the plot.
        assert_eq!(view.bars[1].height, 81);
        // 40 days = 1.31 months: the line sits inside the second bar, which
        // is not wholly stale; the third is.
        assert!(view.threshold_x > LEFT + SLOT && view.threshold_x < LEFT + 2 * SLOT);
        assert!(!view.bars[1].stale && view.bars[2].stale && view.bars[MONTH_BARS].stale);
        assert_eq!(view.bars[MONTH_BARS].label, "never posted");
        // A threshold beyond two years pins the line to the last month bar.
        let far = overview(&data, 3000, InactiveBy::LastPost, now);
        assert_eq!(far.threshold_x, LEFT + (MONTH_BARS as u32 - 1) * SLOT);
        assert!(view.description.contains("6 followed accounts"));
    }
}
