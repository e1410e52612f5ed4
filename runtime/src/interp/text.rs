//! Text helpers with SystemTap's exact output: `ctime`, escaping and quoting.

/// `ctime(secs)`: `Thu Jan  1 00:00:00 1970` in UTC; `tz_ctime` uses local time and
/// appends the zone name.
pub fn ctime(secs: i64, local: bool) -> String {
    // SAFETY: tm is plain data filled by gmtime_r/localtime_r; strftime writes at most
    // buf.len() bytes and returns how many.
    unsafe {
        let t: libc::time_t = secs;
        let mut tm: libc::tm = std::mem::zeroed();
        let ok = if local {
            !libc::localtime_r(&t, &mut tm).is_null()
        } else {
            !libc::gmtime_r(&t, &mut tm).is_null()
        };
        if !ok {
            return "<invalid time>".to_string();
        }
        let fmt: &[u8] = if local {
            b"%a %b %e %H:%M:%S %Y %Z\0"
        } else {
            b"%a %b %e %H:%M:%S %Y\0"
        };
        let mut buf = [0u8; 64];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr().cast(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Escapes one byte the way SystemTap's `text_str` does.
fn escape(out: &mut Vec<u8>, c: u8) {
    let simple = match c {
        b'\n' => Some(b'n'),
        b'\t' => Some(b't'),
        b'\r' => Some(b'r'),
        0x0b => Some(b'v'),
        0x0c => Some(b'f'),
        0x07 => Some(b'a'),
        0x08 => Some(b'b'),
        b'"' => Some(b'"'),
        b'\'' => Some(b'\''),
        b'\\' => Some(b'\\'),
        _ => None,
    };
    match simple {
        Some(e) => out.extend_from_slice(&[b'\\', e]),
        None if (0x20..0x7f).contains(&c) => out.push(c),
        None => out.extend_from_slice(format!("\\{c:03o}").as_bytes()),
    }
}

/// `text_str(s)`: non-printable bytes as C escapes or octal `\ooo`.
pub fn text_str(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        escape(&mut out, c);
    }
    out
}

/// `string_quoted(s)`: `text_str` in double quotes.
pub fn quoted(s: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    out.extend(text_str(s));
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The epoch prints with a space-padded day, as C's ctime does.
    #[test]
    fn epoch() {
        assert_eq!(ctime(0, false), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_574_240_525, false), "Wed Nov 20 09:02:05 2019");
    }

    /// The post's corrupted member name shows byte 0xb0 as octal.
    #[test]
    fn escapes() {
        assert_eq!(
            quoted(b"PropertiesChange\xb0"),
            b"\"PropertiesChange\\260\"".to_vec()
        );
        assert_eq!(text_str(b"a\nb\"c"), b"a\\nb\\\"c".to_vec());
    }
}
