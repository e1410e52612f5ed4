//! Histogram text in SystemTap's layout (`runtime/stat-common.c`): a `value |---- count`
//! header, `@` bars scaled to 50 columns, two empty rows kept at each edge of the data
//! and longer empty runs shown as `~`.

use rtap_compiler::object::HistLayout;

const WIDTH: i64 = 50;
/// Empty rows kept around data before a run collapses into `~`.
const ELISION: usize = 2;
const LOG_ZERO: usize = HistLayout::LOG_ZERO;

/// Decimal digits of `v`, plus one for a minus sign.
fn digits(v: i64) -> usize {
    let mut n = usize::from(v < 0);
    let mut u = v.unsigned_abs();
    if u == 0 {
        return 1;
    }
    while u > 0 {
        u /= 10;
        n += 1;
    }
    n
}

/// The smallest value of a log bucket.
fn log_value(bucket: usize) -> i64 {
    match bucket.cmp(&LOG_ZERO) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => i64::MIN >> bucket,
        std::cmp::Ordering::Greater => 1i64 << (bucket - LOG_ZERO - 1),
    }
}

/// The histogram of `buckets` as SystemTap prints it; "" when every bucket is empty
/// (the caller reports "empty aggregate").
pub fn render(layout: HistLayout, buckets: &[i64]) -> String {
    let n = buckets.len();
    let Some(mut low) = buckets.iter().position(|&c| c > 0) else {
        return String::new();
    };
    let mut high = buckets.iter().rposition(|&c| c > 0).unwrap_or(low);
    let max = buckets.iter().copied().max().unwrap_or(0);
    let linear = matches!(layout, HistLayout::Linear { .. });
    for _ in 0..2 {
        // A log histogram does not reach into negative buckets without negative data.
        if low > 0 && (linear || low != LOG_ZERO) {
            low -= 1;
        }
        if high < n - 1 {
            high += 1;
        }
    }
    let (mut under, mut over) = (false, false);
    if linear {
        if low == 0 && buckets[0] == 0 {
            low += 1;
        }
        if high == n - 1 && buckets[high] == 0 {
            high -= 1;
        }
        under = low == 0;
        over = high == n - 1;
    }
    let scale = if max <= WIDTH {
        1
    } else {
        (max + WIDTH - 1) / WIDTH
    };
    let count_space = digits(max);
    let value_of = |i: usize| -> (i64, &'static str) {
        match layout {
            HistLayout::Log => (log_value(i), ""),
            HistLayout::Linear { lo, width, .. } => {
                if i == 0 {
                    (lo, "<")
                } else if i == n - 1 {
                    (lo + (i as i64 - 2) * width, ">")
                } else {
                    (lo + (i as i64 - 1) * width, "")
                }
            }
        }
    };
    let value_space = match layout {
        HistLayout::Linear { lo, width, .. } => (digits(lo) + usize::from(under))
            .max(digits(lo + width * high as i64) + usize::from(over)),
        HistLayout::Log => digits(log_value(high)).max(digits(log_value(low))),
    }
    .max(5);
    let mut out = format!(
        "{:>value_space$} |{} count\n",
        "value",
        "-".repeat(WIDTH as usize)
    );
    let mut eliding = false;
    for i in low..=high {
        let lo_k = i.saturating_sub(ELISION).max(low);
        let hi_k = (i + ELISION).min(high);
        if buckets[lo_k..=hi_k].iter().all(|&c| c == 0) {
            eliding = true;
            continue;
        }
        if eliding {
            out.push_str(&format!("{:>value_space$} ~\n", ""));
            eliding = false;
        }
        let (v, prefix) = value_of(i);
        let bar = buckets[i] / scale;
        out.push_str(&format!(
            "{:>pad$}{v} |{}{:>cw$}\n",
            prefix,
            "@".repeat(bar as usize),
            buckets[i],
            pad = value_space - digits(v),
            cw = (WIDTH - bar + 1) as usize + count_space,
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values 1..=10 land in log buckets 1, 2-3, 4-7, 8-15, with zero rows around.
    #[test]
    fn log_layout() {
        let mut b = vec![0i64; 128];
        for v in 1..=10 {
            b[HistLayout::Log.bucket(v)] += 1;
        }
        let text = render(HistLayout::Log, &b);
        let expected = "\
value |-------------------------------------------------- count
    0 |                                                   0
    1 |@                                                  1
    2 |@@                                                 2
    4 |@@@@                                               4
    8 |@@@                                                3
   16 |                                                   0
   32 |                                                   0

";
        assert_eq!(text, expected);
    }

    /// Linear buckets show `<`/`>` rows only when they hold data.
    #[test]
    fn linear_layout() {
        let layout = HistLayout::Linear {
            lo: 0,
            hi: 100,
            width: 10,
        };
        let n = layout.buckets();
        let mut b = vec![0i64; n];
        for v in [5, 15, 15, 95, 150] {
            b[layout.bucket(v)] += 1;
        }
        let text = render(layout, &b);
        assert!(text.contains("   0 |@"), "{text}");
        assert!(text.contains(">100 |@"), "{text}");
        assert!(text.contains("  ~\n"), "{text}");
        assert!(!text.contains('<'), "{text}");
    }
}
