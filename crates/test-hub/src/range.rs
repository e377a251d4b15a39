//! The `Range` request header, reduced to what a download client sends: one byte range.
//!
//! Per RFC 9110 a server may ignore a Range it does not support, so malformed headers and
//! multi-range requests get the whole file (200), while a well-formed range that starts past
//! the end gets 416.

/// What to send for a request's `Range` header on a file of a known size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// The whole file, 200.
    Full,
    /// `start..=end`, 206.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

pub(crate) fn parse(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse_num = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse_num(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial { start: size.saturating_sub(n), end: size - 1 },
            None => ByteRange::Full,
        },
        (false, _) => {
            let Some(start) = parse_num(first) else {
                return ByteRange::Full;
            };
            let end = if last.is_empty() {
                None
            } else {
                match parse_num(last) {
                    Some(end) if end >= start => Some(end),
                    _ => return ByteRange::Full,
                }
            };
            if start >= size {
                return ByteRange::Unsatisfiable;
            }
            ByteRange::Partial { start, end: end.map_or(size - 1, |end| end.min(size - 1)) }
        }
        (true, true) => ByteRange::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_like_rfc_9110() {
        let p = |h: &str| parse(Some(h), 100);
        assert_eq!(parse(None, 100), ByteRange::Full);
        assert_eq!(p("bytes=0-9"), ByteRange::Partial { start: 0, end: 9 });
        assert_eq!(p("bytes=90-"), ByteRange::Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=90-1000"), ByteRange::Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-10"), ByteRange::Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000"), ByteRange::Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=100-"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=-0"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=5-2"), ByteRange::Full);
        assert_eq!(p("bytes=0-1,5-6"), ByteRange::Full);
        assert_eq!(p("items=0-1"), ByteRange::Full);
        assert_eq!(parse(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
    }
}
