//! Benchmark: preprocess, parse and check a generated 10,000-line script; prints medians.

use rtap_lang::span::{SourceFile, SourceMap};
use rtap_lang::{check, parse, ScriptArgs};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Lines the generated script has (roughly; each unit adds a fixed block).
const TARGET_LINES: usize = 10_000;
const RUNS: usize = 21;

/// One unit of a realistic tracing script: globals, a helper, probes with loops,
/// `@entry` latency, histograms, a sorted top-N report and a periodic header.
fn unit(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"global calls_{i}, bytes_{i}[1000], lat_{i}, top_{i}%[64], name_{i} = "unit{i}"
global errors_{i} = 0

/* Formats a size with a unit suffix. */
function fmt_size_{i}:string(n:long) {{
    if (n >= 1048576)
        return sprintf("%dM", n / 1048576)
    else if (n >= 1024)
        return sprintf("%dK", n >> 10)
    return sprint(n) . "B"
}}

function weight_{i}(a, b) {{
    total = 0
    for (k = 0; k < a; k++) {{
        total += (b * k + 3) % 7 - (k & 0xff) | 1
    }}
    while (total > 100 && b != 0) total /= 2
    return total
}}

probe process("/usr/bin/app{i}").function("send_msg") {{
    calls_{i}[execname(), tid()]++
    bytes_{i}[pid()] <<< $len
    # count only the big ones
    if ($len > 4096 || $flags & 0x40) errors_{i} += 1
    top_{i}[ppfunc()] = weight_{i}($len, 3)
}}

probe process("/usr/bin/app{i}").function("send_msg").return {{
    lat_{i} <<< gettimeofday_ns() - @entry(gettimeofday_ns())
    if ($return < 0) {{
        printf("%s[%d] failed: %d (%s)\n", execname(), pid(), $return, fmt_size_{i}(@entry($len)))
    }}
}}

probe timer.s(5) {{
    printf("%-20s %10s %10s\n", "NAME", "CALLS", "BYTES")
    foreach ([name, t] in calls_{i}- limit 10) {{
        printf("%-20s %10d\n", name, calls_{i}[name, t])
    }}
    foreach (p+ in bytes_{i}) {{
        printf("%d: count=%d avg=%d max=%d\n", p, @count(bytes_{i}[p]), @avg(bytes_{i}[p]), @max(bytes_{i}[p]))
        print(@hist_log(bytes_{i}[p]))
    }}
    foreach (v = [f] in top_{i} limit 5) {{
        s = f . ": " . sprint(v)
        if (s =~ "^send") printf("%s\n", s)
    }}
    delete calls_{i}
    delete top_{i}
}}

probe end {{
    if (@count(lat_{i}) > 0) {{
        printf("%s: %d calls, avg %d ns, min %d, max %d\n", name_{i}, @count(lat_{i}),
               @avg(lat_{i}), @min(lat_{i}), @max(lat_{i}))
        print(@hist_linear(lat_{i}, 0, 10000, 500))
    }}
    x = errors_{i} ? errors_{i} * 100 / (errors_{i} + 1) : -1
    printf("errors: %d (%d%%)\n", errors_{i}, x)
}}

"#
    );
}

fn script() -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.bytes().filter(|&b| b == b'\n').count() < TARGET_LINES {
        unit(&mut s, i);
        i += 1;
    }
    s
}

/// Median and minimum: the machine is shared, so the minimum shows the code's own cost.
fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    format!("{:.1} ms (min {:.1})", ms(v[v.len() / 2]), ms(v[0]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let text = script();
    let lines = text.lines().count();
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new("bench.stp", text));
    let args = ScriptArgs::default();
    let (mut parse_t, mut check_t, mut total_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let script = parse(&sources, file, &args).expect("the benchmark script parses");
        let t1 = Instant::now();
        let (program, diags) = check(&script, &sources);
        let t2 = Instant::now();
        assert!(
            program.is_some(),
            "the benchmark script checks: {}",
            rtap_lang::diag::render(&sources, &diags)
        );
        parse_t.push(t1 - t0);
        check_t.push(t2 - t1);
        total_t.push(t2 - t0);
    }
    println!("{lines} lines, median of {RUNS} runs");
    println!("parse  {}", stats(parse_t));
    println!("check  {}", stats(check_t));
    println!("total  {}", stats(total_t));
}
